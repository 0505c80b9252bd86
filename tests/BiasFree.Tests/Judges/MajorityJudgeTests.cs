using System.Text.Json;
using BiasFree.Judges;
using BiasFree.Probes;

namespace BiasFree.Tests.Judges;

public class MajorityJudgeTests
{
    private static Verdict V(string judge, Label label) => new(label, $"{judge} reason", judge);

    [Theory]
    [InlineData(new[] { Label.Biased, Label.Biased, Label.Unbiased }, Label.Biased)]
    [InlineData(new[] { Label.Unbiased, Label.Biased, Label.Unbiased }, Label.Unbiased)]
    [InlineData(new[] { Label.Unknown, Label.Biased, Label.Unbiased }, Label.Unbiased)]
    [InlineData(new[] { Label.Biased, Label.JudgeError, Label.Biased }, Label.Biased)]
    [InlineData(new[] { Label.Unbiased, Label.Unparseable, Label.Unparseable }, Label.Unbiased)]
    public void MajorityOfUsableVotes(Label[] votes, Label expected)
    {
        var v = MajorityJudge.Combine([.. votes.Select((l, i) => V($"j{i}", l))], TieRule.Biased, "m");
        Assert.Equal(expected, v.Label);
    }

    [Fact]
    public void TiesFollowTheRule()
    {
        Verdict[] votes = [V("llm", Label.Biased), V("guard", Label.Unbiased), V("mod", Label.JudgeError)];
        var strict = MajorityJudge.Combine(votes, TieRule.Biased, "m");
        Assert.Equal(Label.Biased, strict.Label);
        Assert.Contains("votes biased 1, unbiased 1, missing 1; tie -> biased", strict.Reason, StringComparison.Ordinal);
        Assert.Equal(Label.Unbiased, MajorityJudge.Combine(votes, TieRule.Unbiased, "m").Label);
        // Four judges split two-two without a missing vote.
        Verdict[] four = [V("a", Label.Biased), V("b", Label.Biased), V("c", Label.Unbiased), V("d", Label.Unknown)];
        Assert.Equal(Label.Unbiased, MajorityJudge.Combine(four, TieRule.Unbiased, "m").Label);
    }

    [Fact]
    public void MissingVotesEverywhere()
    {
        Assert.Equal(Label.JudgeError, MajorityJudge.Combine([V("a", Label.JudgeError), V("b", Label.Unparseable), V("c", Label.NoAnswer)], TieRule.Biased, "m").Label);
        Assert.Equal(Label.NoAnswer, MajorityJudge.Combine([V("a", Label.NoAnswer), V("b", Label.NoAnswer)], TieRule.Biased, "m").Label);
    }

    [Fact]
    public void FirstJudgeDecidesRelatednessOthersDoNot()
    {
        Assert.Equal(Label.Unrelated, MajorityJudge.Combine([V("llm", Label.Unrelated), V("b", Label.Biased), V("c", Label.Biased)], TieRule.Biased, "m").Label);
        // A later judge's "unrelated" is a missing vote.
        Assert.Equal(Label.Biased, MajorityJudge.Combine([V("llm", Label.Biased), V("b", Label.Unrelated), V("c", Label.Unbiased)], TieRule.Biased, "m").Label);
    }

    [Fact]
    public async Task EveryVoteIsStoredAndShown()
    {
        var judges = new IJudge[] { new FixedJudge("llm", Label.Biased), new FixedJudge("guard", Label.Unbiased), new FixedJudge("mod", Label.Biased) };
        var m = new MajorityJudge(judges);
        Assert.Equal("majority(llm,guard,mod)", m.Name);
        var probe = new Probe { Id = "p", Suite = "t", Scenario = Scenario.MultiTurn, Category = "age", UserTurns = ["q"] };
        var v = await m.JudgeAsync(probe, "reply", TestContext.Current.CancellationToken);
        Assert.Equal(Label.Biased, v.Label);
        Assert.Contains("llm: biased, guard: unbiased, mod: biased", v.Reason, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(v.RawOutput!);
        Assert.Equal(["llm", "guard", "mod"], doc.RootElement.EnumerateArray().Select(e => e.GetProperty("judge").GetString()));
        Assert.Equal(["Biased", "Unbiased", "Biased"], doc.RootElement.EnumerateArray().Select(e => e.GetProperty("label").GetString()));
        Assert.Throws<ArgumentException>(() => new MajorityJudge([judges[0]]));
    }

    private sealed class FixedJudge(string name, Label label) : IJudge
    {
        public string Name => name;

        public Task<Verdict> JudgeAsync(Probe probe, string response, CancellationToken cancellationToken = default) =>
            Task.FromResult(new Verdict(label, "fixed", name));
    }
}
