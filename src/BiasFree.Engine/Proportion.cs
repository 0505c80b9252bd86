using System.Globalization;
using BiasFree.Scoring;

namespace BiasFree.Engine;

/// <summary>
/// A proportion k / n with its 95 % Wilson score interval: what the demo model's card and the training comparison report
/// (one type for both, in the engine's root namespace so that it wins over <see cref="BiasFree.Scoring.Proportion"/>,
/// the bootstrap-interval proportion of run reports, inside the engine).
/// </summary>
/// <param name="Hits">Count of the event.</param>
/// <param name="Trials">Number of trials (0 gives NaN).</param>
public sealed record Proportion(int Hits, int Trials)
{
    public double Value => Trials == 0 ? double.NaN : Hits / (double)Trials;

    /// <summary>95 % Wilson score interval (<see cref="WilsonInterval"/>); NaN when there are no trials.</summary>
    public (double Low, double High) Interval
    {
        get => WilsonInterval.Of(Hits, Trials) ?? (double.NaN, double.NaN);
    }

    /// <summary>"62.3 [58.1–66.4]" in percent; "–" without trials.</summary>
    public string Format()
    {
        if (Trials == 0) return "–";
        var (lo, hi) = Interval;
        return string.Create(CultureInfo.InvariantCulture, $"{Value * 100:0.0} [{lo * 100:0.0}–{hi * 100:0.0}]");
    }
}
