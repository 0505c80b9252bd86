using System.Globalization;
using System.Text;

namespace BiasFree.Engine.Tokenization;

/// <summary>
/// Unicode normalization that also works under InvariantGlobalization, where
/// <see cref="string.Normalize(NormalizationForm)"/> leaves non-ASCII text unchanged. NFC and NFD are
/// implemented here from generated tables (<see cref="UnicodeNormalizationData"/>); NFKC/NFKD need the platform.
/// </summary>
internal static class UnicodeNormalization
{
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    private static readonly Lazy<Tables> s_tables = new(Tables.Load);
    private static readonly bool s_platformWorks = Probe();

    private static bool Probe()
    {
        try
        {
            return "e\u0301".Normalize(NormalizationForm.FormC) == "\u00E9";
        }
        catch (PlatformNotSupportedException)
        {
            return false;
        }
    }

    /// <summary>True when <paramref name="form"/> can be applied in this process.</summary>
    public static bool IsSupported(NormalizationForm form) =>
        form is NormalizationForm.FormC or NormalizationForm.FormD || s_platformWorks;

    public static string Normalize(string text, NormalizationForm form)
    {
        // Below U+0300 nothing decomposes canonically and nothing combines.
        bool trivial = true;
        foreach (var c in text)
        {
            if (c >= 0x300) { trivial = false; break; }
        }
        if (trivial && form is NormalizationForm.FormC or NormalizationForm.FormD && !HasLatin1Composite(text, form)) return text;
        return form switch
        {
            NormalizationForm.FormC => Compose(Decompose(text)),
            NormalizationForm.FormD => ToString(Decompose(text)),
            _ when s_platformWorks => text.Normalize(form),
            _ => throw new NotSupportedException($"{form} normalization is not available with InvariantGlobalization"),
        };
    }

    // NFD of precomposed Latin-1 letters (e.g. U+00E9) changes them; NFC of text below U+0300 is the identity.
    private static bool HasLatin1Composite(string text, NormalizationForm form)
    {
        if (form == NormalizationForm.FormC) return false;
        foreach (var c in text) if (c >= 0xC0) return true;
        return false;
    }

    private static List<int> Decompose(string text)
    {
        var t = s_tables.Value;
        var cps = new List<int>(text.Length);
        for (int i = 0; i < text.Length; i++)
        {
            int cp = text[i];
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                cp = char.ConvertToUtf32(text[i], text[i + 1]);
                i++;
            }
            if (cp >= SBase && cp < SBase + SCount)
            {
                int s = cp - SBase;
                cps.Add(LBase + s / NCount);
                cps.Add(VBase + s % NCount / TCount);
                if (s % TCount != 0) cps.Add(TBase + s % TCount);
            }
            else if (t.Decompositions.TryGetValue(cp, out var d))
            {
                cps.AddRange(d);
            }
            else
            {
                cps.Add(cp);
            }
        }
        // Canonical ordering: stable sort of each run of non-starters by combining class.
        for (int i = 1; i < cps.Count; i++)
        {
            int cc = t.Ccc(cps[i]);
            if (cc == 0) continue;
            int j = i;
            while (j > 0 && t.Ccc(cps[j - 1]) > cc)
            {
                (cps[j - 1], cps[j]) = (cps[j], cps[j - 1]);
                j--;
            }
        }
        return cps;
    }

    private static string Compose(List<int> cps)
    {
        if (cps.Count == 0) return "";
        var t = s_tables.Value;
        var result = new List<int>(cps.Count) { cps[0] };
        int starterPos = 0;
        int lastClass = t.Ccc(cps[0]);
        if (lastClass != 0) lastClass = 256; // no starter yet: block composition
        for (int i = 1; i < cps.Count; i++)
        {
            int ch = cps[i];
            int cc = t.Ccc(ch);
            if ((lastClass < cc || lastClass == 0) && ComposePair(t, result[starterPos], ch) is int composite)
            {
                result[starterPos] = composite;
                continue;
            }
            if (cc == 0) starterPos = result.Count;
            lastClass = cc;
            result.Add(ch);
        }
        return ToString(result);
    }

    private static int? ComposePair(Tables t, int a, int b)
    {
        if (a >= LBase && a < LBase + LCount && b >= VBase && b < VBase + VCount)
        {
            return SBase + ((a - LBase) * VCount + (b - VBase)) * TCount;
        }
        if (a >= SBase && a < SBase + SCount && (a - SBase) % TCount == 0 && b > TBase && b < TBase + TCount)
        {
            return a + (b - TBase);
        }
        return t.Compositions.TryGetValue(((long)a << 21) | (uint)b, out int c) ? c : null;
    }

    private static string ToString(List<int> cps)
    {
        var sb = new StringBuilder(cps.Count);
        foreach (int cp in cps)
        {
            if (cp < 0x10000) sb.Append((char)cp);
            else sb.Append(char.ConvertFromUtf32(cp));
        }
        return sb.ToString();
    }

    private sealed class Tables
    {
        public Dictionary<int, int> Classes { get; } = new();
        public Dictionary<int, int[]> Decompositions { get; } = new();
        public Dictionary<long, int> Compositions { get; } = new();

        public int Ccc(int cp) => cp < 0x300 ? 0 : Classes.GetValueOrDefault(cp);

        public static Tables Load()
        {
            var t = new Tables();
            foreach (var (key, value) in Entries(UnicodeNormalizationData.CombiningClasses))
            {
                t.Classes[Hex(key)] = int.Parse(value, CultureInfo.InvariantCulture);
            }
            foreach (var (key, value) in Entries(UnicodeNormalizationData.Decompositions))
            {
                t.Decompositions[Hex(key)] = value.Split(' ').Select(Hex).ToArray();
            }
            foreach (var (key, value) in Entries(UnicodeNormalizationData.Compositions))
            {
                var pair = key.Split(' ');
                t.Compositions[((long)Hex(pair[0]) << 21) | (uint)Hex(pair[1])] = Hex(value);
            }
            return t;
        }

        private static int Hex(string s) => int.Parse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture);

        private static IEnumerable<(string Key, string Value)> Entries(string data)
        {
            foreach (var entry in data.Split(';', StringSplitOptions.RemoveEmptyEntries))
            {
                int colon = entry.IndexOf(':');
                yield return (entry[..colon], entry[(colon + 1)..]);
            }
        }
    }
}
