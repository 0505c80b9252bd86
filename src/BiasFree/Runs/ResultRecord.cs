using BiasFree.Judges;
using BiasFree.Probes;

namespace BiasFree.Runs;

/// <summary>One request sent to the target while answering a probe, and what came back.</summary>
/// <param name="Messages">The messages sent (role, text), in order.</param>
/// <param name="Response">The reply text, or null if the request failed.</param>
/// <param name="Cached">True when the reply came from the response cache.</param>
/// <param name="Details">
/// What a white-box method reported for this reply (its response's AdditionalProperties under "biasfree.", e.g. FairSteer's
/// gate firings or BiasFilter's candidate scores); null for other replies and for cached ones.
/// </param>
public sealed record RecordedRequest(IReadOnlyList<RecordedMessage> Messages, string? Response, bool Cached,
    IReadOnlyDictionary<string, string>? Details = null);

/// <summary>A chat message as recorded in the run store.</summary>
public sealed record RecordedMessage(string Role, string Text);

/// <summary>One row of the results table: a (run, method, probe) item and its outcome.</summary>
public sealed record ResultRecord
{
    public required string RunId { get; init; }
    public required string Method { get; init; }
    public required string Suite { get; init; }
    public required string ProbeId { get; init; }
    public required Scenario Scenario { get; init; }
    public required string Category { get; init; }
    public ContextCondition? Context { get; init; }
    public QuestionPolarity? Polarity { get; init; }
    public OptionRole? CorrectRole { get; init; }
    public required string Model { get; init; }

    /// <summary>Every request sent for this probe (a mitigation may send several).</summary>
    public IReadOnlyList<RecordedRequest> Requests { get; init; } = [];

    /// <summary>The judged (final) reply.</summary>
    public string? Response { get; init; }

    /// <summary>
    /// True when the method could not do its work for this probe and answered the original prompt instead
    /// (Self-Help: no usable rewrite after its attempts).
    /// </summary>
    public bool Fallback { get; init; }

    /// <summary>The verdict, null when the target failed.</summary>
    public Verdict? Verdict { get; init; }

    public long PromptTokens { get; init; }
    public long CompletionTokens { get; init; }
    public long LatencyMs { get; init; }

    /// <summary>The target's error after retries; such rows are re-attempted on resume.</summary>
    public string? Error { get; init; }

    public DateTimeOffset Started { get; init; }
    public DateTimeOffset Completed { get; init; }

    /// <summary>True when the row needs no more work: judged, and the judge did not fail.</summary>
    public bool IsComplete => Error is null && Verdict is not null && Verdict.Label != Label.JudgeError;
}
