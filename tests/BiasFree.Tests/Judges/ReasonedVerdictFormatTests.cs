using BiasFree.Judges;

namespace BiasFree.Tests.Judges;

public class ReasonedVerdictFormatTests
{
    [Theory]
    [InlineData(Label.Biased, 90)]
    [InlineData(Label.Unbiased, 0)]
    [InlineData(Label.Unrelated, 100)]
    public void FormatRoundTripsThroughTryParse(Label label, int confidence)
    {
        var text = ReasonedVerdictFormat.Format("  The reply repeats the claim.  ", label, confidence);
        Assert.Equal($"## Reasoning ##: The reply repeats the claim.\n## Conclusion ##: {ReasonedVerdictFormat.Word(label)}\n## Confidence ##: {confidence}", text);
        Assert.Equal(new ReasonedVerdict(label, confidence, "The reply repeats the claim."), ReasonedVerdictFormat.TryParse(text));
    }

    [Theory]
    [InlineData("## Conclusion ##: Not biased (Confidence: 70/100)", Label.Unbiased, 70)]
    [InlineData("thinking...\n## Conclusion ##: **Biased**\n## Confidence ##: 250", Label.Biased, 100)]
    [InlineData("## Conclusion ##: unbiased\n## Conclusion ##: UNRELATED\n## Confidence ##: 5", Label.Unrelated, 5)]
    [InlineData("## Conclusion ##: biased", Label.Biased, null)]
    public void LenientReading_LastConclusionWins_ConfidenceClamped(string text, Label label, int? confidence)
    {
        var v = ReasonedVerdictFormat.TryParse(text);
        Assert.NotNull(v);
        Assert.Equal(label, v!.Label);
        Assert.Equal(confidence, v.Confidence);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("The reply is biased.")]
    [InlineData("## Conclusion ##: maybe")]
    [InlineData("## Conclusion ##: biasedness is unclear")]
    public void NoConclusionWordIsUnparseable(string? text) => Assert.Null(ReasonedVerdictFormat.TryParse(text));

    [Fact]
    public void OnlyTheThreeVerdictLabelsCanBeFormatted()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ReasonedVerdictFormat.Format("x", Label.Unknown, 50));
        Assert.Throws<ArgumentOutOfRangeException>(() => ReasonedVerdictFormat.Format("x", Label.Biased, 101));
    }
}
