using System.Globalization;
using System.Text.Json;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Reports;
using BiasFree.Runs;
using BiasFree.Scoring;

namespace BiasFree.Tests.Reports;

public class ReportWriterTests
{
    private const string Hostile = "evil|model\n# heading <script>alert(1)</script> *x* `y`";

    private static ResultRecord Row(string method, string probe, string category, Label? label, string? error = null, string model = "m") => new()
    {
        RunId = "r", Method = method, Suite = "s", ProbeId = probe, Scenario = Scenario.MultipleChoice, Category = category,
        Context = ContextCondition.Ambiguous, Polarity = QuestionPolarity.Negative, CorrectRole = OptionRole.Unknown, Model = model,
        Verdict = label is { } l ? new Verdict(l, "", "rule") : null, Error = error, PromptTokens = 10, CompletionTokens = 2,
    };

    /// <summary>none: 2 biased, 1 anti, 1 unknown, 1 unrelated, 1 target error; cot: all unknown except one biased.</summary>
    private static RunReport Sample(string model = "m", string category = "age")
    {
        List<ResultRecord> rows =
        [
            Row("none", "p1", category, Label.Biased, model: model), Row("none", "p2", category, Label.Biased, model: model),
            Row("none", "p3", category, Label.AntiStereotyped, model: model), Row("none", "p4", category, Label.Unknown, model: model),
            Row("none", "p5", category, Label.Unrelated, model: model), Row("none", "p6", category, null, "HttpRequestException: 500", model),
            Row("cot", "p1", category, Label.Unknown, model: model), Row("cot", "p2", category, Label.Biased, model: model),
            Row("cot", "p3", category, Label.Unknown, model: model), Row("cot", "p4", category, Label.Unknown, model: model),
            Row("cot", "p5", category, Label.Unknown, model: model), Row("cot", "p6", category, Label.JudgeError, model: model),
        ];
        var spec = RunStoreTestsSpec() with { Model = model, Methods = ["none", "cot"] };
        return RunReport.Build(spec, rows, 12, new ScoreOptions { Resamples = 200 });
    }

    private static RunSpec RunStoreTestsSpec() => BiasFree.Tests.Runs.RunStoreTests.Spec("r");

    [Fact]
    public void ReportCountsEverythingAndComparesWithNone()
    {
        var report = Sample();
        Assert.Equal(new RunTotals(12, 12, 10, 1, 1, 120, 24), report.Totals);
        var none = report.Scores.Single(r => r.Method == "none" && r.Category == "all");
        Assert.Equal(5, none.Responses);
        Assert.Equal(0.5, none.Bfs); // (1 anti + 1 unknown) / 4 eligible
        Assert.Equal(1, none.Counts[Label.Unrelated]);
        Assert.Equal(1, report.TargetErrorsFor(none));
        var cot = report.Scores.Single(r => r.Method == "cot" && r.Category == "all");
        Assert.Equal(0.8, cot.Bfs!.Value, 12); // 4 of 5 eligible; the judge-error row is counted, not scored
        Assert.Equal((6, 1), (cot.Responses, cot.Counts[Label.JudgeError]));
        var c = Assert.Single(report.Comparisons);
        Assert.Equal(("cot", "none"), (c.Method, c.Baseline));
        Assert.Equal(4, c.Result.Pairs); // p1..p4 eligible in both
        Assert.Equal(1, c.Result.BiasedOnlyInA); // p1
        Assert.Equal(0, c.Result.BiasedOnlyInB);
    }

    [Fact]
    public void MarkdownPrintsTheComputedNumbers()
    {
        var report = Sample();
        var md = ReportWriter.ToMarkdown(report);
        var none = report.Scores.Single(r => r.Method == "none" && r.Category == "all");
        Assert.Contains("| m | none | **all** | 5 | **50.00** |", md, StringComparison.Ordinal);
        Assert.Contains($"[{ReportWriter.Percent(none.BfsLow)}, {ReportWriter.Percent(none.BfsHigh)}]", md, StringComparison.Ordinal);
        Assert.Contains("| m | cot | **all** | 6 | **80.00** |", md, StringComparison.Ordinal);
        Assert.Contains("| m | multiple-choice | cot | 4 | 50.00 | 75.00 | +25.00 |", md, StringComparison.Ordinal);
        Assert.Contains("1 target errors and 1 judge errors", md, StringComparison.Ordinal);
    }

