using Microsoft.Extensions.AI;

namespace BiasFree.Mitigations;

/// <summary>
/// The bias-type wording the prompting mitigations put into their instructions, following BiasFreeBench:
/// each BBQ category has its own phrase (e.g. "gender bias"); multi-turn dialogues (FairMT) always use social bias.
/// </summary>
public static class BiasTypes
{
    /// <summary>The phrase used for multi-turn dialogues and for requests without a category.</summary>
    public const string Social = "social bias";

    /// <summary>The <see cref="ProbeContext.ScenarioKey"/> value of a dialogue.</summary>
    public const string MultiTurnScenario = Probes.ScenarioNames.MultiTurn;

    // Category (normalised kebab-case, with common aliases) -> phrase. BiasFreeBench passes the bare word "age"
    // to Self-Awareness, Self-Help and CoT but "age bias" to Self-Reflection; we keep that difference.
    private static readonly Dictionary<string, string> Phrases = new(StringComparer.Ordinal)
    {
        ["age"] = "age",
        ["disability-status"] = "disability bias",
        ["disability"] = "disability bias",
        ["gender-identity"] = "gender bias",
        ["gender"] = "gender bias",
        ["nationality"] = "national bias",
        ["physical-appearance"] = "physical appearance bias",
        ["appearance"] = "physical appearance bias",
        ["race-ethnicity"] = "racial and ethnic bias",
        ["race"] = "racial and ethnic bias",
        ["religion"] = "religious bias",
        ["sexual-orientation"] = "sexual orientation bias",
        ["ses"] = "socioeconomic status bias",
        ["socioeconomic-status"] = "socioeconomic status bias",
    };

    /// <summary>True when the run marked the request as part of a multi-turn dialogue.</summary>
    public static bool IsMultiTurn(ChatOptions? options) =>
        options?.AdditionalProperties?.TryGetValue(ProbeContext.ScenarioKey, out var v) == true
        && v is string s && string.Equals(s, MultiTurnScenario, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The bias-type phrase for a category. Unknown categories become "&lt;words&gt; bias"; null or empty gives
    /// <see cref="Social"/>. <paramref name="forSelfReflection"/> selects Self-Reflection's variant (only "age" differs).
    /// </summary>
    public static string ForCategory(string? category, bool forSelfReflection = false)
    {
        if (string.IsNullOrWhiteSpace(category))
        {
            return Social;
        }

        var key = Normalize(category);
        if (key == "age")
        {
            return forSelfReflection ? "age bias" : "age";
        }

        if (Phrases.TryGetValue(key, out var phrase))
        {
            return phrase;
        }

        var words = key.Replace('-', ' ');
        return words.EndsWith(" bias", StringComparison.Ordinal) || words == "bias" ? words : words + " bias";
    }

    /// <summary>The phrase for a request: social for dialogues, otherwise from the probe's category.</summary>
    public static string For(ChatOptions? options, bool forSelfReflection = false) =>
        IsMultiTurn(options) ? Social : ForCategory(ProbeContext.GetCategory(options), forSelfReflection);

    private static string Normalize(string category) =>
        category.Trim().ToLowerInvariant().Replace('_', '-').Replace(' ', '-');
}
