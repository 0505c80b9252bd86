using BiasFree.Judges;
using BiasFree.Scoring;
using static BiasFree.Tests.Scoring.ScoringTestData;

namespace BiasFree.Tests.Scoring;

public class PairedComparisonTests
{
    private static (List<ScoredResponse> A, List<ScoredResponse> B) Pairs(params (Label A, Label B, int Count)[] blocks)
    {
        var a = new List<ScoredResponse>();
        var b = new List<ScoredResponse>();
        int id = 0;
        foreach (var (la, lb, count) in blocks)
        {
            for (int i = 0; i < count; i++, id++)
            {
                a.Add(Mc(la, id: $"q{id:D4}", method: "none"));
                b.Add(Mc(lb, id: $"q{id:D4}", method: "cot"));
            }
        }
        return (a, b);
    }

    [Fact]
    public void HeadlineUsesEachMethodsOwnEligibleAnswersWhileMcNemarDropsProbes()
    {
        // 40 probes. B derails (unrelated) on 10 probes where A was bias-free; elsewhere both answer.
        var (a, b) = Pairs(
            (Label.Unknown, Label.Unrelated, 10),
            (Label.Biased, Label.Biased, 10),
            (Label.Biased, Label.Unknown, 10),
            (Label.Unknown, Label.Unknown, 10));

        var r = PairedComparison.Compare(a, b, resamples: 2000, seed: 3);
        // Headline, as the score table: A = 20 free / 40 eligible = 1/2; B = 20 free / 30 eligible = 2/3; Δ = +1/6.
        Assert.Equal(40, r.Probes);
        Assert.Equal((40, 30), (r.EligibleA, r.EligibleB));
        Assert.Equal(0.5, r.BfsA!.Value, 12);
        Assert.Equal(2.0 / 3, r.BfsB!.Value, 12);
        Assert.Equal(1.0 / 6, r.Difference!.Value, 12);
        Assert.InRange(1.0 / 6, r.DifferenceInterval!.Low, r.DifferenceInterval.High);
        // Not eligible: A 0/40, B 10/40; all 10 discordant one way → p = 2·0.5^10.
        Assert.Equal((0.0, 0.25, 0.25), (r.IneligibleShareA!.Value, r.IneligibleShareB!.Value, r.IneligibleDifference!.Value));
        Assert.Equal(10, r.IneligibleLabelsB[Label.Unrelated]);
        Assert.Empty(r.IneligibleLabelsA);
        Assert.Equal(2 * Math.Pow(0.5, 10), r.IneligiblePValue, 12);
        Assert.True(r.IneligibleDifferenceInterval!.Low > 0);
        // Secondary McNemar on the 30 probes eligible in both: A = 10/30, B = 20/30, a Δ of 1/3 — twice the honest one,
        // because the 10 dropped probes are exactly those where A was bias-free.
        Assert.Equal(30, r.BothEligible);
        Assert.Equal(10, r.DroppedFromMcNemar);
        Assert.Equal((0, 10, 0), (r.IneligibleOnlyInA, r.IneligibleOnlyInB, r.IneligibleInBoth));
        Assert.Equal(1.0 / 3, r.BothEligibleBfsA!.Value, 12);
        Assert.Equal(2.0 / 3, r.BothEligibleBfsB!.Value, 12);
        Assert.Equal((10, 0), (r.BiasedOnlyInA, r.BiasedOnlyInB));
        Assert.Equal(2 * Math.Pow(0.5, 10), r.PValue, 12);
    }

    [Fact]
    public void ProbesJudgedInOnlyOneRunAreCountedAndLeftOut()
    {
        var (a, b) = Pairs((Label.Biased, Label.Unknown, 12));
        a.Add(Mc(Label.Unknown, id: "only-a"));
        b.Add(Mc(Label.Biased, id: "only-b1"));
        b.Add(Mc(Label.Biased, id: "only-b2"));
        var r = PairedComparison.Compare(a, b, resamples: 500);
        Assert.Equal((12, 1, 2), (r.Probes, r.OnlyInA, r.OnlyInB));
        Assert.Equal(0.0, r.BfsA);
        Assert.Equal(1.0, r.BfsB);
    }

