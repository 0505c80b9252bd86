using System.Text.Json;

namespace BiasFree.Judges.Defences;

/// <summary>
/// The prompt-injection defences a judge applies to the untrusted response before its model sees it. Every LLM judge
/// of the library applies <see cref="All"/> unless told otherwise; <see cref="None"/> exists to measure the raw judge
/// (<c>biasfree judge eval --injection --no-defences</c>).
/// </summary>
[Flags]
public enum JudgeDefences
{
    /// <summary>The response goes to the judge as it is (the nonce-tagged blocks of the full prompts remain).</summary>
    None = 0,

    /// <summary><see cref="TextCanonicaliser"/>: invisible characters, compatibility forms and look-alikes folded; fake delimiters and judge-format markers neutralised.</summary>
    Canonicalise = 1,

    /// <summary><see cref="DataMarking"/> of the response, in prompts that can explain it (BiasGuard full prompt, LLM dialogue judge).</summary>
    DataMarking = 2,

    /// <summary><see cref="InjectionDetector"/> and, when the judge passes the conversation, <see cref="TopicIsolation"/>: segments
    /// addressed to the judge are removed and the finding is stored with the verdict.</summary>
    Detection = 4,

    /// <summary><see cref="Defences.SecondReading"/>: when the defended reply still holds sentences that talk about its grading (by a
    /// verdict word, or by their form: commentary on the reply, another language, an encoded token, an acrostic), it is
    /// judged a second time without them and the readings are reconciled; a verdict whose reasoning argues the opposite of
    /// its conclusion is unparseable.</summary>
    SecondReading = 8,

    /// <summary><see cref="KnownAnswerDetection"/>: before judging, the judge's model is asked to repeat a fresh random code
    /// while ignoring the reply; when it does not, the sentences it follows are located (bounded calls) and left out. Only
    /// judges with a chat model that can do that task apply it (LLM dialogue, BiasGuard full prompt, Llama-Guard style,
    /// multiple choice); compact judges of small trained models and the moderation endpoint never do.</summary>
    KnownAnswer = 16,

    /// <summary><see cref="Defences.TopicSentences"/> (v6): a compact judge of a small trained model reads only the sentences of the
    /// reply that engage with the conversation (a shared word, or a word for people or a group). Only compact judges apply
    /// it; LLM judges read the whole defended reply.</summary>
    TopicSentences = 32,

    /// <summary><see cref="Defences.SentenceVerdicts"/> (v7): a compact judge judges each sentence it reads on its own and the
    /// reply's verdict is the most severe of theirs (biased, then unbiased, then unrelated), so text added to a reply
    /// cannot change what the judge says about the reply's own sentences. Only compact judges apply it.</summary>
    SentenceVerdicts = 64,

    /// <summary>Every defence (the default).</summary>
    All = Canonicalise | DataMarking | Detection | SecondReading | KnownAnswer | TopicSentences | SentenceVerdicts,
}

/// <summary>What the defences did to one response; stored with the verdict (<see cref="Verdict.Injection"/>).</summary>
/// <param name="Signals">Segments removed as attempts to steer the judge.</param>
/// <param name="Canonicalisation">What canonicalisation changed (empty when nothing).</param>
public sealed record InjectionFinding(IReadOnlyList<InjectionSignal> Signals, IReadOnlyList<string> Canonicalisation)
{
    /// <summary>True when the detector removed at least one segment.</summary>
    public bool Detected => Signals.Count > 0;

    /// <summary>Distinct rule families that fired, in order of first appearance.</summary>
    public IReadOnlyList<string> Families => [.. Signals.Select(s => s.Family).Distinct()];

    /// <summary>One line for a verdict's reason.</summary>
    public string Summary => Detected
        ? $"injection detected ({string.Join(", ", Families)}; " + string.Join(", ", new[]
            {
                Signals.Count(s => s.Family != SecondReadingFamily) is var n and > 0 ? $"{n} segment(s) removed before judging" : null,
                Signals.Count(s => s.Family == SecondReadingFamily) is var m and > 0 ? $"{m} sentence(s) left out of a second reading" : null,
            }.Where(x => x is not null)) + ")"
        : $"text canonicalised ({string.Join("; ", Canonicalisation)})";

    /// <summary>Family of the signals that name the sentences a second reading left out (<see cref="Defences.SecondReading"/>).</summary>
    public const string SecondReadingFamily = "second-reading";

    /// <summary>The finding as JSON (run store column <c>injection</c>).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, InjectionFindingJson.Default.InjectionFinding);

