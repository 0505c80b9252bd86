using System.Globalization;
using System.Text.Json;
using BiasFree.Evaluations;
using BiasFree.Judges;
using BiasFree.Runs;
using BiasFree.Tests.Infrastructure;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Cli;

/// <summary><c>run --judge A,B,C</c>: a panel judges dialogues by majority, every vote is stored, reported in every format, and a resume rebuilds the panel.</summary>
public class JudgePanelEndToEndTests
{
    private const int Limit = 6;

    /// <summary>
    /// One loopback server plays the target (final reply "FINAL-BIASED" for every other dialogue, else "FINAL-FAIR") and
    /// the judges: "right" reads the marker, "lenient" always says unbiased, "off" answers nothing readable while
    /// <paramref name="judgesDown"/> says so.
    /// </summary>
    private static LoopbackChatServer Server(Func<bool>? judgesDown = null) => LoopbackChatServer.Start(req =>
    {
        var all = string.Join("\n", req.Messages.Select(m => m.Content));
        switch (req.Model)
        {
            case "right" or "lenient" or "off":
                if (req.Model == "off" || judgesDown?.Invoke() == true) return new LoopbackReply(Content: "no idea");
                if (KnownAnswerPrompts.Answer(req) is { } code) return code;
                var biased = req.Model == "right" && all.Contains("FINAL-BIASED", StringComparison.Ordinal);
                return new LoopbackReply(Content: ReasonedVerdictFormat.Format("Scripted.", biased ? Label.Biased : Label.Unbiased, 80));
            default:
                var users = req.Messages.Count(m => m.Role == "user");
                var first = req.Messages.First(m => m.Role == "user").Content;
                var odd = (StableHash(first) & 1) == 1;
                return new LoopbackReply(Content: users < 2 ? "reply" : odd ? "FINAL-BIASED yes." : "FINAL-FAIR no.");
        }
    });

    private static int StableHash(string s) => s.Aggregate(17, (h, c) => unchecked(h * 31 + c)) & int.MaxValue;

    private static List<string> RunArgs(LoopbackChatServer server, string runsDir, string runId, string judges) =>
    [
        "run", "--suite", "fairmt", "--limit", Limit.ToString(CultureInfo.InvariantCulture), "--seed", "1", "--target", server.BaseUrl.ToString(), "--model", "scripted",
        "--judge", judges, "--runs-dir", runsDir, "--run-id", runId, "--retries", "0", "--concurrency", "4",
    ];

    [Fact]
    public async Task EveryVoteIsStoredAndShownInEveryReportFormat()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        await using var server = Server();
        var url = server.BaseUrl.ToString().TrimEnd('/');
        var judges = $"biasguard:right@{url},biasguard:lenient@{url},biasguard:right@{url}";
        var run = await CliProcess.RunAsync(RunArgs(server, dir.Path, "panel", judges), dir.Path, ct);
        Assert.True(run.ExitCode == 0, run.ToString());

        // Majority of right, lenient, right = right's verdict.
        var judging = server.Requests.Where(r => !KnownAnswerPrompts.Is(r)).ToList();
        int expectedBiased = judging.Count(r => r.Model == "right" && r.Messages.Any(m => m.Content.Contains("FINAL-BIASED", StringComparison.Ordinal))) / 2;
        Assert.Equal(Limit * 3, judging.Count(r => r.Model is "right" or "lenient"));

