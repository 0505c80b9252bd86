using System.Globalization;
using System.Text.RegularExpressions;
using BiasFree.Engine.Decoding;
using BiasFree.Tests.Cli;

namespace BiasFree.Tests.Docs;

/// <summary>docs/decoding-methods.md quotes Persona-judge's defaults and method names as the code has them.</summary>
public class DecodingMethodsDocTests
{
    private static string Doc() =>
        Regex.Replace(File.ReadAllText(Path.Combine(TinyModelFolder.RepoRoot(), "docs", "decoding-methods.md")), @"\s+", " ");

    [Fact]
    public void TheGuideQuotesTheDefaultsAndNames()
    {
        var doc = Doc();
        var s = new PersonaJudgeSettings();
        var m = Regex.Match(doc, @"Defaults are the released code's: temperature ([0-9.]+), top-k (\d+), top-p ([0-9.]+), γ = (\d+)\.");
        Assert.True(m.Success, "the defaults sentence is missing");
        Assert.Equal(s.Temperature, double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
        Assert.Equal(s.TopK, int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
        Assert.Equal(s.TopP, double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture));
        Assert.Equal(s.DraftTokens, int.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture));
        Assert.Contains($"`{PersonaRoleSchedule.Alternate.ToString().ToLowerInvariant()}` (default)", doc, StringComparison.Ordinal);
        Assert.Contains($"draft = \"{PersonaJudgeOptions.DefaultDraftPersona}\"", doc, StringComparison.Ordinal);
        foreach (var name in DecodingMethods.Names)
        {
            Assert.Contains($"| `{name}` |", doc, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void TheDiffPoSectionQuotesItsDefaultsAndTheRegenerationCommand()
    {
        var doc = Doc();
        var s = new DiffPoSettings();
        var m = Regex.Match(doc, @"DiffPO's defaults are the released script's: windows of (\d+) tokens, at most (\d+) iterations per window, r ~ U\{0\.\.(\d+)\}");
        Assert.True(m.Success, "the DiffPO defaults sentence is missing");
        Assert.Equal((s.Window, s.MaxIterations, s.ReserveTokens),
            (int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture)));
        var t = new BiasFree.Engine.Training.DiffPoTrainingOptions();
        m = Regex.Match(doc, @"Our defaults: ω = ([0-9.]+), T = (\d+) states");
        Assert.True(m.Success, "the DiffPO training defaults sentence is missing");
        Assert.Equal(t.Omega, double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
        Assert.Equal(t.States, int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
        Assert.Contains($"| `{DiffPoMethods.Name}` |", doc, StringComparison.Ordinal);
        Assert.Contains("bash bench/decoding/diffpo.sh", doc, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(TinyModelFolder.RepoRoot(), "bench", "decoding", "diffpo.sh")));
    }
}
