using System.Globalization;
using System.Text.RegularExpressions;
using BiasFree.Engine.WhiteBox;
using BiasFree.Tests.Cli;

namespace BiasFree.Tests.Docs;

/// <summary>
/// docs/white-box.md quotes the white-box defaults and the measured table of docs/white-box-results.md: both are checked
/// against their sources (the library defaults, the file the bench wrote), so neither side can drift alone.
/// </summary>
public class WhiteBoxDocsTests
{
    private static string Read(string name) =>
        Regex.Replace(File.ReadAllText(Path.Combine(TinyModelFolder.RepoRoot(), "docs", name)), @"\s+", " ");

    [Fact]
    public void DefaultsQuotedInTheGuideAreTheCodes()
    {
        var doc = Read("white-box.md");
        var fit = new FairSteerFitOptions();
        var filter = new BiasFilterOptions();
        string I(int v) => v.ToString(CultureInfo.InvariantCulture);
        Assert.Contains($"`--pairs` ({I(fit.Pairs)}, as in the paper)", doc, StringComparison.Ordinal);
        Assert.Contains($"(`--l2`, {fit.L2.ToString(CultureInfo.InvariantCulture)})", doc, StringComparison.Ordinal);
        Assert.Contains($"`--alphas` ({string.Join(", ", fit.Alphas.Select(a => a.ToString(CultureInfo.InvariantCulture)))})", doc, StringComparison.Ordinal);
        Assert.Contains($"`--segment-tokens`, {I(filter.SegmentTokens)}", doc, StringComparison.Ordinal);
        Assert.Contains($"`--filter-children`, {I(filter.Children)}", doc, StringComparison.Ordinal);
        Assert.Contains($"`--filter-keep`, {I(filter.Keep)}", doc, StringComparison.Ordinal);
    }

    [Fact]
    public void TheQuotedResultsAreTheBenchOutput()
    {
        var doc = Read("white-box.md");
        var results = File.ReadAllLines(Path.Combine(TinyModelFolder.RepoRoot(), "docs", "white-box-results.md"));
        foreach (var method in new[] { "none", "fairsteer-always", "fairsteer-gate-only", "fairsteer-random" })
        {
            var cells = results.Single(l => l.StartsWith($"| {method} |", StringComparison.Ordinal)).Split('|', StringSplitOptions.TrimEntries);
            // method, ambiguous BFS, disambiguated accuracy, over-refusal as written by the bench, in the guide's row.
            Assert.Contains($"| {method} | {cells[2]} | {cells[3]} | {cells[4]} |", doc, StringComparison.Ordinal);
        }
        var fair = results.Single(l => l.StartsWith("| fairsteer |", StringComparison.Ordinal)).Split('|', StringSplitOptions.TrimEntries);
        Assert.Contains($"| {fair[2]} | {fair[3]} | {fair[4]} |", doc, StringComparison.Ordinal);
        var filter = results.Single(l => l.StartsWith("| biasfilter |", StringComparison.Ordinal)).Split('|', StringSplitOptions.TrimEntries);
        Assert.Contains($"| biasfilter (π_fair = SFT) | {filter[2]} | {filter[3]} | {filter[4]} |", doc, StringComparison.Ordinal);
        Assert.Contains($"the mean is **{filter[8]}** target tokens per output", doc, StringComparison.Ordinal);
        var chosen = Regex.Match(string.Join(" ", results), @"FairSteer: layer (\d+), α ([\d.]+)");
        Assert.Contains($"fairsteer (layer {chosen.Groups[1].Value}, α {chosen.Groups[2].Value})", doc, StringComparison.Ordinal);
    }
}
