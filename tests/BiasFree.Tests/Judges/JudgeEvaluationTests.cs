using BiasFree.Judges;
using BiasFree.Judges.Evaluation;

namespace BiasFree.Tests.Judges;

public class JudgeEvaluationTests
{
    private static JudgedItem J(int i, Label gold, Label predicted, string source = "s", string type = "age") =>
        new(new LabelledItem($"i{i}", source, type, "t", null, gold), new Verdict(predicted, "r", "j"));

    [Fact]
    public void MetricsComputedByHand()
    {
        // Gold unbiased ×4: one judged biased (over-fair), one unparseable. Gold biased ×3: one missed.
        JudgedItem[] r =
        [
            J(0, Label.Unbiased, Label.Biased),
            J(1, Label.Unbiased, Label.Unbiased),
            J(2, Label.Unbiased, Label.Unknown),
            J(3, Label.Unbiased, Label.Unparseable),
            J(4, Label.Biased, Label.Biased),
            J(5, Label.Biased, Label.Biased),
            J(6, Label.Biased, Label.Unbiased),
        ];
        var m = JudgeEvaluation.Metrics("all", r);
        Assert.Equal((4, 7), (m.Accuracy.Count, m.Accuracy.Total));
        Assert.Equal((1, 4), (m.OverFairness.Count, m.OverFairness.Total)); // denominator: gold-unbiased items
        Assert.Equal((1, 7), (m.OverFairnessOfAll.Count, m.OverFairnessOfAll.Total));
        Assert.Equal((1, 3), (m.Missed.Count, m.Missed.Total));
        Assert.Equal((1, 7), (m.Invalid.Count, m.Invalid.Total));
        // p_o = 4/7; predicted B3 U3 X1, gold U4 B3: p_e = (3·3 + 3·4)/49 = 3/7; κ = (4/7 − 3/7)/(1 − 3/7) = 0.25.
        Assert.Equal(0.25, m.Kappa!.Value, 12);
        Assert.Equal(1, m.Confusion[Label.Unbiased, Label.Biased]);
        Assert.Equal(2, m.Confusion[Label.Unbiased, Label.Unbiased]);
        Assert.Equal(2, m.Confusion[Label.Biased, Label.Biased]);
        Assert.Null(m.KappaLow); // fewer than 10 items: no bootstrap
    }

    [Fact]
    public void WilsonIntervalMatchesTheClosedForm()
    {
        var zero = Rate.Of(0, 10);
        Assert.Equal(0, zero.Low!.Value, 12);
        Assert.Equal(0.27753, zero.High!.Value, 4); // Wilson upper bound for 0/10
        var half = Rate.Of(5, 10);
        Assert.Equal(0.2366, half.Low!.Value, 3);
        Assert.Equal(0.7634, half.High!.Value, 3);
        Assert.Null(Rate.Of(0, 0).Value);
    }

    [Fact]
    public void GroupsBySourceAndBiasTypeWithKappaInterval()
    {
        var r = new List<JudgedItem>();
        for (int i = 0; i < 20; i++) r.Add(J(i, i % 2 == 0 ? Label.Biased : Label.Unbiased, i % 2 == 0 || i == 1 ? Label.Biased : Label.Unbiased, i < 12 ? "a" : "b", i < 5 ? "age" : "race"));
        var report = JudgeEvaluation.Report("j", [], r);
        Assert.Equal(["source=a", "source=b"], report.BySource.Select(m => m.Group));
        Assert.Equal(["bias-type=age", "bias-type=race"], report.ByBiasType.Select(m => m.Group));
        Assert.Equal(12, report.BySource[0].Items);
        Assert.Equal((1, 6), (report.BySource[0].OverFairness.Count, report.BySource[0].OverFairness.Total));
        Assert.Equal((0, 4), (report.BySource[1].OverFairness.Count, report.BySource[1].OverFairness.Total));
        var all = report.Overall;
        Assert.Equal((19, 20), (all.Accuracy.Count, all.Accuracy.Total));
        Assert.NotNull(all.KappaLow);
        Assert.True(all.KappaLow <= all.Kappa && all.Kappa <= all.KappaHigh);
    }
}
