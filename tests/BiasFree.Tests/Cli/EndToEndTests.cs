using System.Text.Json;
using BiasFree.Evaluations;
using BiasFree.Mitigations;
using BiasFree.Probes;
using BiasFree.Runs;
using BiasFree.Tests.Infrastructure;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Cli;

/// <summary>The real CLI, as a child process, against a scripted loopback OpenAI-compatible server.</summary>
public class EndToEndTests
{
    private const int Seed = 3;
    private const int Limit = 30;
    private const string Model = "scripted";

    internal static IReadOnlyList<Probe> Probes(int limit = Limit) => Evaluation.LoadProbes(new RunSpec
    {
        Sampling = RunSpec.StratifiedSampling,
        RunId = "x", Suites = ["bbq"], Seed = Seed, Limit = limit, Model = Model, Methods = ["none"],
    });

    internal static List<string> RunArgs(LoopbackChatServer server, string runsDir, string runId, string methods, int limit = Limit) =>
    [
        "run", "--suite", "bbq", "--limit", limit.ToString(System.Globalization.CultureInfo.InvariantCulture), "--seed", Seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "--target", server.BaseUrl.ToString(), "--model", Model, "--api-key-env", "BIASFREE_TEST_KEY", "--method", methods,
        "--runs-dir", runsDir, "--run-id", runId, "--concurrency", "8", "--retries", "0", "--timeout", "20",
    ];

    internal static async Task<JsonElement> JsonReport(string runsDir, string runId, CancellationToken ct)
    {
        var r = await CliProcess.RunAsync(["report", runId, "--format", "json", "--runs-dir", runsDir], runsDir, ct);
        Assert.True(r.ExitCode == 0, r.ToString());
        return JsonDocument.Parse(r.StdOut).RootElement.Clone();
    }

    internal static JsonElement Row(JsonElement report, string method, string category = "all") =>
        report.GetProperty("scores").EnumerateArray().Single(s => s.GetProperty("method").GetString() == method && s.GetProperty("category").GetString() == category);

    [Fact]
    public async Task VanillaAndEveryPromptingMethodScoreExactlyWhatTheScriptImplies()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var probes = Probes();
        var script = new ScriptedTarget(probes);
        await using var server = LoopbackChatServer.Start(req => script.Answer(req));
        var methods = PromptingMitigations.Names.Where(m => m != PromptingMitigations.None).ToList();

        var result = await CliProcess.RunAsync(RunArgs(server, dir.Path, "e2e", string.Join(",", methods.Prepend("none"))), dir.Path, ct);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("Run id: e2e", result.StdOut, StringComparison.Ordinal);

        var report = await JsonReport(dir.Path, "e2e", ct);
        var vanilla = Row(report, "none");
        var biased = Enumerable.Range(0, probes.Count).Count(i => ScriptedTarget.VanillaRole(i) == OptionRole.Stereotyped);
        var anti = Enumerable.Range(0, probes.Count).Count(i => ScriptedTarget.VanillaRole(i) == OptionRole.AntiStereotyped);
        Assert.Equal(probes.Count, vanilla.GetProperty("responses").GetInt32());
        Assert.Equal(biased, vanilla.GetProperty("counts").GetProperty("biased").GetInt32());
        Assert.Equal(anti, vanilla.GetProperty("counts").GetProperty("antiStereotyped").GetInt32());
        Assert.Equal((double)(probes.Count - biased) / probes.Count, vanilla.GetProperty("bfs").GetDouble(), 12);

        // Per category too: the script's roles are known per probe.
        foreach (var cat in probes.Select(p => p.Category).Distinct())
        {
            var idx = Enumerable.Range(0, probes.Count).Where(i => probes[i].Category == cat).ToList();
            var expected = (double)idx.Count(i => ScriptedTarget.VanillaRole(i) != OptionRole.Stereotyped) / idx.Count;
            Assert.Equal(expected, Row(report, "none", cat).GetProperty("bfs").GetDouble(), 12);
        }

        // Ambiguous BFS, disambiguated accuracy and over-refusal, from the script's answer for each probe.
        var ambiguous = Enumerable.Range(0, probes.Count).Where(i => probes[i].Context == ContextCondition.Ambiguous).ToList();
        var disambiguated = Enumerable.Range(0, probes.Count).Where(i => probes[i].Context == ContextCondition.Disambiguated).ToList();
        Assert.NotEmpty(ambiguous);
        Assert.NotEmpty(disambiguated);
        var ambiguousBiased = ambiguous.Count(i => ScriptedTarget.VanillaRole(i) == OptionRole.Stereotyped);
        Assert.Equal((double)(ambiguous.Count - ambiguousBiased) / ambiguous.Count, vanilla.GetProperty("bfsAmbiguous").GetProperty("value").GetDouble(), 12);
        Assert.Equal((double)disambiguated.Count(i => ScriptedTarget.VanillaRole(i) == probes[i].Options[probes[i].CorrectOption!.Value].Role) / disambiguated.Count,
            vanilla.GetProperty("accuracyDisambiguated").GetProperty("value").GetDouble(), 12);
        Assert.Equal((double)disambiguated.Count(i => ScriptedTarget.VanillaRole(i) == OptionRole.Unknown) / disambiguated.Count,
            vanilla.GetProperty("unknownDisambiguated").GetProperty("value").GetDouble(), 12);

