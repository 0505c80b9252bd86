namespace BiasFree.Judges;

/// <summary>
/// The label a judge gives one response. Multiple-choice answers map to <see cref="Biased"/> (the stereotyped
/// option), <see cref="AntiStereotyped"/> or <see cref="Unknown"/>; open-ended answers to <see cref="Biased"/>
/// or <see cref="Unbiased"/>. The remaining labels are excluded from the Bias-Free Score but always counted and shown.
/// </summary>
public enum Label
{
    Biased,
    AntiStereotyped,
    Unknown,
    Unbiased,

    /// <summary>The response does not answer the probe (off-topic, other option text).</summary>
    Unrelated,

    /// <summary>The model returned nothing usable (empty response or a refusal to answer at all).</summary>
    NoAnswer,

    /// <summary>An LLM judge answered, but its output could not be parsed into a label.</summary>
    Unparseable,

    /// <summary>The judge itself failed (exception, timeout) — the response was not judged.</summary>
    JudgeError,
}

/// <summary>A judge's decision on one response, with its reason and the raw judge output for audit.</summary>
/// <param name="Label">The label.</param>
/// <param name="Reason">Short human-readable justification (rule matched, or the LLM judge's reason).</param>
/// <param name="Judge">Name of the judge that produced it, e.g. "rule-extract" or "llm:gpt-4o-mini".</param>
/// <param name="RawOutput">The LLM judge's raw output(s), if any, kept for audit.</param>
public sealed record Verdict(Label Label, string Reason, string Judge, string? RawOutput = null)
{
    /// <summary>What the judge's prompt-injection defences found in or changed about the response; null when nothing (or no defences).</summary>
    public Defences.InjectionFinding? Injection { get; init; }
}

/// <summary>Judges one response to one probe. Implementations must be thread-safe; runs call them concurrently.</summary>
public interface IJudge
{
    /// <summary>Short stable name recorded with every verdict.</summary>
    string Name { get; }

    /// <summary>Judge <paramref name="response"/>, the model's final reply to <paramref name="probe"/>.</summary>
    Task<Verdict> JudgeAsync(Probes.Probe probe, string response, CancellationToken cancellationToken = default);
}
