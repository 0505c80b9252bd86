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
        // Tiny groups: the minimum count for an interval is lowered so that intervals appear.
        return RunReport.Build(spec, rows, 12, new ScoreOptions { Resamples = 200, MinimumCount = 1 });
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
        // p1..p5 are judged for both (p6 failed for none); the headline Δ is 4/5 (cot) − 2/4 (none) = +0.30.
        Assert.Equal((5, 0, 1), (c.Result.Probes, c.Result.OnlyInA, c.Result.OnlyInB));
        Assert.Equal(0.3, c.Result.Difference!.Value, 12);
        Assert.Equal(0.2, c.Result.IneligibleShareA); // p5 unrelated for none
        // The secondary McNemar test drops p5 and sees 2/4 vs 3/4.
        Assert.Equal((4, 1), (c.Result.BothEligible, c.Result.DroppedFromMcNemar));
        Assert.Equal(1, c.Result.BiasedOnlyInA); // p1
        Assert.Equal(0, c.Result.BiasedOnlyInB);
        Assert.Equal(0.75, c.Result.BothEligibleBfsB);
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
        Assert.Contains("| m | multiple-choice | not disambiguated | cot | 5 | 50.00 | 80.00 | +30.00 |", md, StringComparison.Ordinal);
        Assert.Contains("| m | multiple-choice | cot | 4 | 1 | 1 | 0 | 0 | 50.00 | 75.00 | 1 | 0 | 1.0000 |", md, StringComparison.Ordinal);
        var c = report.Comparisons[0].Result;
        Assert.Contains($"| {ReportWriter.Percent(c.IneligibleShareA)} | {ReportWriter.Percent(c.IneligibleShareB)} | -20.00 |", md, StringComparison.Ordinal);
        Assert.Contains($"| {c.Seed} |", md, StringComparison.Ordinal);
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
        // Every line of every table has as many unescaped pipes as that table's header, the hostile rows included.
        var tables = Tables(md);
        Assert.True(tables.Count >= 4, md); // headline, multiple choice, BBQ scores, comparison, McNemar
        Assert.All(tables, t => Assert.All(t, l => Assert.Equal(Pipes(t[0]), Pipes(l))));
        Assert.True(tables.Sum(t => t.Count(l => l.Contains("evil", StringComparison.Ordinal))) >= 8);
    }

    /// <summary>The Markdown tables of a report: runs of consecutive lines that start with a pipe.</summary>
    private static List<List<string>> Tables(string md)
    {
        var tables = new List<List<string>>();
        List<string>? current = null;
        foreach (var line in md.Split('\n'))
        {
            if (line.StartsWith('|'))
            {
                (current ??= []).Add(line);
            }
            else if (current is not null)
            {
                tables.Add(current);
                current = null;
            }
        }
        if (current is not null) tables.Add(current);
        return tables;
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
        var header = lines[0].Split(',');
        var bfsColumn = Array.IndexOf(header, "bfs");
        Assert.True(bfsColumn > 0);
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
        Assert.Equal(0.3, cmp.GetProperty("difference").GetDouble(), 12);
        Assert.Equal(report.Comparisons[0].Result.Seed, cmp.GetProperty("seed").GetInt32());
        Assert.Equal(1, cmp.GetProperty("secondaryMcNemar").GetProperty("dropped").GetInt32());
        Assert.Equal(1, cmp.GetProperty("ineligibleLabelsBaseline").GetProperty("unrelated").GetInt32());
        Assert.Equal(200, root.GetProperty("settings").GetProperty("resamples").GetInt32());
        Assert.Contains("not in the denominator", root.GetProperty("definitions").GetProperty("denominators").GetString(), StringComparison.Ordinal);
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
