using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Probes.BuiltIn;
using BiasFree.Probes.Loaders;
using BiasFree.Runs;

namespace BiasFree.Tests.Probes;

/// <summary>Suite options: the three-option (lettered) protocol, the context filter, and their place in the run spec.</summary>
public class SuiteOptionsTests
{
    [Fact]
    public void LetteredQueryPutsEachOptionOnItsOwnLine()
    {
        var q = MultipleChoiceQuery.FormatLettered("Two people met.", "Who left early?", ["The nurse", "Unknown", "The pilot"]);
        Assert.Equal("Two people met. Who left early?\n(a) The nurse\n(b) Unknown\n(c) The pilot\n" + MultipleChoiceQuery.LetteredInstruction, q);
    }

    [Fact]
    public void ThreeOptionBuiltInShowsAllOptionsLetteredAndKeepsTheGroupOrderOfTheTwoOptionProtocol()
    {
        var two = new BbqBuiltInSuite(5).Load();
        var three = new BbqBuiltInSuite(5, OptionsShown.Three).Load();
        Assert.Equal(two.Count, three.Count);
        var unknownAt = new int[3];
        for (int i = 0; i < two.Count; i++)
        {
            var (a, b) = (two[i], three[i]);
            Assert.Equal(a.Id, b.Id);
            Assert.Equal(3, b.Options.Count);
            var groupsTwo = a.Options.Where(o => o.Role != OptionRole.Unknown).Select(o => o.Text).ToList();
            var groupsThree = b.Options.Where(o => o.Role != OptionRole.Unknown).Select(o => o.Text).ToList();
            Assert.Equal(groupsTwo, groupsThree);
            int u = b.Options.ToList().FindIndex(o => o.Role == OptionRole.Unknown);
            unknownAt[u]++;
            Assert.Equal(MultipleChoiceQuery.FormatLettered(b.ContextText!, b.Question!, b.Options.Select(o => o.Text).ToList()), b.UserTurns.Single());
            // The correct option is the same option in both protocols.
            Assert.Equal(a.Options[a.CorrectOption!.Value], b.Options[b.CorrectOption!.Value]);
        }
        // The unknown option's position is drawn, so every position occurs (about a third each).
        Assert.All(unknownAt, n => Assert.InRange(n, two.Count / 4, two.Count / 2));
    }

    [Fact]
    public void RuleJudgeReadsLettersOfTheThreeOptionProtocol()
    {
        var judge = new RuleBasedAnswerExtractor();
        foreach (var p in new BbqBuiltInSuite(1, OptionsShown.Three).Load().Take(40))
        {
            for (int i = 0; i < 3; i++)
            {
                var expected = p.Options[i].Role switch
                {
                    OptionRole.Stereotyped => Label.Biased,
                    OptionRole.AntiStereotyped => Label.AntiStereotyped,
                    _ => Label.Unknown,
                };
                char letter = MultipleChoiceQuery.Letters[i];
                Assert.Equal(expected, judge.Judge(p, $"({letter}) {p.Options[i].Text}").Label);
                Assert.Equal(expected, judge.Judge(p, letter.ToString()).Label);
            }
        }
    }

    [Fact]
    public void ContextFilterKeepsOneConditionAndEveryProbeWithoutOne()
    {
        var all = SuiteRegistry.Resolve("bbq", new SuiteOptions(Seed: 2)).Load();
        var ambig = SuiteRegistry.Resolve("bbq", new SuiteOptions(Seed: 2, Context: ContextFilter.Ambiguous)).Load();
        var disambig = SuiteRegistry.Resolve("bbq", new SuiteOptions(Seed: 2, Context: ContextFilter.Disambiguated)).Load();
        Assert.Equal(all.Count(p => p.Context == ContextCondition.Ambiguous), ambig.Count);
        Assert.Equal(all.Count(p => p.Context == ContextCondition.Disambiguated), disambig.Count);
        Assert.Equal(all.Count, ambig.Count + disambig.Count);
        Assert.All(ambig, p => Assert.Equal(ContextCondition.Ambiguous, p.Context));
        Assert.All(disambig, p => Assert.Equal(ContextCondition.Disambiguated, p.Context));
        // Dialogues have no context condition: the filter is about BBQ items only.
        var dialogues = SuiteRegistry.Resolve("fairmt", new SuiteOptions(Context: ContextFilter.Ambiguous)).Load();
        Assert.Equal(new FairMTBuiltInSuite(0).Load().Count, dialogues.Count);
    }

    [Fact]
    public void OfficialBbqFilesTakeTheProtocolAndLabelRule()
    {
        var path = ProbeTestSupport.Fixture("bbq");
        var three = SuiteRegistry.Resolve("bbq-jsonl:" + path, new SuiteOptions(Options: OptionsShown.Three)).Load();
        Assert.NotEmpty(three);
        Assert.All(three, p => Assert.Contains("\n(c) ", p.UserTurns.Single(), StringComparison.Ordinal));
        var bbqRule = SuiteRegistry.Resolve("bbq-jsonl:" + path, new SuiteOptions()).Load();
        var bfbRule = SuiteRegistry.Resolve("bbq-jsonl:" + path, new SuiteOptions(LabelRule: BbqLabelRule.BiasFreeBench)).Load();
        Assert.All(bbqRule, p => Assert.Equal("stereotyped-groups", p.Metadata["label_rule"]));
        Assert.Contains(bfbRule, p => p.Category == "age");
        Assert.All(bfbRule, p => Assert.Equal(p.Category == "age" ? "biasfreebench-age-old" : "stereotyped-groups", p.Metadata["label_rule"]));
    }

    [Fact]
    public void RunSpecStoresTheSuiteOptionsAndOldSpecsKeepBiasFreeBenchLabels()
    {
        var spec = new RunSpec
        {
            RunId = "r", Suites = ["bbq"], Model = "m", Methods = ["none"], Seed = 4,
            Context = "ambiguous", Options = "three", LabelRule = "bbq",
        };
        var back = RunSpec.FromJson(spec.ToJson());
        Assert.Equal(new SuiteOptions(4, ContextFilter.Ambiguous, OptionsShown.Three, BbqLabelRule.StereotypedGroups), back.SuiteOptions);
        var legacy = RunSpec.FromJson("""{"RunId":"r","Suites":["bbq"],"Model":"m","Methods":["none"]}""");
        Assert.Equal(new SuiteOptions(0, ContextFilter.All, OptionsShown.Two, BbqLabelRule.BiasFreeBench), legacy.SuiteOptions);
    }

    [Theory]
    [InlineData("sometimes")]
    [InlineData("")]
    public void UnknownSpellingsAreRefusedWithTheValidOnes(string s)
    {
        Assert.Contains("ambiguous", Assert.Throws<ArgumentException>(() => SuiteOptions.ParseContext(s)).Message, StringComparison.Ordinal);
        Assert.Contains("three", Assert.Throws<ArgumentException>(() => SuiteOptions.ParseOptions(s)).Message, StringComparison.Ordinal);
        Assert.Contains("biasfreebench", Assert.Throws<ArgumentException>(() => SuiteOptions.ParseLabelRule(s)).Message, StringComparison.Ordinal);
    }
}
