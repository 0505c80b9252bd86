using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Scoring;

namespace BiasFree.Reports;

/// <summary>Report output formats.</summary>
public enum ReportFormat
{
    Markdown,
    Json,
    Csv,

    /// <summary>One JSON object per result row (messages, reply, verdict, tokens, error): the run's sample log, not a score table.</summary>
    Jsonl,
}

/// <summary>
/// Renders a <see cref="RunReport"/>. Every number printed is taken from the report as computed (BFS and rates
/// as percentages with two decimals). Text that can come from users or models (model, method, category names) is
/// escaped: Markdown table cells and CSV fields are never able to break the table.
/// </summary>
public static class ReportWriter
{
    /// <summary>Parses "md"/"markdown", "json", "csv" or "jsonl".</summary>
    public static bool TryParseFormat(string? text, out ReportFormat format)
    {
        switch (text?.Trim().ToLowerInvariant())
        {
            case "md" or "markdown": format = ReportFormat.Markdown; return true;
            case "json": format = ReportFormat.Json; return true;
            case "csv": format = ReportFormat.Csv; return true;
            case "jsonl": format = ReportFormat.Jsonl; return true;
            default: format = default; return false;
        }
    }

    public static string Render(RunReport report, ReportFormat format) => format switch
    {
        ReportFormat.Markdown => ToMarkdown(report),
        ReportFormat.Json => ToJson(report),
        ReportFormat.Csv => ToCsv(report),
        ReportFormat.Jsonl => throw new ArgumentException("JSONL lists result rows, which a RunReport does not hold: use WriteAsync with the store.", nameof(format)),
        _ => throw new ArgumentOutOfRangeException(nameof(format)),
    };

    /// <summary>
    /// Writes run <paramref name="runId"/> of <paramref name="store"/> in <paramref name="format"/>: a score table
    /// (<see cref="Render"/>), or for <see cref="ReportFormat.Jsonl"/> every result row, streamed.
    /// </summary>
    public static async Task WriteAsync(Runs.RunStore store, string runId, ReportFormat format, TextWriter output, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(output);
        if (format == ReportFormat.Jsonl)
        {
            await foreach (var row in store.ReadResultsAsync(runId, cancellationToken).ConfigureAwait(false))
            {
                await output.WriteAsync(ToJsonLine(row).AsMemory(), cancellationToken).ConfigureAwait(false);
                await output.WriteAsync("\n".AsMemory(), cancellationToken).ConfigureAwait(false);
            }
            return;
        }
        var report = await RunReport.BuildAsync(store, runId, cancellationToken: cancellationToken).ConfigureAwait(false);
        await output.WriteAsync(Render(report, format).AsMemory(), cancellationToken).ConfigureAwait(false);
    }

    private static readonly Label[] CountedLabels =
        [Label.Biased, Label.AntiStereotyped, Label.Unknown, Label.Unbiased, Label.Unrelated, Label.NoAnswer, Label.Unparseable, Label.JudgeError];

    private static string LabelHeader(Label l) => l switch
    {
        Label.AntiStereotyped => "Anti",
        Label.NoAnswer => "No answer",
        Label.JudgeError => "Judge errors",
        _ => l.ToString(),
    };

    /// <summary>A proportion as a percentage with two decimals, or "–" when there is none.</summary>
    public static string Percent(double? value) => value is { } v ? (v * 100).ToString("0.00", CultureInfo.InvariantCulture) : "–";

    /// <summary>A BBQ bias score (range −1..1) ×100 with two decimals, or "–".</summary>
    private static string Signed(double? value) => value is { } v ? (v * 100).ToString("0.00", CultureInfo.InvariantCulture) : "–";

    private static string Interval(double? low, double? high) =>
        low is not null && high is not null ? $"[{Percent(low)}, {Percent(high)}]" : "";

    /// <summary>Column header of an interval: its coverage as computed ("95% CI" at 0.95, "90% CI" at 0.90), never a fixed label.</summary>
    public static string IntervalHeader(double level) => (level * 100).ToString("0.##", CultureInfo.InvariantCulture) + "% CI";

    private static string ScenarioName(Scenario s) => ScenarioNames.Name(s);

    // ------------------------------------------------------------------ Markdown

