namespace BiasFree.Probes;

/// <summary>The two test scenarios of BiasFreeBench (Xu et al., 2025): single-turn multiple choice and multi-turn dialogue.</summary>
/// <remarks>Written as text by <see cref="ScenarioNames"/> (<c>multiple-choice</c>, <c>multi-turn</c>).</remarks>
[System.Text.Json.Serialization.JsonConverter(typeof(ScenarioJsonConverter))]
public enum Scenario
{
    /// <summary>BBQ-style question over a short context, answered by picking one option.</summary>
    MultipleChoice,

    /// <summary>FairMT-Bench-style dialogue of several user turns; only the model's last reply is judged.</summary>
    MultiTurn,
}

/// <summary>
/// What choosing an option means <em>for this question</em>. Following BiasFreeBench's BBQ rule, the
/// <see cref="Stereotyped"/> option is the biased answer: the stereotyped group for a negative question and
/// the other group for a non-negative question. <see cref="AntiStereotyped"/> is the remaining group.
/// </summary>
public enum OptionRole
{
    Stereotyped,
    AntiStereotyped,
    Unknown,
}

/// <summary>BBQ's context condition: ambiguous contexts do not say who did it, disambiguated ones do.</summary>
public enum ContextCondition
{
    Ambiguous,
    Disambiguated,
}

/// <summary>BBQ's question polarity: a negative question asks who fits a harmful stereotype.</summary>
public enum QuestionPolarity
{
    Negative,
    NonNegative,
}

/// <summary>One answer option of a multiple-choice probe.</summary>
/// <param name="Text">The option as shown to the model, e.g. "The grandfather".</param>
/// <param name="Role">The option's bias role for this question (see <see cref="OptionRole"/>).</param>
/// <param name="Group">The social group the option names (e.g. "old"), or "unknown".</param>
public sealed record ProbeOption(string Text, OptionRole Role, string Group);

/// <summary>
/// One probe in the common query→response format. Everything a run needs to send the probe and to judge
/// the answer is here: the user turns to send, and for multiple choice the options and their roles.
/// </summary>
public sealed record Probe
{
    /// <summary>Stable id, unique within its suite (used as the key in run stores and caches).</summary>
    public required string Id { get; init; }

    /// <summary>Name of the suite the probe belongs to, e.g. "bbq-builtin" or "fairmt-builtin".</summary>
    public required string Suite { get; init; }

    public required Scenario Scenario { get; init; }

    /// <summary>Bias category in kebab-case, e.g. "age", "gender-identity", "race-ethnicity".</summary>
    public required string Category { get; init; }

    /// <summary>
    /// The user turns in order. Multiple choice has exactly one (the formatted query with context, question and
    /// the shown options); multi-turn has several, and the model's replies are interleaved by the runner.
    /// </summary>
    public required IReadOnlyList<string> UserTurns { get; init; }

    /// <summary>Multiple choice only: every option, including the unknown one, in the order shown/stored.</summary>
    public IReadOnlyList<ProbeOption> Options { get; init; } = [];

    /// <summary>Multiple choice only: ambiguous or disambiguated context.</summary>
    public ContextCondition? Context { get; init; }

    /// <summary>Multiple choice only: negative or non-negative question.</summary>
    public QuestionPolarity? Polarity { get; init; }

    /// <summary>Multiple choice only: index into <see cref="Options"/> of the correct answer, if known.</summary>
    public int? CorrectOption { get; init; }

    /// <summary>Multiple choice only: the context text (kept separately for judges and reports).</summary>
    public string? ContextText { get; init; }

    /// <summary>Multiple choice only: the question text.</summary>
    public string? Question { get; init; }

    /// <summary>Multi-turn only: FairMT task type, e.g. "scattered-questions", "jailbreak-tips".</summary>
    public string? TaskType { get; init; }

    /// <summary>Free-form metadata kept from the source (template id, source file, stereotyped groups...).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = System.Collections.ObjectModel.ReadOnlyDictionary<string, string>.Empty;

    /// <summary>The option with the given role, or null if the probe has none.</summary>
    public ProbeOption? OptionWithRole(OptionRole role) => Options.FirstOrDefault(o => o.Role == role);
}
