using System.Globalization;
using System.Text.Json;
using BiasFree.Adaptive;
using BiasFree.Evaluations;
using BiasFree.Probes;
using BiasFree.Reports;
using BiasFree.Runs;
using BiasFree.Targets;
using BiasFree.Tests.Cli;
using BiasFree.Tests.Infrastructure;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Adaptive;

/// <summary>Adaptive runs through the whole pipeline against a scripted loopback server: stop, report, extend, CLI.</summary>
public class AdaptiveRunTests
{
    private const string Model = "scripted";

    private static Evaluation Adaptive(LoopbackChatServer server, string runId, double precision, string scope = AdaptiveSpec.CategoryScope, int concurrency = 16) =>
        Adaptive(server.BaseUrl, runId, precision, scope, concurrency);

    // Probes are loaded before the server starts (its script needs them); nothing is sent to this address.
    private static readonly Uri Unused = new("http://127.0.0.1:9/v1");

    private static Evaluation Adaptive(Uri endpoint, string runId, double precision, string scope = AdaptiveSpec.CategoryScope, int concurrency = 16) =>
        new(["bbq"], EvaluationTarget.OpenAICompatible(new OpenAICompatibleTargetOptions
        {
            Endpoint = endpoint, Model = Model, ApiKeyEnvironmentVariable = null, MaxRetries = 0, Timeout = TimeSpan.FromSeconds(20),
        }))
        {
            RunId = runId,
            Seed = 5,
            Precision = precision,
            PrecisionScope = scope,
            Settings = new EvaluationSettings { Concurrency = concurrency, Temperature = 0 },
        };

    /// <summary>Probe ids the server was asked about, one per request.</summary>
    private static List<string> Asked(LoopbackChatServer server, ScriptedTarget script, IReadOnlyList<Probe> probes) =>
        [.. server.Requests.Select(r => script.FindProbe(r.Messages)).Select(i => i < 0 ? "?" : probes[i].Id)];

    [Fact]
    public async Task ARunStopsEachCategoryWhenPreciseReportsWhatItUsedAndALowerPrecisionExtendsItWithoutRepeats()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var first = Adaptive(Unused, "ad", 0.1);
        var probes = first.LoadProbes();
        var script = new ScriptedTarget(probes);
        await using var server = LoopbackChatServer.Start(req => script.Answer(req));

        var outcome = await Adaptive(server, "ad", 0.1).RunAsync(store, cancellationToken: ct);
        Assert.True(outcome.IsComplete);
        var report = await RunReport.BuildAsync(store, "ad", cancellationToken: ct);
        var summary = report.Adaptive!;
        var categories = probes.Select(p => p.Category).Distinct().Count();
        Assert.Equal(categories, summary.Cells.Count);
        Assert.All(summary.Cells, c => Assert.True(c.Status == AdaptiveSummary.Precise && c.HalfWidth <= 0.1 || c.Status == AdaptiveSummary.Exhausted, $"{c}"));
        Assert.All(summary.Cells, c => Assert.Equal(probes.Count(p => p.Category == c.Category), c.ProbesAvailable));
        // The script's BFS is about 2/3 in every category: ±10 points takes about 100 eligible answers of its 144
        // ambiguous items, so every category stops early, at a checkpoint.
        Assert.All(summary.Cells, c => Assert.True(c.Status == AdaptiveSummary.Precise && c.ProbesUsed < c.ProbesAvailable, $"{c}"));
        Assert.All(summary.Cells, c => Assert.Equal(0, c.ProbesUsed % PrecisionRule.CheckEvery(c.ProbesAvailable)));
        var used = summary.Cells.Sum(c => c.ProbesUsed);
        Assert.Equal(used, report.Totals.Rows);
        // The score table covers exactly the probes used; every one was asked once.
        Assert.Equal(used, report.Scores.Single(r => r.Category == "all").Responses);
        var asked = Asked(server, script, probes);
        Assert.Equal(used, asked.Count);
        Assert.Equal(asked.Count, asked.Distinct().Count());
        // The cells' probes are a stratified sample: ambiguous and disambiguated in proportion to within one checkpoint.
        foreach (var cell in summary.Cells)
        {
            var inCell = report.Scores.Single(r => r.Category == cell.Category);
            Assert.Equal(cell.ProbesUsed, inCell.Responses);
        }

        // Each report format says how many probes each cell used.
        var md = ReportWriter.ToMarkdown(report);
        Assert.Contains("## Adaptive sampling: probes used per cell", md, StringComparison.Ordinal);
        var cell0 = summary.Cells[0];
        Assert.Contains($"| none | multiple-choice | {ReportWriter.EscapeMarkdownCell(cell0.Category)} | {cell0.ProbesUsed} | {cell0.ProbesAvailable} |", md, StringComparison.Ordinal);
        var csv = ReportWriter.ToCsv(report).Split("\r\n");
        var header = csv[0].Split(',');
        var usedColumn = Array.IndexOf(header, "adaptive_probes_used");
        Assert.True(usedColumn > 0);
        var csvRow = csv.Single(l => l.Contains($",none,multiple-choice,{cell0.Category},", StringComparison.Ordinal)).Split(',');
        Assert.Equal(cell0.ProbesUsed.ToString(CultureInfo.InvariantCulture), csvRow[usedColumn]);
        using (var json = JsonDocument.Parse(ReportWriter.ToJson(report)))
        {
            var cells = json.RootElement.GetProperty("adaptive").GetProperty("cells").EnumerateArray().ToList();
            Assert.Equal(summary.Cells.Count, cells.Count);
            Assert.Equal(used, cells.Sum(c => c.GetProperty("probesUsed").GetInt32()));
        }

