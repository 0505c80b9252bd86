using System.Globalization;
using System.Text.RegularExpressions;

namespace BiasFree.Engine.Tokenization;

/// <summary>
/// Runs a pre-tokenizer regex with code-point semantics. .NET regexes see UTF-16 code units, so a
/// character outside the BMP (emoji, math letters) is two surrogates of category Cs and a
/// class such as <c>[^\p{L}\p{N}]?</c> can split it or miss that it is a letter. Rust's Oniguruma,
/// which HF tokenizers uses, matches code points. We run the regex on a shadow string in which
/// every supplementary code point is replaced by one BMP character of the same general category,
/// then map the match boundaries back to the original text.
/// </summary>
internal sealed class CodePointRegex
{
    /// <summary>GPT-2's pre-tokenizer pattern (used by a bare ByteLevel pre-tokenizer with use_regex).</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>Llama-3's split pattern (numbers in groups of up to three digits).</summary>
    public const string Llama3Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>Qwen2's split pattern (single digits).</summary>
    public const string Qwen2Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private readonly Regex _regex;

    public CodePointRegex(string pattern)
    {
        Pattern = pattern;
        _regex = new Regex(ConvertPossessive(pattern), RegexOptions.CultureInvariant | RegexOptions.Compiled);
    }

    public string Pattern { get; }

