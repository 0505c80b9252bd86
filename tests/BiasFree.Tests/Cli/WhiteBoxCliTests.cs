using BiasFree.Engine.WhiteBox;
using BiasFree.Runs;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Cli;

/// <summary><c>run --method fairsteer...</c> end to end on a tiny model folder: methods, combinations, store details, report.</summary>
public class WhiteBoxCliTests
{
    /// <summary>A FairSteer folder for the tiny model (hidden 32, 1 layer) whose probe always says "biased".</summary>
    private static string SteeringFolder(string dir)
    {
        var rng = new Random(4);
        var vector = Enumerable.Range(0, 32).Select(_ => (float)(rng.NextDouble() * 8 - 4)).ToArray();
        var model = new FairSteerModel(new FairSteerInfo { Model = "tiny-llama", HiddenSize = 32, NumLayers = 1, Layer = 0, Alpha = 3 },
            [new LogisticProbe(new double[32], -1)], [vector]);
        var folder = Path.Combine(dir, "steer");
        model.Save(folder);
        return folder;
    }

    [Fact]
    public async Task FairSteerAndItsAblationsRunRecordGateFiringsAndShowThemInTheReport()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var folder = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-llama"));
        var steering = SteeringFolder(dir.Path);

        var run = await CliProcess.RunAsync(
            ["run", "--target", folder, "--suite", "bbq", "--limit", "4", "--max-tokens", "6", "--method", "none,fairsteer,fairsteer-gate-only,fairsteer-always,fairsteer-random,cot+fairsteer",
             "--steering", steering, "--runs-dir", dir.Path, "--run-id", "wb"], dir.Path, ct, TimeSpan.FromSeconds(180));
        Assert.True(run.ExitCode == 0, run.ToString());

        var report = await EndToEndTests.JsonReport(dir.Path, "wb", ct);
        var whiteBox = report.GetProperty("whiteBox").EnumerateArray().ToDictionary(w => w.GetProperty("method").GetString()!);
        Assert.Equal(["cot+fairsteer", "fairsteer", "fairsteer-always", "fairsteer-gate-only", "fairsteer-random"], whiteBox.Keys.Order(StringComparer.Ordinal));
        foreach (var (method, w) in whiteBox)
        {
            Assert.Equal(4, w.GetProperty("replies").GetInt32());
            // This probe fires at every position it looks at.
            Assert.Equal(w.GetProperty("meanGateSteps").GetDouble(), w.GetProperty("meanGateFirings").GetDouble(), 9);
            Assert.Equal(1.0, w.GetProperty("repliesWithFiring").GetDouble());
        }

        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var rows = await store.ReadResultsAsync("wb", ct).ToListAsync(ct);
        string Reply(string method, string probe) => rows.Single(r => r.Method == method && r.ProbeId == probe).Response!;
        var probes = rows.Select(r => r.ProbeId).Distinct().ToList();
        // Gate only changes nothing; steering by α·v (large here) changes the replies.
        Assert.All(probes, p => Assert.Equal(Reply("none", p), Reply("fairsteer-gate-only", p)));
        Assert.Contains(probes, p => Reply("none", p) != Reply("fairsteer", p));
        Assert.All(probes, p => Assert.Equal(Reply("fairsteer", p), Reply("fairsteer-always", p))); // the gate always fires
        Assert.Null(rows.First(r => r.Method == "none").Requests[0].Details);
        var details = rows.First(r => r.Method == "fairsteer").Requests[0].Details!;
        Assert.Contains("layer=0;alpha=3;mode=gated", details[FairSteerChatClient.SettingsKey], StringComparison.Ordinal);