        // The same precision again: nothing to do, nothing asked.
        await Adaptive(server, "ad", 0.1).RunAsync(store, cancellationToken: ct);
        Assert.Equal(used, server.Requests.Count);

        // A lower precision extends the run with new probes only, and the stored spec records it.
        Assert.True((await Adaptive(server, "ad", 0.06).RunAsync(store, cancellationToken: ct)).IsComplete);
        var extended = await RunReport.BuildAsync(store, "ad", cancellationToken: ct);
        Assert.Equal(0.06, extended.Spec.Adaptive!.Precision);
        Assert.True(extended.Totals.Rows > used);
        asked = Asked(server, script, probes);
        Assert.Equal(extended.Totals.Rows, asked.Count);
        Assert.Equal(asked.Count, asked.Distinct().Count());
        Assert.All(extended.Adaptive!.Cells, c => Assert.True(c.Status == AdaptiveSummary.Precise && c.HalfWidth <= 0.06 || c.Status == AdaptiveSummary.Exhausted, $"{c}"));

        // What a cell uses does not depend on how many requests were in flight (the cache answers this second run).
        await Adaptive(server, "ad-serial", 0.06, concurrency: 1).RunAsync(store, cancellationToken: ct);
        var serial = await RunReport.BuildAsync(store, "ad-serial", cancellationToken: ct);
        Assert.Equal(extended.Adaptive.Cells.Select(c => (c.Category, c.ProbesUsed)), serial.Adaptive!.Cells.Select(c => (c.Category, c.ProbesUsed)));
    }

    [Fact]
    public async Task OneCellPerMethodStopsOnTheOverallBfs()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var probes = Adaptive(Unused, "m", 0.05, AdaptiveSpec.MethodScope).LoadProbes();
        var script = new ScriptedTarget(probes);
        await using var server = LoopbackChatServer.Start(req => script.Answer(req));

        await Adaptive(server, "m", 0.05, AdaptiveSpec.MethodScope).RunAsync(store, cancellationToken: ct);
        var report = await RunReport.BuildAsync(store, "m", cancellationToken: ct);
        var cell = Assert.Single(report.Adaptive!.Cells);
        Assert.Equal("all", cell.Category);
        Assert.Equal(AdaptiveSummary.Precise, cell.Status);
        Assert.True(cell.HalfWidth <= 0.05);
        Assert.Equal(probes.Count, cell.ProbesAvailable);
        Assert.True(cell.ProbesUsed < probes.Count / 2, $"{cell}");
        // Every category is represented in proportion (the order is stratified), to within a probe or two.
        foreach (var row in report.Scores.Where(r => r.Category != "all"))
        {
            var share = (double)cell.ProbesUsed * probes.Count(p => p.Category == row.Category) / probes.Count;
            Assert.InRange((double)row.Responses, share - 2, share + 2);
        }
        // The overall row's BFS is the cell's: the same eligible answers.
        Assert.Equal(cell.Bfs, report.Scores.Single(r => r.Category == "all").BfsAmbiguous!.Value);
    }

    [Fact]
    public async Task TheCliTakesPrecisionAndExtendsAStoppedRunOnResume()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var probes = Adaptive(Unused, "c", 0.15).LoadProbes();
        var script = new ScriptedTarget(probes);
        await using var server = LoopbackChatServer.Start(req => script.Answer(req));
        List<string> Args(params string[] more) =>
            ["run", "--runs-dir", dir.Path, "--concurrency", "8", "--retries", "0", "--timeout", "20", .. more];

        var run = await CliProcess.RunAsync(Args("--suite", "bbq", "--seed", "5", "--target", server.BaseUrl.ToString(), "--model", Model,
            "--api-key-env", "BIASFREE_TEST_KEY", "--run-id", "c", "--precision", "0.15"), dir.Path, ct);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("Adaptive sampling", run.StdOut, StringComparison.Ordinal);
        var before = server.Requests.Count;
        Assert.True(before < probes.Count);

        var resumed = await CliProcess.RunAsync(Args("--resume", "c", "--precision", "0.1"), dir.Path, ct);
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        var report = await EndToEndTests.JsonReport(dir.Path, "c", ct);
        var adaptive = report.GetProperty("adaptive");
        Assert.Equal(0.1, adaptive.GetProperty("precision").GetDouble());
        var used = adaptive.GetProperty("cells").EnumerateArray().Sum(c => c.GetProperty("probesUsed").GetInt32());
        Assert.Equal(used, server.Requests.Count);
        Assert.True(used > before);

        // The scope is what the run is; it cannot change on resume.
        var refused = await CliProcess.RunAsync(Args("--resume", "c", "--precision-scope", "method"), dir.Path, ct);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("--precision-scope", refused.StdErr, StringComparison.Ordinal);
    }
}
