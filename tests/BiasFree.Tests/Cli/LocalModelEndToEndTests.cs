using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Cli;

/// <summary>The real CLI with <c>--target FOLDER</c>: a tiny random Llama in Hugging Face format, run in-process by the engine.</summary>
public class LocalModelEndToEndTests
{
    [Fact]
    public async Task ALocalModelFolderIsATarget()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var folder = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-llama"));

        var run = await CliProcess.RunAsync(
            ["run", "--target", folder, "--suite", "bbq", "--limit", "3", "--max-tokens", "4", "--method", "none,self-awareness",
             "--runs-dir", dir.Path, "--run-id", "local"], dir.Path, ct, TimeSpan.FromSeconds(120));
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("against tiny-llama", run.StdOut, StringComparison.Ordinal);

        var report = await EndToEndTests.JsonReport(dir.Path, "local", ct);
        Assert.Equal(3, EndToEndTests.Row(report, "none").GetProperty("responses").GetInt32());
        Assert.Equal(3, EndToEndTests.Row(report, "self-awareness").GetProperty("responses").GetInt32());
        Assert.Equal(0, report.GetProperty("totals").GetProperty("targetErrors").GetInt32());
        Assert.True(report.GetProperty("totals").GetProperty("completionTokens").GetInt64() > 0);
    }
}
