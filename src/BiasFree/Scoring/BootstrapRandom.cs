namespace BiasFree.Scoring;

/// <summary>
/// The random stream of one bootstrap: SplitMix64 (Steele, Lea &amp; Flood 2014, "Fast splittable pseudorandom number
/// generators"), with bounded integers by Lemire's multiply-shift (Lemire 2019, "Fast random integer generation in an
/// interval").
/// </summary>
/// <remarks>
/// Why not <see cref="Random"/>: the bootstrap draws n indices per resample, 10,000 resamples per interval and dozens of
/// intervals per report, so the draw is the whole cost of a report; SplitMix64 is a few times faster than seeded
/// <see cref="Random"/> and its output is fixed by this file, not by the runtime, so a seed gives the same interval on
/// every machine. The multiply-shift maps a 32-bit draw onto [0, n) with a bias below n / 2³² (under 10⁻⁵ for a million
/// probes), far below the Monte Carlo error of any interval.
/// </remarks>
internal struct BootstrapRandom(ulong seed)
{
    private ulong _state = seed;

    /// <summary>A uniform integer in [0, <paramref name="n"/>).</summary>
    public int Next(int n) => (int)(((ulong)(uint)(NextUInt64() >> 32) * (ulong)n) >> 32);

    private ulong NextUInt64()
    {
        unchecked
        {
            ulong z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
    }
}
