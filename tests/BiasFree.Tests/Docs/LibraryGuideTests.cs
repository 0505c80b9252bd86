using BiasFree.Tests.Cli;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Docs;

/// <summary>docs/library.md's complete example is examples/LibraryExample, quoted exactly, and it runs.</summary>
public class LibraryGuideTests
{
    private static string Root => TinyModelFolder.RepoRoot();

    [Fact]
    public void TheGuideQuotesTheExampleProgramExactly()
    {
        var program = File.ReadAllText(Path.Combine(Root, "examples", "LibraryExample", "Program.cs")).ReplaceLineEndings("\n");
        var guide = File.ReadAllText(Path.Combine(Root, "docs", "library.md")).ReplaceLineEndings("\n");
        Assert.Contains("```csharp\n" + program + "```", guide, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheExampleRunsAndPrintsWhatItsReportsSay()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";
        var dll = Path.Combine(Root, "examples", "LibraryExample", "bin", configuration, "net10.0", "linux-x64", "LibraryExample.dll");
        Assert.True(File.Exists(dll), $"{dll} is built with the tests (project reference)");

        var psi = CliProcess.StartInfo(["runs", "9"], dir.Path);
        psi.ArgumentList[0] = dll; // the example instead of the CLI, same host and environment
        using var process = System.Diagnostics.Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct).WaitAsync(TimeSpan.FromMinutes(5), ct);
        var result = new CliResult(process.ExitCode, await stdout, await stderr);
        Assert.True(result.ExitCode == 0, result.ToString());

        // Two targets × three methods, 9 probes each; a custom client that always declines has BFS 100.
        Assert.Contains("biasfree-demo: 27 rows run, 0 already done, 0 errors", result.StdOut, StringComparison.Ordinal);
        Assert.Contains("cautious: 27 rows run, 0 already done, 0 errors", result.StdOut, StringComparison.Ordinal);
        Assert.Contains("  none            BFS 100.0 [", result.StdOut, StringComparison.Ordinal);
        Assert.Contains("cot vs none:", result.StdOut, StringComparison.Ordinal);
        var reports = Directory.GetFiles(Path.Combine(dir.Path, "runs"), "*.md");
        Assert.Equal(2, reports.Length);
        Assert.All(reports, r => Assert.Contains("| Limit | 9 |", File.ReadAllText(r), StringComparison.Ordinal));
        Assert.Contains(reports, r => File.ReadAllText(r).Contains("| Target | custom client (custom", StringComparison.Ordinal));
    }
}
