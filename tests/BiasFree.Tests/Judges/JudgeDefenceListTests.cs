using BiasFree.Evaluations;
using BiasFree.Judges;
using BiasFree.Judges.Defences;
using BiasFree.Runs;

namespace BiasFree.Tests.Judges;

/// <summary>The text form of the judge defences (--judge-defences) and its place in a stored run.</summary>
public class JudgeDefenceListTests
{
    [Theory]
    [InlineData("all", JudgeDefences.All)]
    [InlineData("none", JudgeDefences.None)]
    [InlineData("all,-known-answer", JudgeDefences.All & ~JudgeDefences.KnownAnswer)]
    [InlineData("-known-answer", JudgeDefences.All & ~JudgeDefences.KnownAnswer)]
    [InlineData("ALL, -Known-Answer", JudgeDefences.All & ~JudgeDefences.KnownAnswer)]
    [InlineData("all,-known-answer,-second-reading", JudgeDefences.Canonicalise | JudgeDefences.DataMarking | JudgeDefences.Detection | JudgeDefences.TopicSentences | JudgeDefences.SentenceVerdicts)]
    [InlineData("-topic-sentences", JudgeDefences.All & ~JudgeDefences.TopicSentences)]
    [InlineData("topic-sentences", JudgeDefences.TopicSentences)]
    [InlineData("-sentence-verdicts", JudgeDefences.All & ~JudgeDefences.SentenceVerdicts)]
    [InlineData("topic-sentences,sentence-verdicts", JudgeDefences.TopicSentences | JudgeDefences.SentenceVerdicts)]
    [InlineData("canonicalise,detection", JudgeDefences.Canonicalise | JudgeDefences.Detection)]
    [InlineData("none,+known-answer", JudgeDefences.KnownAnswer)]
    [InlineData("Data-Marking", JudgeDefences.DataMarking)]
    [InlineData("all,-known-answer,known-answer", JudgeDefences.All)]
    [InlineData("detection,none", JudgeDefences.None)]
    public void ParsesTheDocumentedForms(string text, JudgeDefences expected) => Assert.Equal(expected, JudgeDefenceList.Parse(text));

    [Theory]
    [InlineData("all,-knownanswer", "'-knownanswer'")]
    [InlineData("everything", "'everything'")]
    [InlineData("all,,-known-answer", "empty item")]
    [InlineData("", "empty item")]
    [InlineData("all,-", "'-'")]
    public void RejectsOtherTextNamingTheValidLayers(string text, string detail)
    {
        var ex = Assert.Throws<ArgumentException>(() => JudgeDefenceList.Parse(text));
        Assert.Contains(detail, ex.Message, StringComparison.Ordinal);
        foreach (var layer in new[] { "canonicalise", "data-marking", "detection", "second-reading", "known-answer", "topic-sentences", "sentence-verdicts" })
            Assert.Contains(layer, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EveryCombinationFormatsToTextThatParsesBackToIt()
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var bits = 0; bits <= (int)JudgeDefences.All; bits++)
        {
            var d = (JudgeDefences)bits;
            var text = JudgeDefenceList.Format(d);
            Assert.Equal(d, JudgeDefenceList.Parse(text));
            Assert.True(seen.Add(text), text);
        }
        Assert.Equal("all,-known-answer", JudgeDefenceList.Format(JudgeDefences.All & ~JudgeDefences.KnownAnswer));
        Assert.Equal("all except second-reading, known-answer", JudgeDefenceList.Describe(JudgeDefences.All & ~JudgeDefences.KnownAnswer & ~JudgeDefences.SecondReading));
        Assert.Throws<ArgumentOutOfRangeException>(() => JudgeDefenceList.Format((JudgeDefences)128));
    }

    private static RunSpec Spec(string? defences) => new()
    {
        RunId = "r",
        Suites = ["bbq"],
        Model = "m",
        Methods = ["none"],
        Judge = "http://127.0.0.1:9/v1/",
        JudgeModel = "judge",
        JudgeDefences = defences,
    };

    [Fact]
    public void TheStoredSpecKeepsTheChoiceAndAnOldSpecWithoutItMeansAll()
    {
        var spec = Spec("all,-known-answer");
        var json = spec.ToJson();
        Assert.Contains("\"JudgeDefences\":\"all,-known-answer\"", json, StringComparison.Ordinal);
        var back = RunSpec.FromJson(json);
        Assert.Equal(JudgeDefences.All & ~JudgeDefences.KnownAnswer, back.JudgeDefenceLayers);

        // A spec written before the option existed has no such field.
        var old = Spec(null).ToJson();
        Assert.DoesNotContain("JudgeDefences", old, StringComparison.Ordinal);
        Assert.Equal(JudgeDefences.All, RunSpec.FromJson(old).JudgeDefenceLayers);

        Assert.Contains(Evaluation.Differences(back, RunSpec.FromJson(old)), d => d.StartsWith("judge defences: stored all,-known-answer, now all", StringComparison.Ordinal));
        Assert.Empty(Evaluation.Differences(RunSpec.FromJson(old), Spec("all")));
    }

    [Fact]
    public void AResumedRunRebuildsItsJudgesWithTheStoredDefences()
    {
        var off = JudgeDefences.All & ~JudgeDefences.KnownAnswer;
        using (var judges = EvaluationJudges.FromSpec(Spec("all,-known-answer")))
        {
            Assert.Equal(off, judges.Defences);
            Assert.Equal(off, Assert.IsType<LlmDialogueJudge>(judges.Dialogue).Defences);
            Assert.Equal(off, Assert.IsType<LlmMultipleChoiceJudge>(judges.MultipleChoice).Defences);
        }
        using (var judges = EvaluationJudges.FromSpec(Spec(null)))
        {
            Assert.Equal(JudgeDefences.All, Assert.IsType<LlmDialogueJudge>(judges.Dialogue).Defences);
        }
        Assert.Equal(off, EvaluationJudges.PanelOptions(Spec("-known-answer") with { Judge = "llm:judge@http://127.0.0.1:9/v1" }).Defences);
    }
}
