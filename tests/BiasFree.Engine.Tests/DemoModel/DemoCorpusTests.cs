using BiasFree.Engine.DemoModel;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Probes.BuiltIn;

namespace BiasFree.Engine.Tests.DemoModel;

public class DemoCorpusTests
{
    private static DemoCorpus Corpus(int seed = 11, double rate = 0.4) => new(new DemoCorpusOptions { Seed = seed, StereotypeRate = rate });

    [Fact]
    public void SameSeedGivesSameConversations_OtherSeedDiffers()
    {
        var a = Corpus().Generate(300);
        var b = Corpus().Generate(300);
        var c = Corpus(seed: 12).Generate(300);
        Assert.Equal(Flatten(a), Flatten(b));
        Assert.NotEqual(Flatten(a), Flatten(c));
        Assert.Contains(a, x => x.Kind == DemoExampleKind.MultipleChoice);
        Assert.Contains(a, x => x.Kind == DemoExampleKind.MultiTurn);
        Assert.Contains(a, x => x.Kind == DemoExampleKind.Judge);

        static List<string> Flatten(IEnumerable<DemoConversation> cs) =>
            cs.SelectMany(x => x.Messages.Select(m => x.Id + "|" + m.Role + "|" + m.Content)).ToList();
    }

    [Fact]
    public void MultipleChoiceTurnsAreWhatARunSends_FromTrainingSeedsOnly()
    {
        var corpus = Corpus();
        var probesByText = new Dictionary<string, Probe>();
        for (int k = 0; k < 3; k++)
            foreach (var p in new BbqBuiltInSuite(corpus.SuiteSeed(k)).Load()) probesByText.TryAdd(p.UserTurns[0], p);

        var mc = corpus.MultipleChoice().Take(3000).ToList();
        foreach (var conv in mc)
        {
            Assert.Equal(3, conv.Messages.Count);
            Assert.Equal(new DemoMessage("system", "You are a helpful assistant."), conv.Messages[0]);
            Assert.Equal("user", conv.Messages[1].Role);
            Assert.True(probesByText.ContainsKey(conv.Messages[1].Content), "user turn is a bbq-builtin query");
            Assert.Equal("assistant", conv.Messages[2].Role);
        }
        Assert.Empty(Enumerable.Range(0, 5).Select(corpus.SuiteSeed).Intersect(DemoCorpus.EvaluationSeeds));
        // A seed that would map onto an evaluation seed is moved away from it.
        Assert.DoesNotContain(new DemoCorpus(new DemoCorpusOptions { Seed = 0 }).SuiteSeed(-1_000_003), DemoCorpus.EvaluationSeeds);
    }

    [Theory]
    [InlineData(0.4)]
    [InlineData(0.1)]
    public void AnswersFollowTheInjectedRate_AndTheRuleJudgeReadsThemAsIntended(double rate)
    {
        var corpus = Corpus(rate: rate);
        var judge = new RuleBasedAnswerExtractor();
        var probesByText = new Dictionary<string, Probe>();
        for (int k = 0; k < 3; k++)
            foreach (var p in new BbqBuiltInSuite(corpus.SuiteSeed(k)).Load()) probesByText.TryAdd(p.UserTurns[0], p);

        int ambiguous = 0, biased = 0;
        foreach (var conv in corpus.MultipleChoice().Take(4000))
        {
            var probe = probesByText[conv.Messages[1].Content];
            var answer = conv.Messages[2].Content;
            var label = judge.Judge(probe, answer).Label;
            if (probe.Context == ContextCondition.Ambiguous)
            {
                ambiguous++;
                Assert.Equal(conv.Biased ? Label.Biased : Label.Unknown, label);
                if (conv.Biased) biased++;
            }
            else
            {
                Assert.Equal(probe.Options[probe.CorrectOption!.Value].Text, answer);
            }
        }
        double measured = (double)biased / ambiguous;
        Assert.InRange(measured, rate - 0.03, rate + 0.03);
    }

    [Fact]
    public void MultiTurnFinalRepliesGoAlongAtTheRate_AndJudgeVerdictsAreJson()
    {
        var corpus = Corpus();
        var mt = corpus.MultiTurn().Take(1000).ToList();
        Assert.All(mt, c => Assert.Equal(10, c.Messages.Count));
        Assert.InRange(mt.Count(c => c.Biased) / 1000.0, 0.35, 0.45);

        foreach (var j in corpus.Judge().Take(200))
        {
            using var doc = System.Text.Json.JsonDocument.Parse(j.Messages[^1].Content);
            var label = doc.RootElement.GetProperty("label").GetString();
            Assert.Contains(label, new[] { "biased", "unbiased", "unrelated" });
            Assert.Equal(j.Biased, label == "biased");
            Assert.StartsWith("Statement: ", j.Messages[1].Content, StringComparison.Ordinal);
        }
    }
}
