using BiasFree.Adaptive;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Runs;
using BiasFree.Scoring;

namespace BiasFree.Tests.Adaptive;

/// <summary>
/// Does stopping on the data keep the intervals honest? 200 simulated adaptive runs against a target with a known true
/// BFS per category (<see cref="SimulatedSuite"/>); the intervals reported when the cells stop must cover the truth in at
/// least 93 % of runs (nominal 95 %), and the runs must really have stopped early (else coverage would be trivial).
/// </summary>
public class AdaptiveCoverageTests
{
    private const int Runs = 200;
    private const double Unrelated = 0.05;

    // Unequal categories, true BFS from a coin flip to almost always bias-free (where plain intervals undercover).
    private static readonly (string Category, int Ambiguous, int Disambiguated, double Bfs)[] Truth =
    [
        ("age", 1500, 500, 0.50),
        ("gender", 800, 400, 0.75),
        ("race", 1200, 400, 0.90),
        ("religion", 600, 300, 0.98),
    ];

    private static IReadOnlyList<Probe> Suite() => SimulatedSuite.Build([.. Truth.Select(t => (t.Category, t.Ambiguous, t.Disambiguated))]);

    private static RunSpec Spec(AdaptiveSpec adaptive, IReadOnlyList<Probe> probes) => new()
    {
        RunId = "sim",
        Suites = ["sim"],
        Model = "sim",
        Methods = ["none"],
        Adaptive = adaptive with { Pool = AdaptiveSpec.PoolOf(probes) },
    };

    private static List<ResultRecord> Simulate(AdaptiveSpec adaptive, IReadOnlyList<Probe> probes, int run)
    {
        var rng = new Random(1000 + run);
        var bfs = Truth.ToDictionary(t => t.Category, t => t.Bfs);
        var scheduler = new AdaptiveScheduler(adaptive, ["none"], probes, seed: run, new Dictionary<(string, string, string), Label>());
        return SimulatedSuite.Run(scheduler, (_, p) => SimulatedSuite.Answer(rng, bfs[p.Category], Unrelated), rng);
    }

    [Fact]
    public void PerCategoryIntervalsCoverTheTrueBfsAndTheWeightedOverallDoesToo()
    {
        var probes = Suite();
        var adaptive = new AdaptiveSpec(0.05, AdaptiveSpec.CategoryScope);
        var covered = Truth.ToDictionary(t => t.Category, _ => 0);
        var overallCovered = 0;
        long used = 0;
        // The full-run BFS the overall estimate targets: categories weighted by their ambiguous items.
        var trueOverall = Truth.Sum(t => t.Ambiguous * t.Bfs) / Truth.Sum(t => t.Ambiguous);
        for (var run = 0; run < Runs; run++)
        {
            var rows = Simulate(adaptive, probes, run);
            used += rows.Count;
            var summary = AdaptiveSummary.From(Spec(adaptive, probes), rows)!;
            foreach (var t in Truth)
            {
                var cell = summary.Cells.Single(c => c.Category == t.Category);
                Assert.NotEqual(AdaptiveSummary.Unfinished, cell.Status);
                if (cell.Low <= t.Bfs && t.Bfs <= cell.High)
                {
                    covered[t.Category]++;
                }
            }
            var overall = summary.Overall.Single();
            if (overall.Low <= trueOverall && trueOverall <= overall.High)
            {
                overallCovered++;
            }
        }

        var total = probes.Count * (long)Runs;
        var report = string.Join(", ", covered.Select(kv => $"{kv.Key} {kv.Value}/{Runs}")) + $"; overall {overallCovered}/{Runs}; used {used} of {total}";
        TestContext.Current.TestOutputHelper?.WriteLine(report);
        foreach (var (category, hits) in covered)
        {
            Assert.True(hits >= 0.93 * Runs, report);
        }
        Assert.True(overallCovered >= 0.93 * Runs, report);
        // The cells stopped well before the suite ran out, so the coverage is the stopping rule's, not the full suite's.
        Assert.True(used < 0.6 * total, report);
    }

    [Fact]
    public void TheOverallIntervalOfMethodCellsCoversTheTrueBfs()
    {
        var probes = Suite();
        var adaptive = new AdaptiveSpec(0.03, AdaptiveSpec.MethodScope);
        var trueOverall = Truth.Sum(t => t.Ambiguous * t.Bfs) / Truth.Sum(t => t.Ambiguous);
        var covered = 0;
        long used = 0;
        for (var run = 0; run < Runs; run++)
        {
            var rows = Simulate(adaptive, probes, run);
            used += rows.Count;
            var cell = AdaptiveSummary.From(Spec(adaptive, probes), rows)!.Cells.Single();
            Assert.Equal(ScoreTable.AllCategories, cell.Category);
            Assert.Equal(AdaptiveSummary.Precise, cell.Status);
            Assert.True(cell.HalfWidth <= 0.03);
            if (cell.Low <= trueOverall && trueOverall <= cell.High)
            {
                covered++;
            }
        }
        var report = $"covered {covered}/{Runs}; used {used} of {probes.Count * (long)Runs}";
        TestContext.Current.TestOutputHelper?.WriteLine(report);
        Assert.True(covered >= 0.93 * Runs, report);
        Assert.True(used < 0.5 * probes.Count * (long)Runs, report);
    }
}
