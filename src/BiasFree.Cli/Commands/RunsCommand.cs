using System.CommandLine;
using System.Globalization;
using Spectre.Console;

namespace BiasFree.Cli.Commands;

/// <summary><c>biasfree runs</c>: the runs in a run store, newest first.</summary>
internal static class RunsCommand
{
    public static Command Build()
    {
        var runsDir = RunCommand.RunsDirOption();
        var cmd = new Command("runs", "List the runs in the run store.") { runsDir };
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(() => ExecuteAsync(pr.GetValue(runsDir)!, ct)));
        return cmd;
    }

    private static async Task<int> ExecuteAsync(string runsDir, CancellationToken ct)
    {
        await using var store = await RunCommand.OpenExistingStoreAsync(runsDir, ct).ConfigureAwait(false);
        var table = new Table().AddColumns("Run", "Created (UTC)", "Model", "Suites", "Methods", "Rows", "Complete", "Target errors");
        foreach (var run in await store.ListRunsAsync(ct).ConfigureAwait(false))
        {
            var expected = await store.GetExpectedRowsAsync(run.RunId, ct).ConfigureAwait(false);
            table.AddRow(
                Markup.Escape(run.RunId),
                run.Created.UtcDateTime.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture),
                Markup.Escape(run.Spec.Model),
                Markup.Escape(string.Join(", ", run.Spec.Suites)),
                Markup.Escape(string.Join(", ", run.Spec.Methods)),
                expected is { } e ? $"{run.Results.ToString(CultureInfo.InvariantCulture)}/{e.ToString(CultureInfo.InvariantCulture)}" : run.Results.ToString(CultureInfo.InvariantCulture),
                run.Complete.ToString(CultureInfo.InvariantCulture),
                run.Errors.ToString(CultureInfo.InvariantCulture));
        }
        AnsiConsole.Write(table);
        return ExitCodes.Ok;
    }
}
