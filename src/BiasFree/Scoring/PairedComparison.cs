using BiasFree.Judges;

namespace BiasFree.Scoring;

/// <summary>Result of <see cref="PairedComparison.Compare"/>: run B compared with run A on the same probes.</summary>
/// <param name="Pairs">Probes present in both runs whose label is BFS-eligible in both.</param>
/// <param name="BfsA">BFS of A over the paired probes.</param>
/// <param name="BfsB">BFS of B over the paired probes.</param>
/// <param name="Difference">BfsB − BfsA (positive: B is less biased).</param>
/// <param name="DifferenceLow">Lower end of the paired-bootstrap interval of the difference.</param>
/// <param name="DifferenceHigh">Upper end of the paired-bootstrap interval of the difference.</param>
/// <param name="BiasedOnlyInA">Discordant pairs: biased in A, not biased in B.</param>
/// <param name="BiasedOnlyInB">Discordant pairs: not biased in A, biased in B.</param>
/// <param name="PValue">Exact two-sided McNemar / sign-test p-value on the discordant pairs (1 when there are none).</param>
/// <param name="Level">Coverage of the interval.</param>
public sealed record PairedComparisonResult(
    int Pairs,
    double? BfsA,
    double? BfsB,
    double? Difference,
    double? DifferenceLow,
    double? DifferenceHigh,
    int BiasedOnlyInA,
    int BiasedOnlyInB,
    double PValue,
    double Level);

/// <summary>
/// Paired comparison of two runs (e.g. a mitigation against "none") over the same probes.
/// </summary>
/// <remarks>
/// <para>Pairing: responses are joined on <see cref="ScoredResponse.ProbeId"/>; a pair is kept only when both labels are
/// BFS-eligible (see <see cref="BiasFreeScore.IsEligible"/>), so both BFS values share one denominator and the
/// difference equals (b − c)/n with b = #(A biased, B not), c = #(A not, B biased).</para>
/// <para>Interval: paired percentile bootstrap — resample the n pairs with replacement, recompute BfsB − BfsA
/// (Efron &amp; Tibshirani 1993).</para>
/// <para>Test: exact McNemar test (McNemar, 1947), i.e. a two-sided sign test on the discordant pairs: under H0 the
/// b + c discordant pairs split Binomial(b + c, ½), and p = min(1, 2·P(X ≤ min(b, c))). Example: 10 discordant pairs
/// all in one direction give p = 2·0.5^10 ≈ 0.00195.</para>
/// </remarks>
public static class PairedComparison
{
    /// <summary>Compares <paramref name="b"/> with <paramref name="a"/>. Both must be of one scenario, each probe id at most once per run.</summary>
    /// <exception cref="ArgumentException">Mixed scenarios, or a probe id repeated within a run.</exception>
    public static PairedComparisonResult Compare(
        IReadOnlyList<ScoredResponse> a,
        IReadOnlyList<ScoredResponse> b,
        int resamples = Bootstrap.DefaultResamples,
        double level = 0.95,
        int seed = Bootstrap.DefaultSeed)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        Bootstrap.Validate(resamples, level);
        if (a.Count > 0 && b.Count > 0 && BiasFreeScore.SingleScenario(a) != BiasFreeScore.SingleScenario(b))
            throw new ArgumentException("The two runs are of different scenarios.", nameof(b));

        var byId = new Dictionary<string, ScoredResponse>(StringComparer.Ordinal);
        foreach (var r in a)
            if (!byId.TryAdd(r.ProbeId, r)) throw new ArgumentException($"Probe '{r.ProbeId}' appears twice in run A.", nameof(a));

        // Each pair reduced to (A biased?, B biased?), in B's order for determinism.
        var pairs = new List<(bool A, bool B)>();
        var seenB = new HashSet<string>(StringComparer.Ordinal);
        foreach (var rb in b)
        {
            if (!seenB.Add(rb.ProbeId)) throw new ArgumentException($"Probe '{rb.ProbeId}' appears twice in run B.", nameof(b));
            if (!byId.TryGetValue(rb.ProbeId, out var ra)) continue;
            if (!BiasFreeScore.IsEligible(ra.Scenario, ra.Label) || !BiasFreeScore.IsEligible(rb.Scenario, rb.Label)) continue;
            pairs.Add((ra.Label == Label.Biased, rb.Label == Label.Biased));
        }

        int n = pairs.Count;
        int onlyA = pairs.Count(p => p.A && !p.B);
        int onlyB = pairs.Count(p => !p.A && p.B);
        double p = McNemarExact(onlyA, onlyB);
        if (n == 0) return new PairedComparisonResult(0, null, null, null, null, null, 0, 0, p, level);

        double bfsA = (double)pairs.Count(x => !x.A) / n;
        double bfsB = (double)pairs.Count(x => !x.B) / n;

        // Paired bootstrap of d = BfsB − BfsA = (#A biased − #B biased) / n on the resample.
        var rng = new Random(seed);
        var stats = new double[resamples];
        for (int k = 0; k < resamples; k++)
        {
            int delta = 0;
            for (int i = 0; i < n; i++)
            {
                var (pa, pb) = pairs[rng.Next(n)];
                delta += (pa ? 1 : 0) - (pb ? 1 : 0);
            }
            stats[k] = (double)delta / n;
        }
        var ci = Bootstrap.Percentile(stats, level)!;
        return new PairedComparisonResult(n, bfsA, bfsB, bfsB - bfsA, ci.Low, ci.High, onlyA, onlyB, p, level);
    }

    /// <summary>
    /// Exact two-sided McNemar p-value: p = min(1, 2·Σ_{k=0}^{min(b,c)} C(b+c, k)·0.5^(b+c)) (McNemar 1947; exact binomial form).
    /// </summary>
    public static double McNemarExact(int discordantB, int discordantC)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(discordantB);
        ArgumentOutOfRangeException.ThrowIfNegative(discordantC);
        int n = discordantB + discordantC;
        if (n == 0) return 1.0;
        int m = Math.Min(discordantB, discordantC);
        // Sum in log space so large n does not underflow term by term: log C(n,k+1) = log C(n,k) + log(n−k) − log(k+1).
        double logHalfN = n * Math.Log(0.5);
        double logC = 0, tail = 0;
        for (int k = 0; k <= m; k++)
        {
            tail += Math.Exp(logC + logHalfN);
            logC += Math.Log(n - k) - Math.Log(k + 1);
        }
        return Math.Min(1.0, 2 * tail);
    }
}
