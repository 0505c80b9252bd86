using BiasFree.Engine.Decoding;

namespace BiasFree.Engine.Tests.Decoding;

public class SpeculativeSamplingTests
{
    // Critical values of the chi-square distribution at the 1% level (upper tail), by degrees of freedom.
    private static readonly Dictionary<int, double> ChiSquare99 = new() { [4] = 13.277, [5] = 15.086 };

    private static double ChiSquare(int[] counts, double[] expectedProbabilities, int draws)
    {
        double stat = 0;
        for (int i = 0; i < counts.Length; i++)
        {
            double e = expectedProbabilities[i] * draws;
            stat += (counts[i] - e) * (counts[i] - e) / e;
        }
        return stat;
    }

    private static readonly double[] P = [0.40, 0.05, 0.25, 0.10, 0.20];
    private static readonly double[] Q = [0.10, 0.50, 0.05, 0.30, 0.05];

    [Fact]
    public void First_token_is_distributed_as_the_judges_p_whatever_the_drafter_q()
    {
        const int draws = 40_000;
        var rng = new Random(11);
        var counts = new int[P.Length];
        for (int d = 0; d < draws; d++)
        {
            int x = SpeculativeSampling.Sample(Q, rng);
            var r = SpeculativeSampling.Verify([x], [Q], [P, Q], rng);
            int first = r.Accepted >= 1 ? x : r.NextToken;
            counts[first]++;
        }
        double stat = ChiSquare(counts, P, draws);
        Assert.True(stat < ChiSquare99[4], $"chi-square {stat:F2} ≥ {ChiSquare99[4]} (df 4, 1%): counts {string.Join(",", counts)}");
        // The same draws against q must be rejected: the test can tell p from q.
        Assert.True(ChiSquare(counts, Q, draws) > 1000);
    }

    [Fact]
    public void Every_position_of_a_multi_token_draft_follows_its_own_p()
    {
        // γ = 2 with a different p at each position (independent of the prefix here): the first token must follow p_1,
        // and the second, in every round that yields one, p_2.
        double[] p2 = [0.05, 0.15, 0.30, 0.30, 0.20];
        double[] q2 = [0.30, 0.30, 0.10, 0.10, 0.20];
        double[] p3 = [0.2, 0.2, 0.2, 0.2, 0.2];
        const int draws = 30_000;
        var rng = new Random(5);
        var first = new int[5];
        var second = new int[5];
        for (int d = 0; d < draws; d++)
        {
            int x1 = SpeculativeSampling.Sample(Q, rng), x2 = SpeculativeSampling.Sample(q2, rng);
            var r = SpeculativeSampling.Verify([x1, x2], [Q, q2], [P, p2, p3], rng);
            var produced = new List<int> { x1, x2 }.Take(r.Accepted).Append(r.NextToken).ToList();
            first[produced[0]]++;
            // A second token exists in every round that accepted x1; it is x2 or its replacement, both ~ p2.
            if (r.Accepted >= 1) second[produced[1]]++;
        }
        Assert.True(ChiSquare(first, P, draws) < ChiSquare99[4], string.Join(",", first));
        int n2 = second.Sum();
        Assert.True(n2 > 5000);
        Assert.True(ChiSquare(second, p2, n2) < ChiSquare99[4], string.Join(",", second));
    }

    [Fact]
    public void When_p_equals_q_every_draft_token_is_accepted_and_a_bonus_follows()
    {
        var rng = new Random(3);
        for (int d = 0; d < 5_000; d++)
        {
            var draft = Enumerable.Range(0, 4).Select(_ => SpeculativeSampling.Sample(P, rng)).ToList();
            var r = SpeculativeSampling.Verify(draft, [P, P, P, P], [P, P, P, P, Q], rng);
            Assert.Equal(4, r.Accepted);
            Assert.True(r.Bonus);
        }
    }

    [Fact]
    public void Residual_keeps_only_where_p_exceeds_q()
    {
        var r = SpeculativeSampling.Residual(P, Q);
        // p − q = [0.30, −0.45, 0.20, −0.20, 0.15] → positive part sums to 0.65.
        Assert.Equal(new double[] { 0.30 / 0.65, 0, 0.20 / 0.65, 0, 0.15 / 0.65 }, r, new ToleranceComparer(1e-9));
    }

    [Fact]
    public void Distribution_applies_temperature_top_k_and_top_p_like_the_engine_sampler()
    {
        float[] logits = [2f, 1f, 0f, -1f, 3f];
        var greedy = SpeculativeSampling.Distribution(logits, 0, null, null);
        Assert.Equal(new double[] { 0, 0, 0, 0, 1 }, greedy);
        var top2 = SpeculativeSampling.Distribution(logits, 1, 2, null);
        double z = Math.Exp(3) + Math.Exp(2);
        Assert.Equal(Math.Exp(2) / z, top2[0], 12);
        Assert.Equal(Math.Exp(3) / z, top2[4], 12);
        Assert.Equal(0, top2[1]);
        // softmax = [.2447, .0900, .0331, .0122, .6652]: top-p 0.7 keeps the top token (0 above) and the second (0.665 above < 0.7).
        var nucleus = SpeculativeSampling.Distribution(logits, 1, null, 0.7);
        Assert.True(nucleus[4] > 0 && nucleus[0] > 0);
        Assert.Equal(0, nucleus[1]);
        Assert.Equal(1.0, nucleus.Sum(), 12);
    }

    [Fact]
    public void Bad_inputs_are_refused_with_the_reason()
    {
        var rng = new Random(1);
        Assert.Contains("p needs 2", Assert.Throws<ArgumentException>(() => SpeculativeSampling.Verify([0], [Q], [P], rng)).Message);
        double[] noMass = [0, 1, 0, 0, 0];
        Assert.Contains("zero probability under q", Assert.Throws<ArgumentException>(() => SpeculativeSampling.Verify([0], [noMass], [P, P], rng)).Message);
    }

    private sealed class ToleranceComparer(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= tolerance;
        public int GetHashCode(double obj) => 0;
    }
}
