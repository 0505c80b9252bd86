namespace BiasFree.Scoring;

/// <summary>
/// The 95 % Wilson score interval of a proportion k / n (Wilson 1927; Agresti &amp; Coull 1998): centre
/// (p + z²/2n) / (1 + z²/n), half-width z/(1 + z²/n)·√(p(1−p)/n + z²/4n²), z = 1.96. Closed form, so it is exact to
/// reproduce, and unlike p ± 1.96·SE it stays inside [0, 1] at rates near 0 or 1. Used where a figure is a plain count
/// of independent trials (model cards, training and judge evaluations); run reports use <see cref="Bootstrap"/>.
/// </summary>
public static class WilsonInterval
{
    /// <summary>z for a two-sided 95 % interval.</summary>
    public const double Z95 = 1.959963984540054;

    /// <summary>The interval of <paramref name="hits"/> / <paramref name="trials"/>, or null when there are no trials.</summary>
    public static (double Low, double High)? Of(int hits, int trials)
    {
        if (trials == 0) return null;
        double n = trials, p = hits / n, z2 = Z95 * Z95;
        double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
        double half = Z95 / (1 + z2 / n) * Math.Sqrt(p * (1 - p) / n + z2 / (4 * n * n));
        return (Math.Max(0, centre - half), Math.Min(1, centre + half));
    }

    /// <summary>
    /// Wilson's score interval with continuity correction (Newcombe 1998, Stat. Med. 17:857, method 4) at
    /// <see cref="Z95"/>: lower = (2np + z² − 1 − z·√(z² − 2 − 1/n + 4p(n(1−p) + 1))) / (2(n + z²)), 0 when k = 0;
    /// upper = (2np + z² + 1 + z·√(z² + 2 − 1/n + 4p(n(1−p) − 1))) / (2(n + z²)), 1 when k = n. Wider than the plain
    /// interval by about 1/(2n) on each side, which keeps its coverage at or above 95 % where the plain one dips below
    /// (small n, p near 0 or 1); adaptive sampling stops on it. Null when there are no trials.
    /// </summary>
    public static (double Low, double High)? ContinuityCorrected(int hits, int trials)
    {
        if (trials == 0) return null;
        ArgumentOutOfRangeException.ThrowIfNegative(hits);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(hits, trials);
        double n = trials, p = hits / n, z = Z95, z2 = z * z;
        double low = hits == 0 ? 0 : (2 * n * p + z2 - 1 - z * Math.Sqrt(z2 - 2 - 1 / n + 4 * p * (n * (1 - p) + 1))) / (2 * (n + z2));
        double high = hits == trials ? 1 : (2 * n * p + z2 + 1 + z * Math.Sqrt(z2 + 2 - 1 / n + 4 * p * (n * (1 - p) - 1))) / (2 * (n + z2));
        return (Math.Max(0, low), Math.Min(1, high));
    }
}
