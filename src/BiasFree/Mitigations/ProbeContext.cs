using Microsoft.Extensions.AI;

namespace BiasFree.Mitigations;

/// <summary>
/// How a run tells the chat-client pipeline which probe a request belongs to. Mitigation wrappers
/// (<see cref="DelegatingChatClient"/>s) read these keys from <see cref="ChatOptions.AdditionalProperties"/>:
/// Self-Awareness needs the bias category, and every prompting method acts only on a dialogue's final turn.
/// The runner sets them; the keys are stripped before a request leaves for a remote server.
/// </summary>
public static class ProbeContext
{
    /// <summary>The probe's bias category (string), e.g. "age".</summary>
    public const string CategoryKey = "biasfree.category";

    /// <summary>True (bool) when this request carries the probe's final user turn, the one that is judged.</summary>
    public const string FinalTurnKey = "biasfree.final_turn";

    /// <summary>The probe's scenario ("multiple-choice" / "multi-turn").</summary>
    public const string ScenarioKey = "biasfree.scenario";

    /// <summary>
    /// True (bool) when the probe's question shows its options as lettered lines (BBQ's three-option protocol,
    /// <c>--options three</c>): methods then use their <see cref="MethodPrompts.LetteredSuffix"/> templates.
    /// </summary>
    public const string LetteredKey = "biasfree.lettered";

    /// <summary>True when the run marked the request's question as having lettered options.</summary>
    public static bool IsLettered(ChatOptions? options) =>
        options?.AdditionalProperties?.TryGetValue(LetteredKey, out var v) == true && v is true;

    /// <summary>Reads the category, or null when the request was not made by a run.</summary>
    public static string? GetCategory(ChatOptions? options) =>
        options?.AdditionalProperties?.TryGetValue(CategoryKey, out var v) == true ? v as string : null;

    /// <summary>True unless the run marked this request as a non-final turn of a dialogue.</summary>
    public static bool IsFinalTurn(ChatOptions? options) =>
        options?.AdditionalProperties?.TryGetValue(FinalTurnKey, out var v) != true || v is not false;
}
