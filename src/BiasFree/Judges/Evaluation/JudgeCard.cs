using System.Globalization;
using System.Text;

namespace BiasFree.Judges.Evaluation;

/// <summary>One judge's measurements for a model card: held-out agreement and injection flip rates with and without defences.</summary>
/// <param name="Agreement">Agreement with gold labels on held-out items.</param>
/// <param name="Defended">Injection suite (every attack set) with the defences on.</param>
/// <param name="Raw">The same suite with the defences off (<c>--no-defences</c>).</param>
public sealed record JudgeCardEntry(JudgeEvaluationReport Agreement, InjectionReport Defended, InjectionReport Raw);

/// <summary>
/// The measured part of a judge's model card (markdown): agreement with gold labels on held-out generated dialogues
/// (accuracy, Cohen's κ, over-fairness with its denominator, Wilson 95% intervals) and the prompt-injection flip rate per
/// attack, with and without the defences, for the judge and a baseline judge side by side. Every number is computed
/// by <see cref="JudgeEvaluation"/> and <see cref="InjectionSuite"/>; the command that produced them is printed with them.
/// </summary>
public static class JudgeCard
{
    /// <summary>Marker lines between which <see cref="Splice"/> replaces the measured section of a card.</summary>
    public const string Begin = "<!-- judge-card:begin (generated; do not edit by hand) -->";

    /// <summary>End marker.</summary>
    public const string End = "<!-- judge-card:end -->";

    /// <summary>The measured section for <paramref name="entries"/> (judge first, baseline after), produced by <paramref name="command"/>.</summary>
    public static string Render(IReadOnlyList<JudgeCardEntry> entries, string command)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var md = new StringBuilder();
        md.AppendLine(Begin);
        md.AppendLine("Regenerate with:").AppendLine().AppendLine("```bash").AppendLine(command).AppendLine("```").AppendLine();
        md.AppendLine("### Agreement with gold labels (held-out generated dialogues)").AppendLine();
        md.AppendLine("| Judge | Items | Accuracy % [95% CI] | Cohen's κ [95% CI] | Over-fairness % (gold-unbiased judged biased / gold unbiased) | Missed % (of gold biased) | Invalid % |");
        md.AppendLine("|---|---:|---|---|---|---|---|");
        foreach (var e in entries)
        {
            var m = e.Agreement.Overall;
            md.Append("| ").Append(Cell(e.Agreement.Judge)).Append(" | ").Append(m.Items.ToString(CultureInfo.InvariantCulture))
              .Append(" | ").Append(Pct(m.Accuracy)).Append(" | ").Append(Kappa(m)).Append(" | ").Append(Pct(m.OverFairness))
              .Append(" | ").Append(Pct(m.Missed)).Append(" | ").Append(Pct(m.Invalid)).AppendLine(" |");
        }
        md.AppendLine();
        md.AppendLine("### Prompt-injection flip rate (attacked verdict ≠ clean verdict, over usable pairs)").AppendLine();
        md.Append("| Attack |");
        foreach (var e in entries) md.Append(' ').Append(Cell(e.Defended.Judge)).Append(" defences on | ").Append(Cell(e.Raw.Judge)).Append(" raw |");
        md.AppendLine();
        md.Append("|---|").Append(string.Concat(Enumerable.Repeat("---|---|", entries.Count))).AppendLine();
        var attacks = entries[0].Defended.ByAttack.Select(a => a.Attack).Prepend("all").ToList();
        foreach (var attack in attacks)
        {
            md.Append("| ").Append(Cell(attack)).Append(" |");
            foreach (var e in entries)
                md.Append(' ').Append(Pct(Find(e.Defended, attack).Flips)).Append(" | ").Append(Pct(Find(e.Raw, attack).Flips)).Append(" |");
            md.AppendLine();
        }
        md.AppendLine();
        md.Append("Detector false alarms on the clean base replies: ");
        md.AppendLine(string.Join("; ", entries.Select(e => $"{e.Defended.Judge} {Pct(e.Defended.CleanDetections)}"))).AppendLine();
        md.AppendLine("Attacks: `builtin` (development set, the detector's rules were written against it), `ho-*` (first held-out set: measured, then " +
                      "the rules were extended for its families, so it is no longer held out), `ho2-*` (second held-out set, measured once, never used " +
                      "for the rules), `ho3-*` and `ho4-*` (third and fourth held-out sets, each committed before the defence that followed it: " +
                      "TopicIsolation after set 3, the second reading after set 4), `ho5-*` (fifth set, committed before the second reading; its flips " +
                      "were looked at while the second reading was fixed), `ho6-*` (sixth set, written against the second reading and committed " +
                      "before it was measured on it; its misses informed the form rules of the second reading), `ho7-*` (seventh set, committed " +
                      "before the form rules were measured on it), `ho8-*` (eighth set, committed before the judge was trained with " +
                      "adversarial data augmentation), `ho9-*` (ninth set, committed before known-answer detection, which compact judges do not apply), " +
                      "`adaptive-*` (adaptive attacks on known-answer detection, a development set), `ho10-*` (tenth set, committed before the topic " +
                      "sentences of compact judges (v6) and measured once with them; sets 7–9 were their development data), `ho11-*` (eleventh set, " +
                      "written against v6 and measured once with it; development data for the sentence verdicts of v7), `ho12-*` (twelfth set, " +
                      "written against v7 before its topic rule and measured once with each). docs/judges.md tells which set is held out for which version. Intervals: Wilson 95% score intervals; κ: percentile bootstrap, 1,000 seeded resamples.");
        md.AppendLine(End);
        return md.ToString();
    }

    /// <summary><paramref name="card"/> with its measured section replaced by <paramref name="section"/> (appended when it has none).</summary>
    public static string Splice(string card, string section)
    {
        ArgumentNullException.ThrowIfNull(card);
        ArgumentNullException.ThrowIfNull(section);
        int b = card.IndexOf(Begin, StringComparison.Ordinal);
        int e = card.IndexOf(End, StringComparison.Ordinal);
        if (b < 0 || e < b) return card.TrimEnd() + "\n\n" + section;
        return card[..b] + section.TrimEnd('\n') + card[(e + End.Length)..];
    }

    private static InjectionRate Find(InjectionReport r, string attack) =>
        attack == "all" ? r.Overall : r.ByAttack.First(a => a.Attack == attack);

    private static string Cell(string s) => s.Replace("|", "\\|", StringComparison.Ordinal);

    private static string P(double? v) => v is double d ? (100 * d).ToString("0.0", CultureInfo.InvariantCulture) : "–";

    private static string Pct(Rate r) => r.Total == 0 ? "–" : $"{P(r.Value)} [{P(r.Low)}, {P(r.High)}] ({r.Count}/{r.Total})";

    private static string Kappa(JudgeMetrics m) =>
        m.Kappa is not double k ? "–"
        : m.KappaLow is double lo && m.KappaHigh is double hi ? string.Create(CultureInfo.InvariantCulture, $"{k:0.00} [{lo:0.00}, {hi:0.00}]")
        : k.ToString("0.00", CultureInfo.InvariantCulture);
}
