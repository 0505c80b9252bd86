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
}
