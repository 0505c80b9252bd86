using BiasFree.Probes;

namespace BiasFree.Tests;

public class SmokeTests
{
    [Fact]
    public void ProbeOptionWithRoleFindsTheOption()
    {
        var p = new Probe
        {
            Id = "x", Suite = "s", Scenario = Scenario.MultipleChoice, Category = "age", UserTurns = ["q"],
            Options = [new("A", OptionRole.Stereotyped, "old"), new("B", OptionRole.Unknown, "unknown")],
        };
        Assert.Equal("B", p.OptionWithRole(OptionRole.Unknown)!.Text);
        Assert.Null(p.OptionWithRole(OptionRole.AntiStereotyped));
    }
}
