using System.CommandLine;
using BiasFree.Runs;
using BiasFree.Scoring;

namespace BiasFree.Cli.Commands;

/// <summary>The options that shape a report's statistics, shared by <c>run</c> (its closing table) and <c>report</c>.</summary>
internal static class ReportSettingsOptions
{
    public static Option<int> Bootstrap() => new("--bootstrap")
    {
        Description = $"Bootstrap resamples per confidence interval (0: no intervals). Default {Scoring.Bootstrap.DefaultResamples}.",
        DefaultValueFactory = _ => Scoring.Bootstrap.DefaultResamples,
    };

    public static Option<string> Baseline() => new("--baseline")
    {
        Description = "Method every other method is compared with.",
        DefaultValueFactory = _ => Reports.RunReport.Baseline,
    };

    /// <summary>Score options for a report of <paramref name="spec"/>; seeds derive from the run's seed.</summary>
    /// <exception cref="UserErrorException">A negative resample count, or a baseline that is not one of the run's methods.</exception>
    public static ScoreOptions For(RunSpec spec, int bootstrap, string baseline)
    {
        if (bootstrap < 0)
        {
            throw new UserErrorException("--bootstrap must be 0 (no intervals) or a number of resamples.");
        }
        // Method names are matched as the run stored them, ignoring case. The default baseline may be absent (a run without
        // "none" simply has no comparisons); a named one must exist.
        baseline = spec.Methods.FirstOrDefault(m => string.Equals(m, baseline.Trim(), StringComparison.OrdinalIgnoreCase)) ?? baseline.Trim();
        if (!spec.Methods.Contains(baseline, StringComparer.Ordinal) && baseline != Reports.RunReport.Baseline)
        {
            throw new UserErrorException($"--baseline '{baseline}' is not a method of run '{spec.RunId}' ({string.Join(", ", spec.Methods)}).");
        }
        return new ScoreOptions { BootstrapIntervals = bootstrap > 0, Resamples = Math.Max(1, bootstrap), Baseline = baseline };
    }
}
