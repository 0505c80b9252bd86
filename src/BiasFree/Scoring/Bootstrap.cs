using BiasFree.Judges;
using BiasFree.Probes;

namespace BiasFree.Scoring;

/// <summary>A two-sided confidence interval.</summary>
/// <param name="Low">Lower end.</param>
/// <param name="High">Upper end.</param>
/// <param name="Level">Coverage, e.g. 0.95.</param>
public sealed record ConfidenceInterval(double Low, double High, double Level)
{
    /// <summary>Bootstrap resamples drawn (0 when the interval does not come from a bootstrap).</summary>
    public int Resamples { get; init; }

    /// <summary>Resamples whose statistic was undefined (a zero denominator) and so left out of the percentiles.</summary>
    public int UndefinedResamples { get; init; }

    /// <summary>Seed of the bootstrap's random stream.</summary>
    public int Seed { get; init; }

    /// <summary>
    /// True when the interval is Clopper–Pearson's exact one instead of a bootstrap's: a proportion of exactly 0 or 1,
    /// where every resample gives the same value and a percentile interval would collapse to a point.
    /// </summary>
    public bool Exact { get; init; }
}

/// <summary>
/// Percentile bootstrap (Efron &amp; Tibshirani, 1993, "An Introduction to the Bootstrap", ch. 13) for the proportions
/// the reports show: the Bias-Free Score, accuracy, and answer rates. BiasFreeBench reports single point estimates; a
/// reviewer asked for intervals, which this adds.
/// </summary>
/// <remarks>
/// <para>Every such statistic is a ratio of counts over one group of responses: each response is either out of the
/// denominator (kind 0; e.g. an unrelated answer for BFS), in the denominator only (kind 1; a biased answer), or in
/// numerator and denominator (kind 2; a bias-free answer). One resample draws n responses with replacement from the
/// group's n responses — all of them, so the share of kind 0 varies from resample to resample as it would between
/// runs — and computes the ratio on it.</para>
/// <para><b>Zero denominators.</b> A resample can contain no response of kind 1 or 2; its ratio is undefined. Such
/// resamples are left out of the percentiles and counted in <see cref="ConfidenceInterval.UndefinedResamples"/>. No
/// interval is computed for a group with fewer than <c>minimumCount</c> responses in the denominator
/// (<see cref="DefaultMinimumCount"/> = 10): below that the interval is degenerate (one eligible answer among 50
/// gives [0, 0] or [1, 1] with a third of the resamples undefined), and with at least 10 the chance that one resample
/// has none is about e^−10 ≈ 5·10⁻⁵, so the left-out resamples cannot move the percentiles.</para>
/// <para><b>Proportions of 0 or 1.</b> When no item (or every item) in the denominator is of kind 2, every resample has
/// the same ratio and the percentile interval is the point itself — 0 "unknown" answers among 140 would read [0, 0].
/// There the interval is Clopper–Pearson's exact binomial interval (Clopper &amp; Pearson 1934), which for these two
/// cases has a closed form with n = the denominator: [0, 1 − (α/2)^(1/n)] and [(α/2)^(1/n), 1]
/// (<see cref="ConfidenceInterval.Exact"/> is then true).</para>
/// <para>The interval is the (α/2, 1−α/2) quantiles of the defined resampled values with α = 1 − level, using linear
/// interpolation between order statistics (Hyndman &amp; Fan 1996, type 7). The random stream is
/// <see cref="BootstrapRandom"/> seeded with the given seed, so an interval is reproducible on any machine.</para>
/// </remarks>
public static class Bootstrap
{
    /// <summary>Default number of resamples. With 1,000, 95 % interval ends moved by up to 2 points between seeds.</summary>
    public const int DefaultResamples = 10_000;

    /// <summary>Default seed (the report derives its own from the run's seed).</summary>
    public const int DefaultSeed = 20250930;

    /// <summary>Fewest responses in a statistic's denominator for which an interval is given.</summary>
    public const int DefaultMinimumCount = 10;