        var report = await EndToEndTests.JsonReport(dir.Path, "panel", ct);
        Assert.Equal(judges, report.GetProperty("run").GetProperty("judge").GetString());
        var all = EndToEndTests.Row(report, "none");
        Assert.Equal(expectedBiased, all.GetProperty("counts").GetProperty("biased").GetInt32());
        Assert.Equal(Limit - expectedBiased, all.GetProperty("counts").GetProperty("unbiased").GetInt32());
        var votes = report.GetProperty("judgeVotes").EnumerateArray().ToList();
        Assert.Equal(2, votes.Count); // "right" twice is one judge name: its two seats are summed
        var right = votes.Single(v => v.GetProperty("judge").GetString() == "biasguard:right#biasfree-fairness@1");
        var lenient = votes.Single(v => v.GetProperty("judge").GetString() == "biasguard:lenient#biasfree-fairness@1");
        Assert.Equal((2 * expectedBiased, 2 * (Limit - expectedBiased)), (right.GetProperty("biased").GetInt32(), right.GetProperty("unbiased").GetInt32()));
        Assert.Equal((0, Limit), (lenient.GetProperty("biased").GetInt32(), lenient.GetProperty("unbiased").GetInt32()));
        Assert.Equal((Limit - expectedBiased, Limit), (lenient.GetProperty("agrees").GetInt32(), lenient.GetProperty("compared").GetInt32()));
        Assert.Equal(0, lenient.GetProperty("ties").GetInt32());

        var md = await CliProcess.RunAsync(["report", "panel", "--format", "md", "--runs-dir", dir.Path], dir.Path, ct);
        Assert.Contains("## Judge panel votes", md.StdOut, StringComparison.Ordinal);
        Assert.Contains($"| {BiasFree.Reports.ReportWriter.EscapeMarkdownCell("biasguard:lenient#biasfree-fairness@1")} | 0 | {Limit} | 0 |", md.StdOut, StringComparison.Ordinal);
        var csv = await CliProcess.RunAsync(["report", "panel", "--format", "csv", "--runs-dir", dir.Path], dir.Path, ct);
        var lines = csv.StdOut.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("judge_votes", lines[0].Split(','));
        Assert.Contains($"biasguard:lenient#biasfree-fairness@1: biased 0, unbiased {Limit}, missing 0", csv.StdOut, StringComparison.Ordinal);
        var jsonl = await CliProcess.RunAsync(["report", "panel", "--format", "jsonl", "--runs-dir", dir.Path], dir.Path, ct);
        foreach (var line in jsonl.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var row = JsonDocument.Parse(line);
            var raw = row.RootElement.GetProperty("verdict").GetProperty("rawOutput").GetString()!;
            using var stored = JsonDocument.Parse(raw);
            Assert.Equal(["biasguard:right#biasfree-fairness@1", "biasguard:lenient#biasfree-fairness@1", "biasguard:right#biasfree-fairness@1"],
                stored.RootElement.EnumerateArray().Select(v => v.GetProperty("judge").GetString()));
        }
    }

    [Fact]
    public async Task AResumeRebuildsThePanelWithItsTieRule()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        bool down = true;
        await using var server = Server(() => Volatile.Read(ref down));
        var url = server.BaseUrl.ToString().TrimEnd('/');
        var judges = $"biasguard:right@{url},biasguard:lenient@{url},biasguard:off@{url}";
        var args = RunArgs(server, dir.Path, "tie", judges);
        args.AddRange(["--tie", "unbiased"]);
        var first = await CliProcess.RunAsync(args, dir.Path, ct);
        Assert.Equal(2, first.ExitCode); // incomplete: every dialogue: no usable vote, a judge error to retry
        Assert.Contains("judge errors", first.StdErr, StringComparison.Ordinal);

        Volatile.Write(ref down, false);
        var again = await CliProcess.RunAsync(["run", "--resume", "tie", "--runs-dir", dir.Path], dir.Path, ct);
        Assert.True(again.ExitCode == 0, again.ToString());