    [Fact]
    public void ARunWithoutEligibleAnswersHasNoDifferenceButItsIneligibleShareIsCompared()
    {
        var (a, b) = Pairs((Label.Biased, Label.Unrelated, 10), (Label.Unknown, Label.NoAnswer, 10));
        var r = PairedComparison.Compare(a, b, resamples: 500);
        Assert.Equal(0, r.EligibleB);
        Assert.Null(r.BfsB);
        Assert.Null(r.Difference);
        Assert.Null(r.DifferenceInterval);
        Assert.Equal(1.0, r.IneligibleDifference);
        Assert.Equal((1.0, 1.0), (r.IneligibleDifferenceInterval!.Low, r.IneligibleDifferenceInterval.High));
        Assert.Equal((10, 10), (r.IneligibleLabelsB[Label.Unrelated], r.IneligibleLabelsB[Label.NoAnswer]));
        Assert.Equal(0, r.BothEligible);
        Assert.Equal(1.0, r.PValue);
    }

    [Fact]
    public void TooFewEligibleAnswersGiveNoIntervalAndForcedOnesCountUndefinedResamples()
    {
        // B answers on 5 of 50 probes: below the minimum of 10, so no Δ interval.
        var (a, b) = Pairs((Label.Biased, Label.Unknown, 5), (Label.Unknown, Label.Unrelated, 45));
        var r = PairedComparison.Compare(a, b, resamples: 2000, seed: 11);
        Assert.Null(r.DifferenceInterval);
        Assert.NotNull(r.IneligibleDifferenceInterval);
        Assert.Equal(0.1, r.Difference!.Value, 12); // B 5/5 − A 45/50

        // Forced with a minimum of 1: a resample misses all 5 with probability 0.9^50 ≈ 0.0052; those are left out and counted.
        var forced = PairedComparison.Compare(a, b, resamples: 2000, seed: 11, minimumEligible: 1);
        Assert.InRange(forced.DifferenceInterval!.UndefinedResamples, 1, 40);
        Assert.Equal(2000, forced.DifferenceInterval.Resamples);
    }

    [Theory]
    // b=3, c=1 → n=4: P(X ≤ 1) = (1 + 4)/16 = 5/16 → p = 10/16 = 0.625
    [InlineData(3, 1, 0.625)]
    // b=5, c=5 → P(X ≤ 5) of Bin(10,½) = 638/1024 → 2·0.623 > 1 → p = 1
    [InlineData(5, 5, 1.0)]
    [InlineData(0, 0, 1.0)]
    // b=0, c=6 → 2·(1/64) = 0.03125
    [InlineData(0, 6, 0.03125)]
    public void McNemarExactMatchesHandComputedValues(int b, int c, double expected) =>
        Assert.Equal(expected, PairedComparison.McNemarExact(b, c), 12);

    [Fact]
    public void LargeDiscordantCountsDoNotUnderflow()
    {
        var p = PairedComparison.McNemarExact(1500, 1500);
        Assert.Equal(1.0, p, 9);
        Assert.True(PairedComparison.McNemarExact(1200, 1800) < 1e-20);
    }

    [Fact]
    public void NoCommonProbesGivesNullScoresAndPOne()
    {
        var r = PairedComparison.Compare([Mc(Label.Biased, id: "x")], [Mc(Label.Biased, id: "y")]);
        Assert.Equal(0, r.Probes);
        Assert.Null(r.Difference);
        Assert.Null(r.IneligibleShareA);
        Assert.Equal(1.0, r.PValue);
    }

    [Fact]
    public void DuplicateProbeIdsAreRejected()
    {
        Assert.Throws<ArgumentException>(() =>
            PairedComparison.Compare([Mc(Label.Biased, id: "x"), Mc(Label.Unknown, id: "x")], [Mc(Label.Biased, id: "x")]));
    }

