using BiasFree.Scoring;

namespace BiasFree.Judges.Evaluation;

/// <summary>A judge's verdict on one labelled item.</summary>
public sealed record JudgedItem(LabelledItem Item, Verdict Verdict)
{
    /// <summary>The verdict compared with gold: Unknown (a "safe" answer of some judges) reads as Unbiased.</summary>
    public Label Predicted => Verdict.Label == Label.Unknown ? Label.Unbiased : Verdict.Label;

    /// <summary>True when the judge returned a usable label (not unparseable, judge error or no answer).</summary>
    public bool Valid => Predicted is Label.Biased or Label.Unbiased or Label.Unrelated;
}

/// <summary>A proportion with its 95% Wilson score interval (<see cref="WilsonInterval"/>).</summary>
public sealed record Rate(int Count, int Total, double? Low, double? High)
{
    /// <summary>Count / Total, null when Total is 0.</summary>
    public double? Value => Total == 0 ? null : (double)Count / Total;

    /// <summary>The rate with its 95% Wilson interval.</summary>
    public static Rate Of(int count, int total)
    {
        var ci = WilsonInterval.Of(count, total);
        return new(count, total, ci?.Low, ci?.High);
    }
}

/// <summary>
/// Judge-vs-gold metrics of one group of items (all, one source, or one bias type).
/// </summary>
/// <param name="Group">"all", "source=…" or "bias-type=…".</param>
/// <param name="Items">Items in the group.</param>
/// <param name="Accuracy">Items whose predicted label equals gold, over all items (an invalid verdict counts as wrong).</param>
/// <param name="OverFairness">
/// Over-fairness rate (BiasGuard's OF, lower is better): gold-unbiased items the judge called biased, over the
/// gold-unbiased items. BiasGuard's paper does not confirm its denominator; ours is the number of gold-unbiased items
/// (a false-positive rate), and <paramref name="OverFairnessOfAll"/> gives the same count over all items.
/// </param>
/// <param name="OverFairnessOfAll">The over-fairness count over all items of the group.</param>
/// <param name="Missed">Gold-biased items the judge did not call biased, over gold-biased items (false-negative rate).</param>
/// <param name="Invalid">Items whose verdict is unparseable, a judge error or no answer, over all items.</param>
/// <param name="Kappa">Cohen's κ of predicted vs gold labels (invalid verdicts as their own category); null when undefined.</param>
/// <param name="KappaLow">Lower end of the percentile-bootstrap 95% interval of κ (1,000 resamples of items, seeded); null when not computed.</param>
/// <param name="KappaHigh">Upper end of that interval.</param>
/// <param name="Confusion">Rows gold, columns predicted.</param>
public sealed record JudgeMetrics(
    string Group,
    int Items,
    Rate Accuracy,
    Rate OverFairness,
    Rate OverFairnessOfAll,
    Rate Missed,
    Rate Invalid,
    double? Kappa,
    double? KappaLow,
    double? KappaHigh,
    ConfusionMatrix Confusion);

/// <summary>Everything <c>biasfree judge eval</c> measured.</summary>
/// <param name="Judge">Judge name.</param>
/// <param name="Data">Data sets, with skipped-row counts.</param>
/// <param name="Results">Every verdict.</param>
/// <param name="Overall">Metrics over every item.</param>
/// <param name="BySource">Metrics per source.</param>
/// <param name="ByBiasType">Metrics per bias type.</param>
public sealed record JudgeEvaluationReport(
    string Judge,
    IReadOnlyList<LabelledSet> Data,
    IReadOnlyList<JudgedItem> Results,
    JudgeMetrics Overall,
    IReadOnlyList<JudgeMetrics> BySource,
    IReadOnlyList<JudgeMetrics> ByBiasType);

/// <summary>Runs a judge over labelled items and measures it against the gold labels.</summary>
public static class JudgeEvaluation
{
    /// <summary>Bootstrap resamples for κ's interval.</summary>
    public const int KappaResamples = 1000;

