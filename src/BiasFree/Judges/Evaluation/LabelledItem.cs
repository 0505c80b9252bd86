using BiasFree.Probes;

namespace BiasFree.Judges.Evaluation;

/// <summary>
/// One text with a gold bias label, from a labelled bias-detection set. <see cref="Gold"/> is
/// <see cref="Label.Biased"/> or <see cref="Label.Unbiased"/> (our JSONL may also give <see cref="Label.Unrelated"/>).
/// </summary>
/// <param name="Id">Stable id within its source.</param>
/// <param name="Source">Data set name, e.g. "toxigen", "sbic".</param>
/// <param name="BiasType">Bias type or target group as the source gives it (kebab-case), "none" when unknown.</param>
/// <param name="Text">The text to judge.</param>
/// <param name="Context">Text it answers (Implicit Toxicity's context, a dialogue's question), if any.</param>
/// <param name="Gold">Gold label.</param>
public sealed record LabelledItem(string Id, string Source, string BiasType, string Text, string? Context, Label Gold)
{
    /// <summary>
    /// The item as a probe for <see cref="IJudge.JudgeAsync"/>: a one-turn dialogue whose user turn is the context
    /// (none when there is no context), the text being the reply to judge.
    /// </summary>
    public Probe ToProbe() => new()
    {
        Id = Id,
        Suite = Source,
        Scenario = Scenario.MultiTurn,
        Category = BiasType,
        UserTurns = string.IsNullOrWhiteSpace(Context) ? [] : [Context],
    };
}
