using System.Globalization;
using System.Text.Json.Nodes;
using BiasFree.Engine.Decoding.Ivo;
using BiasFree.Runs;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Cli;

/// <summary><c>biasfree value train</c> and <c>run --method ivo|ivo-block</c> end to end on a tiny model folder.</summary>
public class IvoCliTests
{
    private static string[] TrainArgs(string baseDir, string outDir, int iterations, int fitSteps) =>
        ["value", "train", "--model", baseDir, "--out", outDir, "--prompts", "8", "--rollouts", "2", "--iterations", iterations.ToString(CultureInfo.InvariantCulture),
         "--fit-steps", fitSteps.ToString(CultureInfo.InvariantCulture), "--batch-size", "4", "--lora-rank", "4", "--max-tokens", "4", "--checkpoint-every", "5",
         "--seed", "3", "--threads", "1"];

    [Fact]
    public async Task KilledValueTrainingResumesToTheSameWeights()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var baseDir = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-base"));
        const int steps = 300;

        var straightDir = Path.Combine(dir.Path, "straight");
        var straight = await CliProcess.RunAsync(TrainArgs(baseDir, straightDir, 1, steps), dir.Path, ct, TimeSpan.FromSeconds(600));
        Assert.True(straight.ExitCode == 0, straight.ToString());

        // Start the same training, wait for its first checkpoint, then kill -9 it.
        var killedDir = Path.Combine(dir.Path, "killed");
        await CliProcess.KillAtFirstCheckpointAsync(TrainArgs(baseDir, killedDir, 1, steps), dir.Path, killedDir, TimeSpan.FromMinutes(5), ct);
        Assert.False(File.Exists(Path.Combine(killedDir, ValueTrainer.RecordFile)));

        var resumed = await CliProcess.RunAsync(TrainArgs(baseDir, killedDir, 1, steps), dir.Path, ct, TimeSpan.FromSeconds(600));
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Contains("Resumed from checkpoint", resumed.StdOut, StringComparison.Ordinal);
        Assert.NotNull(JsonNode.Parse(File.ReadAllText(Path.Combine(killedDir, ValueTrainer.RecordFile)))!["resumed_from_round"]);
        Assert.False(Directory.Exists(Path.Combine(killedDir, "checkpoint")));

        SameWeights.Assert(straightDir, killedDir, "model.safetensors", "score_head.safetensors");
        // Each round's value model is kept, also across the kill: V0 as it stood after round 0's fit, V1 = the final one.
        Assert.Equal([0, 1], ValueTrainer.RoundModels(killedDir).Select(r => r.Round));
        foreach (var round in new[] { "V0", "V1" })
            SameWeights.Assert(Path.Combine(straightDir, ValueTrainer.RoundsDir, round), Path.Combine(killedDir, ValueTrainer.RoundsDir, round), "model.safetensors", "score_head.safetensors");
        SameWeights.Assert(straightDir, Path.Combine(killedDir, ValueTrainer.RoundsDir, "V1"), "model.safetensors", "score_head.safetensors");
        // The rounds' rewards (rollouts sampled before and after the kill) are the same too.
        static string Rounds(string d) => JsonNode.Parse(File.ReadAllText(Path.Combine(d, ValueTrainer.RecordFile)))!["rounds"]!.ToJsonString();
        Assert.Equal(Rounds(straightDir), Rounds(killedDir));
        Assert.Equal(3, JsonNode.Parse(Rounds(straightDir))!.AsArray().Count); // base, guided by V0, final (guided by V1)
    }

    [Fact]
    public async Task IvoRunsAsMethodsRecordsValueDetailsAndBetaZeroReproducesPlainSampling()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var baseDir = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-base"));
        var valueDir = Path.Combine(dir.Path, "value");
        var train = await CliProcess.RunAsync(TrainArgs(baseDir, valueDir, 0, 5), dir.Path, ct, TimeSpan.FromSeconds(300));
        Assert.True(train.ExitCode == 0, train.ToString());
        Assert.Contains("mean reward", train.StdOut, StringComparison.Ordinal);

        // β = 0: tokenwise IVO runs the value model at every step but must leave the seeded samples unchanged.
        string[] common = ["run", "--target", baseDir, "--suite", "bbq", "--limit", "4", "--max-tokens", "6", "--temperature", "1", "--seed", "2",
            "--runs-dir", dir.Path, "--value-model", valueDir];
        var run = await CliProcess.RunAsync([.. common, "--run-id", "ivo", "--method", "none,ivo,ivo-block,cot+ivo", "--ivo-beta", "0"], dir.Path, ct, TimeSpan.FromSeconds(300));
        Assert.True(run.ExitCode == 0, run.ToString());

        await using (var store = await RunStore.OpenDirectoryAsync(dir.Path, ct))
        {
            var rows = await store.ReadResultsAsync("ivo", ct).ToListAsync(ct);
            string Reply(string method, string probe) => rows.Single(r => r.Method == method && r.ProbeId == probe).Response!;
            var probes = rows.Select(r => r.ProbeId).Distinct().ToList();
            Assert.Equal(4, probes.Count);
            Assert.All(probes, p => Assert.Equal(Reply("none", p), Reply("ivo", p)));
            var details = rows.First(r => r.Method == "ivo").Requests[0].Details!;
            Assert.Equal("tokenwise", details[IvoChatClient.ModeKey]);
            Assert.Contains("beta=0", details[IvoChatClient.SettingsKey], StringComparison.Ordinal);
            Assert.True(long.Parse(details[IvoChatClient.ValueEvaluationsKey], CultureInfo.InvariantCulture) >= 10);
            Assert.Equal("blockwise", rows.First(r => r.Method == "ivo-block").Requests[0].Details![IvoChatClient.ModeKey]);
            Assert.Equal(0.0, (await store.GetRunAsync("ivo", ct))!.Ivo!.Beta); // stored for resume
        }

        var report = await EndToEndTests.JsonReport(dir.Path, "ivo", ct);
        var whiteBox = report.GetProperty("whiteBox").EnumerateArray().ToDictionary(w => w.GetProperty("method").GetString()!);
        Assert.Equal(["cot+ivo", "ivo", "ivo-block"], whiteBox.Keys.Order(StringComparer.Ordinal));
        foreach (var w in whiteBox.Values)
        {
            Assert.Equal(4, w.GetProperty("replies").GetInt32());
            Assert.True(double.IsFinite(w.GetProperty("meanValue").GetDouble()));
            Assert.True(w.GetProperty("meanValueEvaluations").GetDouble() >= 1);
        }
        // Blockwise samples W·B blocks and keeps one: it costs more than one target token per output token.
        Assert.True(whiteBox["ivo-block"].GetProperty("meanTargetTokensPerOutputToken").GetDouble() > 1);

        var noValue = await CliProcess.RunAsync(["run", "--target", baseDir, "--suite", "bbq", "--limit", "1", "--method", "ivo", "--runs-dir", dir.Path], dir.Path, ct);
        Assert.Equal(1, noValue.ExitCode);
        Assert.Contains("--value-model", noValue.StdErr, StringComparison.Ordinal);
        var stray = await CliProcess.RunAsync(["run", "--target", baseDir, "--suite", "bbq", "--limit", "1", "--method", "none", "--value-model", valueDir, "--runs-dir", dir.Path], dir.Path, ct);
        Assert.Equal(1, stray.ExitCode);
        Assert.Contains("apply only to --method ivo", stray.StdErr, StringComparison.Ordinal);
    }
}
