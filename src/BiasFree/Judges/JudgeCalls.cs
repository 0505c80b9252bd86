using BiasFree.Judges.Defences;
using BiasFree.Probes;
using Microsoft.Extensions.AI;

namespace BiasFree.Judges;

/// <summary>Shared plumbing of the LLM judges: one model call with a timeout, failures turned into values.</summary>
internal static class JudgeCalls
{
    /// <summary>Default per-call timeout.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Sends one request. Returns the text, or an error message for any failure or timeout. Only cancellation through
    /// <paramref name="cancellationToken"/> (as <see cref="OperationCanceledException"/>) and persistent failures
    /// (<see cref="Targets.TargetFailure.Persistent"/>) propagate.
    /// </summary>
    public static async Task<(string? Text, string? Error)> CallAsync(
        IChatClient client, IList<ChatMessage> messages, ChatOptions options, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            var response = await client.GetResponseAsync(messages, options, cts.Token).ConfigureAwait(false);
            return (response.Text ?? "", null);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            return (null, $"judge call timed out after {timeout.TotalSeconds:0.#} s");
        }
        catch (Exception ex) when (Targets.TargetFailure.Persistent(ex) is null)
        {
            // A refused key or a URL that is no API propagates instead: every later call would fail the same way,
            // and the run stops on it (EvaluationRunner) rather than recording a judge error per probe.
            return (null, $"{ex.GetType().Name}: {ex.Message}");
        }
    }

    /// <summary>
    /// The part of a response that is judged: the text after the last <c>&lt;/think&gt;</c> when a reasoning model emitted
    /// one (BiasFreeBench, Xu et al. 2025, App. B.1, judges reasoning models on that text only), else the whole response.
    /// </summary>
    public static string FinalText(string response)
    {
        int i = response.LastIndexOf("</think>", StringComparison.OrdinalIgnoreCase);
        return i < 0 ? response : response[(i + "</think>".Length)..].Trim();
    }

    /// <summary>
    /// The front every model judge puts before its call: it judges the reply's <see cref="FinalText"/> through
    /// <paramref name="defences"/> (<see cref="InjectionDefence.JudgeAsync"/>, with the probe's conversation as the topic
    /// context), and an empty reply is <see cref="Label.NoAnswer"/> without a call.
    /// </summary>
    public static async Task<Verdict> JudgeReplyAsync(string judgeName, Probe probe, string? response, JudgeDefences defences,
        Func<string, Task<Verdict>> judgeCore, KnownAnswerDetection? knownAnswer = null, CancellationToken cancellationToken = default)
    {
        var text = FinalText(response ?? "");
        if (string.IsNullOrWhiteSpace(text)) return new Verdict(Label.NoAnswer, "empty response (judge not called)", judgeName);
        return await InjectionDefence.JudgeAsync(judgeName, text, defences, judgeCore, InjectionDefence.Context(probe), knownAnswer, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The known-answer layer for a judge over <paramref name="client"/>, or null when <paramref name="defences"/> leave it out.</summary>
    public static KnownAnswerDetection? KnownAnswerFor(IChatClient client, JudgeDefences defences, TimeSpan timeout) =>
        defences.HasFlag(JudgeDefences.KnownAnswer) ? new KnownAnswerDetection(client, defences.HasFlag(JudgeDefences.DataMarking), timeout) : null;

    /// <summary>"prefix:model" using the client's default model id when it reports one.</summary>
    public static string NameFor(string prefix, IChatClient client, string? name)
    {
        if (!string.IsNullOrWhiteSpace(name)) return name;
        var model = client.GetService<ChatClientMetadata>()?.DefaultModelId;
        return string.IsNullOrWhiteSpace(model) ? prefix : $"{prefix}:{model}";
    }
}