        await using (var store = await RunStore.OpenDirectoryAsync(dir.Path, ct))
        {
            var spec = (await store.GetRunAsync("tie", ct))!;
            Assert.Equal("unbiased", spec.JudgeTie);
            Assert.True(EvaluationJudges.IsPanelSpec(spec.Judge));
        }
        // right says biased, lenient unbiased, off is missing: 1-1 is a tie, and the stored tie rule makes it unbiased.
        var report = await EndToEndTests.JsonReport(dir.Path, "tie", ct);
        var all = EndToEndTests.Row(report, "none");
        Assert.Equal(0, all.GetProperty("counts").GetProperty("biased").GetInt32());
        Assert.Equal(Limit, all.GetProperty("counts").GetProperty("unbiased").GetInt32());
        var votes = report.GetProperty("judgeVotes").EnumerateArray().ToList();
        Assert.Equal(3, votes.Count);
        var ties = votes[0].GetProperty("ties").GetInt32();
        Assert.True(ties > 0 && ties < Limit, $"ties {ties}: some dialogues end biased and split the panel");
        Assert.Equal(Limit, votes.Single(v => v.GetProperty("judge").GetString()!.StartsWith("biasguard:off", StringComparison.Ordinal)).GetProperty("missing").GetInt32());
    }

    [Fact]
    public async Task ADemoJudgeFolderIsRecordedAbsoluteAndPinnedSoAResumeWorksFromAnotherDirectory()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        // A copy of the shipped judge adapter, named relative to the first run's working directory.
        var work = Directory.CreateDirectory(Path.Combine(dir.Path, "work")).FullName;
        var adapter = Directory.CreateDirectory(Path.Combine(work, "my-judge")).FullName;
        foreach (var f in new[] { "adapter_config.json", "adapter_model.safetensors" })
            File.Copy(Path.Combine(TinyModelFolder.RepoRoot(), "models", "demo-judge", "adapter", f), Path.Combine(adapter, f));
        bool down = true;
        await using var server = LoopbackChatServer.Start(req => Volatile.Read(ref down)
            ? new LoopbackReply(Status: 400, Content: "target down")
            : new LoopbackReply(Content: "People differ; the group says nothing about one person."));
        var runs = Path.Combine(dir.Path, "runs");
        List<string> args =
        [
            "run", "--suite", "fairmt", "--limit", "2", "--seed", "1", "--target", server.BaseUrl.ToString(), "--model", "scripted",
            "--judge", "demo:my-judge", "--runs-dir", runs, "--run-id", "pinned", "--retries", "0", "--concurrency", "2",
        ];
        var first = await CliProcess.RunAsync(args, work, ct, TimeSpan.FromMinutes(5));
        Assert.True(first.ExitCode != 0, first.ToString()); // every target call failed: the run is incomplete

        string stored;
        await using (var store = await RunStore.OpenDirectoryAsync(runs, ct))
            stored = (await store.GetRunAsync("pinned", ct))!.Judge;
        var pinned = JudgeSpec.Parse(stored);
        Assert.Equal(adapter, pinned.Model); // absolute, not "my-judge"
        Assert.Matches("^[0-9a-f]{16}$", pinned.ContentHash);

        // Resume from another working directory: the judge is found by its absolute path and its hash matches.
        Volatile.Write(ref down, false);
        var resumed = await CliProcess.RunAsync(["run", "--resume", "pinned", "--runs-dir", runs], dir.Path, ct, TimeSpan.FromMinutes(5));
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        var jsonl = await CliProcess.RunAsync(["report", "pinned", "--format", "jsonl", "--runs-dir", runs], dir.Path, ct);
        var rows = jsonl.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l)).ToList();
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r =>
        {
            var verdict = r.RootElement.GetProperty("verdict");
            Assert.Equal($"demo-judge:{adapter}", verdict.GetProperty("judge").GetString());
            Assert.Contains(verdict.GetProperty("label").GetString()!.ToLowerInvariant(), new[] { "biased", "unbiased", "unrelated" });
            r.Dispose();
        });

        // Changed weights behind the same path are refused, not mixed into the run.
        File.AppendAllText(Path.Combine(adapter, "adapter_config.json"), "\n");
        var changed = await CliProcess.RunAsync(["run", "--resume", "pinned", "--runs-dir", runs], dir.Path, ct, TimeSpan.FromMinutes(5));
        Assert.NotEqual(0, changed.ExitCode);
        Assert.Contains("content changed since the run recorded it", changed.StdErr, StringComparison.Ordinal);
    }
}
