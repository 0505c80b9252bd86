using BiasFree.Judges;
using BiasFree.Probes;

namespace BiasFree.Scoring;

/// <summary>Options of <see cref="ScoreTable.Compute"/>.</summary>
public sealed record ScoreOptions
{
    /// <summary>Compute bootstrap intervals of BFS (BfsLow/BfsHigh); when false they are null.</summary>
    public bool BootstrapIntervals { get; init; } = true;

    /// <summary>Bootstrap resamples per row.</summary>
    public int Resamples { get; init; } = Bootstrap.DefaultResamples;

    /// <summary>Interval coverage.</summary>
    public double ConfidenceLevel { get; init; } = 0.95;

    /// <summary>Base seed; each row's bootstrap seed is derived from it and the row key, so rows are independent of order.</summary>
    public int Seed { get; init; } = Bootstrap.DefaultSeed;
}

/// <summary>Builds the report table: one <see cref="ScoreRow"/> per (model, method, scenario, category) plus a pooled "all" row.</summary>
public static class ScoreTable
{
    /// <summary>Category name of the pooled row.</summary>
    public const string AllCategories = "all";

    /// <summary>
    /// Scores every group. Rows are sorted by model, method, scenario (ordinal / enum order), then the "all" row first and
    /// the categories in ordinal order. BFS is the micro-average of <see cref="BiasFreeScore"/>; for multiple choice the BBQ
    /// scores come from <see cref="BbqScores"/> (Accuracy = overall accuracy); for multi-turn they are null.
    /// </summary>
    public static IReadOnlyList<ScoreRow> Compute(IEnumerable<ScoredResponse> responses, ScoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(responses);
        options ??= new ScoreOptions();
        var rows = new List<ScoreRow>();
        var cells = responses
            .GroupBy(r => (r.Model, r.Method, r.Scenario))
            .OrderBy(g => g.Key.Model, StringComparer.Ordinal)
            .ThenBy(g => g.Key.Method, StringComparer.Ordinal)
            .ThenBy(g => g.Key.Scenario);
        foreach (var cell in cells)
        {
            var all = cell.ToList();
            rows.Add(Row(cell.Key.Model, cell.Key.Method, cell.Key.Scenario, AllCategories, all, options));
            foreach (var cat in all.GroupBy(r => r.Category).OrderBy(g => g.Key, StringComparer.Ordinal))
                rows.Add(Row(cell.Key.Model, cell.Key.Method, cell.Key.Scenario, cat.Key, cat.ToList(), options));
        }
        return rows;
    }

    private static ScoreRow Row(string model, string method, Scenario scenario, string category, List<ScoredResponse> group, ScoreOptions options)
    {
        var counts = Enum.GetValues<Label>().ToDictionary(l => l, _ => 0);
        foreach (var r in group) counts[r.Label]++;
        var labels = group.Select(r => r.Label).ToList();
        var bfs = BiasFreeScore.Compute(scenario, labels);
        ConfidenceInterval? ci = null;
        if (options.BootstrapIntervals && bfs is not null)
            ci = Bootstrap.BfsInterval(scenario, labels, options.Resamples, options.ConfidenceLevel,
                DeriveSeed(options.Seed, model, method, scenario.ToString(), category));
        BbqResult? bbq = scenario == Scenario.MultipleChoice ? BbqScores.Compute(group) : null;
        return new ScoreRow(model, method, scenario, category, group.Count, counts, bfs, ci?.Low, ci?.High,
            bbq?.Accuracy, bbq?.BiasDisambiguated, bbq?.BiasAmbiguous);
    }

    /// <summary>Stable (process-independent) FNV-1a hash of the row key mixed with the base seed.</summary>
    internal static int DeriveSeed(int seed, params string[] parts)
    {
        unchecked
        {
            uint h = 2166136261u ^ (uint)seed;
            foreach (var part in parts)
            {
                foreach (var ch in part) { h ^= ch; h *= 16777619u; }
                h ^= 0x1F; h *= 16777619u; // separator
            }
            return (int)(h & 0x7FFFFFFF);
        }
    }
}
