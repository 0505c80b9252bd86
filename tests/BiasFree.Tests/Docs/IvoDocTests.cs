using System.Globalization;
using System.Text.RegularExpressions;
using BiasFree.Engine.Decoding.Ivo;
using BiasFree.Tests.Cli;

namespace BiasFree.Tests.Docs;

/// <summary>docs/decoding-methods.md quotes IVO's defaults and method names as the code has them.</summary>
public class IvoDocTests
{
    private static string Doc() =>
        Regex.Replace(File.ReadAllText(Path.Combine(TinyModelFolder.RepoRoot(), "docs", "decoding-methods.md")), @"\s+", " ");

    [Fact]
    public void TheIvoSectionQuotesTheDefaultsAndNames()
    {
        var doc = Doc();
        var s = new IvoSettings();
        var m = Regex.Match(doc, @"IVO defaults: β = ([0-9.]+), k = (\d+) candidates; blocks of L = (\d+) tokens, W = (\d+) beams, B = (\d+) blocks per beam\.");
        Assert.True(m.Success, "the IVO defaults sentence is missing");
        Assert.Equal(s.Beta, double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
        Assert.Equal(s.Candidates, int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
        Assert.Equal(s.BlockTokens, int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture));
        Assert.Equal(s.Beams, int.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture));
        Assert.Equal(s.BlocksPerBeam, int.Parse(m.Groups[5].Value, CultureInfo.InvariantCulture));
        var t = new ValueTrainingOptions();
        var g = Regex.Match(doc, @"Value training defaults: (\d+) rollouts per prompt, (\d+) on-policy refits, (\d+) MSE steps per round");
        Assert.True(g.Success, "the value training defaults sentence is missing");
        Assert.Equal((t.RolloutsPerPrompt, t.Iterations, t.FitSteps),
            (int.Parse(g.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(g.Groups[2].Value, CultureInfo.InvariantCulture), int.Parse(g.Groups[3].Value, CultureInfo.InvariantCulture)));
        foreach (var name in IvoMethods.Names)
        {
            Assert.Contains($"| `{name}` |", doc, StringComparison.Ordinal);
        }
    }
}