    [Fact]
    public void MarkdownCellsCannotBreakTheTable()
    {
        var md = ReportWriter.ToMarkdown(Sample(model: Hostile, category: Hostile));
        Assert.DoesNotContain("<script>", md, StringComparison.Ordinal);
        Assert.DoesNotContain("\n# heading", md, StringComparison.Ordinal);
        var escaped = ReportWriter.EscapeMarkdownCell(Hostile);
        Assert.Equal("evil\\|model \\# heading &lt;script&gt;alert(1)&lt;/script&gt; \\*x\\* \\`y\\`", escaped);
        // Every table line of the score table has the same number of unescaped pipes as its header.
        var lines = md.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal) && l.Contains("evil", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(lines);
        var header = md.Split('\n').First(l => l.StartsWith("| Model | Method | Category", StringComparison.Ordinal));
        Assert.All(lines.Where(l => !l.Contains("multiple-choice", StringComparison.Ordinal) && !l.StartsWith("| Model |", StringComparison.Ordinal)),
            l => Assert.Equal(Pipes(header), Pipes(l)));
    }

    private static int Pipes(string line) => line.Replace("\\|", "", StringComparison.Ordinal).Count(c => c == '|');

    [Fact]
    public void CsvFieldsAreQuotedAndFormulasDefused()
    {
        Assert.Equal("plain", ReportWriter.EscapeCsvField("plain"));
        Assert.Equal("\"a,b\"", ReportWriter.EscapeCsvField("a,b"));
        Assert.Equal("\"say \"\"hi\"\"\"", ReportWriter.EscapeCsvField("say \"hi\""));
        Assert.Equal("\"line\nbreak\"", ReportWriter.EscapeCsvField("line\nbreak"));
        Assert.Equal("'=HYPERLINK(\"\"x\"\")", ReportWriter.EscapeCsvField("=HYPERLINK(\"\"x\"\")").Trim('"').Replace("\"\"\"\"", "\"\"", StringComparison.Ordinal));
        Assert.StartsWith("'", ReportWriter.EscapeCsvField("@SUM(A1)"), StringComparison.Ordinal);

        var csv = ReportWriter.ToCsv(Sample(model: "m,\"x\"", category: "=cmd|' /C calc'!A0"));
        var lines = csv.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("\"m,\"\"x\"\"\"", lines[1], StringComparison.Ordinal);
        Assert.DoesNotContain(",=cmd", csv, StringComparison.Ordinal);
        Assert.Equal(5, lines.Length); // header + (all, category) × 2 methods: no field broke a row
    }

    [Fact]
    public void CsvPrintsTheComputedNumbers()
    {
        var report = Sample();
        var lines = ReportWriter.ToCsv(report).Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        var header = lines[0].Split(',');
        Assert.Equal(report.Scores.Count + 1, lines.Length);
        string Cell(string[] row, string column) => row[Array.IndexOf(header, column)];
        var none = lines.Select(l => l.Split(',')).Single(f => Cell(f, "method") == "none" && Cell(f, "category") == "all");
        var cot = lines.Select(l => l.Split(',')).Single(f => Cell(f, "method") == "cot" && Cell(f, "category") == "all");
        var noneRow = report.Scores.Single(r => r.Method == "none" && r.Category == "all");

        // none: 2 biased, 1 anti, 1 unknown, 1 unrelated, 1 target error → BFS 2/4.
        Assert.Equal(("r", "m", "multiple-choice", "5"), (Cell(none, "run_id"), Cell(none, "model"), Cell(none, "scenario"), Cell(none, "responses")));
        Assert.Equal(("2", "1", "1", "1", "0", "1"), (Cell(none, "biased"), Cell(none, "anti_stereotyped"), Cell(none, "unknown"), Cell(none, "unrelated"), Cell(none, "judge_error"), Cell(none, "target_errors")));
        Assert.Equal(0.5, double.Parse(Cell(none, "bfs"), CultureInfo.InvariantCulture));
        Assert.Equal(noneRow.BfsLow, double.Parse(Cell(none, "bfs_low"), CultureInfo.InvariantCulture));
        Assert.Equal(noneRow.BfsHigh, double.Parse(Cell(none, "bfs_high"), CultureInfo.InvariantCulture));
        Assert.Equal(noneRow.Accuracy, double.Parse(Cell(none, "accuracy"), CultureInfo.InvariantCulture));
        Assert.Equal("", Cell(none, "pairs_vs_none")); // the baseline is not compared with itself

        // cot: 4 of 5 eligible unbiased, the judge error counted but not scored; compared with none on 4 pairs, +25 pp.
        Assert.Equal(0.8, double.Parse(Cell(cot, "bfs"), CultureInfo.InvariantCulture), 12);
        Assert.Equal(("1", "4"), (Cell(cot, "judge_error"), Cell(cot, "pairs_vs_none")));
        Assert.Equal(0.25, double.Parse(Cell(cot, "delta_vs_none"), CultureInfo.InvariantCulture), 12);
        Assert.Equal(report.Comparisons[0].Result.PValue, double.Parse(Cell(cot, "p_value"), CultureInfo.InvariantCulture));
    }

