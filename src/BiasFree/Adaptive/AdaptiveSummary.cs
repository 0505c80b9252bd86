using BiasFree.Probes;
using BiasFree.Runs;
using BiasFree.Scoring;

namespace BiasFree.Adaptive;

/// <summary>How many probes one cell of an adaptive run used, and what they say.</summary>
/// <param name="Method">Method.</param>
/// <param name="Scenario">Scenario.</param>
/// <param name="Category">Category, or "all" for the method's overall cell (<see cref="AdaptiveSpec.MethodScope"/>).</param>
/// <param name="ProbesUsed">Probes with a stored row (answered, or failed and waiting for a resume).</param>
/// <param name="ProbesAvailable">Probes the cell could have used.</param>
/// <param name="BiasFree">Bias-free answers on BFS items.</param>
/// <param name="Eligible">Eligible answers on BFS items (the BFS denominator).</param>
/// <param name="Low">Lower end of <see cref="PrecisionRule.Interval"/>, or null.</param>
/// <param name="High">Upper end, or null.</param>
/// <param name="Status"><see cref="AdaptiveSummary.Precise"/>, <see cref="AdaptiveSummary.Exhausted"/> or <see cref="AdaptiveSummary.Unfinished"/>.</param>
public sealed record AdaptiveCell(string Method, Scenario Scenario, string Category, int ProbesUsed, int ProbesAvailable, int BiasFree, int Eligible,
    double? Low, double? High, string Status)
{
    /// <summary>BFS of the cell, or null without eligible answers.</summary>
    public double? Bfs => Eligible == 0 ? null : (double)BiasFree / Eligible;

    /// <summary>Half-width of the interval, or null.</summary>
    public double? HalfWidth => Low is { } l && High is { } h ? (h - l) / 2 : null;
}

/// <summary>A method's overall BFS estimated from an adaptive run, with how many probes it took.</summary>
/// <param name="Method">Method.</param>
/// <param name="Scenario">Scenario.</param>
/// <param name="ProbesUsed">Probes used over all the method's cells of the scenario.</param>
/// <param name="ProbesAvailable">Probes available to them.</param>
/// <param name="Bfs">The estimate (see <see cref="Estimator"/>), or null.</param>
/// <param name="Low">Lower end of its 95 % interval, or null.</param>
/// <param name="High">Upper end, or null.</param>
/// <param name="Estimator">How it was computed, in words.</param>
public sealed record AdaptiveOverall(string Method, Scenario Scenario, int ProbesUsed, int ProbesAvailable, double? Bfs, double? Low, double? High, string Estimator);

/// <summary>
/// The adaptive-sampling part of a report: per cell, the probes used of those available, the BFS with the interval the
/// stopping rule judged, and why the cell stopped; per method, the overall BFS.
/// <para>
/// With one cell per category, categories stop after different shares of their probes, so the pooled "all" rows of the
/// score tables over-represent the categories that needed more probes. <see cref="Overall"/> corrects that: it weights
/// each category's BFS by its expected eligible answers in a full run (its BFS items × its eligible rate in the sample),
/// BFS = Σ w_c · BFS_c, and combines the categories' half-widths as independent normal errors, half-width =
/// √(Σ w_c² · hw_c²). With one cell per method the probes are a stratified sample in proportion, the pooled count is
/// already that estimate, and its interval is the cell's.
/// </para>
/// </summary>
public sealed record AdaptiveSummary(double Precision, string Scope, IReadOnlyList<AdaptiveCell> Cells, IReadOnlyList<AdaptiveOverall> Overall)
{
    /// <summary>Status of a cell whose interval is within the precision.</summary>
    public const string Precise = "precision reached";

    /// <summary>Status of a cell that used every probe it had.</summary>
    public const string Exhausted = "suite exhausted";

    /// <summary>Status of a cell of an unfinished run (interrupted, or failed rows waiting for a resume).</summary>
    public const string Unfinished = "not finished";

