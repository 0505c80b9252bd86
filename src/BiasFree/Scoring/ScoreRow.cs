using BiasFree.Judges;
using BiasFree.Probes;

namespace BiasFree.Scoring;

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
/// <param name="Bfs">Bias-Free Score in [0,1].</param>
/// <param name="BfsLow">Lower end of the bootstrap confidence interval of <see cref="Bfs"/>.</param>
/// <param name="BfsHigh">Upper end of the bootstrap confidence interval of <see cref="Bfs"/>.</param>
/// <param name="Accuracy">BBQ accuracy (multiple choice with known correct role).</param>
/// <param name="BiasDisambiguated">BBQ s_DIS over disambiguated items.</param>
/// <param name="BiasAmbiguous">BBQ s_AMB over ambiguous items.</param>
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
    double? BiasAmbiguous);