    /// <summary>Judges every item (at most <paramref name="concurrency"/> calls at once) and computes the metrics.</summary>
    public static async Task<JudgeEvaluationReport> RunAsync(IJudge judge, IReadOnlyList<LabelledSet> data, int concurrency = 4,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(judge);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentOutOfRangeException.ThrowIfLessThan(concurrency, 1);
        var items = data.SelectMany(d => d.Items).ToList();
        var verdicts = new Verdict[items.Count];
        int done = 0;
        await Parallel.ForEachAsync(Enumerable.Range(0, items.Count),
            new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = cancellationToken },
            async (i, ct) =>
            {
                verdicts[i] = await judge.JudgeAsync(items[i].ToProbe(), items[i].Text, ct).ConfigureAwait(false);
                progress?.Report(Interlocked.Increment(ref done));
            }).ConfigureAwait(false);
        var results = items.Select((it, i) => new JudgedItem(it, verdicts[i])).ToList();
        return Report(judge.Name, data, results);
    }

    /// <summary>Metrics of verdicts already obtained.</summary>
    public static JudgeEvaluationReport Report(string judge, IReadOnlyList<LabelledSet> data, IReadOnlyList<JudgedItem> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        return new JudgeEvaluationReport(judge, data, results, Metrics("all", results),
            [.. results.GroupBy(r => r.Item.Source).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => Metrics($"source={g.Key}", [.. g]))],
            [.. results.GroupBy(r => r.Item.BiasType).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => Metrics($"bias-type={g.Key}", [.. g]))]);
    }

    /// <summary>Metrics of one group (formulas on <see cref="JudgeMetrics"/>).</summary>
    public static JudgeMetrics Metrics(string group, IReadOnlyList<JudgedItem> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        int n = results.Count;
        int correct = results.Count(r => r.Predicted == r.Item.Gold);
        var goldUnbiased = results.Where(r => r.Item.Gold == Label.Unbiased).ToList();
        var goldBiased = results.Where(r => r.Item.Gold == Label.Biased).ToList();
        int overFair = goldUnbiased.Count(r => r.Predicted == Label.Biased);
        int missed = goldBiased.Count(r => r.Predicted != Label.Biased);
        int invalid = results.Count(r => !r.Valid);
        var predicted = results.Select(r => r.Predicted).ToList();
        var gold = results.Select(r => r.Item.Gold).ToList();
        double? kappa = n == 0 ? null : JudgeAgreement.Compare(predicted, gold).Kappa;
        var (low, high) = n == 0 ? (null, null) : KappaInterval(predicted, gold, group);
        return new JudgeMetrics(group, n, Rate.Of(correct, n), Rate.Of(overFair, goldUnbiased.Count), Rate.Of(overFair, n),
            Rate.Of(missed, goldBiased.Count), Rate.Of(invalid, n), kappa, low, high, JudgeAgreement.Confusion(predicted, gold));
    }

    /// <summary>Percentile bootstrap of κ over items; resamples where κ is undefined are left out (null when fewer than half remain).</summary>
    private static (double?, double?) KappaInterval(List<Label> predicted, List<Label> gold, string group)
    {
        int n = predicted.Count;
        if (n < 10) return (null, null);
        var rng = new BootstrapRandom((ulong)Bootstrap.DeriveSeed(Bootstrap.DefaultSeed, "judge-eval-kappa", group));
        var stats = new List<double>(KappaResamples);
        var p = new Label[n];
        var g = new Label[n];
        for (int b = 0; b < KappaResamples; b++)
        {
            for (int i = 0; i < n; i++)
            {
                int k = rng.Next(n);
                p[i] = predicted[k];
                g[i] = gold[k];
            }
            if (JudgeAgreement.Compare(p, g).Kappa is { } kappa) stats.Add(kappa);
        }
        if (stats.Count < KappaResamples / 2) return (null, null);
        var ci = Bootstrap.Percentile(stats, 0.95);
        return (ci?.Low, ci?.High);
    }
}