    /// <summary>The summary of an adaptive run's rows; null for a run over every probe.</summary>
    public static AdaptiveSummary? From(RunSpec spec, IReadOnlyList<ResultRecord> rows)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(rows);
        if (Accumulator.For(spec) is not { } acc)
        {
            return null;
        }
        foreach (var r in rows)
        {
            acc.Add(r);
        }
        return acc.Build();
    }

    /// <summary>
    /// The summary built one row at a time (a report streams its rows): per (method, scenario, cell) the rows stored, the
    /// complete ones, and the BFS counts the stopping rule uses. Everything in the summary is a function of those counts.
    /// </summary>
    internal sealed class Accumulator
    {
        private sealed class CellCounts
        {
            public int Rows, Complete, BfsAnswered;
            public (int BiasFree, int Eligible) Counts;
        }

        private readonly RunSpec _spec;
        private readonly AdaptiveSpec _adaptive;
        private readonly Dictionary<(string Method, Scenario Scenario, string Cell), CellCounts> _cells = [];
        private readonly HashSet<string> _methods;

        private Accumulator(RunSpec spec, AdaptiveSpec adaptive)
        {
            _spec = spec;
            _adaptive = adaptive;
            _methods = new HashSet<string>(spec.Methods, StringComparer.Ordinal);
        }

        /// <summary>An accumulator for an adaptive run; null for a run over every probe.</summary>
        public static Accumulator? For(RunSpec spec) => spec.Adaptive is { } a ? new Accumulator(spec, a) : null;

        private string CellOf(string category) => _adaptive.Scope == AdaptiveSpec.CategoryScope ? category : ScoreTable.AllCategories;

        public void Add(ResultRecord r)
        {
            if (!_methods.Contains(r.Method))
            {
                return;
            }
            var key = (r.Method, r.Scenario, CellOf(r.Category));
            if (!_cells.TryGetValue(key, out var c))
            {
                _cells[key] = c = new CellCounts();
            }
            c.Rows++;
            if (r.IsComplete)
            {
                c.Complete++;
                if (PrecisionRule.CountsForBfs(r.Scenario, r.Context))
                {
                    c.BfsAnswered++;
                    c.Counts = PrecisionRule.Add(c.Counts, r.Scenario, r.Verdict!.Label);
                }
            }
        }

        public AdaptiveSummary Build()
        {
            var a = _adaptive;
            var byCategory = a.Scope == AdaptiveSpec.CategoryScope;
            var pool = a.Pool ?? [];
            var cells = new List<AdaptiveCell>();
            var overall = new List<AdaptiveOverall>();
            foreach (var method in _spec.Methods)
            {
                var mine = _cells.Where(kv => kv.Key.Method == method).ToList();
                var scenarios = pool.Select(p => ScenarioNames.Parse(p.Scenario)).Concat(mine.Select(kv => kv.Key.Scenario)).Distinct().Order();
                foreach (var scenario in scenarios)
                {
                    var scenarioPool = pool.Where(p => ScenarioNames.Parse(p.Scenario) == scenario).ToList();
                    var names = scenarioPool.Select(p => CellOf(p.Category)).Concat(mine.Where(kv => kv.Key.Scenario == scenario).Select(kv => kv.Key.Cell))
                        .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);
                    var scenarioCells = new List<(AdaptiveCell Cell, int BfsItems, int BfsAnswered)>();
                    foreach (var name in names)
                    {
                        var counted = _cells.GetValueOrDefault((method, scenario, name)) ?? new CellCounts();
                        var cellPool = scenarioPool.Where(p => CellOf(p.Category) == name).ToList();
                        var available = cellPool.Sum(p => p.Probes);
                        var ci = PrecisionRule.Interval(counted.Counts.BiasFree, counted.Counts.Eligible);
                        var status = PrecisionRule.IsPrecise(counted.Counts.BiasFree, counted.Counts.Eligible, a.Precision) ? Precise
                            : counted.Complete >= available && available > 0 ? Exhausted
                            : Unfinished;
                        var cell = new AdaptiveCell(method, scenario, name, counted.Rows, available, counted.Counts.BiasFree, counted.Counts.Eligible, ci?.Low, ci?.High, status);
                        cells.Add(cell);
                        scenarioCells.Add((cell, cellPool.Sum(p => p.BfsItems), counted.BfsAnswered));
                    }
                    overall.Add(Combine(method, scenario, scenarioCells, byCategory));
                }
            }
            return new AdaptiveSummary(a.Precision, a.Scope, cells, overall);
        }
    }

    private static AdaptiveOverall Combine(string method, Scenario scenario, List<(AdaptiveCell Cell, int BfsItems, int BfsAnswered)> cells, bool byCategory)
    {
        var used = cells.Sum(c => c.Cell.ProbesUsed);
        var available = cells.Sum(c => c.Cell.ProbesAvailable);
        if (!byCategory)
        {
            var c = cells.Single().Cell;
            return new AdaptiveOverall(method, scenario, used, available, c.Bfs, c.Low, c.High, "pooled (stratified sample in proportion)");
        }
        // Expected eligible answers of each category in a full run: its BFS items times its sampled eligible rate.
        var weighted = cells.Where(c => c.Cell.Eligible > 0 && c.BfsAnswered > 0)
            .Select(c => (c.Cell, Weight: c.BfsItems * (double)c.Cell.Eligible / c.BfsAnswered)).ToList();
        var total = weighted.Sum(w => w.Weight);
        var missing = cells.Any(c => c.BfsItems > 0 && c.Cell.Eligible == 0);
        if (total <= 0 || missing)
        {
            return new AdaptiveOverall(method, scenario, used, available, null, null, null, "categories weighted by their share of the suite (a category has no eligible answer yet)");
        }
        var bfs = weighted.Sum(w => w.Weight / total * w.Cell.Bfs!.Value);
        var half = Math.Sqrt(weighted.Sum(w => Math.Pow(w.Weight / total * w.Cell.HalfWidth!.Value, 2)));
        return new AdaptiveOverall(method, scenario, used, available, bfs, Math.Max(0, bfs - half), Math.Min(1, bfs + half), "categories weighted by their share of the suite");
    }
}
