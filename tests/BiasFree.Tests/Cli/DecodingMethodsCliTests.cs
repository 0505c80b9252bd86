using BiasFree.Runs;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Cli;

/// <summary><c>biasfree run --method persona-judge</c> and its baselines through the real CLI, on a tiny model folder.</summary>
public class DecodingMethodsCliTests
{
    [Fact]
    public async Task PersonaJudgeRunsBesidePromptingMethodsAndIsStoredWithItsSettings()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var folder = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-llama"));

        var run = await CliProcess.RunAsync(
            ["run", "--target", folder, "--suite", "bbq", "--limit", "3", "--max-tokens", "6", "--temperature", "1",
             "--method", "none,persona-judge,judge-persona,self-awareness+persona-judge", "--judge-persona", "Be fair.", "--draft-tokens", "2", "--persona-schedule", "swap-once",
             "--runs-dir", dir.Path, "--run-id", "pj"], dir.Path, ct, TimeSpan.FromSeconds(120));
        Assert.True(run.ExitCode == 0, run.ToString());
        // Both persona-judge methods (alone and under self-awareness) share one strategy: 2 × 3 replies.
        Assert.Contains("persona-judge (swap-once, γ 2): 6 replies decoded", run.StdOut, StringComparison.Ordinal);

        var report = await EndToEndTests.JsonReport(dir.Path, "pj", ct);
        Assert.Equal(3, EndToEndTests.Row(report, "persona-judge").GetProperty("responses").GetInt32());
        Assert.Equal(3, EndToEndTests.Row(report, "judge-persona").GetProperty("responses").GetInt32());
        Assert.Equal(3, EndToEndTests.Row(report, "self-awareness+persona-judge").GetProperty("responses").GetInt32());
        Assert.Equal(0, report.GetProperty("totals").GetProperty("targetErrors").GetInt32());

        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var spec = await store.GetRunAsync("pj", ct);
        Assert.Equal(new PersonaJudgeSpec("You are a helpful assistant.", "Be fair.", 2, "swap-once"), spec!.PersonaJudge);
        Assert.Contains("|persona-judge=", spec.TargetKey, StringComparison.Ordinal);
        // The judge persona's baseline really sent the persona as the system message.
        var rows = new List<ResultRecord>();
        await foreach (var r in store.ReadResultsAsync("pj", ct)) rows.Add(r);
        Assert.All(rows.Where(r => r.Method == "judge-persona"), r => Assert.Equal("Be fair.", r.Requests[0].Messages[0].Text));
        Assert.All(rows.Where(r => r.Method == "persona-judge"), r => Assert.True(r.CompletionTokens > 0 || r.Response == ""));
    }

    [Fact]
    public async Task DecodingMethodsAreRefusedForAServerAndTheirOptionsWithoutThem()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var server = await CliProcess.RunAsync(
            ["run", "--target", "http://127.0.0.1:9/v1", "--model", "m", "--method", "persona-judge", "--runs-dir", dir.Path], dir.Path, ct, TimeSpan.FromSeconds(60));
        Assert.NotEqual(0, server.ExitCode);
        Assert.Contains("in-process model", server.StdErr, StringComparison.Ordinal);

        var folder = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-llama"));
        var stray = await CliProcess.RunAsync(
            ["run", "--target", folder, "--method", "none", "--draft-tokens", "3", "--runs-dir", dir.Path], dir.Path, ct, TimeSpan.FromSeconds(60));
        Assert.NotEqual(0, stray.ExitCode);
        Assert.Contains("--draft-tokens", stray.StdErr, StringComparison.Ordinal);
    }
}
