using System.Text;

namespace BiasFree.Probes;

/// <summary>
/// Small deterministic RNG (SplitMix64) whose stream depends only on a seed and a string key, never on the .NET
/// version or on enumeration order. Suites derive one per probe (seed + probe id) or per template fill.
/// </summary>
public sealed class StableRandom
{
    private ulong _state;

    public StableRandom(ulong state) => _state = state;

    /// <summary>An RNG for <paramref name="key"/> under <paramref name="seed"/>: same pair ⇒ same stream.</summary>
    public static StableRandom For(int seed, string key) =>
        new(Hash(key) ^ ((ulong)(uint)seed * 0x9E3779B97F4A7C15UL + 0x632BE59BD9B4E019UL));

    /// <summary>FNV-1a 64 over the UTF-8 bytes of <paramref name="s"/>.</summary>
    public static ulong Hash(string s)
    {
        ulong h = 0xcbf29ce484222325UL;
        foreach (var b in Encoding.UTF8.GetBytes(s))
        {
            h ^= b;
            h *= 0x100000001b3UL;
        }
        return h;
    }

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform integer in [0, <paramref name="maxExclusive"/>).</summary>
    public int Next(int maxExclusive)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxExclusive);
        return (int)(NextUInt64() % (ulong)maxExclusive);
    }

    public bool NextBool() => (NextUInt64() & 1UL) == 1UL;

    public T Pick<T>(IReadOnlyList<T> items) => items[Next(items.Count)];

    /// <summary>Fisher–Yates shuffle into a new list.</summary>
    public List<T> Shuffle<T>(IEnumerable<T> items)
    {
        var list = items.ToList();
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = Next(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
        return list;
    }
}
