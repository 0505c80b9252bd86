using System.Globalization;
using System.Text.RegularExpressions;
using BiasFree.Tests.Cli;

namespace BiasFree.Tests.Docs;

/// <summary>
/// docs/engine-performance.md: the command it quotes is the one bench/engine/engine.sh runs, and the derived columns of
/// its before/after table (engine ÷ peer by CPU, tokens per CPU-second vs batch 1) follow from the quoted milliseconds.
/// </summary>
public class EnginePerformanceDocTests
{
    private static string Read(params string[] path) => File.ReadAllText(Path.Combine([TinyModelFolder.RepoRoot(), .. path]));

    [Fact]
    public void TheQuotedCommandIsTheScriptsCommand()
    {
        var script = Read("bench", "engine", "engine.sh");
        var m = Regex.Match(script, @"dotnet run -c Release --project bench/BiasFree\.Bench -- ([^""\n]*?) ""\$@""");
        Assert.True(m.Success, "engine.sh no longer runs the bench the way this test expects; update both together");
        Assert.Contains($"= dotnet run -c Release --project bench/BiasFree.Bench -- {m.Groups[1].Value}", Read("docs", "engine-performance.md"), StringComparison.Ordinal);
    }

    [Fact]
    public void TheDerivedColumnsFollowFromTheQuotedMilliseconds()
    {
        var rows = Regex.Matches(Read("docs", "engine-performance.md"),
                @"^\| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+)× \| ([\d.]+) \| ([\d.]+) \| ([\d.]+)× \| ([\d.]+)× \| ([\d.]+)× \|$", RegexOptions.Multiline)
            .Select(m => m.Groups.Values.Skip(1).Select(g => double.Parse(g.Value, CultureInfo.InvariantCulture)).ToArray())
            .ToList();
        Assert.True(rows.Count >= 2, "the before/after table was not found");
        // The page holds one such table per run (the current run and the earlier ones), each starting at batch 1.
        var tables = new List<List<double[]>>();
        foreach (var r in rows)
        {
            if (r[0] == 1 || tables.Count == 0) tables.Add([]);
            tables[^1].Add(r);
        }
        foreach (var table in tables)
        {
            var batchOne = table.Single(r => r[0] == 1);
            foreach (var r in table)
            {
                double batch = r[0];
                Assert.Equal(Math.Round(r[2] / r[1], 2), r[3]); // before: peer ms ÷ engine ms
                Assert.Equal(Math.Round(r[5] / r[4], 2), r[6]); // after
                Assert.Equal(Math.Round(batch * batchOne[1] / r[1], 1), r[7]);
                Assert.Equal(Math.Round(batch * batchOne[4] / r[4], 1), r[8]);
            }
        }
    }
}
