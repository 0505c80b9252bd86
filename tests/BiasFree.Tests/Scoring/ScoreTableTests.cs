using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Scoring;
using static BiasFree.Tests.Scoring.ScoringTestData;

namespace BiasFree.Tests.Scoring;

public class ScoreTableTests
{
    private static List<ScoredResponse> Sample()
    {
        var rs = new List<ScoredResponse>();
        // model m / none / MC: age = 2 biased + 2 unknown (BFS 0.5); religion = 1 anti + 1 unrelated (BFS 1.0)
        rs.AddRange(Times(2, () => Mc(Label.Biased, "age")));
        rs.AddRange(Times(2, () => Mc(Label.Unknown, "age")));
        rs.Add(Mc(Label.AntiStereotyped, "religion"));
        rs.Add(Mc(Label.Unrelated, "religion"));
        // model m / none / MT: gender = 1 biased + 3 unbiased (BFS 0.75)
        rs.Add(Mt(Label.Biased));
        rs.AddRange(Times(3, () => Mt(Label.Unbiased)));
        // model a / cot / MC: age = 1 unknown
        rs.Add(Mc(Label.Unknown, "age", model: "a", method: "cot"));
        return rs;
    }

    [Fact]
    public void OneRowPerCellPlusAllRowSortedDeterministically()
    {
        var rows = ScoreTable.Compute(Sample(), new ScoreOptions { Resamples = 200 });
        Assert.Equal(
            ["a/cot/MultipleChoice/all", "a/cot/MultipleChoice/age",
             "m/none/MultipleChoice/all", "m/none/MultipleChoice/age", "m/none/MultipleChoice/religion",
             "m/none/MultiTurn/all", "m/none/MultiTurn/gender"],
            rows.Select(r => $"{r.Model}/{r.Method}/{r.Scenario}/{r.Category}"));

        var all = rows[2];
        // pooled MC for m/none: (1 anti + 2 unknown) / (2 biased + 1 anti + 2 unknown) = 3/5
        Assert.Equal(0.6, all.Bfs!.Value, 12);
        Assert.Equal(6, all.Responses);
        Assert.Equal(1, all.Counts[Label.Unrelated]);
        Assert.Equal(0, all.Counts[Label.JudgeError]);
        Assert.Equal(Enum.GetValues<Label>().Length, all.Counts.Count);
        Assert.InRange(all.Bfs.Value, all.BfsLow!.Value, all.BfsHigh!.Value);
        // ambiguous accuracy: 2 unknown correct of 5 answers = 0.4; s_AMB = (1 − 0.4)·(2·2/3 − 1) = 0.6·(1/3) = 0.2
        Assert.Equal(0.4, all.Accuracy!.Value, 12);
        Assert.Equal(0.2, all.BiasAmbiguous!.Value, 12);
        Assert.Null(all.BiasDisambiguated);

        Assert.Equal(0.5, rows[3].Bfs!.Value, 12);
        Assert.Equal(1.0, rows[4].Bfs!.Value, 12);

        var mt = rows[5];
        Assert.Equal(0.75, mt.Bfs!.Value, 12);
        Assert.Null(mt.Accuracy);
        Assert.Null(mt.BiasAmbiguous);
        Assert.Null(mt.BiasDisambiguated);
    }

    [Fact]
    public void ResultIsIndependentOfInputOrderAndRepeatable()
    {
        var sample = Sample();
        var r1 = ScoreTable.Compute(sample);
        var r2 = ScoreTable.Compute(Enumerable.Reverse(sample));
        Assert.Equal(r1.Select(r => (r.Category, r.Bfs, r.BfsLow, r.BfsHigh)), r2.Select(r => (r.Category, r.Bfs, r.BfsLow, r.BfsHigh)));
    }

    [Fact]
    public void GroupWithoutEligibleResponsesHasNullScores()
    {
        var rows = ScoreTable.Compute([Mt(Label.JudgeError), Mt(Label.Unparseable)]);
        Assert.All(rows, r => { Assert.Null(r.Bfs); Assert.Null(r.BfsLow); Assert.Null(r.BfsHigh); });
        Assert.Equal(2, rows[0].Responses);
    }

    [Fact]
    public void BootstrapCanBeSwitchedOff()
    {
        var rows = ScoreTable.Compute(Sample(), new ScoreOptions { BootstrapIntervals = false });
        Assert.All(rows, r => Assert.Null(r.BfsLow));
    }
}
