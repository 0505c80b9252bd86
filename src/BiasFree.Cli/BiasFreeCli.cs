using System.CommandLine;
using BiasFree.Cli.Commands;
using BiasFree.Probes;

namespace BiasFree.Cli;

/// <summary>A mistake by the user (bad option, unknown run, unreachable target): printed without a stack trace.</summary>
internal sealed class UserErrorException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Exit codes of the biasfree tool.</summary>
internal static class ExitCodes
{
    public const int Ok = 0;
    public const int UserError = 1;
    public const int Incomplete = 2;
    public const int Interrupted = 130;
    public const int InternalError = 70;
}

/// <summary>The <c>biasfree</c> command line.</summary>
internal static class BiasFreeCli
{
    public static RootCommand Build()
    {
        var root = new RootCommand("BiasFree: measure and reduce social bias in LLM responses (BiasFreeBench-style).");
        root.Add(SuitesCommand.Build());
        root.Add(RunCommand.Build());
        root.Add(ReportCommand.Build());
        root.Add(RunsCommand.Build());
        root.Add(PromptsCommand.Build());
        root.Add(DemoModelCommand.Build());
        root.Add(SteerCommand.Build());
        root.Add(ValueCommand.Build());
        root.Add(TrainCommand.Build());
        root.Add(TrainCommand.BuildData());
        root.Add(TrainCommand.BuildCompare());
        root.Add(JudgeCommand.Build());
        root.Add(DiffPoCommand.Build());
        return root;
    }

    public static async Task<int> InvokeAsync(string[] args)
    {
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
        try
        {
            return await Build().Parse(args).InvokeAsync(config).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            return ReportError(ex);
        }
    }

    /// <summary>Runs a command action, turning user mistakes into a one-line error and exit code 1.</summary>
    public static async Task<int> Guard(Func<Task<int>> action)
    {
        try
        {
            return await action().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            return ReportError(ex);
        }
    }

    private static int ReportError(Exception ex)
    {
        switch (ex)
        {
            case OperationCanceledException:
                Console.Error.WriteLine("Interrupted.");
                return ExitCodes.Interrupted;
            case UserErrorException or ProbeFormatException or Mitigations.PromptTemplateException or ArgumentException or KeyNotFoundException or FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException or InvalidDataException:
                Console.Error.WriteLine($"error: {ex.Message}");
                return ExitCodes.UserError;
            default:
                Console.Error.WriteLine($"error: unexpected {ex.GetType().Name}: {ex.Message}");
                if (Environment.GetEnvironmentVariable("BIASFREE_DEBUG") == "1")
                {
                    Console.Error.WriteLine(ex);
                }
                return ExitCodes.InternalError;
        }
    }

    /// <summary>Splits repeated and comma-separated values ("a,b" "c" → a, b, c), trimmed, empty parts dropped.</summary>
    public static IReadOnlyList<string> SplitList(IEnumerable<string>? values) =>
        values is null ? [] : [.. values.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))];
}
