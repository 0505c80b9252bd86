using System.Text.Json.Nodes;
using BiasFree.Runs;
using BiasFree.Tests.Infrastructure;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Cli;

/// <summary><c>biasfree run --method diffpo</c> over a loopback server and <c>biasfree diffpo train</c> (kill -9 and resume), through the real CLI.</summary>
public class DiffPoCliTests
{
    private static string[] TrainArgs(string baseDir, string outDir, int steps) =>
        ["diffpo", "train", "--base", baseDir, "--out", outDir, "--count", "40", "--steps", steps.ToString(System.Globalization.CultureInfo.InvariantCulture),
         "--batch-size", "4", "--lora-rank", "4", "--learning-rate", "0.005", "--eval-every", "5", "--checkpoint-every", "5", "--max-length", "1024",
         "--seed", "3", "--threads", "1"];

    [Fact]
    public async Task DiffPoRefinesAServersAnswersAndIsStoredWithItsAligner()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var aligner = TinyModelFolder.Create(Path.Combine(dir.Path, "aligner"));
        await using var server = LoopbackChatServer.Start("The retiree");
        var run = await CliProcess.RunAsync(
            ["run", "--target", server.BaseUrl.ToString(), "--model", "m", "--suite", "bbq", "--limit", "3", "--max-tokens", "5",
             "--method", "none,diffpo,self-awareness+diffpo", "--aligner", aligner, "--diffpo-reserve", "0", "--diffpo-window", "4",
             "--runs-dir", dir.Path, "--run-id", "dp"], dir.Path, ct, TimeSpan.FromSeconds(120));
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("diffpo: 6 answers refined", run.StdOut, StringComparison.Ordinal);
        Assert.Equal(9, server.Requests.Count); // refinements never reach the server

        await using (var store = await RunStore.OpenDirectoryAsync(dir.Path, ct))
        {
            var spec = await store.GetRunAsync("dp", ct);
            Assert.Equal(new DiffPoSpec(Path.GetFullPath(aligner), BiasFree.Engine.Evaluations.LocalTargets.ContentHash(aligner), 4, 1000, 0), spec!.DiffPo);
            Assert.Contains("|diffpo=", spec.TargetKey, StringComparison.Ordinal);
        }
        var report = await CliProcess.RunAsync(["report", "dp", "--runs-dir", dir.Path, "--format", "md"], dir.Path, ct);
        Assert.True(report.ExitCode == 0, report.ToString());
        Assert.Contains("## DiffPO refinement", report.StdOut, StringComparison.Ordinal);
        Assert.Contains("| m | self-awareness+diffpo | 3 |", report.StdOut, StringComparison.Ordinal);

        // A resumed run reloads the same aligner and has nothing left to do.
        var resumed = await CliProcess.RunAsync(["run", "--resume", "dp", "--runs-dir", dir.Path], dir.Path, ct, TimeSpan.FromSeconds(120));
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Equal(9, server.Requests.Count);
    }

    [Fact]
    public async Task DiffPoMustBeInnermostAndItsOptionsNeedIt()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var outer = await CliProcess.RunAsync(["run", "--method", "diffpo+cot", "--limit", "1", "--runs-dir", dir.Path], dir.Path, ct, TimeSpan.FromSeconds(60));
        Assert.NotEqual(0, outer.ExitCode);
        Assert.Contains("must come last", outer.StdErr, StringComparison.Ordinal);
        var stray = await CliProcess.RunAsync(["run", "--method", "none", "--diffpo-reserve", "0", "--limit", "1", "--runs-dir", dir.Path], dir.Path, ct, TimeSpan.FromSeconds(60));
        Assert.NotEqual(0, stray.ExitCode);
        Assert.Contains("--diffpo-reserve", stray.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KilledAlignerTrainingResumesToTheSameWeights()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var baseDir = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-base"));
        const int steps = 120;

        var straightDir = Path.Combine(dir.Path, "straight");
        var straight = await CliProcess.RunAsync(TrainArgs(baseDir, straightDir, steps), dir.Path, ct, TimeSpan.FromSeconds(400));
        Assert.True(straight.ExitCode == 0, straight.ToString());
        Assert.Contains("L_Con", straight.StdOut, StringComparison.Ordinal);
        var record = JsonNode.Parse(File.ReadAllText(Path.Combine(straightDir, "diffpo_training.json")))!;
        Assert.Equal(steps, record["steps"]!.GetValue<int>());

        // Start the same training, wait for its first checkpoint, then kill -9 it.
        var killedDir = Path.Combine(dir.Path, "killed");
        await CliProcess.KillAtFirstCheckpointAsync(TrainArgs(baseDir, killedDir, steps), dir.Path, killedDir, TimeSpan.FromMinutes(3), ct);
        Assert.False(File.Exists(Path.Combine(killedDir, "diffpo_training.json")));

        var resumed = await CliProcess.RunAsync(TrainArgs(baseDir, killedDir, steps), dir.Path, ct, TimeSpan.FromSeconds(400));
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Contains("Resumed from step", resumed.StdOut, StringComparison.Ordinal);
        Assert.True(JsonNode.Parse(File.ReadAllText(Path.Combine(killedDir, "diffpo_training.json")))!["resumed_from_step"]!.GetValue<int>() > 0);

        SameWeights.Assert(straightDir, killedDir, "model.safetensors", Path.Combine("adapter", "adapter_model.safetensors"));
    }
}
