using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace BiasFree.Judges.Defences;

/// <summary>
/// Folds untrusted text into the form a judge (and <see cref="InjectionDetector"/>) should read, so that an attack cannot
/// hide from the rules or imitate the judge's own format by spelling:
/// <list type="number">
/// <item>invisible characters are removed: format controls (zero-width spaces and joiners, bidi embeddings and
/// isolates, the byte-order mark, soft hyphens, Unicode tag characters) and variation selectors;</item>
/// <item>compatibility forms are folded to their plain letters, digits and signs: full-width forms (＃ → #), mathematical
/// alphanumerics (𝐈 → I), circled and parenthesised letters, odd spaces, ligatures, and combining accents are dropped.
/// This is the part of Unicode NFKC that matters here, done by table because the project runs with invariant
/// globalization, where <see cref="string.Normalize(NormalizationForm)"/> leaves non-ASCII text unchanged;</item>
/// <item>look-alike letters (Cyrillic, Greek, a few others; the visually confusable subset of Unicode TR39's list, our
/// selection) become the Latin letter they imitate, in every word that mixes them with Latin letters and, when most
/// letters of the text are Latin, everywhere (a genuine Russian or Greek text is left alone);</item>
/// <item>the data-marking character of <see cref="DataMarking"/> is replaced by '^', so the text cannot pre-mark itself;</item>
/// <item>fake delimiters are defused: a <c>&lt;</c> that starts something tag-like (<c>&lt;system&gt;</c>, <c>&lt;/x&gt;</c>,
/// <c>&lt;|im_start|&gt;</c>) becomes ‹, and chat-template tokens such as <c>[INST]</c> become <c>(INST)</c>;</item>
/// <item>lines written in the judge's output format (<c>## Conclusion ##: …</c>) lose their markers
/// (<c>Conclusion (quoted): …</c>), so a planted conclusion can never be read as the judge's.</item>
/// </list>
/// </summary>
public static partial class TextCanonicaliser
{
    /// <summary>The canonical form of <paramref name="text"/>, and whether anything changed beyond whitespace.</summary>
    public static (string Text, IReadOnlyList<string> Changes) Canonicalise(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var changes = new List<string>();
        var sb = new StringBuilder(text.Length);
        foreach (var rune in text.EnumerateRunes())
        {
            if (IsInvisible(rune)) continue;
            sb.Append(rune.ToString());
        }
        var s = sb.ToString();
        if (s.Length != text.Length) changes.Add("invisible characters removed");

        var compat = FoldCompatibility(s);
        if (!string.Equals(compat, s, StringComparison.Ordinal)) changes.Add("compatibility forms folded");
        s = compat;

        var folded = FoldConfusables(s);
        if (!string.Equals(folded, s, StringComparison.Ordinal)) changes.Add("look-alike letters folded to Latin");
        s = folded;

        if (s.Contains(DataMarking.Mark, StringComparison.Ordinal))
        {
            s = s.Replace(DataMarking.Mark, '^');
            changes.Add("data-marking character replaced");
        }

        var defused = ChatToken().Replace(TagStart().Replace(s, "\u2039"), m => "(" + m.Groups["t"].Value + ")");
        if (!string.Equals(defused, s, StringComparison.Ordinal)) changes.Add("tag-like delimiters defused");
        s = defused;

        var unmarked = FormatMarker().Replace(s, m => m.Groups["w"].Value + " (quoted)");
        if (!string.Equals(unmarked, s, StringComparison.Ordinal)) changes.Add("judge-format markers neutralised");
        return (unmarked, changes);
    }

