using System.Text.Json.Nodes;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Cli;

/// <summary>The real CLI: <c>train</c> on a tiny model folder, then <c>run --target OUT</c> and <c>run --target BASE --adapter</c>.</summary>
public class TrainEndToEndTests
{
    private static string[] TrainArgs(string method, string baseDir, string outDir, int steps, int checkpointEvery = 5) =>
        ["train", "--method", method, "--base", baseDir, "--data", "generated", "--out", outDir, "--steps", steps.ToString(System.Globalization.CultureInfo.InvariantCulture),
         "--batch-size", "4", "--lora-rank", "4", "--learning-rate", "0.005", "--val-share", "0.2", "--eval-every", "5",
         "--checkpoint-every", checkpointEvery.ToString(System.Globalization.CultureInfo.InvariantCulture), "--seed", "3", "--threads", "1"];

    [Fact]
    public async Task TrainedFolderAndAdapterAreRunTargets()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var baseDir = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-base"));
        var outDir = Path.Combine(dir.Path, "tiny-dpo");

        var train = await CliProcess.RunAsync(TrainArgs("dpo", baseDir, outDir, steps: 6), dir.Path, ct, TimeSpan.FromSeconds(120));
        Assert.True(train.ExitCode == 0, train.ToString());
        Assert.Contains("progress step 6/6 · loss", train.StdOut, StringComparison.Ordinal);
        Assert.Contains("tok/s · ETA", train.StdOut, StringComparison.Ordinal);
        Assert.Contains("reward acc", train.StdOut, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(outDir, "adapter", "adapter_config.json")));
        Assert.Equal("dpo", JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "training.json")))!["method"]!.GetValue<string>());

        var merged = await CliProcess.RunAsync(["run", "--target", outDir, "--suite", "bbq", "--limit", "3", "--max-tokens", "4", "--runs-dir", dir.Path, "--run-id", "merged"],
            dir.Path, ct, TimeSpan.FromSeconds(120));
        Assert.True(merged.ExitCode == 0, merged.ToString());
        var adapted = await CliProcess.RunAsync(["run", "--target", baseDir, "--adapter", Path.Combine(outDir, "adapter"), "--suite", "bbq", "--limit", "3",
            "--max-tokens", "4", "--runs-dir", dir.Path, "--run-id", "adapted"], dir.Path, ct, TimeSpan.FromSeconds(120));
        Assert.True(adapted.ExitCode == 0, adapted.ToString());
        // Same weights, merged or not: the greedy replies agree.
        var a = await EndToEndTests.JsonReport(dir.Path, "merged", ct);
        var b = await EndToEndTests.JsonReport(dir.Path, "adapted", ct);
        Assert.Equal(EndToEndTests.Row(a, "none").GetProperty("bfs").ToString(), EndToEndTests.Row(b, "none").GetProperty("bfs").ToString());

        var bad = await CliProcess.RunAsync(["run", "--target", baseDir, "--adapter", dir.Path, "--suite", "bbq", "--limit", "1", "--runs-dir", dir.Path], dir.Path, ct);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("not a PEFT adapter folder", bad.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KilledTrainingResumesToTheSameWeights()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var baseDir = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-base"));
        const int steps = 400;

        var straightDir = Path.Combine(dir.Path, "straight");
        var straight = await CliProcess.RunAsync(TrainArgs("sft", baseDir, straightDir, steps), dir.Path, ct, TimeSpan.FromSeconds(300));
        Assert.True(straight.ExitCode == 0, straight.ToString());

        // Start the same training, wait for its first checkpoint, then kill -9 it.
        var killedDir = Path.Combine(dir.Path, "killed");
        await CliProcess.KillAtFirstCheckpointAsync(TrainArgs("sft", baseDir, killedDir, steps), dir.Path, killedDir, TimeSpan.FromMinutes(3), ct);
        Assert.False(File.Exists(Path.Combine(killedDir, "training.json")));

        var resumed = await CliProcess.RunAsync(TrainArgs("sft", baseDir, killedDir, steps), dir.Path, ct, TimeSpan.FromSeconds(300));
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Contains("Resumed from step", resumed.StdOut, StringComparison.Ordinal);
        Assert.True(JsonNode.Parse(File.ReadAllText(Path.Combine(killedDir, "training.json")))!["resumed_from_step"]!.GetValue<int>() > 0);

        SameWeights.Assert(straightDir, killedDir, "model.safetensors", Path.Combine("adapter", "adapter_model.safetensors"));
    }

    [Fact]
    public async Task KilledSafeRlhfResumesToTheSameWeights()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var baseDir = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-base"));
        string[] Args(string outDir) =>
            ["train", "--method", "safe-rlhf", "--base", baseDir, "--data", "generated", "--out", outDir, "--rl-iterations", "300", "--score-model-steps", "4",
             "--rl-prompts", "2", "--rl-samples", "2", "--rl-max-tokens", "4", "--checkpoint-every", "5", "--batch-size", "4", "--lora-rank", "4",
             "--cost-limit", "-1", "--seed", "3", "--threads", "1"];

        var straightDir = Path.Combine(dir.Path, "straight");
        var straight = await CliProcess.RunAsync(Args(straightDir), dir.Path, ct, TimeSpan.FromSeconds(300));
        Assert.True(straight.ExitCode == 0, straight.ToString());

        // Kill -9 once the policy phase has checkpointed (the score models are in that checkpoint too).
        var killedDir = Path.Combine(dir.Path, "killed");
        var state = Path.Combine(killedDir, "checkpoint", "state.json");
        await CliProcess.KillWhenAsync(Args(killedDir), dir.Path, () => PolicyIteration(state) >= 1, TimeSpan.FromMinutes(3), ct);
        Assert.False(File.Exists(Path.Combine(killedDir, "training.json")));

        var resumed = await CliProcess.RunAsync(Args(killedDir), dir.Path, ct, TimeSpan.FromSeconds(300));
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Contains("Resumed from step", resumed.StdOut, StringComparison.Ordinal);
        var record = JsonNode.Parse(File.ReadAllText(Path.Combine(killedDir, "training.json")))!;
        Assert.True(record["resumed_from_iteration"]!.GetValue<int>() > 0);
        Assert.False(Directory.Exists(Path.Combine(killedDir, "checkpoint")));
        // The λ trajectory continues exactly: the same per-iteration history as the uninterrupted run.
        var straightRecord = JsonNode.Parse(File.ReadAllText(Path.Combine(straightDir, "training.json")))!;
        Assert.Equal(straightRecord["iterations"]!.ToJsonString(), record["iterations"]!.ToJsonString());

        SameWeights.Assert(straightDir, killedDir, "model.safetensors", Path.Combine("adapter", "adapter_model.safetensors"));
    }

    /// <summary>The policy iteration of a Safe-RLHF checkpoint (-1 while there is none or it is being swapped).</summary>
    private static int PolicyIteration(string stateFile)
    {
        try
        {
            return File.Exists(stateFile) ? JsonNode.Parse(File.ReadAllText(stateFile))!["iteration"]!.GetValue<int>() : -1;
        }
        catch (Exception e) when (e is IOException or System.Text.Json.JsonException)
        {
            return -1;
        }
    }

    [Fact]
    public async Task TrainDataWritesLlamaFactoryFilesAndTrainRejectsBadSettings()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var file = Path.Combine(dir.Path, "dpo.json");
        var export = await CliProcess.RunAsync(["train-data", "--data", "generated", "--count", "40", "--balance", "--seed", "1", "--shape", "dpo", "--out", file], dir.Path, ct);
        Assert.True(export.ExitCode == 0, export.ToString());
        Assert.Contains("Wrote 40 records", export.StdOut, StringComparison.Ordinal);
        Assert.Equal(40, JsonNode.Parse(File.ReadAllText(file))!.AsArray().Count);

        var baseDir = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-base"));
        var bad = await CliProcess.RunAsync(["train", "--method", "sft", "--base", baseDir, "--out", Path.Combine(dir.Path, "o"), "--lora-rank", "0"], dir.Path, ct);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("LoraRank", bad.StdErr, StringComparison.Ordinal);
        var noPairs = await CliProcess.RunAsync(["train", "--method", "dpo", "--base", baseDir, "--out", Path.Combine(dir.Path, "o"), "--data", "llamafactory:" + file + ".missing"], dir.Path, ct);
        Assert.Equal(1, noPairs.ExitCode);
        Assert.Contains("data file not found", noPairs.StdErr, StringComparison.Ordinal);
    }
}
