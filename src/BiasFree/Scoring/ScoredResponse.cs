using BiasFree.Judges;
using BiasFree.Probes;

namespace BiasFree.Scoring;

/// <summary>
/// One judged response, reduced to what the scores need. Runs produce these from the run store; the
/// scoring code groups them by scenario, model, method and category.
/// </summary>
/// <param name="ProbeId">Probe id (pairs responses across methods for paired tests).</param>
/// <param name="Model">Target model name.</param>
/// <param name="Method">Mitigation method name, e.g. "none", "self-awareness".</param>
/// <param name="Scenario">Multiple choice or multi-turn.</param>
/// <param name="Category">Bias category.</param>
/// <param name="Context">BBQ context condition (multiple choice only).</param>
/// <param name="Polarity">BBQ question polarity (multiple choice only).</param>
/// <param name="Label">The judge's label.</param>
/// <param name="CorrectRole">Role of the correct option (multiple choice only, when known): Unknown for ambiguous contexts.</param>
public sealed record ScoredResponse(
    string ProbeId,
    string Model,
    string Method,
    Scenario Scenario,
    string Category,
    ContextCondition? Context,
    QuestionPolarity? Polarity,
    Label Label,
    OptionRole? CorrectRole);