        var md = await CliProcess.RunAsync(["report", "wb", "--runs-dir", dir.Path, "--format", "md"], dir.Path, ct, TimeSpan.FromSeconds(60));
        Assert.Contains("## White-box methods", md.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WhiteBoxMethodsNeedTheirArtifactsAndAnInProcessModel()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var folder = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-llama"));

        var missing = await CliProcess.RunAsync(["run", "--target", folder, "--limit", "1", "--method", "fairsteer", "--runs-dir", dir.Path], dir.Path, ct, TimeSpan.FromSeconds(60));
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("--steering", missing.StdErr, StringComparison.Ordinal);

        var remote = await CliProcess.RunAsync(["run", "--target", "http://127.0.0.1:9/v1", "--model", "m", "--method", "fairsteer", "--steering", dir.Path, "--runs-dir", dir.Path],
            dir.Path, ct, TimeSpan.FromSeconds(60));
        Assert.Equal(1, remote.ExitCode);
        Assert.Contains("in-process model", remote.StdErr, StringComparison.Ordinal);

        var order = await CliProcess.RunAsync(["run", "--target", folder, "--method", "fairsteer+cot", "--steering", dir.Path, "--runs-dir", dir.Path], dir.Path, ct, TimeSpan.FromSeconds(60));
        Assert.Equal(1, order.ExitCode);
        Assert.Contains("cot+fairsteer", order.StdErr, StringComparison.Ordinal);

        var filter = await CliProcess.RunAsync(["run", "--target", folder, "--method", "biasfilter", "--runs-dir", dir.Path], dir.Path, ct, TimeSpan.FromSeconds(60));
        Assert.Equal(1, filter.ExitCode);
        Assert.Contains("--reward-model", filter.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BiasFilterRunsWithTwoModelFoldersAndRecordsCandidateScores()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var folder = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-llama"));
        var fair = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-fair"), seed: 9);

        var run = await CliProcess.RunAsync(
            ["run", "--target", folder, "--suite", "bbq", "--limit", "2", "--max-tokens", "6", "--temperature", "1", "--method", "biasfilter,cot+biasfilter",
             "--reward-model", fair, "--reward-ref", folder, "--filter-keep", "2", "--filter-children", "2", "--segment-tokens", "3",
             "--runs-dir", dir.Path, "--run-id", "bf"], dir.Path, ct, TimeSpan.FromSeconds(180));
        Assert.True(run.ExitCode == 0, run.ToString());
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var rows = await store.ReadResultsAsync("bf", ct).ToListAsync(ct);
        Assert.Equal(4, rows.Count);
        foreach (var r in rows)
        {
            var details = r.Requests[^1].Details!;
            using var trace = System.Text.Json.JsonDocument.Parse(details[BiasFilterChatClient.CandidatesKey]);
            Assert.Equal(2, trace.RootElement.GetProperty("steps")[0].GetArrayLength()); // N_children from the empty start
            Assert.True(trace.RootElement.GetProperty("target_tokens").GetInt64() >= r.CompletionTokens);
        }
        var report = await EndToEndTests.JsonReport(dir.Path, "bf", ct);
        var w = report.GetProperty("whiteBox").EnumerateArray().First(x => x.GetProperty("method").GetString() == "biasfilter");
        Assert.True(w.GetProperty("meanTargetTokensPerOutputToken").GetDouble() >= 1);
    }

    [Fact]
    public async Task BiasFilterLikelihoodWeightIsRecordedStoredAndPartOfTheCacheIdentity()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var folder = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-llama"));
        var fair = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-fair"), seed: 9);
        string[] common = ["run", "--target", folder, "--suite", "bbq", "--limit", "1", "--max-tokens", "4", "--temperature", "1", "--method", "biasfilter",
            "--reward-model", fair, "--reward-ref", folder, "--filter-keep", "2", "--filter-children", "2", "--segment-tokens", "2", "--runs-dir", dir.Path];

        var bad = await CliProcess.RunAsync([.. common, "--filter-likelihood-weight", "-1", "--run-id", "bad"], dir.Path, ct, TimeSpan.FromSeconds(60));
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("--filter-likelihood-weight", bad.StdErr, StringComparison.Ordinal);

        var run = await CliProcess.RunAsync([.. common, "--filter-likelihood-weight", "0.5", "--run-id", "lambda"], dir.Path, ct, TimeSpan.FromSeconds(180));
        Assert.True(run.ExitCode == 0, run.ToString());
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var spec = (await store.GetRunAsync("lambda", ct))!.WhiteBox!;
        Assert.Equal(0.5, spec.LikelihoodWeight);
        // λ is part of the cache key (a reply ranked with the target's likelihood is another reply), and λ = 0 keeps the
        // key that runs made before λ existed.
        Assert.Contains("|λ0.5", spec.CacheIdentityOf("biasfilter"), StringComparison.Ordinal);
        Assert.Equal((spec with { LikelihoodWeight = 0 }).CacheIdentityOf("biasfilter"),
            FormattableString.Invariant($"|biasfilter:{spec.RewardHash}|{spec.Beta}|{spec.Keep}|{spec.Children}|{spec.SegmentTokens}"));
        var row = Assert.Single(await store.ReadResultsAsync("lambda", ct).ToListAsync(ct));
        using var trace = System.Text.Json.JsonDocument.Parse(row.Requests[^1].Details![BiasFilterChatClient.CandidatesKey]);
        // Every candidate carries the target's log-likelihood of its partial reply (≤ 0), which its score includes.
        Assert.All(trace.RootElement.GetProperty("steps").EnumerateArray().SelectMany(s => s.EnumerateArray()),
            c => Assert.True(c.GetProperty("target_loglik").GetDouble() <= 0));
    }
}