        foreach (var method in methods)
        {
            var row = Row(report, method);
            Assert.Equal(probes.Count, row.GetProperty("responses").GetInt32());
            Assert.Equal(1.0, row.GetProperty("bfs").GetDouble(), 12);
            // Every mitigated request is answered "unknown": perfect BFS, and no disambiguated question answered right.
            Assert.Equal(1.0, row.GetProperty("bfsAmbiguous").GetProperty("value").GetDouble(), 12);
            Assert.Equal(0.0, row.GetProperty("accuracyDisambiguated").GetProperty("value").GetDouble(), 12);
            Assert.Equal(1.0, row.GetProperty("unknownDisambiguated").GetProperty("value").GetDouble(), 12);
            // The comparison with none is on the ambiguous probes.
            var comparison = report.GetProperty("comparisons").EnumerateArray().Single(c => c.GetProperty("method").GetString() == method);
            Assert.Equal(ambiguous.Count, comparison.GetProperty("probes").GetInt32());
            Assert.Equal(1.0 - (double)(ambiguous.Count - ambiguousBiased) / ambiguous.Count, comparison.GetProperty("difference").GetDouble(), 12);
            var mcNemar = comparison.GetProperty("secondaryMcNemar");
            Assert.Equal(ambiguousBiased, mcNemar.GetProperty("biasedOnlyInBaseline").GetInt32());
            Assert.Equal(0, mcNemar.GetProperty("biasedOnlyInMethod").GetInt32());
        }

        // Another baseline and resample count; a baseline that is not a method of the run is refused.
        var other = await CliProcess.RunAsync(["report", "e2e", "--format", "json", "--baseline", "Self-Help", "--bootstrap", "300", "--runs-dir", dir.Path], dir.Path, ct);
        Assert.True(other.ExitCode == 0, other.ToString());
        var otherReport = JsonDocument.Parse(other.StdOut).RootElement;
        Assert.Equal(300, otherReport.GetProperty("settings").GetProperty("resamples").GetInt32());
        Assert.All(otherReport.GetProperty("comparisons").EnumerateArray(), c => Assert.Equal("self-help", c.GetProperty("baseline").GetString()));
        Assert.Contains(otherReport.GetProperty("comparisons").EnumerateArray(), c => c.GetProperty("method").GetString() == "none");
        var wrong = await CliProcess.RunAsync(["report", "e2e", "--baseline", "nope", "--runs-dir", dir.Path], dir.Path, ct);
        Assert.Equal(1, wrong.ExitCode);
        Assert.Contains("--baseline 'nope' is not a method of run 'e2e'", wrong.StdErr, StringComparison.Ordinal);

        // What went over the wire: settings, the key from the named variable, no probe-context keys.
        var requests = server.Requests;
        Assert.All(requests, r =>
        {
            Assert.Equal(Model, r.Model);
            Assert.Null(r.Temperature); // no --temperature: none is sent, the server's default applies
            Assert.Equal(Seed, r.Seed);
            Assert.Equal("Bearer sk-test-secret-never-stored", r.Authorization);
            Assert.DoesNotContain("biasfree.", r.Body, StringComparison.Ordinal);
        });
        var vanillaRequests = requests.Where(r => probes.Any(p => ScriptedTarget.IsVanilla(r.Messages, p))).ToList();
        Assert.Equal(probes.Count * 2, vanillaRequests.Count); // none, and the first pass of self-reflection
        Assert.Equal(probes.Count, requests.Count(r => r.Messages[0].Content.Contains("fair and helpful", StringComparison.Ordinal)));

        // Every prompting method changed what was sent for every probe.
        var changed = requests.Where(r => !vanillaRequests.Contains(r)).ToList();
        Assert.True(changed.Count >= probes.Count * methods.Count, $"{changed.Count} changed requests");
        {
            Assert.All(probes, p => Assert.Contains(changed, r =>
                r.Messages[^1].Role == "user" && r.Messages[^1].Content.StartsWith(p.UserTurns[0], StringComparison.Ordinal) &&
                r.Messages[^1].Content.Length > p.UserTurns[0].Length));
        }

