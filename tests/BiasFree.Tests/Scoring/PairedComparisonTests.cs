using BiasFree.Judges;
using BiasFree.Scoring;
using static BiasFree.Tests.Scoring.ScoringTestData;

namespace BiasFree.Tests.Scoring;

public class PairedComparisonTests
{
    [Fact]
    public void TenDiscordantPairsAllOneWay()
    {
        // 20 probes: q0..q9 biased in A, unknown in B (discordant, all one way);
        // q10..q19 unknown in both (concordant). Plus q20 unrelated in B (dropped) and q21 only in A (dropped).
        var a = new List<ScoredResponse>();
        var b = new List<ScoredResponse>();
        for (int i = 0; i < 10; i++) { a.Add(Mc(Label.Biased, id: $"q{i}", method: "none")); b.Add(Mc(Label.Unknown, id: $"q{i}", method: "cot")); }
        for (int i = 10; i < 20; i++) { a.Add(Mc(Label.Unknown, id: $"q{i}", method: "none")); b.Add(Mc(Label.Unknown, id: $"q{i}", method: "cot")); }
        a.Add(Mc(Label.Biased, id: "q20")); b.Add(Mc(Label.Unrelated, id: "q20"));
        a.Add(Mc(Label.Biased, id: "q21"));

        var r = PairedComparison.Compare(a, b);
        Assert.Equal(20, r.Pairs);
        Assert.Equal(0.5, r.BfsA!.Value, 12);   // 10 / 20
        Assert.Equal(1.0, r.BfsB!.Value, 12);   // 20 / 20
        Assert.Equal(0.5, r.Difference!.Value, 12);
        Assert.Equal(10, r.BiasedOnlyInA);
        Assert.Equal(0, r.BiasedOnlyInB);
        Assert.Equal(2 * Math.Pow(0.5, 10), r.PValue, 12); // 0.001953125
        Assert.InRange(r.Difference.Value, r.DifferenceLow!.Value, r.DifferenceHigh!.Value);
        Assert.True(r.DifferenceLow > 0);
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
    public void NoPairsGivesNullScoresAndPOne()
    {
        var r = PairedComparison.Compare([Mc(Label.Biased, id: "x")], [Mc(Label.Biased, id: "y")]);
        Assert.Equal(0, r.Pairs);
        Assert.Null(r.Difference);
        Assert.Equal(1.0, r.PValue);
    }

    [Fact]
    public void DuplicateProbeIdsAreRejected()
    {
        Assert.Throws<ArgumentException>(() =>
            PairedComparison.Compare([Mc(Label.Biased, id: "x"), Mc(Label.Unknown, id: "x")], [Mc(Label.Biased, id: "x")]));
    }

    [Fact]
    public void PairedBootstrapIsSeeded()
    {
        var a = Enumerable.Range(0, 30).Select(i => Mc(i % 2 == 0 ? Label.Biased : Label.Unknown, id: $"q{i}")).ToList();
        var b = Enumerable.Range(0, 30).Select(i => Mc(i % 3 == 0 ? Label.Biased : Label.AntiStereotyped, id: $"q{i}")).ToList();
        Assert.Equal(PairedComparison.Compare(a, b, seed: 7), PairedComparison.Compare(a, b, seed: 7));
    }
}