    private static string FoldCompatibility(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var rune in s.EnumerateRunes())
        {
            int c = rune.Value;
            switch (c)
            {
                case >= 0xFF01 and <= 0xFF5E: sb.Append((char)(c - 0xFF01 + 0x21)); break; // full-width ASCII
                case 0x3000 or 0x00A0 or 0x1680 or 0x202F or 0x205F or (>= 0x2000 and <= 0x200A): sb.Append(' '); break;
                case >= 0x1D400 and <= 0x1D6A3: // mathematical alphanumeric letters: 13 styles of A-Z a-z
                {
                    int k = (c - 0x1D400) % 52;
                    sb.Append(k < 26 ? (char)('A' + k) : (char)('a' + k - 26));
                    break;
                }
                case >= 0x1D7CE and <= 0x1D7FF: sb.Append((char)('0' + (c - 0x1D7CE) % 10)); break; // mathematical digits
                case >= 0x24B6 and <= 0x24CF: sb.Append((char)('A' + c - 0x24B6)); break; // circled capitals
                case >= 0x24D0 and <= 0x24E9: sb.Append((char)('a' + c - 0x24D0)); break; // circled small letters
                case >= 0x249C and <= 0x24B5: sb.Append((char)('a' + c - 0x249C)); break; // parenthesised small letters
                case >= 0x1F130 and <= 0x1F149: sb.Append((char)('A' + c - 0x1F130)); break; // squared capitals
                case >= 0x1F150 and <= 0x1F169: sb.Append((char)('A' + c - 0x1F150)); break; // negative circled capitals
                case >= 0x1F170 and <= 0x1F189: sb.Append((char)('A' + c - 0x1F170)); break; // negative squared capitals
                case >= 0x1F1E6 and <= 0x1F1FF: sb.Append((char)('A' + c - 0x1F1E6)); break; // regional indicators
                case >= 0x0300 and <= 0x036F: break; // combining accents (used to disguise letters)
                case 0xFB00: sb.Append("ff"); break;
                case 0xFB01: sb.Append("fi"); break;
                case 0xFB02: sb.Append("fl"); break;
                case 0xFB03: sb.Append("ffi"); break;
                case 0xFB04: sb.Append("ffl"); break;
                case 0x2026: sb.Append("..."); break;
                case 0x2024: sb.Append('.'); break;
                case 0xFE55 or 0xFE13: sb.Append(':'); break;
                case 0xFE5F: sb.Append('#'); break;
                case 0xFE64: sb.Append('<'); break;
                case 0xFE65: sb.Append('>'); break;
                case 0x2039 or 0x3008 or 0x27E8 or 0x2329: sb.Append('<'); break; // angle-bracket look-alikes make tags too
                case 0x203A or 0x3009 or 0x27E9 or 0x232A: sb.Append('>'); break;
                case 0x2212 or 0x2010 or 0x2011: sb.Append('-'); break;
                default: sb.Append(rune.ToString()); break;
            }
        }
        return sb.ToString();
    }

    /// <summary>Format controls, variation selectors and tag characters: invisible, and used to split or disguise words.</summary>
    private static bool IsInvisible(Rune r)
    {
        if (r.Value is '\n' or '\r' or '\t') return false;
        if (r.Value is >= 0xFE00 and <= 0xFE0F or >= 0xE0100 and <= 0xE01EF or >= 0xE0000 and <= 0xE007F) return true;
        if (r.Value is 0x034F or 0x115F or 0x1160 or 0x3164 or 0xFFA0) return true; // combining grapheme joiner, Hangul fillers
        return Rune.GetUnicodeCategory(r) == UnicodeCategory.Format;
    }

    private static string FoldConfusables(string s)
    {
        int latin = 0, other = 0;
        foreach (var ch in s)
        {
            if (!char.IsLetter(ch)) continue;
            if (ch < 0x250) latin++;
            else other++;
        }
        bool mostlyLatin = latin >= other;
        var sb = new StringBuilder(s.Length);
        int i = 0;
        while (i < s.Length)
        {
            if (!char.IsLetter(s[i]))
            {
                sb.Append(s[i++]);
                continue;
            }
            int start = i;
            while (i < s.Length && (char.IsLetter(s[i]) || char.GetUnicodeCategory(s[i]) == UnicodeCategory.NonSpacingMark)) i++;
            var word = s.AsSpan(start, i - start);
            bool hasLatin = false, hasConfusable = false;
            foreach (var ch in word)
            {
                if (ch is >= 'A' and <= 'Z' or >= 'a' and <= 'z') hasLatin = true;
                else if (Confusables.ContainsKey(ch)) hasConfusable = true;
            }
            if (hasConfusable && (hasLatin || mostlyLatin))
            {
                foreach (var ch in word) sb.Append(Confusables.TryGetValue(ch, out var l) ? l : ch);
            }
            else sb.Append(word);
        }
        return sb.ToString();
    }

    /// <summary>Look-alike letter → the Latin letter it imitates (Cyrillic, Greek, Armenian, IPA; visually confusable ones only).</summary>
    private static readonly Dictionary<char, char> Confusables = new()
    {
        // Cyrillic
        ['\u0430'] = 'a', ['\u0435'] = 'e', ['\u043E'] = 'o', ['\u0440'] = 'p', ['\u0441'] = 'c', ['\u0443'] = 'y', ['\u0445'] = 'x',
        ['\u0456'] = 'i', ['\u0458'] = 'j', ['\u0455'] = 's', ['\u0501'] = 'd', ['\u04BB'] = 'h', ['\u04CF'] = 'l', ['\u051B'] = 'q',
        ['\u051D'] = 'w', ['\u0475'] = 'v', ['\u0432'] = 'b', ['\u043A'] = 'k', ['\u043D'] = 'h', ['\u0442'] = 't', ['\u0433'] = 'r',
        ['\u0410'] = 'A', ['\u0412'] = 'B', ['\u0415'] = 'E', ['\u041A'] = 'K', ['\u041C'] = 'M', ['\u041D'] = 'H', ['\u041E'] = 'O',
        ['\u0420'] = 'P', ['\u0421'] = 'C', ['\u0422'] = 'T', ['\u0425'] = 'X', ['\u0423'] = 'Y', ['\u0406'] = 'I', ['\u0408'] = 'J',
        ['\u0405'] = 'S', ['\u04C0'] = 'I', ['\u0417'] = '3',
        // Greek
        ['\u03BF'] = 'o', ['\u03BD'] = 'v', ['\u03C1'] = 'p', ['\u03B9'] = 'i', ['\u03BA'] = 'k', ['\u03C4'] = 't', ['\u03C5'] = 'u',
        ['\u03B1'] = 'a', ['\u0391'] = 'A', ['\u0392'] = 'B', ['\u0395'] = 'E', ['\u0396'] = 'Z', ['\u0397'] = 'H', ['\u0399'] = 'I',
        ['\u039A'] = 'K', ['\u039C'] = 'M', ['\u039D'] = 'N', ['\u039F'] = 'O', ['\u03A1'] = 'P', ['\u03A4'] = 'T', ['\u03A5'] = 'Y',
        ['\u03A7'] = 'X',
        // Armenian, Latin extensions and IPA that imitate basic Latin
        ['\u0585'] = 'o', ['\u0578'] = 'n', ['\u057D'] = 'u', ['\u0561'] = 'w', ['\u0131'] = 'i', ['\u0261'] = 'g', ['\u0251'] = 'a',
        ['\u026A'] = 'i', ['\u1D00'] = 'A', ['\u0299'] = 'B', ['\u1D04'] = 'C', ['\u1D05'] = 'D', ['\u1D07'] = 'E', ['\u0262'] = 'G',
        ['\u029C'] = 'H', ['\u1D0A'] = 'J', ['\u1D0B'] = 'K', ['\u029F'] = 'L', ['\u1D0D'] = 'M', ['\u0274'] = 'N', ['\u1D0F'] = 'O',
        ['\u1D18'] = 'P', ['\u0280'] = 'R', ['\u1D1B'] = 'T', ['\u1D1C'] = 'U', ['\u1D20'] = 'V', ['\u1D21'] = 'W', ['\u028F'] = 'Y',
        ['\u1D22'] = 'Z',
    };

    [GeneratedRegex(@"<(?=\s*/?\s*[\p{L}!?|])")]
    private static partial Regex TagStart();

    [GeneratedRegex(@"\[(?<t>/?(?:INST|SYS|SYSTEM|USER|ASSISTANT))\]", RegexOptions.IgnoreCase)]
    private static partial Regex ChatToken();

    [GeneratedRegex(@"#{2,}[ \t]*(?<w>[Rr]easoning|[Cc]onclusion|[Cc]onfidence)[ \t]*#{2,}[ \t]*:?", RegexOptions.IgnoreCase)]
    private static partial Regex FormatMarker();
}
