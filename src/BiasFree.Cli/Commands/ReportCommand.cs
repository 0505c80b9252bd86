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
        var samples = string.Equals(formatText.Trim(), "jsonl", StringComparison.OrdinalIgnoreCase);
        var format = ReportFormat.Markdown;
        if (!samples && !ReportWriter.TryParseFormat(formatText, out format))
        {
            throw new UserErrorException($"unknown report format '{formatText}': use md, json, csv or jsonl.");
        }
        await using var store = await RunCommand.OpenExistingStoreAsync(runsDir, ct).ConfigureAwait(false);
        var spec = await store.GetRunAsync(runId, ct).ConfigureAwait(false)
            ?? throw new UserErrorException($"no run '{runId}' in {store.DatabasePath}.");
        var options = ReportSettingsOptions.For(spec, bootstrap, baseline);
        string text;
        if (samples)
        {
            var sb = new System.Text.StringBuilder();
            await foreach (var row in store.ReadResultsAsync(runId, ct).ConfigureAwait(false))
            {
                sb.Append(ReportWriter.ToJsonLine(row)).Append('\n');
            }
            text = sb.ToString();
        }
        else
        {
            var report = await RunReport.BuildAsync(store, runId, options, ct).ConfigureAwait(false);
            text = ReportWriter.Render(report, format);
        }
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