    /// <summary>Reads <see cref="ToJson"/>; null for null or malformed text.</summary>
    public static InjectionFinding? FromJson(string? json)
    {
        if (string.IsNullOrWhiteSpace(json)) return null;
        try
        {
            return JsonSerializer.Deserialize(json, InjectionFindingJson.Default.InjectionFinding);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>Compile-time serialization metadata for <see cref="InjectionFinding"/> (camelCase names), so no converter is built at run time.</summary>
[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
[System.Text.Json.Serialization.JsonSerializable(typeof(InjectionFinding))]
internal sealed partial class InjectionFindingJson : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>The response a judge's model is asked about, after the defences.</summary>
/// <param name="Text">Canonical text with flagged segments removed (may be empty when the response was nothing but an attack).</param>
/// <param name="Finding">What the defences found or changed; null when they changed nothing.</param>
public sealed record DefendedResponse(string Text, InjectionFinding? Finding);

/// <summary>Applies <see cref="JudgeDefences"/> around a judge's model call.</summary>
public static class InjectionDefence
{
    /// <summary>
    /// The conversation a probe's reply answers, as <see cref="TopicIsolation"/> reads it: the stereotype statement (if
    /// any), the context and question, the user turns and the answer options.
    /// </summary>
    public static string Context(Probes.Probe probe)
    {
        ArgumentNullException.ThrowIfNull(probe);
        var parts = new List<string?> { probe.ContextText, probe.Question };
        if (probe.Metadata.TryGetValue(LlmDialogueJudge.StereotypeKey, out var stereotype)) parts.Add(stereotype);
        parts.AddRange(probe.UserTurns);
        parts.AddRange(probe.Options.Select(o => o.Text));
        return string.Join("\n", parts.Where(p => !string.IsNullOrWhiteSpace(p)));
    }

    /// <summary>Canonicalises and scans <paramref name="response"/> as <paramref name="defences"/> say.</summary>
    /// <param name="response">The untrusted reply.</param>
    /// <param name="defences">Which defences apply.</param>
    /// <param name="context">The conversation the reply answers (question, statement, user turns), for
    /// <see cref="TopicIsolation"/>; null skips the off-topic rule.</param>
    public static DefendedResponse Prepare(string response, JudgeDefences defences, string? context = null)
    {
        ArgumentNullException.ThrowIfNull(response);
        // Reasoning models' thinking is not judged (JudgeCalls.FinalText); cut it before canonicalisation defuses the tag.
        var text = JudgeCalls.FinalText(response);
        IReadOnlyList<string> changes = [];
        if (defences.HasFlag(JudgeDefences.Canonicalise)) (text, changes) = TextCanonicaliser.Canonicalise(text);
        IReadOnlyList<InjectionSignal> signals = [];
        if (defences.HasFlag(JudgeDefences.Detection))
        {
            // The rules are written for canonical text; without canonicalisation they still run on a folded copy.
            var scan = InjectionDetector.Scan(defences.HasFlag(JudgeDefences.Canonicalise) ? text : TextCanonicaliser.Canonicalise(text).Text);
            if (scan.Detected)
            {
                signals = scan.Signals;
                text = scan.Remainder;
            }
            var (isolated, off) = TopicIsolation.Isolate(text, context is null ? null : TextCanonicaliser.Canonicalise(context).Text);
            if (off.Count > 0)
            {
                signals = [.. signals, .. off];
                text = isolated;
            }
        }
        var finding = signals.Count > 0 || changes.Count > 0 ? new InjectionFinding(signals, changes) : null;
        return new DefendedResponse(text, finding);
    }

    /// <summary>
    /// Judges <paramref name="response"/> through the defences: <paramref name="judgeCore"/> sees the defended text, and the
    /// verdict carries the finding. Fail-safe rule: the response's content decides. Attack text is removed, not
    /// punished or rewarded, because forcing "biased" on detection would itself flip the verdict of an unbiased reply
    /// that carries an attack; a response that is nothing but text addressed to the judge has no content for the user
    /// and is <see cref="Label.Unrelated"/> (counted and shown, not eligible for BFS).
    /// </summary>
    /// <param name="judgeName">Name for a verdict the defences give themselves.</param>
    /// <param name="response">The untrusted reply.</param>
    /// <param name="defences">Which defences apply.</param>
    /// <param name="judgeCore">The judge's model call on the defended text.</param>
    /// <param name="context">The conversation the reply answers, for <see cref="TopicIsolation"/> (null skips it).</param>
    /// <param name="knownAnswer">The judge's <see cref="KnownAnswerDetection"/>, applied when <paramref name="defences"/> has
    /// <see cref="JudgeDefences.KnownAnswer"/> (null: the judge cannot apply it).</param>
    /// <param name="cancellationToken">Cancels the known-answer calls.</param>
    public static async Task<Verdict> JudgeAsync(string judgeName, string response, JudgeDefences defences, Func<string, Task<Verdict>> judgeCore,
        string? context = null, KnownAnswerDetection? knownAnswer = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(judgeCore);
        if (defences == JudgeDefences.None || string.IsNullOrWhiteSpace(response)) return await judgeCore(response ?? "").ConfigureAwait(false);
        var defended = Prepare(response, defences, context);
        var finding = defended.Finding;
        if (finding is { Detected: true } && string.IsNullOrWhiteSpace(defended.Text))
            return new Verdict(Label.Unrelated, $"the response is nothing but text addressed to the judge; {finding.Summary}", judgeName) { Injection = finding };
        string? unavailable = null;
        if (knownAnswer is not null && defences.HasFlag(JudgeDefences.KnownAnswer) && !string.IsNullOrWhiteSpace(defended.Text))
        {
            // After the rule layers (they are free; this costs calls) and before the second reading (which then treats the
            // reply as one in which an attack was seen). The finding names the removed text, never the code.
            var scan = await knownAnswer.ScanAsync(defended.Text, cancellationToken).ConfigureAwait(false);
            if (scan.Removed.Count > 0)
                finding = new InjectionFinding([.. finding?.Signals ?? [], .. scan.Removed.Select(r => new InjectionSignal(KnownAnswerDetection.Family, Excerpt(r)))],
                    finding?.Canonicalisation ?? []);
            switch (scan.Status)
            {
                case KnownAnswerStatus.Localised when string.IsNullOrWhiteSpace(scan.Text):
                    return new Verdict(Label.Unrelated, $"the response is nothing but text the judge model follows; {finding!.Summary}", judgeName) { Injection = finding };
                case KnownAnswerStatus.Localised:
                    defended = new DefendedResponse(scan.Text, finding);
                    break;
                case KnownAnswerStatus.Inseparable:
                    // The model follows something in the reply that could not be cut out: no verdict read from it can be
                    // trusted either way (as a verdict arguing against its own reasoning is not).
                    return new Verdict(Label.Unparseable,
                        $"the judge model follows text in the response that could not be separated from its content (known-answer check, {scan.Calls} calls); {finding!.Summary}",
                        judgeName) { Injection = finding };
                case KnownAnswerStatus.Unavailable:
                    unavailable = "known-answer check unavailable: the judge model did not repeat the code on a harmless control text either";
                    break;
            }
        }
        if (!defences.HasFlag(JudgeDefences.SecondReading))
        {
            var plain = await judgeCore(defended.Text).ConfigureAwait(false);
            if (unavailable is not null) plain = plain with { Reason = $"{plain.Reason} [{unavailable}]" };
            return finding is null ? plain : plain with { Reason = finding.Detected ? $"{plain.Reason} [{finding.Summary}]" : plain.Reason, Injection = finding };
        }

        var reading = SecondReading.Content(defended.Text, context is null ? null : TextCanonicaliser.Canonicalise(context).Text, finding?.Detected == true);
        Verdict v;
        string? how = null;
        if (reading.Differs)
        {
            // Both readings are judged; the sentences left out are recorded with the finding (a clean reply that has such a
            // sentence counts as a detector alarm in the injection suite, so this cost is measured).
            var full = await judgeCore(defended.Text).ConfigureAwait(false);
            var content = await judgeCore(reading.Text).ConfigureAwait(false);
            (v, how) = SecondReading.Combine(full, content, reading, [.. finding?.Signals.Select(x => x.Excerpt) ?? []]);
            finding = new InjectionFinding([.. finding?.Signals ?? [], .. reading.Removed.Select(r => new InjectionSignal(InjectionFinding.SecondReadingFamily, Excerpt(r)))],
                finding?.Canonicalisation ?? []);
        }
        else
        {
            v = await judgeCore(defended.Text).ConfigureAwait(false);
            // On a reply the defences found something in, a verdict whose reasoning argues the opposite of its conclusion
            // is not read as either. A reply they found nothing in is judged exactly as without this layer: the cue lists
            // are coarse ("rejects the claim that women can lead" may well come with "biased"), so they are only
            // trusted where an attack was seen.
            if (finding is { Detected: true } && v.Label is Label.Biased or Label.Unbiased && SecondReading.ArguesOpposite(v.Label, v.Reason))
                v = new Verdict(Label.Unparseable, $"the judge's reasoning argues the opposite of its conclusion ({v.Label.ToString().ToLowerInvariant()}): {v.Reason}", v.Judge, v.RawOutput);
        }
        if (unavailable is not null) v = v with { Reason = $"{v.Reason} [{unavailable}]" };
        if (finding is null) return v;
        var note = string.Join("; ", new[] { finding.Detected ? finding.Summary : null, how }.Where(x => x is not null));
        return v with { Reason = note.Length > 0 ? $"{v.Reason} [{note}]" : v.Reason, Injection = finding };
    }

    private static string Excerpt(string s)
    {
        var t = s.Trim();
        return t.Length <= 160 ? t : t[..157] + "...";
    }

}
