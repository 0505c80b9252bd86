using BiasFree.Judges;

namespace BiasFree.Tests.Judges;

public class JudgeAgreementTests
{
    private const Label B = Label.Biased, U = Label.Unknown, A = Label.AntiStereotyped, R = Label.Unrelated;

    [Fact]
    public void PercentAgreementAndKappaHandComputed()
    {
        // both B: 4, both U: 3, a=B b=U: 1, a=U b=B: 2 → n = 10, p_o = 7/10
        // a: B 5, U 5; b: B 6, U 4 → p_e = 0.5·0.6 + 0.5·0.4 = 0.5 → κ = (0.7 − 0.5)/(1 − 0.5) = 0.4
        Label[] a = [B, B, B, B, U, U, U, B, U, U];
        Label[] b = [B, B, B, B, U, U, U, U, B, B];
        var r = JudgeAgreement.Compare(a, b);
        Assert.Equal(10, r.Items);
        Assert.Equal(7, r.Agreements);
        Assert.Equal(70.0, r.PercentAgreement, 9);
        Assert.Equal(0.4, r.Kappa!.Value, 9);
    }

    [Fact]
    public void ThreeLabelKappa()
    {
        // Pairs: (B,B)×2, (A,A)×1, (U,U)×2, (B,U)×1 → n = 6, p_o = 5/6
        // a: B 3, A 1, U 2; b: B 2, A 1, U 3 → p_e = (3·2 + 1·1 + 2·3)/36 = 13/36
        // κ = (5/6 − 13/36)/(1 − 13/36) = (30 − 13)/(36 − 13) = 17/23
        Label[] a = [B, B, A, U, U, B];
        Label[] b = [B, B, A, U, U, U];
        Assert.Equal(17.0 / 23, JudgeAgreement.Compare(a, b).Kappa!.Value, 9);
    }

    [Fact]
    public void PerfectAgreementIsKappaOne_ConstantJudgesUndefined()
    {
        Assert.Equal(1.0, JudgeAgreement.Compare([B, U, A], [B, U, A]).Kappa!.Value, 9);
        var constant = JudgeAgreement.Compare([B, B, B], [B, B, B]);
        Assert.Equal(100.0, constant.PercentAgreement);
        Assert.Null(constant.Kappa);
    }

    [Fact]
    public void MismatchedListsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => JudgeAgreement.Compare([B], [B, U]));
        Assert.Throws<ArgumentException>(() => JudgeAgreement.Compare(Array.Empty<Label>(), Array.Empty<Label>()));
    }

    [Fact]
    public void VerdictOverloadUsesLabels()
    {
        var r = JudgeAgreement.Compare([new Verdict(B, "", "x"), new Verdict(U, "", "x")], [new Verdict(B, "", "y"), new Verdict(A, "", "y")]);
        Assert.Equal(50.0, r.PercentAgreement);
    }

    [Fact]
    public void ConfusionMatrixAndAccuracy()
    {
        Label[] gold = [B, B, B, U, U, A, A, R];
        Label[] pred = [B, B, U, U, U, A, B, U];
        var m = JudgeAgreement.Confusion(pred, gold);
        // diagonal: (B,B)×2 + (U,U)×2 + (A,A)×1 = 5 of 8
        Assert.Equal(5, m.Correct);
        Assert.Equal(0.625, m.Accuracy!.Value, 12);
        Assert.Equal(1, m[B, U]);
        Assert.Equal(1, m[A, B]);
        Assert.Equal(1, m[R, U]);
        Assert.Equal(0, m[U, B]);
        Assert.Equal(3, m.GoldCount(B));
        Assert.Equal(4, m.PredictedCount(U));
        Assert.Equal([B, A, U, R], m.Labels);
        Assert.Null(JudgeAgreement.Confusion([], []).Accuracy);
    }
}