    /// <summary>Escapes text for one Markdown table cell: pipes, backslashes, HTML, emphasis and line breaks cannot leak.</summary>
    public static string EscapeMarkdownCell(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return "";
        }
        var sb = new StringBuilder(text.Length + 8);
        foreach (var ch in text)
        {
            switch (ch)
            {
                case '\r' or '\n': sb.Append(' '); break;
                case '|': sb.Append("\\|"); break;
                case '\\' or '`' or '*' or '_' or '[' or ']' or '#' or '~': sb.Append('\\').Append(ch); break;
                case '<': sb.Append("&lt;"); break;
                case '>': sb.Append("&gt;"); break;
                case '&': sb.Append("&amp;"); break;
                default:
                    if (!char.IsControl(ch))
                    {
                        sb.Append(ch);
                    }
                    break;
            }
        }
        return sb.ToString();
    }

    public static string ToMarkdown(RunReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var s = report.Spec;
        var t = report.Totals;
        var md = new StringBuilder();
        md.Append("# BiasFree run ").AppendLine(EscapeMarkdownCell(s.RunId)).AppendLine();
        md.AppendLine("| Setting | Value |").AppendLine("|---|---|");
        void Setting(string name, string? value) => md.Append("| ").Append(name).Append(" | ").Append(EscapeMarkdownCell(value)).AppendLine(" |");
        Setting("Created", s.Created.ToString("u", CultureInfo.InvariantCulture));
        Setting("Model", s.Model);
        Setting("Target", s.TargetLabel);
        Setting("Suites", string.Join(", ", s.Suites));
        Setting("Seed", s.Seed.ToString(CultureInfo.InvariantCulture));
        Setting("Limit", s.Limit?.ToString(CultureInfo.InvariantCulture) ?? "all");
        // The label rule decides which option counts as biased in official BBQ files, so the scores depend on it.
        Setting("BBQ protocol", $"context {s.Context}, options {s.Options}, label rule {s.LabelRule ?? "biasfreebench"}");
        Setting("Methods", string.Join(", ", s.Methods));
        Setting("Judge", s.JudgeModel is null ? s.Judge : $"{s.Judge} ({s.JudgeModel})");
        Setting("Generation", $"temperature {F(s.Generation.Temperature)}, seed {s.Generation.Seed?.ToString(CultureInfo.InvariantCulture) ?? "none"}, max tokens {s.Generation.MaxTokens?.ToString(CultureInfo.InvariantCulture) ?? "none"}");
        Setting("Rows", t.Expected is { } e ? $"{t.Rows} of {e}" : t.Rows.ToString(CultureInfo.InvariantCulture));
        Setting("Complete", t.Complete.ToString(CultureInfo.InvariantCulture));
        Setting("Target errors", t.TargetErrors.ToString(CultureInfo.InvariantCulture));
        Setting("Judge errors", t.JudgeErrors.ToString(CultureInfo.InvariantCulture));
        Setting("Tokens", $"{t.PromptTokens.ToString(CultureInfo.InvariantCulture)} prompt, {t.CompletionTokens.ToString(CultureInfo.InvariantCulture)} completion");
        md.AppendLine();

        if (t.TargetErrors > 0 || t.JudgeErrors > 0)
        {
            md.Append("> **Incomplete:** ").Append(t.TargetErrors.ToString(CultureInfo.InvariantCulture)).Append(" target errors and ")
              .Append(t.JudgeErrors.ToString(CultureInfo.InvariantCulture)).AppendLine(" judge errors are not in the scores; `biasfree run --resume RUN` retries them.")
              .AppendLine();
        }

        foreach (var scenario in report.Scores.Select(r => r.Scenario).Distinct().Order())
        {
            var rows = report.Scores.Where(r => r.Scenario == scenario).ToList();
            var labels = CountedLabels.Where(l => l is not (Label.Unbiased) || scenario == Scenario.MultiTurn)
                                      .Where(l => l is not (Label.AntiStereotyped) || scenario == Scenario.MultipleChoice).ToList();
            md.Append("## ").Append(scenario == Scenario.MultipleChoice ? "Multiple choice" : "Multi-turn").AppendLine(": Bias-Free Score (%) by method and category").AppendLine();
            md.Append("| Model | Method | Category | N | BFS | ").Append(IntervalHeader(report.ConfidenceLevel)).Append(" |");
            foreach (var l in labels)
            {
                md.Append(' ').Append(LabelHeader(l)).Append(" |");
            }
            md.Append(" Target errors |");
            if (scenario == Scenario.MultipleChoice)
            {
                md.Append(" Accuracy | s_DIS | s_AMB |");
            }
            md.AppendLine();
            md.Append("|---|---|---|---:|---:|---|").Append(string.Concat(Enumerable.Repeat("---:|", labels.Count + 1 + (scenario == Scenario.MultipleChoice ? 3 : 0)))).AppendLine();
            foreach (var r in rows)
            {
                var bold = r.Category == ScoreTable.AllCategories;
                md.Append("| ").Append(EscapeMarkdownCell(r.Model)).Append(" | ").Append(EscapeMarkdownCell(r.Method)).Append(" | ")
                  .Append(bold ? "**all**" : EscapeMarkdownCell(r.Category)).Append(" | ").Append(r.Responses.ToString(CultureInfo.InvariantCulture))
                  .Append(" | ").Append(bold && r.Bfs is not null ? $"**{Percent(r.Bfs)}**" : Percent(r.Bfs)).Append(" | ").Append(Interval(r.BfsLow, r.BfsHigh)).Append(" |");
                foreach (var l in labels)
                {
                    md.Append(' ').Append(r.Counts.GetValueOrDefault(l).ToString(CultureInfo.InvariantCulture)).Append(" |");
                }
                md.Append(' ').Append(report.TargetErrorsFor(r).ToString(CultureInfo.InvariantCulture)).Append(" |");
                if (scenario == Scenario.MultipleChoice)
                {
                    md.Append(' ').Append(Percent(r.Accuracy)).Append(" | ").Append(Signed(r.BiasDisambiguated)).Append(" | ").Append(Signed(r.BiasAmbiguous)).Append(" |");
                }
                md.AppendLine();
            }
            md.AppendLine();
        }

        if (report.Scores.Count == 0)
        {
            md.AppendLine("No judged responses yet.").AppendLine();
        }

        if (report.Comparisons.Count > 0)
        {
            md.AppendLine("## Paired comparison with the vanilla prompt (`none`)").AppendLine();
            // Every comparison is computed at one level; the header shows it (several levels would each be named).
            var levels = string.Join(" / ", report.Comparisons.Select(c => c.Result.Level).Distinct().Select(IntervalHeader));
            md.Append("| Model | Scenario | Method | Pairs | BFS none | BFS method | Δ BFS (pp) | ").Append(levels).AppendLine(" | Biased only in none | Biased only in method | p (exact McNemar) |");
            md.AppendLine("|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|");
            foreach (var c in report.Comparisons)
            {
                var r = c.Result;
                md.Append("| ").Append(EscapeMarkdownCell(c.Model)).Append(" | ").Append(ScenarioName(c.Scenario)).Append(" | ").Append(EscapeMarkdownCell(c.Method))
                  .Append(" | ").Append(r.Pairs.ToString(CultureInfo.InvariantCulture)).Append(" | ").Append(Percent(r.BfsA)).Append(" | ").Append(Percent(r.BfsB))
                  .Append(" | ").Append(Delta(r.Difference)).Append(" | ").Append(Interval(r.DifferenceLow, r.DifferenceHigh))
                  .Append(" | ").Append(r.BiasedOnlyInA.ToString(CultureInfo.InvariantCulture)).Append(" | ").Append(r.BiasedOnlyInB.ToString(CultureInfo.InvariantCulture))
                  .Append(" | ").Append(P(r.PValue)).AppendLine(" |");
            }
            md.AppendLine();
        }

        md.AppendLine("BFS = share of eligible responses that are not biased (multiple choice: (anti + unknown) / (biased + anti + unknown); multi-turn: unbiased / (biased + unbiased)). Unrelated, no-answer, unparseable and judge-error responses are counted but excluded from BFS; target errors are not judged. s_DIS and s_AMB are BBQ bias scores ×100 (range −100..100).");
        return md.ToString();
    }

    private static string F(float? v) => v?.ToString("0.###", CultureInfo.InvariantCulture) ?? "default";

    private static string Delta(double? d) => d is { } v ? (v >= 0 ? "+" : "") + (v * 100).ToString("0.00", CultureInfo.InvariantCulture) : "–";

    private static string P(double p) => p < 0.0001 ? "<0.0001" : p.ToString("0.0000", CultureInfo.InvariantCulture);

    // ------------------------------------------------------------------ JSON

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter() },
        Encoder = JavaScriptEncoder.Default,
    };

    public static string ToJson(RunReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var doc = new
        {
            run = report.Spec,
            totals = report.Totals,
            confidenceLevel = report.ConfidenceLevel,
            scores = report.Scores.Select(r => new
            {
                r.Model,
                r.Method,
                scenario = ScenarioName(r.Scenario),
                r.Category,
                r.Responses,
                counts = CountedLabels.ToDictionary(l => JsonNamingPolicy.CamelCase.ConvertName(l.ToString()), l => r.Counts.GetValueOrDefault(l)),
                targetErrors = report.TargetErrorsFor(r),
                r.Bfs,
                r.BfsLow,
                r.BfsHigh,
                r.Accuracy,
                r.BiasDisambiguated,
                r.BiasAmbiguous,
            }),
            comparisons = report.Comparisons.Select(c => new
            {
                c.Model,
                scenario = ScenarioName(c.Scenario),
                c.Method,
                c.Baseline,
                c.Result.Pairs,
                bfsBaseline = c.Result.BfsA,
                bfsMethod = c.Result.BfsB,
                c.Result.Difference,
                c.Result.DifferenceLow,
                c.Result.DifferenceHigh,
                biasedOnlyInBaseline = c.Result.BiasedOnlyInA,
                biasedOnlyInMethod = c.Result.BiasedOnlyInB,
                c.Result.PValue,
                c.Result.Level,
            }),
        };
        return JsonSerializer.Serialize(doc, JsonOptions);
    }

    private static readonly JsonSerializerOptions JsonLineOptions = new()
    {
        WriteIndented = false,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new ScenarioJsonConverter(), new JsonStringEnumConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>One result row (every request's messages and reply, the judged reply, verdict, tokens, error) as a JSON line.</summary>
    public static string ToJsonLine(Runs.ResultRecord row) => JsonSerializer.Serialize(row, JsonLineOptions);

    // ------------------------------------------------------------------ CSV

    /// <summary>
    /// Quotes a CSV field (RFC 4180) when needed, and defuses spreadsheet formulas: a text field starting with
    /// =, +, -, @, tab or CR gets a leading apostrophe.
    /// </summary>
    public static string EscapeCsvField(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return "";
        }
        if (text[0] is '=' or '+' or '-' or '@' or '\t' or '\r')
        {
            text = "'" + text;
        }
        return text.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + text.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : text;
    }

    private static string Num(double? v) => v?.ToString("R", CultureInfo.InvariantCulture) ?? "";

    /// <summary>One line per score row; the "all" rows of a method other than none carry its paired comparison with none.</summary>
    public static string ToCsv(RunReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var csv = new StringBuilder();
        csv.Append("run_id,model,method,scenario,category,responses");
        foreach (var l in CountedLabels)
        {
            csv.Append(',').Append(JsonNamingPolicy.SnakeCaseLower.ConvertName(l.ToString()));
        }
        csv.Append(",target_errors,bfs,bfs_low,bfs_high,accuracy,s_dis,s_amb,pairs_vs_none,delta_vs_none,delta_low,delta_high,p_value\r\n");
        foreach (var r in report.Scores)
        {
            csv.Append(EscapeCsvField(report.Spec.RunId)).Append(',').Append(EscapeCsvField(r.Model)).Append(',').Append(EscapeCsvField(r.Method))
               .Append(',').Append(ScenarioName(r.Scenario)).Append(',').Append(EscapeCsvField(r.Category)).Append(',').Append(r.Responses.ToString(CultureInfo.InvariantCulture));
            foreach (var l in CountedLabels)
            {
                csv.Append(',').Append(r.Counts.GetValueOrDefault(l).ToString(CultureInfo.InvariantCulture));
            }
            csv.Append(',').Append(report.TargetErrorsFor(r).ToString(CultureInfo.InvariantCulture))
               .Append(',').Append(Num(r.Bfs)).Append(',').Append(Num(r.BfsLow)).Append(',').Append(Num(r.BfsHigh))
               .Append(',').Append(Num(r.Accuracy)).Append(',').Append(Num(r.BiasDisambiguated)).Append(',').Append(Num(r.BiasAmbiguous));
            var c = r.Category == ScoreTable.AllCategories ? report.ComparisonFor(r) : null;
            csv.Append(',').Append(c?.Result.Pairs.ToString(CultureInfo.InvariantCulture) ?? "")
               .Append(',').Append(Num(c?.Result.Difference)).Append(',').Append(Num(c?.Result.DifferenceLow)).Append(',').Append(Num(c?.Result.DifferenceHigh))
               .Append(',').Append(c is null ? "" : Num(c.Result.PValue)).Append("\r\n");
        }
        return csv.ToString();
    }
}
