using BiasFree.Probes;

namespace BiasFree.Tests.Probes;

public class MultipleChoiceQueryTests
{
    [Fact]
    public void FormatPutsContextQuestionQuotedOptionsAndInstruction()
    {
        var q = MultipleChoiceQuery.Format("Two people met.", "Who left early?", "The nurse", "The pilot");
        Assert.Equal("Two people met. Who left early? 'The nurse' or 'The pilot'?\n" + MultipleChoiceQuery.Instruction, q);
    }

    [Fact]
    public void FormatWithoutContextStartsWithQuestion()
    {
        var q = MultipleChoiceQuery.Format("", "Which is true?", ["A.", "B.", "C."]);
        Assert.StartsWith("Which is true? 'A.', 'B.' or 'C.'?\n", q);
    }

    [Fact]
    public void CreateShowsOnlyGroupOptionsAndAppendsUnknownLast()
    {
        var target = new ProbeOption("The retiree", OptionRole.Stereotyped, "old");
        var other = new ProbeOption("The student", OptionRole.AntiStereotyped, "nonOld");
        var unknown = new ProbeOption("Unknown", OptionRole.Unknown, "unknown");
        var orders = new HashSet<string>();
        for (int seed = 0; seed < 20; seed++)
        {
            var p = MultipleChoiceQuery.Create("x-1", "s", "age", "Ctx.", "Who?", target, other, unknown,
                ContextCondition.Ambiguous, QuestionPolarity.Negative, unknown, seed, new Dictionary<string, string>());
            Assert.Equal(3, p.Options.Count);
            Assert.Same(unknown, p.Options[2]);
            Assert.Equal(2, p.CorrectOption);
            Assert.Equal(MultipleChoiceQuery.Format("Ctx.", "Who?", p.Options[0].Text, p.Options[1].Text), Assert.Single(p.UserTurns));
            Assert.DoesNotContain("'Unknown'", p.UserTurns[0]);
            orders.Add(p.Options[0].Text);
            // Same seed and id ⇒ same order.
            var again = MultipleChoiceQuery.Create("x-1", "s", "age", "Ctx.", "Who?", target, other, unknown,
                ContextCondition.Ambiguous, QuestionPolarity.Negative, unknown, seed, new Dictionary<string, string>());
            Assert.Equal(p.Options, again.Options);
        }
        Assert.Equal(2, orders.Count); // both orders occur across seeds
    }

    [Fact]
    public void CreateIndexesTheCorrectGroupOption()
    {
        var target = new ProbeOption("A", OptionRole.Stereotyped, "g1");
        var other = new ProbeOption("B", OptionRole.AntiStereotyped, "g2");
        var unknown = new ProbeOption("?", OptionRole.Unknown, "unknown");
        for (int seed = 0; seed < 10; seed++)
        {
            var p = MultipleChoiceQuery.Create("id", "s", "c", "x", "y", target, other, unknown,
                ContextCondition.Disambiguated, QuestionPolarity.Negative, other, seed, new Dictionary<string, string>());
            Assert.Equal("B", p.Options[p.CorrectOption!.Value].Text);
        }
    }

    [Fact]
    public void RolesFollowBiasFreeBenchRule()
    {
        Assert.Equal((OptionRole.Stereotyped, OptionRole.AntiStereotyped), MultipleChoiceQuery.RolesFor(QuestionPolarity.Negative));
        Assert.Equal((OptionRole.AntiStereotyped, OptionRole.Stereotyped), MultipleChoiceQuery.RolesFor(QuestionPolarity.NonNegative));
    }

    [Fact]
    public void StableRandomIsDeterministicAndKeyed()
    {
        var a = StableRandom.For(7, "probe-1");
        var b = StableRandom.For(7, "probe-1");
        var c = StableRandom.For(7, "probe-2");
        var d = StableRandom.For(8, "probe-1");
        var sa = Enumerable.Range(0, 5).Select(_ => a.NextUInt64()).ToList();
        Assert.Equal(sa, Enumerable.Range(0, 5).Select(_ => b.NextUInt64()).ToList());
        Assert.NotEqual(sa, Enumerable.Range(0, 5).Select(_ => c.NextUInt64()).ToList());
        Assert.NotEqual(sa, Enumerable.Range(0, 5).Select(_ => d.NextUInt64()).ToList());
        // Pinned value: the stream must not change between releases (ids and orders are stored in runs).
        Assert.Equal(0xcbf29ce484222325UL, StableRandom.Hash(""));
    }
}
