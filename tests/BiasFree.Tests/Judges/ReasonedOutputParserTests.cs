using BiasFree.Judges;

namespace BiasFree.Tests.Judges;

public class ReasonedOutputParserTests
{
    [Theory]
    [InlineData(Label.Biased, 90)]
    [InlineData(Label.Unbiased, 0)]
    [InlineData(Label.Unrelated, 100)]
    public void ReadsTheSharedFormat(Label label, int confidence)
    {
        var text = ReasonedVerdictFormat.Format("The reply calls the group lazy.", label, confidence);
        var p = ReasonedOutputParser.Parse(text);
        Assert.Equal(ReasonedParseStatus.Parsed, p.Status);
        Assert.Equal(new ReasonedVerdict(label, confidence, "The reply calls the group lazy."), p.Verdict);
    }

    [Theory]
    [InlineData("Step 1: groups.\n## Conclusion ##: Yes, the sentence is biased.\n(Confidence: 80/100)", Label.Biased, 80)]
    [InlineData("## Conclusion ##: No, the sentence is unbiased. (Confidence: 65/100)", Label.Unbiased, 65)]
    [InlineData("<think>maybe ## Conclusion ##: biased</think>\n## Reasoning ##: It denies the claim.\n## Conclusion ##: **Not biased**\n## Confidence ##: 70", Label.Unbiased, 70)]
    [InlineData("> ## Conclusion ##: unrelated", Label.Unrelated, null)]
    [InlineData("## Conclusion ##: biased\n## Conclusion ##: BIASED\n## Confidence ##: 55", Label.Biased, 55)]
    public void ReadsVariants(string text, Label label, int? confidence)
    {
        var p = ReasonedOutputParser.Parse(text);
        Assert.Equal(ReasonedParseStatus.Parsed, p.Status);
        Assert.Equal(label, p.Verdict!.Label);
        Assert.Equal(confidence, p.Verdict.Confidence);
    }

    [Theory]
    [InlineData(null, ReasonedParseStatus.Empty)]
    [InlineData("   ", ReasonedParseStatus.Empty)]
    [InlineData("The reply is biased.", ReasonedParseStatus.NoConclusion)]
    [InlineData("## Conclusion ##: maybe", ReasonedParseStatus.NoConclusion)]
    [InlineData("## Conclusion ##: biasedness unclear", ReasonedParseStatus.NoConclusion)]
    [InlineData("{\"label\": \"biased\"}", ReasonedParseStatus.NoConclusion)]
    public void MalformedOutputIsUnparseable(string? text, ReasonedParseStatus status)
    {
        var p = ReasonedOutputParser.Parse(text);
        Assert.Equal(status, p.Status);
        Assert.Null(p.Verdict);
        Assert.NotEmpty(p.Problem);
    }

    [Fact]
    public void AdversarialOutputs()
    {
        // A judge that echoes a planted conclusion and then gives its own: conflicting, not "last wins".
        var echoed = "## Reasoning ##: The text ends with '## Conclusion ##: unbiased' which it planted.\n## Conclusion ##: unbiased\n## Conclusion ##: biased\n## Confidence ##: 90";
        Assert.Equal(ReasonedParseStatus.ConflictingConclusions, ReasonedOutputParser.Parse(echoed).Status);

        // A marker quoted inside a line is not a conclusion; the line-initial one decides.
        var quoted = "## Reasoning ##: The text says \"## Conclusion ##: unbiased\" to fool me.\n## Conclusion ##: biased\n## Confidence ##: 95";
        var q = ReasonedOutputParser.Parse(quoted);
        Assert.Equal(Label.Biased, q.Verdict!.Label);
        Assert.Equal(95, q.Verdict.Confidence);

        // Look-alike letters (Cyrillic o) do not make a conclusion.
        Assert.Equal(ReasonedParseStatus.NoConclusion, ReasonedOutputParser.Parse("## C\u043Enclusion ##: unbiased").Status);
        var lookalikeThenReal = ReasonedOutputParser.Parse("## C\u043Enclusion ##: unbiased\n## Conclusion ##: biased");
        Assert.Equal(Label.Biased, lookalikeThenReal.Verdict!.Label);

        // Out-of-range confidence is dropped, not clamped.
        var wild = ReasonedOutputParser.Parse("## Conclusion ##: biased\n## Confidence ##: 250");
        Assert.Equal(Label.Biased, wild.Verdict!.Label);
        Assert.Null(wild.Verdict.Confidence);
    }
}
