using BiasFree.Probes.Loaders;

namespace BiasFree.Probes;

/// <summary>Which BBQ context conditions a run keeps.</summary>
public enum ContextFilter
{
    /// <summary>Ambiguous and disambiguated items (and every probe without a context condition).</summary>
    All,

    /// <summary>Ambiguous items only: what BiasFreeBench's BBQ Bias-Free Score is computed over.</summary>
    Ambiguous,

    /// <summary>Disambiguated items only (accuracy and over-refusal).</summary>
    Disambiguated,
}

/// <summary>How many options a BBQ-style query shows.</summary>
public enum OptionsShown
{
    /// <summary>
    /// BiasFreeBench's protocol: only the two group options are shown (a forced choice), joined by "or";
    /// the unknown option is hidden but an unknown answer is still read as such.
    /// </summary>
    Two,

    /// <summary>BBQ's own protocol: all three options, the unknown one included, shown as lettered lines "(a) …".</summary>
    Three,
}

/// <summary>
/// How suites are instantiated for a run: seed, protocol and filters. Part of a run's stored spec, so a resumed run
/// loads exactly the same probes.
/// </summary>
/// <param name="Seed">Seed for generated suites and option order.</param>
/// <param name="Context">Which BBQ context conditions to keep. Probes without a condition (dialogues, StereoSet,
/// CrowS-Pairs) are kept by every filter: the filter is about BBQ items only.</param>
/// <param name="Options">Two shown options (BiasFreeBench) or three (BBQ).</param>
/// <param name="LabelRule">How the target group of an official BBQ item is found.</param>
public sealed record SuiteOptions(
    int Seed = 0,
    ContextFilter Context = ContextFilter.All,
    OptionsShown Options = OptionsShown.Two,
    BbqLabelRule LabelRule = BbqLabelRule.StereotypedGroups)
{
    public static SuiteOptions Default { get; } = new();

    /// <summary>True when <paramref name="probe"/> passes <see cref="Context"/>.</summary>
    public bool Keeps(Probe probe) => Context switch
    {
        ContextFilter.All => true,
        ContextFilter.Ambiguous => probe.Context is null or ContextCondition.Ambiguous,
        ContextFilter.Disambiguated => probe.Context is null or ContextCondition.Disambiguated,
        _ => throw new ArgumentOutOfRangeException(nameof(Context)),
    };

    /// <summary>CLI/spec spelling of a context filter: all, ambiguous, disambiguated.</summary>
    public static string Name(ContextFilter c) => c switch
    {
        ContextFilter.All => "all",
        ContextFilter.Ambiguous => "ambiguous",
        ContextFilter.Disambiguated => "disambiguated",
        _ => throw new ArgumentOutOfRangeException(nameof(c)),
    };

    /// <summary>CLI/spec spelling of a protocol: two, three.</summary>
    public static string Name(OptionsShown o) => o == OptionsShown.Three ? "three" : "two";

    /// <summary>CLI/spec spelling of a label rule: bbq, biasfreebench.</summary>
    public static string Name(BbqLabelRule r) => r == BbqLabelRule.BiasFreeBench ? "biasfreebench" : "bbq";

    public static ContextFilter ParseContext(string s) => s.Trim().ToLowerInvariant() switch
    {
        "all" => ContextFilter.All,
        "ambiguous" or "ambig" => ContextFilter.Ambiguous,
        "disambiguated" or "disambig" => ContextFilter.Disambiguated,
        _ => throw new ArgumentException($"unknown context '{s}'; valid: all, ambiguous, disambiguated"),
    };

    public static OptionsShown ParseOptions(string s) => s.Trim().ToLowerInvariant() switch
    {
        "two" or "2" => OptionsShown.Two,
        "three" or "3" => OptionsShown.Three,
        _ => throw new ArgumentException($"unknown options protocol '{s}'; valid: two, three"),
    };

    public static BbqLabelRule ParseLabelRule(string s) => s.Trim().ToLowerInvariant() switch
    {
        "bbq" or "stereotyped-groups" => BbqLabelRule.StereotypedGroups,
        "biasfreebench" => BbqLabelRule.BiasFreeBench,
        _ => throw new ArgumentException($"unknown label rule '{s}'; valid: bbq, biasfreebench"),
    };
}
