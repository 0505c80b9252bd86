using System.Globalization;
using System.Text.Json;
using BiasFree.Adaptive;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Reports;
using BiasFree.Runs;
using BiasFree.Scoring;

namespace BiasFree.Tests.Reports;

/// <summary>
/// Reports are aggregated from a stream of rows (issue #11). The golden files under Reports/Golden were written by the
/// implementation before streaming (RunReport.Build over a list of every row) for two fixed runs that use every part of a
/// report: several methods, two suites (multiple choice and multi-turn), target errors, judge errors, fallbacks, judge
/// panels with ties, white-box and DiffPO details, adaptive cells. Every format must stay byte-identical, whether the
/// report is built from the store (streamed) or from rows in memory.
/// </summary>
public class ReportStreamingTests
{
    /// <summary>Set to a folder to rewrite the golden files there (only when the report is meant to change).</summary>
    private const string WriteGoldenVariable = "BIASFREE_WRITE_GOLDEN";

    private static readonly string[] Methods = ["none", "self-awareness", "fairsteer", "diffpo"];

    internal static RunSpec Spec(bool adaptive) => RunStoreTestsSpec() with
    {
        RunId = adaptive ? "golden-adaptive" : "golden",
        Created = new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero),
        Seed = 7,
        Suites = ["bbq", "fairmt"],
        Methods = Methods,
        Adaptive = adaptive
            ? new AdaptiveSpec(0.05)
            {
                Pool =
                [
                    new AdaptivePool("multiple-choice", "age", 80, 40), new AdaptivePool("multiple-choice", "gender-identity", 80, 40),
                    new AdaptivePool("multiple-choice", "race-ethnicity", 80, 40), new AdaptivePool("multi-turn", "age", 40, 40),
                    new AdaptivePool("multi-turn", "religion", 40, 40),
                ],
            }
            : null,
    };

    private static RunSpec RunStoreTestsSpec() => BiasFree.Tests.Runs.RunStoreTests.Spec("golden");

    private static double U(params object[] parts) =>
        (StableRandom.For(11, string.Join("|", parts)).NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>The fixed rows: 240 multiple-choice and 80 multi-turn probes per method, labels drawn from a seeded hash.</summary>
    internal static List<ResultRecord> Rows(string runId)
    {
        var rows = new List<ResultRecord>();
        string[] mc = ["age", "gender-identity", "race-ethnicity"];
        string[] mt = ["age", "religion"];
        var started = new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);
        foreach (var method in Methods)
        {
            for (var i = 0; i < 320; i++)
            {
                var multiTurn = i >= 240;
                // Mixed-case and non-ASCII ids: the report orders by ordinal comparison, whatever order the store returns.
                var id = i % 37 == 0 ? $"Q{i:D3}" : i % 53 == 0 ? $"ü{i:D3}" : $"p{i:D3}";
                var category = multiTurn ? mt[i % 2] : mc[i % 3];
                var context = multiTurn ? (ContextCondition?)null : i % 2 == 0 ? ContextCondition.Ambiguous : ContextCondition.Disambiguated;
                var u = U(method, id);
                Label label = multiTurn
                    ? u < 0.3 ? Label.Biased : u < 0.85 ? Label.Unbiased : u < 0.95 ? Label.Unrelated : Label.JudgeError
                    : u < 0.25 ? Label.Biased : u < 0.45 ? Label.AntiStereotyped : u < 0.85 ? Label.Unknown : u < 0.92 ? Label.Unrelated : u < 0.96 ? Label.NoAnswer : Label.JudgeError;
                var error = U("error", method, id) < 0.04 ? "HttpRequestException: 503 (Service Unavailable)" : null;
                var panel = i % 5 == 0;
                var tie = panel && i % 3 == 0;
                var votes = panel
                    ? JsonSerializer.Serialize(new[]
                    {
                        new { judge = "rel", label = (U("v1", method, id) < 0.9 ? Label.Unbiased : Label.Unrelated).ToString(), reason = "r", raw = "x" },
                        new { judge = "a", label = label.ToString(), reason = "r", raw = "y" },
                        new { judge = "b", label = (U("v3", method, id) < 0.5 ? Label.Biased : Label.Unbiased).ToString(), reason = "r", raw = "z" },
                    })
                    : $"raw <{id}> \"quoted\"";
                Dictionary<string, string>? details = method switch
                {
                    "fairsteer" when i % 4 != 3 => new()
                    {
                        [WhiteBoxSummary.GateFiringsKey] = ((int)(U("g", id) * 5)).ToString(CultureInfo.InvariantCulture),
                        [WhiteBoxSummary.GateStepsKey] = (10 + i % 7).ToString(CultureInfo.InvariantCulture),
                    },
                    "diffpo" when i % 3 != 2 => new()
                    {
                        [DiffPoSummary.IterationsKey] = (1 + i % 4).ToString(CultureInfo.InvariantCulture),
                        [DiffPoSummary.ChangedTokensKey] = (i % 6).ToString(CultureInfo.InvariantCulture),
                        [DiffPoSummary.FrozenTokensKey] = (U("f", id) * 3).ToString("R", CultureInfo.InvariantCulture),
                        [DiffPoSummary.ConvergedKey] = i % 5 == 0 ? "False" : "True",
                        [DiffPoSummary.OriginalTokensKey] = (20 + i % 11).ToString(CultureInfo.InvariantCulture),
                    },
                    _ => null,
                };
                var requests = new List<RecordedRequest>
                {
                    new([new RecordedMessage("system", "You are a helpful assistant."), new RecordedMessage("user", $"Question {id} <b>&amp;</b>")],
                        error is null ? $"Answer to {id}" : null, Cached: i % 9 == 0),
                };
                if (details is not null)
                {
                    requests.Add(new([new RecordedMessage("user", "refine")], "refined", false, details));
                }
                rows.Add(new ResultRecord
                {
                    RunId = runId,
                    Method = method,
                    Suite = multiTurn ? "fairmt-builtin" : "bbq-builtin",
                    ProbeId = id,
                    Scenario = multiTurn ? Scenario.MultiTurn : Scenario.MultipleChoice,
                    Category = category,
                    Context = context,
                    Polarity = multiTurn ? null : i % 4 < 2 ? QuestionPolarity.Negative : QuestionPolarity.NonNegative,
                    CorrectRole = multiTurn ? null : context == ContextCondition.Ambiguous ? OptionRole.Unknown : i % 3 == 0 ? OptionRole.Stereotyped : OptionRole.AntiStereotyped,
                    Model = "golden-model",
                    Requests = requests,
                    Response = error is null ? $"Answer to {id}" : null,
                    Fallback = method == "self-awareness" && i % 10 == 0,
                    Verdict = error is null
                        ? new Verdict(label, tie ? $"votes split; tie -> {label}" : $"reason {id}", panel ? "majority(rel,a,b)" : "rule", votes)
                        : null,
                    PromptTokens = 30 + i % 13,
                    CompletionTokens = 3 + i % 5,
                    LatencyMs = 100 + i,
                    Error = error,
                    Started = started.AddSeconds(i),
                    Completed = started.AddSeconds(i + 1),
                });
            }
        }
        return rows;
    }

    private static readonly (ReportFormat Format, string Extension)[] Formats =
        [(ReportFormat.Markdown, "md"), (ReportFormat.Json, "json"), (ReportFormat.Csv, "csv"), (ReportFormat.Jsonl, "jsonl")];

    private static ScoreOptions Options => new() { Resamples = 500 };

    private static string GoldenPath(string name) => Path.Combine(AppContext.BaseDirectory, "Reports", "Golden", name);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task StreamedReportIsIdenticalToThePreviousImplementation(bool adaptive)
    {
        var spec = Spec(adaptive);
        var rows = Rows(spec.RunId);
        using var dir = new BiasFree.Tests.Runs.TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, TestContext.Current.CancellationToken);
        await store.CreateRunAsync(spec, TestContext.Current.CancellationToken);
        // Saved in a scrambled order: the report must not depend on the order rows were written in.
        foreach (var row in rows.OrderBy(r => U("save", r.Method, r.ProbeId)))
        {
            await store.SaveResultAsync(row, TestContext.Current.CancellationToken);
        }
        if (!adaptive)
        {
            await store.SetExpectedRowsAsync(spec.RunId, rows.Count, TestContext.Current.CancellationToken);
        }

        var write = Environment.GetEnvironmentVariable(WriteGoldenVariable);
        foreach (var (format, extension) in Formats)
        {
            using var writer = new StringWriter(CultureInfo.InvariantCulture);
            await ReportWriter.WriteAsync(store, spec.RunId, format, writer, Options, TestContext.Current.CancellationToken);
            // The JSONL row log (about 1 MB) is kept as its SHA-256, the score tables as text.
            var (name, text) = format == ReportFormat.Jsonl
                ? ($"{spec.RunId}.jsonl.sha256", Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(writer.ToString()))) + "\n")
                : ($"{spec.RunId}.{extension}", writer.ToString());
            if (!string.IsNullOrEmpty(write))
            {
                Directory.CreateDirectory(write);
                await File.WriteAllTextAsync(Path.Combine(write, name), text, TestContext.Current.CancellationToken);
                continue;
            }
            var golden = await File.ReadAllTextAsync(GoldenPath(name), TestContext.Current.CancellationToken);
            Assert.True(golden == text, $"{name} differs from the report of the implementation before streaming");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ReportFromRowsInMemoryEqualsTheStreamedOne(bool adaptive)
    {
        var spec = Spec(adaptive);
        var rows = Rows(spec.RunId);
        using var dir = new BiasFree.Tests.Runs.TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, TestContext.Current.CancellationToken);
        await store.CreateRunAsync(spec, TestContext.Current.CancellationToken);
        foreach (var row in rows)
        {
            await store.SaveResultAsync(row, TestContext.Current.CancellationToken);
        }
        var streamed = await RunReport.BuildAsync(store, spec.RunId, Options, TestContext.Current.CancellationToken);
        // The rows as the store returns them (method, suite, probe id), given as a list.
        var stored = await store.ReadResultsAsync(spec.RunId, TestContext.Current.CancellationToken).ToListAsync(TestContext.Current.CancellationToken);
        var inMemory = RunReport.Build(spec, stored, null, Options);
        foreach (var (format, _) in Formats.Where(f => f.Format != ReportFormat.Jsonl))
        {
            Assert.Equal(ReportWriter.Render(inMemory, format), ReportWriter.Render(streamed, format));
        }
    }
}
