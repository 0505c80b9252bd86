using BiasFree.Adaptive;
using BiasFree.Evaluations;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Probes.Loaders;
using BiasFree.Runs;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Adaptive;

/// <summary>
/// An adaptive run no longer holds its suite (issue #11): over a <see cref="ProbeSource"/> the scheduler keeps each
/// probe's place in its JSONL file and reads a batch again when it releases it. These tests check that it releases the
/// same probes, in the same order, with the same stops and counts, as the scheduler that held the loaded list
/// (<see cref="LegacyAdaptiveScheduler"/>, the code before the change), on seeded suites, fresh and resumed, with a
/// limit and a context filter; and that the probes really come from the file when released.
/// </summary>
public partial class AdaptiveStreamedSchedulerTests
{
    private static readonly string[] Categories = ["age", "gender-identity", "religion", "ses", "nationality"];

    /// <summary>A seeded suite: categories of uneven sizes, both contexts, some dialogues (not counted for BFS), text that needs escaping.</summary>
    private static List<Probe> Suite(int n, int seed)
    {
        var rng = new Random(seed);
        var probes = new List<Probe>(n);
        for (var i = 0; i < n; i++)
        {
            // Squared draw: categories of very different sizes, so strata interleave unevenly.
            var category = Categories[(int)(Categories.Length * Math.Pow(rng.NextDouble(), 2))];
            if (rng.Next(10) == 0)
            {
                probes.Add(new Probe
                {
                    Id = $"d{i}",
                    Suite = "seeded",
                    Scenario = Scenario.MultiTurn,
                    Category = category,
                    UserTurns = [$"turn one {i}", $"turn two \"{i}\" é"],
                });
                continue;
            }
            var ambiguous = rng.Next(2) == 0;
            string[] texts = [$"the {category} person {i % 7}", $"the other \"{i % 5}\" one", "Cannot be determined"];
            probes.Add(new Probe
            {
                Id = $"p{i}",
                Suite = "seeded",
                Scenario = Scenario.MultipleChoice,
                Category = category,
                UserTurns = [MultipleChoiceQuery.FormatLettered($"Context {i}\twith a tab.", "Who did it?", texts)],
                Options = [new(texts[0], OptionRole.Stereotyped, "a"), new(texts[1], OptionRole.AntiStereotyped, "b"), new(texts[2], OptionRole.Unknown, "unknown")],
                Context = ambiguous ? ContextCondition.Ambiguous : ContextCondition.Disambiguated,
                Polarity = rng.Next(2) == 0 ? QuestionPolarity.Negative : QuestionPolarity.NonNegative,
                CorrectOption = ambiguous ? 2 : rng.Next(2),
                Metadata = new Dictionary<string, string> { ["row"] = i.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            });
        }
        return probes;
    }

    [Theory]
    [InlineData(1, 500)]
    [InlineData(2, 3000)]
    [InlineData(3, 37)]
    public void TheOrderFromKeysIsTheOrderFromProbes(int seed, int n)
    {
        var probes = Suite(n, seed);
        var keys = probes.Select(p => ProbeSampling.KeyOf(p, seed)).ToList();
        var byKeys = ProbeSampling.StratifiedOrderIndices(keys, seed).Select(i => probes[i].Id);
        Assert.Equal(ProbeSampling.StratifiedOrder(probes, seed).Select(p => p.Id), byKeys);
        Assert.Equal(LegacyAdaptiveScheduler.StratifiedOrder(probes, seed).Select(p => p.Id), byKeys);
    }

    [Fact]
    public void TheOrderFromKeysBreaksHashTiesByPosition()
    {
        // Equal hashes (impossible to arrange through real ids) must fall back to the suite order, as the probe version does.
        var keys = new List<(string, ulong)> { ("a", 5), ("b", 1), ("a", 5), ("a", 2), ("b", 1) };
        var order = ProbeSampling.StratifiedOrderIndices(keys, 4);
        Assert.Equal([3, 0, 2], order.Where(i => keys[i].Item1 == "a"));
        Assert.Equal([1, 4], order.Where(i => keys[i].Item1 == "b"));
    }

    /// <summary>What a scheduler did: every item in release order, every completion, and its cells at the end.</summary>
    private sealed record Trace(List<string> Released, List<(string Method, string Suite, string Id)> Items, List<(string, int, int, int, bool)> Cells, int ReleasedStored, int UpperBound);

    /// <summary>
    /// Drives a scheduler to its end: takes what is released, completes the waiting items in an order drawn from
    /// <paramref name="orderSeed"/>, answering each with a label fixed by (method, probe id).
    /// </summary>
    private static Trace Drive(Action start, TryTake tryTake, Action<string, Probe, Label?> complete, Func<bool> finished,
        Func<IReadOnlyList<(string Method, Scenario Scenario, string Category, int Released, int BiasFree, int Eligible, bool Stopped)>> cells,
        Func<int> releasedStored, Func<int> upperBound, int orderSeed)
    {
        var released = new List<string>();
        var items = new List<(string, string, string)>();
        var waiting = new List<(string Method, Probe Probe)>();
        var order = new Random(orderSeed);
        start();
        while (true)
        {
            while (tryTake(out var item))
            {
                // The whole probe, as the runner gets it: it must be the one the loaded list holds.
                released.Add($"{item.Method}|{ProbeJsonl.Serialize(item.Probe)}");
                items.Add((item.Method, item.Probe.Suite, item.Probe.Id));
                waiting.Add(item);
            }
            if (waiting.Count == 0)
            {
                Assert.True(finished());
                return new Trace(released, items, [.. cells().Select(c => ($"{c.Method}/{c.Scenario}/{c.Category}", c.Released, c.BiasFree, c.Eligible, c.Stopped))
                    .Select(c => (c.Item1, c.Released, c.BiasFree, c.Eligible, c.Stopped))], releasedStored(), upperBound());
            }
            var i = order.Next(waiting.Count);
            var (method, probe) = waiting[i];
            waiting.RemoveAt(i);
            // One in twenty fails at the target (null: not eligible), the rest answer by a fixed draw.
            var h = StableRandom.For(method.Length, probe.Id).NextUInt64() % 100;
            complete(method, probe, h < 5 ? null : h < 40 ? Label.Biased : h < 45 ? Label.Unrelated : Label.Unknown);
        }
    }

    private delegate bool TryTake(out (string Method, Probe Probe) item);

    private static Trace Streamed(AdaptiveSpec spec, ProbeSource source, int seed, IReadOnlyDictionary<(string, string, string), Label> stored, int orderSeed)
    {
        var s = AdaptiveScheduler.For(spec, ["none", "self-awareness"], source, seed, stored);
        return Drive(s.Start, s.TryTake, s.Complete, () => s.IsFinished, () => s.Cells, () => s.ReleasedStored, () => s.UpperBound, orderSeed);
    }

    private static Trace Legacy(AdaptiveSpec spec, IReadOnlyList<Probe> probes, int seed, IReadOnlyDictionary<(string, string, string), Label> stored, int orderSeed)
    {
        var s = new LegacyAdaptiveScheduler(spec, ["none", "self-awareness"], probes, seed, stored);
        return Drive(s.Start, s.TryTake, s.Complete, () => s.IsFinished, () => s.Cells, () => s.ReleasedStored, () => s.UpperBound, orderSeed);
    }

    private static void AssertSame(Trace expected, Trace actual)
    {
        Assert.Equal(expected.Released.Count, actual.Released.Count);
        Assert.Equal(expected.Released, actual.Released);
        Assert.Equal(expected.Cells, actual.Cells);
        Assert.Equal(expected.ReleasedStored, actual.ReleasedStored);
        Assert.Equal(expected.UpperBound, actual.UpperBound);
    }

    [Theory]
    [InlineData(11, 2400, AdaptiveSpec.CategoryScope, null, false)]
    [InlineData(12, 2400, AdaptiveSpec.MethodScope, null, false)]
    [InlineData(13, 3000, AdaptiveSpec.CategoryScope, 1700, false)]
    [InlineData(14, 2000, AdaptiveSpec.CategoryScope, null, true)]
    public void TheStreamedSchedulerReleasesWhatTheLoadedOneDidFreshAndResumed(int seed, int n, string scope, int? limit, bool ambiguousOnly)
    {
        using var dir = new TempDir();
        var file = Path.Combine(dir.Path, "seeded.jsonl");
        ProbeJsonl.Write(file, Suite(n, seed));
        var spec = RunStoreTests.Spec() with
        {
            Suites = [$"jsonl:{file}"],
            Seed = seed,
            Limit = limit,
            Sampling = limit is null ? null : RunSpec.StratifiedSampling,
            Context = ambiguousOnly ? "ambiguous" : "all",
            Adaptive = new AdaptiveSpec(0.1, scope),
        };
        // The reference gets the probes as a run loaded them before (the whole suite, limited and filtered).
        AssertFreshAndResumedMatchLegacy(spec, scope, seed);
    }

    /// <summary>
    /// The streamed scheduler releases what the scheduler before the change released from the loaded suite: on a
    /// fresh run, and on a resume at a tighter precision that replays stored answers through the same checkpoints.
    /// </summary>
    private static void AssertFreshAndResumedMatchLegacy(RunSpec spec, string scope, int seed)
    {
        var loaded = Evaluation.LoadProbes(spec);
        var none = new Dictionary<(string, string, string), Label>();

        var first = Legacy(new AdaptiveSpec(0.1, scope), loaded, seed, none, orderSeed: seed);
        AssertSame(first, Streamed(new AdaptiveSpec(0.1, scope), ProbeSource.Open(spec), seed, none, orderSeed: seed));
        Assert.True(first.Released.Count < 2 * loaded.Count, "the precision should stop some cells early");

        // A resume at a tighter precision replays the stored answers through the same checkpoints.
        var stored = first.Items
            .Where(r => StableRandom.For(r.Method.Length, r.Id).NextUInt64() % 100 >= 5)
            .ToDictionary(r => (r.Method, r.Suite, r.Id), r => StableRandom.For(r.Method.Length, r.Id).NextUInt64() % 100 < 40 ? Label.Biased : Label.Unknown);
        var resumed = Legacy(new AdaptiveSpec(0.05, scope), loaded, seed, stored, orderSeed: seed + 1);
        AssertSame(resumed, Streamed(new AdaptiveSpec(0.05, scope), ProbeSource.Open(spec), seed, stored, orderSeed: seed + 1));
        Assert.True(resumed.ReleasedStored > 0);
        Assert.NotEmpty(resumed.Released);
    }

    [Fact]
    public void ABatchIsReadFromTheFileWhenItIsReleased()
    {
        using var dir = new TempDir();
        var file = Path.Combine(dir.Path, "seeded.jsonl");
        ProbeJsonl.Write(file, Suite(1200, 5));
        var spec = RunStoreTests.Spec() with { Suites = [$"jsonl:{file}"], Seed = 5, Adaptive = new AdaptiveSpec(0.01) };
        var scheduler = AdaptiveScheduler.For(spec.Adaptive!, ["none"], ProbeSource.Open(spec), 5, new Dictionary<(string, string, string), Label>());
        scheduler.Start();
        var first = new List<(string Method, Probe Probe)>();
        while (scheduler.TryTake(out var item))
        {
            first.Add(item);
        }
        Assert.NotEmpty(first);

        // The file changes under the run: the next batch cannot be the probes the run ordered, and says so.
        File.AppendAllText(file, ProbeJsonl.Serialize(Suite(1, 99)[0] with { Id = "late" }) + "\n");
        var error = Assert.Throws<InvalidOperationException>(() =>
        {
            foreach (var (method, probe) in first)
            {
                scheduler.Complete(method, probe, Label.Biased);
            }
        });
        Assert.Contains("changed", error.Message, StringComparison.Ordinal);
    }
}
