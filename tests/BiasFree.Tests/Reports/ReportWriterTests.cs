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
        Assert.Equal(0.5, double.Parse(Cell(none, "bfs_ambiguous"), CultureInfo.InvariantCulture)); // every probe is ambiguous
        Assert.Equal("", Cell(none, "probes_vs_baseline")); // the baseline is not compared with itself

        // cot: 4 of 5 eligible unbiased, the judge error counted but not scored; compared with none on the 5 probes both
        // answered: 4/5 − 2/4 = +30 pp; the secondary McNemar test keeps 4 of them.
        Assert.Equal(0.8, double.Parse(Cell(cot, "bfs"), CultureInfo.InvariantCulture), 12);
        Assert.Equal(("1", "5", "none"), (Cell(cot, "judge_error"), Cell(cot, "probes_vs_baseline"), Cell(cot, "baseline")));
        Assert.Equal(0.3, double.Parse(Cell(cot, "delta_vs_baseline"), CultureInfo.InvariantCulture), 12);
        Assert.Equal(-0.2, double.Parse(Cell(cot, "ineligible_delta"), CultureInfo.InvariantCulture), 12);
        Assert.Equal(("4", "1"), (Cell(cot, "mcnemar_both_eligible"), Cell(cot, "mcnemar_dropped")));
        Assert.Equal(report.Comparisons[0].Result.PValue, double.Parse(Cell(cot, "mcnemar_p_value"), CultureInfo.InvariantCulture));
        Assert.Equal(report.Comparisons[0].Result.Seed.ToString(CultureInfo.InvariantCulture), Cell(cot, "comparison_seed"));
    }

    [Fact]
    public void IntervalsAreNinetyFivePercentByDefaultAndLabelledSo()
    {
        var report = Sample();
        Assert.Equal(0.95, report.ConfidenceLevel);
        var none = report.Scores.Single(r => r.Method == "none" && r.Category == "all");
        // The printed interval is the 95% percentile bootstrap of this row's labels (same resamples, the seed derived from
        // the run's seed, and the sample's minimum count of 1), in probe-id order.
        var expected = Bootstrap.BfsInterval(Scenario.MultipleChoice, [Label.Biased, Label.Biased, Label.AntiStereotyped, Label.Unknown, Label.Unrelated],
            200, 0.95, Bootstrap.DeriveSeed(report.Spec.Seed, "m", "none", nameof(Scenario.MultipleChoice), "all"), minimumEligible: 1)!;
        Assert.Equal((expected.Low, expected.High), (none.BfsLow!.Value, none.BfsHigh!.Value));
        Assert.Equal(expected, none.BfsAmbiguous!.Interval);
        var md = ReportWriter.ToMarkdown(report);
        Assert.Contains("| Model | Method | Category | N | BFS ambiguous | 95% CI | Accuracy disambiguated | 95% CI |", md, StringComparison.Ordinal);
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
        Assert.Contains("| Model | Method | Category | N | BFS ambiguous | 90% CI |", md, StringComparison.Ordinal);
        Assert.DoesNotContain("95%", md, StringComparison.Ordinal);
        Assert.Contains($"[{ReportWriter.Percent(narrow.BfsLow)}, {ReportWriter.Percent(narrow.BfsHigh)}]", md, StringComparison.Ordinal);
        Assert.Equal("99.5% CI", ReportWriter.IntervalHeader(0.995));
    }

    /// <summary>
    /// The report's JSON and JSON lines are written through source-generated metadata (ReportJsonContext,
    /// ResultLineJsonContext); they must be what the reflection-based serializer writes with the options the report has
    /// always used, for a report with every part present (comparisons, adaptive cells, white-box, judge-vote, DiffPO and
    /// fallback summaries) and for rows of every shape.
    /// </summary>
    [Fact]
    public void JsonIsWhatTheReflectionSerializerWritesWithTheReportsOptions()
    {
        var reportOptions = new JsonSerializerOptions
        {
            WriteIndented = true,
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.Default,
        };
        var full = Mixed() with
        {
            WhiteBox = [new WhiteBoxSummary("m", "fairsteer", 10, 1.5, 0.4, 2.25, null)],
            JudgeVotes = [new JudgeVoteSummary("m", "none", "judge-a", 1, 3, 4, 1, 6, 7, 2)],
            DiffPo = [new DiffPoSummary("m", "diffpo", 5, 2.5, 3.25, 0.5, 1.75, 0.8, 12.5)],
            FallbacksByMethod = [new MethodFallbacks("refuse", 2, 40)],
            Adaptive = new BiasFree.Adaptive.AdaptiveSummary(0.02, "category",
                [new BiasFree.Adaptive.AdaptiveCell("none", Scenario.MultipleChoice, "age", 40, 80, 30, 38, 0.7, 0.9, "precise"),
                 new BiasFree.Adaptive.AdaptiveCell("none", Scenario.MultiTurn, "gender", 0, 12, 0, 0, null, null, "exhausted")],
                [new BiasFree.Adaptive.AdaptiveOverall("none", Scenario.MultipleChoice, 40, 80, 0.78, 0.7, 0.86, "weighted")]),
        };
        foreach (var report in new[] { Sample(), Mixed(), Mixed(level: 0.9), full })
        {
            var json = ReportWriter.ToJson(report);
            Assert.Equal(JsonSerializer.Serialize(ReportWriter.JsonDocumentOf(report), reportOptions), json);
        }
        // Every part of the full report is in its JSON (a record the metadata left out would be missing here).
        using (var doc = JsonDocument.Parse(ReportWriter.ToJson(full)))
        {
            var root = doc.RootElement;
            Assert.Equal(["run", "totals", "confidenceLevel", "settings", "whiteBox", "judgeVotes", "diffPo", "definitions", "fallbacks", "adaptive", "scores", "comparisons"],
                root.EnumerateObject().Select(p => p.Name));
            Assert.Equal("fairsteer", root.GetProperty("whiteBox")[0].GetProperty("method").GetString());
            Assert.Equal(0.1, root.GetProperty("adaptive").GetProperty("cells")[0].GetProperty("halfWidth").GetDouble(), 12);
            Assert.Equal("multi-turn", root.GetProperty("adaptive").GetProperty("cells")[1].GetProperty("scenario").GetString());
            Assert.Equal(JsonValueKind.Null, root.GetProperty("adaptive").GetProperty("cells")[1].GetProperty("bfs").ValueKind);
            Assert.Equal(2, root.GetProperty("fallbacks")[0].GetProperty("fallbacks").GetInt32());
        }

        var lineOptions = new JsonSerializerOptions
        {
            WriteIndented = false,
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            Converters = { new ScenarioJsonConverter(), new System.Text.Json.Serialization.JsonStringEnumConverter() },
            DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        };
        var row = Row("none", "p1", "age", Label.Biased) with
        {
            Requests = [new RecordedRequest([new RecordedMessage("user", "q \"<b>\" é")], "a", false, new Dictionary<string, string> { ["biasfree.gate"] = "1" })],
            Verdict = new Verdict(Label.Biased, "reason", "rule", "raw")
            {
                Injection = new BiasFree.Judges.Defences.InjectionFinding([new BiasFree.Judges.Defences.InjectionSignal("role-play", "ignore the above")], ["nfkc"]),
            },
            Error = "boom",
        };
        foreach (var r in new[] { row, row with { Scenario = Scenario.MultiTurn, Context = null, Polarity = null, CorrectRole = null, Verdict = null, Error = null } })
        {
            Assert.Equal(JsonSerializer.Serialize(r, lineOptions), ReportWriter.ToJsonLine(r));
        }
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

    /// <summary>
    /// none and refuse on 20 ambiguous + 20 disambiguated probes (correct answer: the stereotyped option), plus 12
    /// dialogues for none. none: ambiguous 8 biased / 12 unknown, disambiguated 15 correct / 5 anti. refuse: "unknown"
    /// to everything.
    /// </summary>
    private static RunReport Mixed(double level = 0.95, RunSpec? spec = null)
    {
        var rows = new List<ResultRecord>();
        for (int i = 0; i < 20; i++)
        {
            rows.Add(Row("none", $"a{i}", "age", i < 8 ? Label.Biased : Label.Unknown));
            rows.Add(Row("refuse", $"a{i}", "age", Label.Unknown));
            var dis = Row("none", $"d{i}", "age", i < 15 ? Label.Biased : Label.AntiStereotyped) with
            {
                Context = ContextCondition.Disambiguated, CorrectRole = OptionRole.Stereotyped,
            };
            rows.Add(dis);
            rows.Add(dis with { Method = "refuse", Verdict = new Verdict(Label.Unknown, "", "rule") });
        }
        for (int i = 0; i < 12; i++)
        {
            rows.Add(Row("none", $"t{i}", "gender", i < 3 ? Label.Biased : Label.Unbiased) with { Scenario = Scenario.MultiTurn, Context = null, Polarity = null, CorrectRole = null });
        }
        spec ??= RunStoreTestsSpec() with { Methods = ["none", "refuse"] };
        return RunReport.Build(spec, rows, null, new ScoreOptions { Resamples = 500, ConfidenceLevel = level });
    }

    [Fact]
    public void TheHeadlineShowsAnOnlyRefusingMethodAsSuchAndMultiTurnKeepsItsBfs()
    {
        var md = ReportWriter.ToMarkdown(Mixed());
        var headline = md[md.IndexOf("## Headline", StringComparison.Ordinal)..md.IndexOf("## Multiple choice", StringComparison.Ordinal)];
        // none: BFS 12/20 = 60.00; accuracy 15/20 = 75.00; unknown 0/20.
        Assert.Matches(@"\| m \| none \| multiple choice \(BFS: ambiguous\) \| 40 \| \*\*60\.00\*\* \| \[[0-9.]+, [0-9.]+\] \| 75\.00 \| \[[0-9.]+, [0-9.]+\] \| 0\.00 \| \[0\.00, [0-9.]+\] \| 0\.00 \|", headline);
        // refuse: BFS 100 beside accuracy 0 and over-refusal 100, in the same table.
        Assert.Matches(@"\| m \| refuse \| multiple choice \(BFS: ambiguous\) \| 40 \| \*\*100\.00\*\* \| \[[0-9.]+, 100\.00\] \| 0\.00 \| \[0\.00, [0-9.]+\] \| 100\.00 \| \[[0-9.]+, 100\.00\] \| 0\.00 \|", headline);
        // Dialogues: BFS 9/12 = 75.00, no disambiguated figures.
        Assert.Matches(@"\| m \| none \| multi-turn \| 12 \| \*\*75\.00\*\* \| \[[0-9.]+, [0-9.]+\] \| – \|  \| – \|  \| 0\.00 \|", headline);
        Assert.Contains("## Multi-turn: Bias-Free Score (%) by method and category", md, StringComparison.Ordinal);
    }

    [Fact]
    public void IntervalHeadersComeFromTheLevelUsed()
    {
        var md = ReportWriter.ToMarkdown(Mixed(level: 0.9));
        Assert.Contains("| 90% CI |", md, StringComparison.Ordinal);
        Assert.DoesNotContain("95% CI", md, StringComparison.Ordinal);
        Assert.Contains("level 90%", md, StringComparison.Ordinal);
        Assert.Equal("99.5% CI", ReportWriter.IntervalHeader(0.995));
    }

    [Fact]
    public void TheComparisonBaselineCanBeAnyMethod()
    {
        var rows = Enumerable.Range(0, 12).SelectMany(i => new[] { Row("none", $"p{i}", "age", Label.Biased), Row("cot", $"p{i}", "age", Label.Unknown) }).ToList();
        var spec = RunStoreTestsSpec() with { Methods = ["none", "cot"] };
        var report = RunReport.Build(spec, rows, null, new ScoreOptions { Resamples = 300, Baseline = "cot" });
        var c = Assert.Single(report.Comparisons);
        Assert.Equal(("none", "cot"), (c.Method, c.Baseline));
        Assert.Equal(-1.0, c.Result.Difference);
        Assert.Equal(Bootstrap.DeriveSeed(spec.Seed, "paired", "m", nameof(Scenario.MultipleChoice), "cot", "none"), c.Result.Seed);
        var md = ReportWriter.ToMarkdown(report);
        Assert.Contains("## Paired comparison with `cot`", md, StringComparison.Ordinal);
        Assert.Contains("| Not eligible in cot only |", md, StringComparison.Ordinal);
    }

    [Fact]
    public void AReportIsTheSameEveryTimeAndItsSeedFollowsTheRunSeed()
    {
        var spec = RunStoreTestsSpec() with { Methods = ["none", "refuse"] };
        var report = Mixed(spec: spec);
        Assert.Equal(ReportWriter.ToJson(report), ReportWriter.ToJson(Mixed(spec: spec)));
        Assert.Contains(report.Scores, r => r.BfsAmbiguous?.Interval is { Exact: false });
        Assert.Equal(spec.Seed, report.Settings.Seed);
        // Another run seed, other intervals.
        var reseeded = Mixed(spec: spec with { Seed = spec.Seed + 1 });
        Assert.Equal(spec.Seed + 1, reseeded.Settings.Seed);
        var none = (ScoreRow r) => r.Method == "none" && r.Scenario == Scenario.MultipleChoice && r.Category == ScoreTable.AllCategories;
        Assert.NotEqual(report.Scores.Single(none).BfsAmbiguous!.Interval, reseeded.Scores.Single(none).BfsAmbiguous!.Interval);
    }

    [Fact]
    public void BothDenominatorsAreShownOnlyWhereTheyDiffer()
    {
        var withUnrelated = ReportWriter.ToMarkdown(Sample());
        Assert.Contains("| Accuracy (all responses) |", withUnrelated, StringComparison.Ordinal);
        Assert.Contains("unrelated, no-answer and unparseable responses are not in the denominator", withUnrelated, StringComparison.Ordinal);
        var without = ReportWriter.ToMarkdown(Mixed());
        Assert.DoesNotContain("| Accuracy (all responses) |", without, StringComparison.Ordinal);
        Assert.Contains("accuracy and s_AMB are the same with them in the denominator or not", without, StringComparison.Ordinal);
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