    /// <summary>Matches as (start, length) in the original string, in order.</summary>
    public List<(int Start, int Length)> Matches(string text)
    {
        var result = new List<(int, int)>();
        if (!HasSurrogates(text))
        {
            for (var m = _regex.Match(text); m.Success; m = m.NextMatch())
            {
                if (m.Length > 0) result.Add((m.Index, m.Length));
            }
            return result;
        }

        var shadow = new char[text.Length];
        var origin = new int[text.Length + 1];
        int n = 0;
        for (int i = 0; i < text.Length; i++)
        {
            origin[n] = i;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                int cp = char.ConvertToUtf32(text[i], text[i + 1]);
                shadow[n++] = Representative(CharUnicodeInfo.GetUnicodeCategory(cp));
                i++;
            }
            else
            {
                shadow[n++] = text[i];
            }
        }
        origin[n] = text.Length;
        var shadowText = new string(shadow, 0, n);
        for (var m = _regex.Match(shadowText); m.Success; m = m.NextMatch())
        {
            if (m.Length == 0) continue;
            int start = origin[m.Index];
            int end = origin[m.Index + m.Length];
            result.Add((start, end - start));
        }
        return result;
    }

    /// <summary>Splits <paramref name="text"/> into matches and the gaps between them (HF "Isolated").</summary>
    public List<string> SplitIsolated(string text)
    {
        var pieces = new List<string>();
        int pos = 0;
        foreach (var (start, length) in Matches(text))
        {
            if (start > pos) pieces.Add(text[pos..start]);
            pieces.Add(text.Substring(start, length));
            pos = start + length;
        }
        if (pos < text.Length) pieces.Add(text[pos..]);
        return pieces;
    }

    private static bool HasSurrogates(string text)
    {
        foreach (var c in text)
        {
            if (char.IsSurrogate(c)) return true;
        }
        return false;
    }

    /// <summary>A BMP character of the given category that is neither whitespace nor a line break.</summary>
    private static char Representative(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter => 'A',
        UnicodeCategory.LowercaseLetter => 'a',
        UnicodeCategory.TitlecaseLetter => '\u01C5',
        UnicodeCategory.ModifierLetter => '\u02B0',
        UnicodeCategory.OtherLetter => '\u05D0',
        UnicodeCategory.NonSpacingMark => '\u0300',
        UnicodeCategory.SpacingCombiningMark => '\u0903',
        UnicodeCategory.EnclosingMark => '\u20DD',
        UnicodeCategory.DecimalDigitNumber => '0',
        UnicodeCategory.LetterNumber => '\u2160',
        UnicodeCategory.OtherNumber => '\u00B2',
        UnicodeCategory.ConnectorPunctuation => '_',
        UnicodeCategory.DashPunctuation => '-',
        UnicodeCategory.OpenPunctuation => '(',
        UnicodeCategory.ClosePunctuation => ')',
        UnicodeCategory.InitialQuotePunctuation => '\u00AB',
        UnicodeCategory.FinalQuotePunctuation => '\u00BB',
        UnicodeCategory.OtherPunctuation => '!',
        UnicodeCategory.MathSymbol => '+',
        UnicodeCategory.CurrencySymbol => '$',
        UnicodeCategory.ModifierSymbol => '^',
        UnicodeCategory.OtherSymbol => '\u00A9',
        UnicodeCategory.Format => '\u00AD',
        UnicodeCategory.PrivateUse => '\uE000',
        _ => '\u0378', // unassigned
    };

    /// <summary>
    /// Rewrites possessive quantifiers (<c>x++</c>, <c>x*+</c>, <c>x?+</c>), which .NET lacks, as atomic
    /// groups. Handles a quantifier applied to a single escape, a character class or a group.
    /// </summary>
    internal static string ConvertPossessive(string pattern)
    {
        if (!pattern.Contains("++") && !pattern.Contains("*+") && !pattern.Contains("?+") && !pattern.Contains("}+"))
        {
            return pattern;
        }
        var sb = new System.Text.StringBuilder();
        int i = 0;
        // Track the start (in sb) of the most recent atom.
        int lastAtom = -1;
        var groupStack = new Stack<int>();
        while (i < pattern.Length)
        {
            char c = pattern[i];
            if (c == '\\')
            {
                lastAtom = sb.Length;
                sb.Append(c);
                if (i + 1 < pattern.Length)
                {
                    sb.Append(pattern[i + 1]);
                    if ((pattern[i + 1] == 'p' || pattern[i + 1] == 'P') && i + 2 < pattern.Length && pattern[i + 2] == '{')
                    {
                        int close = pattern.IndexOf('}', i + 2);
                        sb.Append(pattern, i + 2, close - (i + 2) + 1);
                        i = close + 1;
                        continue;
                    }
                }
                i += 2;
                continue;
            }
            if (c == '[')
            {
                lastAtom = sb.Length;
                int j = i + 1;
                if (j < pattern.Length && pattern[j] == '^') j++;
                if (j < pattern.Length && pattern[j] == ']') j++;
                while (j < pattern.Length && pattern[j] != ']')
                {
                    j += pattern[j] == '\\' ? 2 : 1;
                }
                sb.Append(pattern, i, j - i + 1);
                i = j + 1;
                continue;
            }
            if (c == '(')
            {
                groupStack.Push(sb.Length);
                sb.Append(c);
                i++;
                if (i < pattern.Length && pattern[i] == '?')
                {
                    // Group construct prefix: (?: (?= (?! (?> (?<= (?<! (?<name> (?i: (?i)
                    int j = i + 1;
                    while (j < pattern.Length && pattern[j] != ':' && pattern[j] != ')' && pattern[j] != '=' && pattern[j] != '!' && pattern[j] != '>')
                    {
                        j++;
                    }
                    if (j < pattern.Length && pattern[j] != ')') j++;
                    sb.Append(pattern, i, j - i);
                    i = j;
                }
                continue;
            }
            if (c == ')')
            {
                sb.Append(c);
                lastAtom = groupStack.Count > 0 ? groupStack.Pop() : -1;
                i++;
                continue;
            }
            if (c is '*' or '+' or '?' or '{')
            {
                int qEnd = i + 1;
                if (c == '{')
                {
                    int close = pattern.IndexOf('}', i);
                    if (close < 0) { sb.Append(c); i++; continue; }
                    qEnd = close + 1;
                }
                string quant = pattern[i..qEnd];
                if (qEnd < pattern.Length && pattern[qEnd] == '+' && lastAtom >= 0)
                {
                    string atom = sb.ToString(lastAtom, sb.Length - lastAtom);
                    sb.Length = lastAtom;
                    sb.Append("(?>").Append(atom).Append(quant).Append(')');
                    i = qEnd + 1;
                    continue;
                }
                sb.Append(quant);
                i = qEnd;
                continue;
            }
            lastAtom = sb.Length;
            sb.Append(c);
            i++;
        }
        return sb.ToString();
    }
}
