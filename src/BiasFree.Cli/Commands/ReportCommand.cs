using System.CommandLine;
using BiasFree.Reports;
using BiasFree.Runs;

namespace BiasFree.Cli.Commands;

/// <summary><c>biasfree report RUN [--format md|json|csv|jsonl] [--output FILE] [--bootstrap N] [--baseline METHOD]</c>.</summary>
internal static class ReportCommand
{
    public static Command Build()
    {
        var run = new Argument<string>("run") { Description = "Run id (see the end of `biasfree run`)." };
        var format = new Option<string>("--format") { Description = "md, json, csv (score tables) or jsonl (every result row: messages, reply, verdict, tokens, error).", DefaultValueFactory = _ => "md" };
        var output = new Option<FileInfo?>("--output", "-o") { Description = "Write to FILE instead of standard output." };
        var runsDir = RunCommand.RunsDirOption();
        var bootstrap = ReportSettingsOptions.Bootstrap();
        var baseline = ReportSettingsOptions.Baseline();
        var cmd = new Command("report", "Render the report of a run.") { run, format, output, runsDir, bootstrap, baseline };
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(() => ExecuteAsync(pr.GetValue(run)!, pr.GetValue(format)!, pr.GetValue(output), pr.GetValue(runsDir)!,
            pr.GetValue(bootstrap), pr.GetValue(baseline)!, ct)));
        return cmd;
    }

    private static async Task<int> ExecuteAsync(string runId, string formatText, FileInfo? output, string runsDir, int bootstrap, string baseline, CancellationToken ct)
    {
        if (!ReportWriter.TryParseFormat(formatText, out var format))
        {
            throw new UserErrorException($"unknown report format '{formatText}': use md, json, csv or jsonl.");
        }
        await using var store = await RunCommand.OpenExistingStoreAsync(runsDir, ct).ConfigureAwait(false);
        var spec = await store.GetRunAsync(runId, ct).ConfigureAwait(false)
            ?? throw new UserErrorException($"no run '{runId}' in {store.DatabasePath}.");
        var options = ReportSettingsOptions.For(spec, bootstrap, baseline);
        using var writer = new StringWriter(System.Globalization.CultureInfo.InvariantCulture);
        await ReportWriter.WriteAsync(store, runId, format, writer, options, ct).ConfigureAwait(false);
        var text = writer.ToString();
        if (output is null)
        {
            Console.Out.Write(text);
            if (text.Length > 0 && !text.EndsWith('\n'))
            {
                Console.Out.WriteLine();
            }
        }
        else
        {
            if (output.DirectoryName is { Length: > 0 } dir)
            {
                Directory.CreateDirectory(dir);
            }
            await File.WriteAllTextAsync(output.FullName, text, ct).ConfigureAwait(false);
            Console.Error.WriteLine($"Wrote {output.FullName}");
        }
        return ExitCodes.Ok;
    }
}