        // The API key never reaches the store.
        var db = await File.ReadAllBytesAsync(Path.Combine(dir.Path, RunStore.FileName), ct);
        Assert.DoesNotContain("sk-test-secret-never-stored", System.Text.Encoding.UTF8.GetString(db), StringComparison.Ordinal);
    }

    [Fact]
    public async Task MarkdownAndCsvReportsShowTheSameNumbers()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var probes = Probes(12);
        var script = new ScriptedTarget(probes);
        await using var server = LoopbackChatServer.Start(req => script.Answer(req));
        var run = await CliProcess.RunAsync(RunArgs(server, dir.Path, "fmt", "none", 12), dir.Path, ct);
        Assert.True(run.ExitCode == 0, run.ToString());

        var expected = ReportsPercent((double)Enumerable.Range(0, 12).Count(i => ScriptedTarget.VanillaRole(i) != OptionRole.Stereotyped) / 12);
        var ambiguous = Enumerable.Range(0, 12).Where(i => probes[i].Context == ContextCondition.Ambiguous).ToList();
        var expectedAmbiguous = ReportsPercent((double)ambiguous.Count(i => ScriptedTarget.VanillaRole(i) != OptionRole.Stereotyped) / ambiguous.Count);
        var md = await CliProcess.RunAsync(["report", "fmt", "--runs-dir", dir.Path], dir.Path, ct);
        Assert.True(md.ExitCode == 0, md.ToString());
        Assert.Contains($"| {Model} | none | **all** | 12 | **{expectedAmbiguous}** |", md.StdOut, StringComparison.Ordinal);

        var again = await CliProcess.RunAsync(RunArgs(server, dir.Path, "fmt", "none", 12), dir.Path, ct);
        Assert.True(again.ExitCode == 1, again.ToString());
        Assert.Contains("run 'fmt' already exists; continue it with --resume fmt", again.StdErr, StringComparison.Ordinal);

        var jsonl = await CliProcess.RunAsync(["report", "fmt", "--format", "jsonl", "--runs-dir", dir.Path], dir.Path, ct);
        Assert.True(jsonl.ExitCode == 0, jsonl.ToString());
        var samples = jsonl.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(12, samples.Count);
        Assert.All(samples, x => Assert.Equal(2, x.GetProperty("requests")[0].GetProperty("messages").GetArrayLength()));
        Assert.Equal(12 - Enumerable.Range(0, 12).Count(i => ScriptedTarget.VanillaRole(i) != OptionRole.Stereotyped),
            samples.Count(x => x.GetProperty("verdict").GetProperty("label").GetString() == "Biased"));

        var runs = await CliProcess.RunAsync(["runs", "--runs-dir", dir.Path], dir.Path, ct);
        Assert.True(runs.ExitCode == 0, runs.ToString());
        Assert.Contains("fmt", runs.StdOut, StringComparison.Ordinal);
        Assert.Contains("12/12", runs.StdOut, StringComparison.Ordinal);

        var csvFile = Path.Combine(dir.Path, "out", "report.csv");
        var csv = await CliProcess.RunAsync(["report", "fmt", "--format", "csv", "--output", csvFile, "--runs-dir", dir.Path], dir.Path, ct);
        Assert.True(csv.ExitCode == 0, csv.ToString());
        var lines = await File.ReadAllLinesAsync(csvFile, ct);
        var header = lines[0].Split(',');
        var all = lines.Skip(1).Select(l => l.Split(',')).Single(f => f[Array.IndexOf(header, "category")] == "all");
        Assert.Equal(expected, ReportsPercent(double.Parse(all[Array.IndexOf(header, "bfs")], System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal(expectedAmbiguous, ReportsPercent(double.Parse(all[Array.IndexOf(header, "bfs_ambiguous")], System.Globalization.CultureInfo.InvariantCulture)));
    }

    private static string ReportsPercent(double v) => BiasFree.Reports.ReportWriter.Percent(v);

    [Fact]
    public async Task TargetErrorsAreRecordedShownAndRetriedOnResume()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var probes = Probes(9);
        var script = new ScriptedTarget(probes);
        var failing = true;
        await using var server = LoopbackChatServer.Start(req =>
            failing && script.FindProbe(req.Messages) is 4 or 7 ? new LoopbackReply(Status: 400, Content: "bad request for this probe") : script.Answer(req));

        var first = await CliProcess.RunAsync(RunArgs(server, dir.Path, "err", "none", 9), dir.Path, ct);
        Assert.True(first.ExitCode == 2, first.ToString());
        Assert.Contains("--resume err", first.StdErr, StringComparison.Ordinal);
        var report = await JsonReport(dir.Path, "err", ct);
        Assert.Equal(2, report.GetProperty("totals").GetProperty("targetErrors").GetInt32());
        Assert.Equal(7, Row(report, "none").GetProperty("responses").GetInt32());
        Assert.Equal(2, Row(report, "none").GetProperty("targetErrors").GetInt32());

        failing = false;
        var before = server.Requests.Count;
        var second = await CliProcess.RunAsync(["run", "--resume", "err", "--runs-dir", dir.Path], dir.Path, ct);
        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.Equal(2, server.Requests.Count - before);
        report = await JsonReport(dir.Path, "err", ct);
        Assert.Equal(0, report.GetProperty("totals").GetProperty("targetErrors").GetInt32());
        Assert.Equal(9, Row(report, "none").GetProperty("responses").GetInt32());
    }
}
