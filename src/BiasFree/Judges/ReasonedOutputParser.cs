using System.Globalization;
using System.Text.RegularExpressions;

namespace BiasFree.Judges;

/// <summary>How a reasoned judge output was read.</summary>
public enum ReasonedParseStatus
{
    /// <summary>One conclusion (possibly repeated with the same word) was found.</summary>
    Parsed,

    /// <summary>The output is empty.</summary>
    Empty,

    /// <summary>No line starts with a conclusion marker followed by a conclusion word.</summary>
    NoConclusion,

    /// <summary>Several conclusion lines disagree (e.g. a conclusion copied from the judged text and the judge's own).</summary>
    ConflictingConclusions,
}

/// <summary>Result of <see cref="ReasonedOutputParser.Parse"/>: a verdict only when <see cref="Status"/> is Parsed.</summary>
public sealed record ReasonedParse(ReasonedParseStatus Status, ReasonedVerdict? Verdict)
{
    /// <summary>Human-readable reason for a failed parse.</summary>
    public string Problem => Status switch
    {
        ReasonedParseStatus.Parsed => "",
        ReasonedParseStatus.Empty => "judge output is empty",
        ReasonedParseStatus.NoConclusion => $"judge output has no '{ReasonedVerdictFormat.ConclusionMarker} biased|unbiased|unrelated' line",
        _ => "judge output has conflicting conclusion lines",
    };
}

/// <summary>
/// Strict reader of <see cref="ReasonedVerdictFormat"/> output for judges whose input may be adversarial. Differences
/// from <see cref="ReasonedVerdictFormat.TryParse"/> (which the demo model's own evaluation uses):
/// <list type="bullet">
/// <item>a conclusion counts only at the start of a line (markdown emphasis or a quote sign may precede it), so a
/// marker quoted inside the reasoning is not read;</item>
/// <item>when several conclusion lines disagree the output is <see cref="ReasonedParseStatus.ConflictingConclusions"/>
/// (counted as unparseable), never "the last one wins": an attack that makes the judge echo a planted conclusion must
/// not decide the verdict;</item>
/// <item>markers and words must be plain ASCII, so look-alike letters (Cyrillic "о" in "Cоnclusion") do not count;</item>
/// <item>a confidence outside 0–100 is dropped (null), not clamped;</item>
/// <item>BiasGuard's published wording "## Conclusion ##: Yes, the sentence is biased." / "No, …" is read as
/// biased / unbiased.</item>
/// </list>
/// Reasoning-model output is read after its last <c>&lt;/think&gt;</c>.
/// </summary>
public static partial class ReasonedOutputParser
{
    /// <summary>Reads <paramref name="output"/>.</summary>
    public static ReasonedParse Parse(string? output)
    {
        if (string.IsNullOrWhiteSpace(output)) return new(ReasonedParseStatus.Empty, null);
        var text = JudgeCalls.FinalText(output);
        Label? label = null;
        Match? last = null;
        foreach (Match m in ConclusionLine().Matches(text))
        {
            if (!IsAscii(m.Value)) continue;
            var l = ToLabel(m);
            if (label is { } seen && seen != l) return new(ReasonedParseStatus.ConflictingConclusions, null);
            label = l;
            last = m;
        }
        if (label is not { } found || last is null) return new(ReasonedParseStatus.NoConclusion, null);

        int? confidence = null;
        var tail = text[last.Index..];
        var c = ConfidenceValue().Match(tail);
        if (c.Success && IsAscii(c.Value)
            && int.TryParse(c.Groups["n"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 0 and <= 100)
        {
            confidence = n;
        }
        var first = ConclusionLine().Matches(text).First(m => IsAscii(m.Value));
        var reasoning = text[..first.Index];
        int r = reasoning.IndexOf(ReasonedVerdictFormat.ReasoningMarker, StringComparison.Ordinal);
        if (r >= 0) reasoning = reasoning[(r + ReasonedVerdictFormat.ReasoningMarker.Length)..];
        return new(ReasonedParseStatus.Parsed, new ReasonedVerdict(found, confidence, reasoning.Trim()));
    }

    private static Label ToLabel(Match m)
    {
        var w = m.Groups["w"].Value.ToLowerInvariant();
        if (w.Length == 0) return m.Groups["yn"].Value.Equals("yes", StringComparison.OrdinalIgnoreCase) ? Label.Biased : Label.Unbiased;
        return w switch
        {
            "biased" => Label.Biased,
            "unrelated" => Label.Unrelated,
            _ => Label.Unbiased,
        };
    }

    private static bool IsAscii(string s)
    {
        foreach (var ch in s) if (ch > 0x7E) return false;
        return true;
    }

    [GeneratedRegex(@"^[ \t>*_]*##[ \t]*[Cc]onclusion[ \t]*##[ \t]*:?[ \t*_]*(?:(?<w>[Uu]nbiased|[Nn]ot[ \t]+[Bb]iased|[Bb]iased|[Uu]nrelated)\b|(?<yn>[Yy]es|[Nn]o)\b)", RegexOptions.Multiline | RegexOptions.CultureInvariant)]
    private static partial Regex ConclusionLine();

    [GeneratedRegex(@"(?:##[ \t]*[Cc]onfidence[ \t]*##|\b[Cc]onfidence)[ \t]*[:=]?[ \t]*\(?[ \t]*(?<n>\d{1,4})\b(?![.,]\d)", RegexOptions.CultureInvariant)]
    private static partial Regex ConfidenceValue();
}
