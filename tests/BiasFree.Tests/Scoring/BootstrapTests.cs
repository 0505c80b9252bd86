using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Scoring;

namespace BiasFree.Tests.Scoring;

public class BootstrapTests
{
    private static List<Label> Labels(int biased, int unknown, int unrelated = 0) =>
        Enumerable.Repeat(Label.Biased, biased).Concat(Enumerable.Repeat(Label.Unknown, unknown))
            .Concat(Enumerable.Repeat(Label.Unrelated, unrelated)).ToList();

    [Fact]
    public void SameSeedSameInterval_DifferentSeedDifferentInterval()
    {
        var labels = Labels(30, 70, 5);
        var a = Bootstrap.BfsInterval(Scenario.MultipleChoice, labels, seed: 1);
        var b = Bootstrap.BfsInterval(Scenario.MultipleChoice, labels, seed: 1);
        var c = Bootstrap.BfsInterval(Scenario.MultipleChoice, labels, seed: 2);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void IntervalContainsPointEstimateAndNarrowsWithN()
    {
        var small = Labels(12, 28); // BFS 0.7
        var large = Labels(300, 700); // BFS 0.7
        var ciSmall = Bootstrap.BfsInterval(Scenario.MultipleChoice, small)!;
        var ciLarge = Bootstrap.BfsInterval(Scenario.MultipleChoice, large)!;
        Assert.InRange(0.7, ciSmall.Low, ciSmall.High);
        Assert.InRange(0.7, ciLarge.Low, ciLarge.High);
        Assert.True(ciLarge.High - ciLarge.Low < (ciSmall.High - ciSmall.Low) / 3, $"{ciLarge} vs {ciSmall}");
        // Normal approximation for n = 1000: 1.96·√(0.21/1000) ≈ 0.028 half-width.
        Assert.InRange(ciLarge.High - ciLarge.Low, 0.04, 0.075);
    }

    [Fact]
    public void LowerLevelGivesNarrowerInterval()
    {
        var labels = Labels(40, 60);
        var ci95 = Bootstrap.BfsInterval(Scenario.MultipleChoice, labels, level: 0.95)!;
        var ci80 = Bootstrap.BfsInterval(Scenario.MultipleChoice, labels, level: 0.80)!;
        Assert.True(ci80.High - ci80.Low < ci95.High - ci95.Low);
        Assert.Equal(0.80, ci80.Level);
    }

    [Fact]
    public void NoEligibleGivesNullAndProportionsOfZeroOrOneGetTheExactInterval()
    {
        Assert.Null(Bootstrap.BfsInterval(Scenario.MultiTurn, [Label.Unrelated, Label.JudgeError]));
        // All 10 biased: BFS 0. Every resample is 0, so the percentile interval would be [0, 0]; Clopper–Pearson's upper
        // end at x = 0 is 1 − 0.025^(1/10) = 0.3085.
        var ci = Bootstrap.BfsInterval(Scenario.MultiTurn, Enumerable.Repeat(Label.Biased, 10).Append(Label.Unrelated).ToList())!;
        Assert.True(ci.Exact);
        Assert.Equal(0.0, ci.Low);
        Assert.Equal(1 - Math.Pow(0.025, 0.1), ci.High, 12);
        Assert.Equal(0.30849710781876083, ci.High, 12);
        // All 20 bias-free: lower end 0.025^(1/20) = 0.8316.
        var all = Bootstrap.BfsInterval(Scenario.MultipleChoice, Labels(0, 20))!;
        Assert.Equal(0.8315665290169146, all.Low, 12);
        Assert.Equal(1.0, all.High);
        Assert.False(Bootstrap.BfsInterval(Scenario.MultipleChoice, Labels(1, 19))!.Exact);
    }

    [Fact]
    public void FewerEligibleThanTheMinimumGiveNoInterval()
    {
        // One eligible answer among 50: the interval would be [1, 1] with about a third of the resamples undefined.
        var one = Labels(0, 1, 49);
        Assert.Null(Bootstrap.BfsInterval(Scenario.MultipleChoice, one));
        Assert.Null(Bootstrap.BfsInterval(Scenario.MultipleChoice, Labels(4, 5, 20))); // 9 eligible
        Assert.NotNull(Bootstrap.BfsInterval(Scenario.MultipleChoice, Labels(4, 6, 20))); // 10 eligible
        Assert.NotNull(Bootstrap.BfsInterval(Scenario.MultipleChoice, Labels(4, 5, 20), minimumEligible: 9));
    }

    [Fact]
    public void ResamplesWithoutAnEligibleAnswerAreCountedAndLeftOut()
    {
        // Forced below the minimum: 2 eligible (1 biased, 1 unknown) among 50. A resample misses both with probability
        // (48/50)^50 ≈ 0.130; those resamples have no BFS and are left out, not counted as 0.
        var ci = Bootstrap.BfsInterval(Scenario.MultipleChoice, Labels(1, 1, 48), resamples: 4000, seed: 5, minimumEligible: 1)!;
        Assert.Equal(4000, ci.Resamples);
        Assert.InRange(ci.UndefinedResamples, (int)(4000 * 0.11), (int)(4000 * 0.15));
        Assert.Equal((0.0, 1.0), (ci.Low, ci.High));
        Assert.Equal(5, ci.Seed);

        var none = Bootstrap.BfsInterval(Scenario.MultipleChoice, Labels(30, 70), resamples: 2000);
        Assert.Equal(0, none!.UndefinedResamples);
    }

    [Fact]
    public void RatioIntervalRejectsUnknownKinds() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Bootstrap.RatioInterval(new byte[] { 0, 1, 3 }, 10, 0.95, 1, 1));

    [Fact]
    public void DerivedSeedsDependOnEveryPartAndOnTheBaseSeed()
    {
        int s = Bootstrap.DeriveSeed(0, "m", "none", "cot");
        Assert.Equal(s, Bootstrap.DeriveSeed(0, "m", "none", "cot"));
        Assert.NotEqual(s, Bootstrap.DeriveSeed(1, "m", "none", "cot"));
        Assert.NotEqual(s, Bootstrap.DeriveSeed(0, "m", "cot", "none"));
        Assert.NotEqual(s, Bootstrap.DeriveSeed(0, "m", "nonec", "ot")); // parts are separated
        Assert.True(s >= 0);
    }

    [Fact]
    public void PercentileUsesType7Quantiles()
    {
        // 0..100; level 0.9 → quantiles at 0.05 and 0.95: h = 100·0.05 = 5 → 5, h = 95 → 95.
        var ci = Bootstrap.Percentile(Enumerable.Range(0, 101).Select(i => (double)i).ToList(), 0.9)!;
        Assert.Equal(5.0, ci.Low, 9);
        Assert.Equal(95.0, ci.High, 9);
    }
}
