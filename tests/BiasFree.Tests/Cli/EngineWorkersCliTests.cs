using System.Text.Json;
using BiasFree.Engine.DemoModel;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Cli;

/// <summary>
/// `biasfree run --engine-workers`: the demo model (a tiny random model made here) answers a seeded sampled run with the
/// same replies on one model worker as on two, and the progress line reports both workers.
/// </summary>
public class EngineWorkersCliTests
{
    private static Dictionary<string, string?> DemoAt(string folder) => new() { [DemoModel.PathEnvironmentVariable] = folder };

    private static List<string> Responses(string jsonl) =>
        [.. jsonl.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement)
            .OrderBy(r => r.GetProperty("probeId").GetString(), StringComparer.Ordinal)
            .Select(r => r.GetProperty("probeId").GetString() + "\u0001" + r.GetProperty("response").GetString())];

    [Fact]
    public async Task TwoWorkersGiveTheSameRepliesAsOne()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var demo = TinyModelFolder.Create(Path.Combine(dir.Path, "demo"));
        string[] common = ["run", "--suite", "bbq", "--limit", "24", "--max-tokens", "8", "--seed", "4", "--no-cache", "--runs-dir", dir.Path];

        var one = await CliProcess.RunAsync([.. common, "--run-id", "one", "--engine-workers", "1"], dir.Path, ct, TimeSpan.FromSeconds(180), DemoAt(demo));
        Assert.True(one.ExitCode == 0, one.ToString());
        var two = await CliProcess.RunAsync([.. common, "--run-id", "two", "--engine-workers", "2"], dir.Path, ct, TimeSpan.FromSeconds(180), DemoAt(demo));
        Assert.True(two.ExitCode == 0, two.ToString());
        Assert.Contains("/32 ×2 (", two.StdOut, StringComparison.Ordinal);
        Assert.DoesNotContain(" ×2 (", one.StdOut, StringComparison.Ordinal);

        var first = Responses((await CliProcess.RunAsync(["report", "one", "--format", "jsonl", "--runs-dir", dir.Path], dir.Path, ct)).StdOut);
        var second = Responses((await CliProcess.RunAsync(["report", "two", "--format", "jsonl", "--runs-dir", dir.Path], dir.Path, ct)).StdOut);
        Assert.Equal(24, first.Count);
        Assert.Equal(first, second);
        Assert.True(first.Select(r => r[(r.IndexOf('\u0001') + 1)..]).Distinct().Count() > 1, "all replies alike: the comparison would prove nothing");
    }

    [Fact]
    public async Task ZeroWorkersIsAUserError()
    {
        using var dir = new TempDir();
        var demo = TinyModelFolder.Create(Path.Combine(dir.Path, "demo"));
        var r = await CliProcess.RunAsync(["run", "--limit", "1", "--engine-workers", "0", "--runs-dir", dir.Path], dir.Path,
            TestContext.Current.CancellationToken, TimeSpan.FromSeconds(120), DemoAt(demo));
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains("--engine-workers must be at least 1", r.StdErr, StringComparison.Ordinal);
    }
}
