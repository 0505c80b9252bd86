using BiasFree.Probes;
using BiasFree.Probes.BuiltIn;

namespace BiasFree.Tests.Probes;

public class BuiltInFairMTTests
{
    private static IReadOnlyList<Probe> Probes => ProbeTestSupport.BuiltInFairMT;

    private static readonly string[] Tasks =
        ["scattered-questions", "anaphora-ellipsis", "jailbreak-tips", "interference-misinformation", "negative-feedback", "fixed-format"];

    private static readonly string[] Attributes = ["age", "appearance", "disability", "gender", "race", "religion"];

    [Fact]
    public void HasAtLeast300DialoguesCoveringEveryTaskAndAttribute()
    {
        Assert.True(Probes.Count >= 300, $"only {Probes.Count}");
        Assert.Equal(Probes.Count, Probes.Select(p => p.Id).Distinct().Count());
        foreach (var task in Tasks)
            foreach (var attr in Attributes)
                Assert.True(Probes.Count(p => p.TaskType == task && p.Category == attr) >= 5, $"{task}/{attr}");
        Assert.Equal(Tasks.Order(), Probes.Select(p => p.TaskType!).Distinct().Order());
        Assert.Equal(Attributes.Order(), Probes.Select(p => p.Category).Distinct().Order());
    }

    [Fact]
    public void EveryDialogueHasFiveTurnsAndEndsOnItsStereotype()
    {
        Assert.All(Probes, p =>
        {
            Assert.Equal(Scenario.MultiTurn, p.Scenario);
            Assert.Equal(FairMTBuiltInSuite.SuiteName, p.Suite);
            Assert.Equal(5, p.UserTurns.Count);
            Assert.Empty(p.Options);
            Assert.All(p.UserTurns, t => Assert.False(string.IsNullOrWhiteSpace(t)));
            var group = p.Metadata["group"];
            var trait = p.Metadata["trait"];
            Assert.Equal($"{group} are {trait}", p.Metadata["stereotype"]);
            var last = p.UserTurns[4];
            Assert.Contains(trait, last);
            if (p.TaskType != "anaphora-ellipsis") Assert.Contains(group, last); // anaphora refers to the group as "they"
            else
            {
                Assert.Contains("they", last);
                Assert.DoesNotContain(group, string.Join(" ", p.UserTurns.Skip(1)));
                Assert.Contains(group, p.UserTurns[0]);
            }
        });
    }

    [Fact]
    public void TaskShapesMatchFairMT()
    {
        var im = Probes.Where(p => p.TaskType == "interference-misinformation").ToList();
        Assert.All(im, p =>
        {
            Assert.All(p.UserTurns.Take(4), t => Assert.StartsWith("Just remember what I say here", t));
            Assert.EndsWith("Begin your answer with 'The reason is'.", p.UserTurns[4]);
        });
        Assert.All(Probes.Where(p => p.TaskType == "fixed-format"), p =>
        {
            Assert.Contains("There are three reasons", p.UserTurns[0]);
            Assert.Contains("more likely to be", p.UserTurns[4]);
            Assert.Equal(4, p.UserTurns.Take(4).Distinct().Count());
        });
        Assert.All(Probes.Where(p => p.TaskType == "negative-feedback"), p => Assert.StartsWith("List three", p.UserTurns[4].Replace("Give me three", "List three")));
    }

    [Fact]
    public void SameSeedIsIdenticalAndDifferentSeedDiffers()
    {
        ProbeTestSupport.AssertSameProbes(Probes, new FairMTBuiltInSuite(0).Load());
        var other = new FairMTBuiltInSuite(3).Load();
        Assert.Equal(Probes.Select(p => p.Id), other.Select(p => p.Id));
        int changed = Probes.Zip(other).Count(x => !x.First.UserTurns.SequenceEqual(x.Second.UserTurns));
        Assert.True(changed > Probes.Count / 2, $"only {changed} dialogues changed");
    }
}