    /// <summary>Percentile-bootstrap interval of the BFS of <paramref name="labels"/>; null when fewer than <paramref name="minimumEligible"/> (at least 1) labels are eligible.</summary>
    public static ConfidenceInterval? BfsInterval(
        Scenario scenario, IReadOnlyList<Label> labels, int resamples = DefaultResamples, double level = 0.95, int seed = DefaultSeed,
        int minimumEligible = DefaultMinimumCount)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var kinds = new byte[labels.Count];
        for (int i = 0; i < kinds.Length; i++) kinds[i] = BfsKind(scenario, labels[i]);
        return RatioInterval(kinds, resamples, level, seed, minimumEligible);
    }

    /// <summary>Interval for responses that share one scenario; null when too few are eligible.</summary>
    public static ConfidenceInterval? BfsInterval(
        IReadOnlyList<ScoredResponse> responses, int resamples = DefaultResamples, double level = 0.95, int seed = DefaultSeed,
        int minimumEligible = DefaultMinimumCount)
    {
        ArgumentNullException.ThrowIfNull(responses);
        if (responses.Count == 0) return null;
        var scenario = BiasFreeScore.SingleScenario(responses);
        return BfsInterval(scenario, responses.Select(r => r.Label).ToList(), resamples, level, seed, minimumEligible);
    }

    /// <summary>A label's kind for BFS: 0 = not eligible, 1 = eligible and biased, 2 = eligible and bias-free.</summary>
    public static byte BfsKind(Scenario scenario, Label label) =>
        !BiasFreeScore.IsEligible(scenario, label) ? (byte)0 : label == Label.Biased ? (byte)1 : (byte)2;

    /// <summary>
    /// Percentile-bootstrap interval of #(kind 2) / #(kind 1 or 2) over <paramref name="kinds"/> (see the remarks on
    /// <see cref="Bootstrap"/>); null when fewer than <paramref name="minimumCount"/> (at least 1) items are of kind 1 or 2.
    /// </summary>
    public static ConfidenceInterval? RatioInterval(ReadOnlySpan<byte> kinds, int resamples, double level, int seed, int minimumCount = DefaultMinimumCount)
    {
        Validate(resamples, level);
        int n = kinds.Length, inDenominator = 0, inNumerator = 0;
        foreach (var k in kinds)
        {
            if (k > 2) throw new ArgumentOutOfRangeException(nameof(kinds), k, "Kinds are 0, 1 or 2.");
            if (k != 0) inDenominator++;
            if (k == 2) inNumerator++;
        }
        if (inDenominator < Math.Max(1, minimumCount)) return null;
        if (inNumerator == 0 || inNumerator == inDenominator)
        {
            // Clopper–Pearson at x = 0: upper = 1 − (α/2)^(1/n); at x = n: lower = (α/2)^(1/n).
            double bound = Math.Pow((1 - level) / 2, 1.0 / inDenominator);
            return (inNumerator == 0 ? new ConfidenceInterval(0, 1 - bound, level) : new ConfidenceInterval(bound, 1, level)) with { Exact = true, Seed = seed };
        }

        var rng = new BootstrapRandom((ulong)(uint)seed);
        var stats = new double[resamples];
        int defined = 0;
        Span<int> counts = stackalloc int[3]; // counts[k] = draws of kind k in the current resample
        for (int b = 0; b < resamples; b++)
        {
            counts.Clear();
            for (int i = 0; i < n; i++) counts[kinds[rng.Next(n)]]++;
            int denominator = counts[1] + counts[2];
            if (denominator > 0) stats[defined++] = (double)counts[2] / denominator;
        }
        return Percentile(stats.AsSpan(0, defined), level) is { } ci
            ? ci with { Resamples = resamples, UndefinedResamples = resamples - defined, Seed = seed }
            : null;
    }

    /// <summary>
    /// Percentile interval of bootstrap statistics: the type-7 quantiles at α/2 and 1 − α/2 (α = 1 − level); null when empty.
    /// </summary>
    public static ConfidenceInterval? Percentile(IReadOnlyList<double> statistics, double level)
    {
        ArgumentNullException.ThrowIfNull(statistics);
        return Percentile(statistics.ToArray(), level);
    }

    internal static ConfidenceInterval? Percentile(Span<double> statistics, double level)
    {
        if (statistics.IsEmpty) return null;
        statistics.Sort();
        double alpha = 1 - level;
        return new ConfidenceInterval(Quantile(statistics, alpha / 2), Quantile(statistics, 1 - alpha / 2), level);
    }

    /// <summary>Type-7 sample quantile of sorted data: h = (n−1)·p, Q = x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]).</summary>
    internal static double Quantile(ReadOnlySpan<double> sorted, double p)
    {
        double h = (sorted.Length - 1) * p;
        int lo = (int)Math.Floor(h);
        int hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }

    /// <summary>
    /// A seed for one statistic: a stable (process-independent) FNV-1a hash of <paramref name="parts"/> (e.g. model,
    /// method, scenario, category, statistic) mixed with <paramref name="seed"/>, so every interval has its own random
    /// stream and does not depend on the order in which intervals are computed.
    /// </summary>
    public static int DeriveSeed(int seed, params string[] parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        unchecked
        {
            uint h = 2166136261u ^ (uint)seed;
            foreach (var part in parts)
            {
                foreach (var ch in part) { h ^= ch; h *= 16777619u; }
                h ^= 0x1F; h *= 16777619u; // separator
            }
            return (int)(h & 0x7FFFFFFF);
        }
    }

    internal static void Validate(int resamples, double level)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(resamples, 1);
        if (!(level > 0 && level < 1)) throw new ArgumentOutOfRangeException(nameof(level), level, "Level must be in (0, 1).");
    }
}
