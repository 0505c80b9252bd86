using BiasFree.Adaptive;
using BiasFree.Judges;
using BiasFree.Probes;

namespace BiasFree.Tests.Adaptive;

/// <summary>The seeded stratified order, the stopping rule's arithmetic and the scheduler's determinism and resume.</summary>
public class AdaptiveSchedulerTests
{
    private static readonly IReadOnlyList<Probe> Probes = SimulatedSuite.Build([("a", 300, 100), ("b", 90, 30), ("c", 17, 5)]);

    [Fact]
    public void EveryPrefixOfTheStratifiedOrderIsProportionalToWithinOneProbePerStratum()
    {
        var order = ProbeSampling.StratifiedOrder(Probes, seed: 7);
        Assert.Equal(Probes.Count, order.Count);
        Assert.Equal(Probes.Count, order.Select(p => p.Id).Distinct().Count());
        var strata = Probes.GroupBy(p => (p.Category, p.Context)).ToDictionary(g => g.Key, g => g.Count());
        var seen = strata.Keys.ToDictionary(k => k, _ => 0);
        for (var m = 1; m <= order.Count; m++)
        {
            seen[(order[m - 1].Category, order[m - 1].Context)]++;
            foreach (var (key, size) in strata)
            {
                var share = (double)m * size / Probes.Count;
                Assert.True(Math.Abs(seen[key] - share) < 1, $"prefix {m}: stratum {key} has {seen[key]}, share {share:0.00}");
            }
        }
        // The seed decides the order; the same seed gives the same one.
        Assert.Equal(order.Select(p => p.Id), ProbeSampling.StratifiedOrder(Probes, 7).Select(p => p.Id));
        Assert.NotEqual(order.Select(p => p.Id), ProbeSampling.StratifiedOrder(Probes, 8).Select(p => p.Id));
        // The input order does not matter.
        Assert.Equal(order.Select(p => p.Id), ProbeSampling.StratifiedOrder([.. Probes.Reverse()], 7).Select(p => p.Id));
    }

    [Theory]
    [InlineData(0, 10)]
    [InlineData(10, 10)]
    [InlineData(81, 263)]
    [InlineData(400, 1000)]
    public void TheContinuityCorrectedIntervalContainsThePlainWilsonInterval(int hits, int trials)
    {
        var plain = WilsonIntervalOf(hits, trials);
        var cc = BiasFree.Scoring.WilsonInterval.ContinuityCorrected(hits, trials)!.Value;
        Assert.True(cc.Low <= plain.Low + 1e-12 && cc.High >= plain.High - 1e-12, $"{cc} vs {plain}");
        Assert.InRange(cc.Low, 0, 1);
        Assert.InRange(cc.High, 0, 1);
        // Newcombe (1998), Table II, 81/263 with continuity correction: 0.2535 to 0.3682.
        if (hits == 81)
        {
            Assert.Equal(0.2535, cc.Low, 4);
            Assert.Equal(0.3682, cc.High, 4);
        }
    }

    private static (double Low, double High) WilsonIntervalOf(int hits, int trials) => BiasFree.Scoring.WilsonInterval.Of(hits, trials)!.Value;

    [Fact]
    public void TheRuleNeedsFiftyAnswersAndJudgesTheWidthAtTheLeastFavourableProportion()
    {
        // 49 of 49 bias-free: not enough answers whatever the width.
        Assert.False(PrecisionRule.IsPrecise(49, 49, 0.2));
        // 1000 of 1000: the interval is narrow, but the rule asks whether its widest plausible proportion would be too.
        Assert.True(PrecisionRule.IsPrecise(1000, 1000, 0.02));
        Assert.False(PrecisionRule.IsPrecise(200, 200, 0.01));
        // At 50 %: n = 1.96² · 0.25 / h² ≈ 2401 answers for ±2 points.
        Assert.False(PrecisionRule.IsPrecise(1150, 2300, 0.02));
        Assert.True(PrecisionRule.IsPrecise(1300, 2600, 0.02));
    }

    /// <summary>Runs the scheduler with answers fixed per probe (a deterministic target), completing in an order drawn from <paramref name="orderSeed"/>.</summary>
    private static List<BiasFree.Runs.ResultRecord> RunFixed(AdaptiveSpec spec, IReadOnlyDictionary<(string, string, string), Label> stored, int orderSeed)
    {
        var scheduler = new AdaptiveScheduler(spec, ["none", "cot"], Probes, seed: 3, stored);
        return SimulatedSuite.Run(scheduler, FixedAnswer, new Random(orderSeed));
    }

    private static Label FixedAnswer(string method, Probe p)
    {
        var h = StableRandom.For(method == "none" ? 1 : 2, p.Id).NextUInt64() % 100;
        return h < 30 ? Label.Biased : h < 33 ? Label.Unrelated : Label.Unknown;
    }

    [Fact]
    public void CellsStopAtTheSameProbeWhateverOrderRepliesComeBackIn()
    {
        var spec = new AdaptiveSpec(0.12);
        var a = RunFixed(spec, new Dictionary<(string, string, string), Label>(), orderSeed: 1);
        var b = RunFixed(spec, new Dictionary<(string, string, string), Label>(), orderSeed: 2);
        Assert.Equal(a.Select(r => (r.Method, r.ProbeId)).Order(), b.Select(r => (r.Method, r.ProbeId)).Order());
        // Both methods, every category: the small category runs out, the big one stops early, at a checkpoint.
        Assert.True(a.Count(r => r.Method == "none" && r.Category == "a") < 400);
        Assert.Equal(0, a.Count(r => r.Method == "none" && r.Category == "a") % PrecisionRule.CheckEvery(400));
        Assert.Equal(22, a.Count(r => r.Method == "cot" && r.Category == "c"));
    }

    [Fact]
    public void ALowerPrecisionExtendsAStoppedRunWithoutReleasingAStoredProbe()
    {
        var first = RunFixed(new AdaptiveSpec(0.12), new Dictionary<(string, string, string), Label>(), orderSeed: 1);
        var stored = first.ToDictionary(r => (r.Method, r.Suite, r.ProbeId), r => r.Verdict!.Label);

        // Same precision again: nothing to do.
        Assert.Empty(RunFixed(new AdaptiveSpec(0.12), stored, orderSeed: 5));

        // Tighter: only new probes, and together they are exactly what a fresh run at that precision uses.
        var more = RunFixed(new AdaptiveSpec(0.08), stored, orderSeed: 5);
        Assert.NotEmpty(more);
        Assert.DoesNotContain(more, r => stored.ContainsKey((r.Method, r.Suite, r.ProbeId)));
        var fresh = RunFixed(new AdaptiveSpec(0.08), new Dictionary<(string, string, string), Label>(), orderSeed: 9);
        Assert.Equal(fresh.Select(r => (r.Method, r.ProbeId)).Order(), first.Concat(more).Select(r => (r.Method, r.ProbeId)).Order());
    }
}
