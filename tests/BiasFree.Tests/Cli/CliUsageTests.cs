using BiasFree.Probes;
using BiasFree.Runs;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Cli;

/// <summary>The real CLI's listing commands and its handling of user mistakes.</summary>
public class CliUsageTests
{
    [Theory]
    [InlineData(new[] { "run", "--target", "http://127.0.0.1:1/v1", "--model", "m" }, "cannot reach the target")]
    [InlineData(new[] { "run", "--target", "not a url", "--model", "m" }, "is not an http(s) URL")]
    [InlineData(new[] { "run", "--target", "http://127.0.0.1:1/v1", "--model", "m", "--method", "nonsense" }, "unknown method 'nonsense'")]
    [InlineData(new[] { "run", "--target", "http://127.0.0.1:1/v1", "--model", "m", "--suite", "no-such-suite" }, "no-such-suite")]
    [InlineData(new[] { "report", "missing-run" }, "no run store")]
    [InlineData(new[] { "run", "--resume", "missing-run" }, "no run store")]
    [InlineData(new[] { "suites", "show", "no-such-suite" }, "no-such-suite")]
    [InlineData(new[] { "run", "--resume", "r1", "--method", "cot" }, "drop --method")]
    [InlineData(new[] { "run", "--target", "http://127.0.0.1:1/v1", "--model", "m", "--concurrency", "0" }, "--concurrency must be between")]
    [InlineData(new[] { "report", "r1", "--format", "html" }, "unknown report format 'html'")]
    [InlineData(new[] { "run", "--target", "http://127.0.0.1:1/v1", "--model", "m", "--bootstrap", "-1" }, "--bootstrap must be 0")]
    [InlineData(new[] { "run", "--target", "http://127.0.0.1:1/v1", "--model", "m", "--method", "none,cot", "--baseline", "self-help" }, "--baseline 'self-help' is not a method")]
    [InlineData(new[] { "run", "--target", "http://user:sk-secret@127.0.0.1:1/v1", "--model", "m" }, "must not contain user info")]
    [InlineData(new[] { "run", "--target", "http://127.0.0.1:1/v1?api_key=sk-secret", "--model", "m" }, "must not contain user info")]
    public async Task UserMistakesGiveAClearErrorWithoutAStackTrace(string[] args, string message)
    {
        using var dir = new TempDir();
        var r = await CliProcess.RunAsync(args, dir.Path, TestContext.Current.CancellationToken);
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains(message, r.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", r.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AMalformedSuiteFileIsReportedWithFileAndLine()
    {
        using var dir = new TempDir();
        var file = Path.Combine(dir.Path, "bad.jsonl");
        var good = await CliProcess.RunAsync(["suites", "show", "bbq"], dir.Path, TestContext.Current.CancellationToken);
        Assert.True(good.ExitCode == 0, good.ToString());
        await File.WriteAllTextAsync(file, "{\"id\": \"a\"}\n{ this is not json\n", TestContext.Current.CancellationToken);
        foreach (var args in new[] { new[] { "suites", "show", $"jsonl:{file}" }, ["run", "--suite", $"bbq-jsonl:{file}", "--target", "http://127.0.0.1:1/v1", "--model", "m"] })
        {
            var r = await CliProcess.RunAsync(args, dir.Path, TestContext.Current.CancellationToken);
            Assert.True(r.ExitCode == 1, r.ToString());
            Assert.Matches(@"bad\.jsonl:\d+", r.StdErr);
            Assert.DoesNotContain("   at ", r.StdErr, StringComparison.Ordinal);
        }
        Assert.False(File.Exists(Path.Combine(dir.Path, "runs", RunStore.FileName)), "no run is recorded for a bad suite");
    }

    [Fact]
    public async Task SuitesListsBuiltInsWithCounts()
    {
        using var dir = new TempDir();
        var r = await CliProcess.RunAsync(["suites"], dir.Path, TestContext.Current.CancellationToken);
        Assert.True(r.ExitCode == 0, r.ToString());
        foreach (var suite in SuiteRegistry.BuiltIns(0))
        {
            Assert.Contains(suite.Name, r.StdOut, StringComparison.Ordinal);
            Assert.Contains(suite.Load().Count.ToString(System.Globalization.CultureInfo.InvariantCulture), r.StdOut, StringComparison.Ordinal);
        }
        var show = await CliProcess.RunAsync(["suites", "show", "bbq"], dir.Path, TestContext.Current.CancellationToken);
        Assert.True(show.ExitCode == 0, show.ToString());
        Assert.Contains("Sample probe", show.StdOut, StringComparison.Ordinal);
    }
}