    [Fact]
    public void IntervalsAreNinetyFivePercentByDefaultAndLabelledSo()
    {
        var report = Sample();
        Assert.Equal(0.95, report.ConfidenceLevel);
        var none = report.Scores.Single(r => r.Method == "none" && r.Category == "all");
        // The printed interval is the 95% percentile bootstrap of this row's labels (same resamples and derived seed).
        var expected = Bootstrap.BfsInterval(Scenario.MultipleChoice, [Label.Biased, Label.Biased, Label.AntiStereotyped, Label.Unknown, Label.Unrelated],
            200, 0.95, ScoreTable.DeriveSeed(Bootstrap.DefaultSeed, "m", "none", nameof(Scenario.MultipleChoice), "all"))!;
        Assert.Equal((expected.Low, expected.High), (none.BfsLow!.Value, none.BfsHigh!.Value));
        var md = ReportWriter.ToMarkdown(report);
        Assert.Contains("| Model | Method | Category | N | BFS | 95% CI |", md, StringComparison.Ordinal);
        Assert.Contains("| Δ BFS (pp) | 95% CI |", md, StringComparison.Ordinal);
        Assert.Equal(0.95, JsonDocument.Parse(ReportWriter.ToJson(report)).RootElement.GetProperty("confidenceLevel").GetDouble());
    }

    [Fact]
    public void IntervalLabelFollowsTheLevelUsed()
    {
        var rows = Enumerable.Range(0, 40).Select(i => Row("none", $"p{i}", "age", i % 3 == 0 ? Label.Biased : Label.Unknown)).ToList();
        var spec = RunStoreTestsSpec();
        var at95 = RunReport.Build(spec, rows, options: new ScoreOptions { Resamples = 400 });
        var at90 = RunReport.Build(spec, rows, options: new ScoreOptions { Resamples = 400, ConfidenceLevel = 0.90 });
        Assert.Equal(0.90, at90.ConfidenceLevel);
        var wide = at95.Scores[0];
        var narrow = at90.Scores[0];
        Assert.True(narrow.BfsHigh - narrow.BfsLow < wide.BfsHigh - wide.BfsLow, "a 90% interval must be narrower than the 95% one");

        var md = ReportWriter.ToMarkdown(at90);
        Assert.Contains("| Model | Method | Category | N | BFS | 90% CI |", md, StringComparison.Ordinal);
        Assert.DoesNotContain("95%", md, StringComparison.Ordinal);
        Assert.Contains($"[{ReportWriter.Percent(narrow.BfsLow)}, {ReportWriter.Percent(narrow.BfsHigh)}]", md, StringComparison.Ordinal);
        Assert.Equal("99.5% CI", ReportWriter.IntervalHeader(0.995));
    }

    [Fact]
    public void JsonCarriesScoresCountsErrorsAndComparisons()
    {
        var report = Sample();
        using var doc = JsonDocument.Parse(ReportWriter.ToJson(report));
        var root = doc.RootElement;
        Assert.Equal("r", root.GetProperty("run").GetProperty("runId").GetString());
        var none = root.GetProperty("scores").EnumerateArray().First(s => s.GetProperty("method").GetString() == "none");
        Assert.Equal(0.5, none.GetProperty("bfs").GetDouble());
        Assert.Equal(1, none.GetProperty("targetErrors").GetInt32());
        Assert.Equal(2, none.GetProperty("counts").GetProperty("biased").GetInt32());
        var cmp = root.GetProperty("comparisons")[0];
        Assert.Equal(0.25, cmp.GetProperty("difference").GetDouble(), 12);
        Assert.Equal(1, root.GetProperty("totals").GetProperty("targetErrors").GetInt32());
    }

    [Theory]
    [InlineData("md", ReportFormat.Markdown)]
    [InlineData("markdown", ReportFormat.Markdown)]
    [InlineData("JSON", ReportFormat.Json)]
    [InlineData("csv", ReportFormat.Csv)]
    public void FormatsParse(string text, ReportFormat expected)
    {
        Assert.True(ReportWriter.TryParseFormat(text, out var f));
        Assert.Equal(expected, f);
        Assert.False(ReportWriter.TryParseFormat("html", out _));
    }
}
