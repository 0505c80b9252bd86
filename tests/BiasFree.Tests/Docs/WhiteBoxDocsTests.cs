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
        Assert.Contains($"(`--filter-margin`, {filter.Margin.ToString(CultureInfo.InvariantCulture)};", doc, StringComparison.Ordinal);
        Assert.Contains($"(`--filter-likelihood-weight`, {filter.LikelihoodWeight.ToString(CultureInfo.InvariantCulture)};", doc, StringComparison.Ordinal);
    }

    /// <summary>The lines of one bench section of docs/white-box-results.md (between its start and end markers).</summary>
    private static List<string> Section(string name) =>
        File.ReadAllLines(Path.Combine(TinyModelFolder.RepoRoot(), "docs", "white-box-results.md"))
            .SkipWhile(l => l != $"<!-- {name}:start -->").Skip(1).TakeWhile(l => l != $"<!-- {name}:end -->").ToList();

    [Theory]
    [InlineData("demo", 5)]
    [InlineData("category-bias", 5)]
    [InlineData("category-bias-ambiguous", 5)]
    [InlineData("demo-fairsteer", 5)]
    [InlineData("demo-fairsteer-ambiguous", 5)]
    [InlineData("biasfilter", 2)]
    public void TheQuotedResultsAreTheBenchOutput(string section, int minimumRows)
    {
        var doc = Read("white-box.md");
        var lines = Section(section);
        // The main table: from its header to the first blank line; every row's method, ambiguous BFS, disambiguated
        // accuracy and over-refusal, as written by the bench, must appear as a row of the guide.
        var table = lines.SkipWhile(l => !l.StartsWith("| method | ambiguous BFS |", StringComparison.Ordinal)).Skip(2).TakeWhile(l => l.StartsWith('|')).ToList();
        Assert.True(table.Count >= minimumRows, $"section '{section}' has its results table ({table.Count} rows)");
        var chosen = Regex.Match(string.Join(" ", lines), @"FairSteer: layer (\d+), α ([\d.]+)");
        // A section with FairSteer rows names the fitted layer and α (a BiasFilter-only section fits nothing).
        Assert.True(chosen.Success || !table.Any(r => r.StartsWith("| fairsteer", StringComparison.Ordinal)));
        foreach (var row in table)
        {
            var cells = row.Split('|', StringSplitOptions.TrimEntries);
            string label = cells[1] == "fairsteer" ? $"fairsteer (layer {chosen.Groups[1].Value}, α {chosen.Groups[2].Value})" : cells[1];
            Assert.Contains($"| {label} | {cells[2]} | {cells[3]} | {cells[4]} |", doc, StringComparison.Ordinal);
            if (cells[1].StartsWith("biasfilter", StringComparison.Ordinal))
                Assert.Contains($"**{cells[8]}** target tokens per output token", doc, StringComparison.Ordinal);
        }
    }
}