    [Fact]
    public void ASeedGivesOneResultWhateverTheInputOrder()
    {
        var a = Enumerable.Range(0, 60).Select(i => Mc(i % 2 == 0 ? Label.Biased : Label.Unknown, id: $"q{i}")).ToList();
        var b = Enumerable.Range(0, 60).Select(i => Mc(i % 3 == 0 ? Label.Biased : i % 7 == 0 ? Label.Unrelated : Label.AntiStereotyped, id: $"q{i}")).ToList();
        var first = PairedComparison.Compare(a, b, resamples: 1000, seed: 7);
        var again = PairedComparison.Compare(Enumerable.Reverse(a).ToList(), Enumerable.Reverse(b).ToList(), resamples: 1000, seed: 7);
        var other = PairedComparison.Compare(a, b, resamples: 1000, seed: 8);
        Assert.Equal(first.DifferenceInterval, again.DifferenceInterval);
        Assert.Equal(first.IneligibleDifferenceInterval, again.IneligibleDifferenceInterval);
        Assert.Equal(7, first.Seed);
        Assert.NotEqual(first.DifferenceInterval, other.DifferenceInterval);
    }

    /// <summary>
    /// Coverage on simulated data with a known true difference. Each probe draws (A kind, B kind) from a fixed joint law
    /// in which B derails (answers off-topic) mostly where A was biased; the population BFS of each method is
    /// P(bias-free) / P(eligible), so the true Δ is known exactly. 1,000 simulated runs of 400 probes (the bar is ≥ 93 %
    /// of 95 % intervals over at least 500 runs; with 500, a correct bootstrap whose long-run coverage is 94.3 % — measured
    /// over 4,000 runs — would still land below 93 % about one seed in ten by Monte Carlo error alone). Each interval
    /// uses 1,000 resamples, not the default 10,000, to keep the test to a few seconds: fewer resamples move the interval
    /// ends by a small fraction of their width, far less than the Monte Carlo error of the coverage.
    /// </summary>
    [Fact]
    public void PairedBootstrapIntervalsCoverTheTrueDifference()
    {
        // Joint law of (kindA, kindB), kinds 0 = not eligible, 1 = biased, 2 = bias-free; rows A, columns B.
        double[,] p =
        {
            { 0.05 * 0.50, 0.05 * 0.25, 0.05 * 0.25 },
            { 0.45 * 0.40, 0.45 * 0.30, 0.45 * 0.30 },
            { 0.50 * 0.10, 0.50 * 0.10, 0.50 * 0.80 },
        };
        double PA(int k) => p[k, 0] + p[k, 1] + p[k, 2];
        double PB(int k) => p[0, k] + p[1, k] + p[2, k];
        double trueDelta = PB(2) / (PB(1) + PB(2)) - PA(2) / (PA(1) + PA(2));
        double trueIneligible = PB(0) - PA(0);
        Assert.InRange(trueDelta, 0.20, 0.22); // ≈ 0.2086: the law is what the comment says

        var cumulative = new double[9];
        double sum = 0;
        for (int i = 0; i < 9; i++) cumulative[i] = sum += p[i / 3, i % 3];
        Label LabelOf(int kind) => kind switch { 0 => Label.Unrelated, 1 => Label.Biased, _ => Label.Unknown };

        const int runs = 1000, probes = 400;
        var rng = new Random(12345);
        int covered = 0, coveredIneligible = 0;
        for (int run = 0; run < runs; run++)
        {
            var a = new List<ScoredResponse>(probes);
            var b = new List<ScoredResponse>(probes);
            for (int i = 0; i < probes; i++)
            {
                double u = rng.NextDouble();
                int cell = Array.FindIndex(cumulative, c => u < c);
                if (cell < 0) cell = 8; // u beyond the last cumulative value by rounding
                a.Add(Mc(LabelOf(cell / 3), id: $"q{i:D3}", method: "none"));
                b.Add(Mc(LabelOf(cell % 3), id: $"q{i:D3}", method: "cot"));
            }
            var r = PairedComparison.Compare(a, b, resamples: 1000, seed: run);
            if (r.DifferenceInterval is { } ci && ci.Low <= trueDelta && trueDelta <= ci.High) covered++;
            if (r.IneligibleDifferenceInterval is { } ii && ii.Low <= trueIneligible && trueIneligible <= ii.High) coveredIneligible++;
        }
        Assert.True(covered >= 0.93 * runs, $"Δ BFS: {covered} of {runs} 95% intervals cover the true difference {trueDelta:F4}");
        Assert.True(coveredIneligible >= 0.93 * runs, $"Δ not eligible: {coveredIneligible} of {runs} cover {trueIneligible:F4}");
    }
}
