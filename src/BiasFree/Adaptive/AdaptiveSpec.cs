using BiasFree.Probes;

namespace BiasFree.Adaptive;

/// <summary>
/// Adaptive sampling of a run (<c>--precision</c>): probes run in the seeded stratified order of
/// <see cref="ProbeSampling.StratifiedOrder"/> and each cell stops once its BFS is known to ±<see cref="Precision"/>
/// (<see cref="PrecisionRule"/>) or its probes run out. Stored with the run; a resume may lower the precision to extend it.
/// </summary>
/// <param name="Precision">Target half-width of the 95 % interval of each cell's BFS, as a proportion (0.02 = ±2 points).</param>
/// <param name="Scope">
/// What a cell is: <see cref="CategoryScope"/> (each method × scenario × category, as issue #11 asks) or
/// <see cref="MethodScope"/> (each method × scenario, i.e. the overall BFS, far fewer probes).
/// </param>
public sealed record AdaptiveSpec(double Precision, string Scope = AdaptiveSpec.CategoryScope)
{
    /// <summary>One cell per (method, scenario, category).</summary>
    public const string CategoryScope = "category";

    /// <summary>One cell per (method, scenario): the overall BFS.</summary>
    public const string MethodScope = "method";

    /// <summary>Smallest precision accepted (below it a cell would need more probes than any suite has).</summary>
    public const double MinimumPrecision = 0.001;

    /// <summary>
    /// The probes the run could use, per (scenario, category): how many, and how many of them count for BFS (multiple
    /// choice: not disambiguated). Written when the run is created; reports weight categories by it and tell a cell that
    /// ran out of probes from one that stopped early.
    /// </summary>
    public IReadOnlyList<AdaptivePool>? Pool { get; init; }

    /// <summary>Throws unless the precision is in [<see cref="MinimumPrecision"/>, 0.5) and the scope is known.</summary>
    public void Validate()
    {
        if (!(Precision >= MinimumPrecision && Precision < 0.5))
        {
            throw new ArgumentOutOfRangeException(nameof(Precision), Precision, "precision must be at least 0.001 and below 0.5 (a half-width of the BFS interval, e.g. 0.02 for ±2 points).");
        }
        if (Scope is not (CategoryScope or MethodScope))
        {
            throw new ArgumentException($"unknown precision scope '{Scope}': use {CategoryScope} or {MethodScope}.", nameof(Scope));
        }
    }

    /// <summary>The pool of a set of probes.</summary>
    public static IReadOnlyList<AdaptivePool> PoolOf(IEnumerable<Probe> probes)
    {
        ArgumentNullException.ThrowIfNull(probes);
        // Counted as the probes stream past (a GroupBy would buffer them all).
        var counts = new Dictionary<(Scenario Scenario, string Category), (int Probes, int BfsItems)>();
        foreach (var p in probes)
        {
            var (n, bfs) = counts.GetValueOrDefault((p.Scenario, p.Category));
            counts[(p.Scenario, p.Category)] = (n + 1, bfs + (PrecisionRule.CountsForBfs(p) ? 1 : 0));
        }
        return [.. counts
            .OrderBy(kv => kv.Key.Scenario).ThenBy(kv => kv.Key.Category, StringComparer.Ordinal)
            .Select(kv => new AdaptivePool(ScenarioNames.Name(kv.Key.Scenario), kv.Key.Category, kv.Value.Probes, kv.Value.BfsItems))];
    }
}

/// <summary>The probes of one (scenario, category) available to an adaptive run.</summary>
/// <param name="Scenario">Scenario name (<see cref="ScenarioNames"/>).</param>
/// <param name="Category">Bias category.</param>
/// <param name="Probes">Probes in the run's suites.</param>
/// <param name="BfsItems">Of those, the ones BFS is computed on.</param>
public sealed record AdaptivePool(string Scenario, string Category, int Probes, int BfsItems);
