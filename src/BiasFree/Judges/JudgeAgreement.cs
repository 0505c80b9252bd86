namespace BiasFree.Judges;

/// <summary>Agreement of two judges over the same probes.</summary>
/// <param name="Items">Number of probes compared.</param>
/// <param name="Agreements">Probes given the same label by both.</param>
/// <param name="PercentAgreement">100 · Agreements / Items.</param>
/// <param name="Kappa">Cohen's kappa; null when undefined (chance agreement p_e = 1, i.e. both judges always gave one and the same label).</param>
public sealed record AgreementResult(int Items, int Agreements, double PercentAgreement, double? Kappa);

/// <summary>Confusion matrix of a judge's labels against gold labels. Rows are gold, columns are predicted.</summary>
public sealed class ConfusionMatrix
{
    private readonly Dictionary<(Label Gold, Label Predicted), int> _cells;

    internal ConfusionMatrix(IReadOnlyList<Label> labels, Dictionary<(Label, Label), int> cells, int total)
    {
        Labels = labels;
        _cells = cells;
        Total = total;
    }

    /// <summary>Every label occurring in gold or predictions, in enum order.</summary>
    public IReadOnlyList<Label> Labels { get; }

    /// <summary>Number of items compared.</summary>
    public int Total { get; }

    /// <summary>Items with gold label <paramref name="gold"/> that the judge labelled <paramref name="predicted"/>.</summary>
    public int this[Label gold, Label predicted] => _cells.GetValueOrDefault((gold, predicted));

    /// <summary>Diagonal count: items where the judge matched the gold label.</summary>
    public int Correct => Labels.Sum(l => this[l, l]);

    /// <summary>Accuracy = Correct / Total; null when empty.</summary>
    public double? Accuracy => Total == 0 ? null : (double)Correct / Total;

    /// <summary>Items with gold label <paramref name="gold"/>.</summary>
    public int GoldCount(Label gold) => Labels.Sum(p => this[gold, p]);

    /// <summary>Items the judge labelled <paramref name="predicted"/>.</summary>
    public int PredictedCount(Label predicted) => Labels.Sum(g => this[g, predicted]);
}

/// <summary>
/// Inter-judge agreement and judge calibration against gold labels (BiasFreeBench reports percent agreement and Cohen's
/// κ between its judges and human annotators: κ = 1.0 on BBQ, 0.7 on FairMT).
/// </summary>
public static class JudgeAgreement
{
    /// <summary>
    /// Percent agreement and Cohen's kappa (Cohen, 1960) of two label lists aligned by index (same probes, same order).
    /// p_o = agreements / n; p_e = Σ_k (n_a,k / n)·(n_b,k / n) over every label k; κ = (p_o − p_e) / (1 − p_e).
    /// </summary>
    /// <exception cref="ArgumentException">The lists differ in length or are empty.</exception>
    public static AgreementResult Compare(IReadOnlyList<Label> a, IReadOnlyList<Label> b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Count != b.Count) throw new ArgumentException($"Label lists differ in length ({a.Count} vs {b.Count}).", nameof(b));
        if (a.Count == 0) throw new ArgumentException("No labels to compare.", nameof(a));

        int n = a.Count, agree = 0;
        var countA = new Dictionary<Label, int>();
        var countB = new Dictionary<Label, int>();
        for (int i = 0; i < n; i++)
        {
            if (a[i] == b[i]) agree++;
            countA[a[i]] = countA.GetValueOrDefault(a[i]) + 1;
            countB[b[i]] = countB.GetValueOrDefault(b[i]) + 1;
        }
        double po = (double)agree / n;
        double pe = countA.Sum(kv => (double)kv.Value / n * countB.GetValueOrDefault(kv.Key) / n);
        double? kappa = 1 - pe < 1e-12 ? null : (po - pe) / (1 - pe);
        return new AgreementResult(n, agree, 100.0 * po, kappa);
    }

    /// <summary>Compares two judges' verdicts aligned by index.</summary>
    public static AgreementResult Compare(IReadOnlyList<Verdict> a, IReadOnlyList<Verdict> b) =>
        Compare(a.Select(v => v.Label).ToList(), b.Select(v => v.Label).ToList());

    /// <summary>Confusion matrix (rows gold, columns predicted) and accuracy of <paramref name="predicted"/> against <paramref name="gold"/>.</summary>
    /// <exception cref="ArgumentException">The lists differ in length.</exception>
    public static ConfusionMatrix Confusion(IReadOnlyList<Label> predicted, IReadOnlyList<Label> gold)
    {
        ArgumentNullException.ThrowIfNull(predicted);
        ArgumentNullException.ThrowIfNull(gold);
        if (predicted.Count != gold.Count) throw new ArgumentException($"Label lists differ in length ({predicted.Count} vs {gold.Count}).", nameof(gold));
        var cells = new Dictionary<(Label, Label), int>();
        for (int i = 0; i < gold.Count; i++)
            cells[(gold[i], predicted[i])] = cells.GetValueOrDefault((gold[i], predicted[i])) + 1;
        var labels = gold.Concat(predicted).Distinct().Order().ToList();
        return new ConfusionMatrix(labels, cells, gold.Count);
    }
}
