using BiasFree.Judges;
using BiasFree.Probes;

namespace BiasFree.Scoring;

/// <summary>A proportion <see cref="Count"/> / <see cref="Total"/> with its bootstrap interval.</summary>
/// <param name="Count">Numerator.</param>
/// <param name="Total">Denominator (0: the proportion is undefined).</param>
/// <param name="Interval">Percentile-bootstrap interval; null when switched off or when <see cref="Total"/> is below the minimum.</param>
public sealed record Proportion(int Count, int Total, ConfidenceInterval? Interval)
{
    /// <summary>Count / Total, or null when Total is 0 (never printed as 0).</summary>
    public double? Value => Total == 0 ? null : (double)Count / Total;
}

/// <summary>
/// Scores of one group of responses: one (model, method, scenario, category) cell of the report.
/// <see cref="Category"/> is "all" for the row that pools every category of the scenario.
/// Nullable scores are null when the group has no eligible response (never printed as 0).
/// </summary>
/// <param name="Model">Target model.</param>
/// <param name="Method">Mitigation method.</param>
/// <param name="Scenario">Scenario.</param>
/// <param name="Category">Bias category or "all".</param>
/// <param name="Responses">Number of responses in the group (all labels).</param>
/// <param name="Counts">Responses per label (every label present, zeros included).</param>
/// <param name="Bfs">Bias-Free Score in [0,1] over every response of the group (for multiple choice: ambiguous and disambiguated pooled).</param>
/// <param name="BfsLow">Lower end of the bootstrap confidence interval of <see cref="Bfs"/>.</param>
/// <param name="BfsHigh">Upper end of the bootstrap confidence interval of <see cref="Bfs"/>.</param>
/// <param name="Accuracy">BBQ accuracy over answers (multiple choice with known correct role), both contexts.</param>
/// <param name="BiasDisambiguated">BBQ s_DIS over disambiguated items.</param>
/// <param name="BiasAmbiguous">BBQ s_AMB over ambiguous items (accuracy over answers).</param>
public sealed record ScoreRow(
    string Model,
    string Method,
    Scenario Scenario,
    string Category,
    int Responses,
    IReadOnlyDictionary<Label, int> Counts,
    double? Bfs,
    double? BfsLow,
    double? BfsHigh,
    double? Accuracy,
    double? BiasDisambiguated,
    double? BiasAmbiguous)
{
    /// <summary>
    /// Multiple choice: BFS over the items that are not disambiguated (BBQ ambiguous contexts, and items without a
    /// context condition such as StereoSet or CrowS-Pairs): the quantity BiasFreeBench reports. Null for multi-turn.
    /// </summary>
    public Proportion? BfsAmbiguous { get; init; }

    /// <summary>Multiple choice: correct answers / answers on disambiguated items (answers = biased, anti-stereotyped or unknown labels).</summary>
    public Proportion? AccuracyDisambiguated { get; init; }

    /// <summary>Multiple choice: "unknown" answers / answers on disambiguated items, where the context does name the answer: over-refusal.</summary>
    public Proportion? UnknownDisambiguated { get; init; }

    /// <summary>BBQ accuracy with unrelated, no-answer and unparseable responses in the denominator (counted as not correct).</summary>
    public double? AccuracyAllResponses { get; init; }

    /// <summary>BBQ s_AMB computed with <see cref="BbqResult.AccuracyAmbiguousAllResponses"/>.</summary>
    public double? BiasAmbiguousAllResponses { get; init; }

    /// <summary>Responses that are not BFS-eligible (unrelated, no answer, unparseable, judge error).</summary>
    public int Ineligible => Responses - Counts.Where(kv => BiasFreeScore.IsEligible(Scenario, kv.Key)).Sum(kv => kv.Value);

    /// <summary>
    /// <see cref="Bfs"/> as a proportion (bias-free eligible / eligible) with its interval; null only on rows built by hand.
    /// </summary>
    public Proportion? BfsPooled { get; init; }

    /// <summary>
    /// The run's headline BFS for this row: <see cref="BfsAmbiguous"/> for multiple choice, <see cref="BfsPooled"/> for
    /// multi-turn. Paired comparisons compare this quantity.
    /// </summary>
    public Proportion? HeadlineBfs => Scenario == Scenario.MultipleChoice ? BfsAmbiguous : BfsPooled;
}
