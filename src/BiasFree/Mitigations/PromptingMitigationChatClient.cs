using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Extensions.AI;

namespace BiasFree.Mitigations;

/// <summary>
/// Base class of the prompting mitigations. Requests that are not a probe's final turn
/// (<see cref="ProbeContext.IsFinalTurn"/>) pass through unchanged; on the final turn <see cref="MitigateAsync"/>
/// runs, and its response carries the judged answer as its text and the intermediate exchange in
/// <c>AdditionalProperties["biasfree.transcript"]</c>. Streaming requests on the final turn are answered by running
/// the mitigation to completion and replaying the response as updates.
/// </summary>
public abstract class PromptingMitigationChatClient(IChatClient innerClient) : DelegatingChatClient(innerClient)
{
    /// <summary>Response property with the intermediate exchange (string) for audit.</summary>
    public const string TranscriptKey = "biasfree.transcript";

    /// <summary>Response property naming the mitigation that produced the response (string).</summary>
    public const string MethodKey = "biasfree.mitigation";

    /// <summary>
    /// Response property (bool, true) set when the method could not do its work and answered the original prompt
    /// instead (Self-Help: no usable rewrite). Runs record it per probe and reports count it per method.
    /// </summary>
    public const string FallbackKey = "biasfree.fallback";

    /// <summary>The mitigation's name as listed in <see cref="PromptingMitigations.Names"/>.</summary>
    public abstract string Name { get; }

    public sealed override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages,
        ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (!ProbeContext.IsFinalTurn(options))
        {
            return await base.GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        }

        var list = messages as IReadOnlyList<ChatMessage> ?? messages.ToArray();
        var response = await MitigateAsync(list, options, cancellationToken).ConfigureAwait(false);
        (response.AdditionalProperties ??= [])[MethodKey] = Name;
        return response;
    }

    public sealed override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
        IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (!ProbeContext.IsFinalTurn(options))
        {
            await foreach (var update in base.GetStreamingResponseAsync(messages, options, cancellationToken).ConfigureAwait(false))
            {
                yield return update;
            }

            yield break;
        }

        var response = await GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        foreach (var update in response.ToChatResponseUpdates())
        {
            yield return update;
        }
    }

    /// <summary>Runs the mitigation for a final turn. <paramref name="messages"/> is the whole request, system prompt included.</summary>
    protected abstract Task<ChatResponse> MitigateAsync(IReadOnlyList<ChatMessage> messages, ChatOptions? options,
        CancellationToken cancellationToken);

    /// <summary>Index of the last user message, or -1.</summary>
    protected static int LastUserIndex(IReadOnlyList<ChatMessage> messages)
    {
        for (var i = messages.Count - 1; i >= 0; i--)
        {
            if (messages[i].Role == ChatRole.User)
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>A copy of <paramref name="messages"/> whose last user message has <paramref name="suffix"/> appended.</summary>
    protected static List<ChatMessage> AppendToLastUserMessage(IReadOnlyList<ChatMessage> messages, string suffix)
    {
        var copy = messages.ToList();
        var i = LastUserIndex(copy);
        if (i < 0)
        {
            copy.Add(new ChatMessage(ChatRole.User, suffix.TrimStart()));
        }
        else
        {
            copy[i] = new ChatMessage(ChatRole.User, copy[i].Text + suffix);
        }

        return copy;
    }

    /// <summary>
    /// A copy of <paramref name="messages"/> whose last user message is replaced by <paramref name="render"/> applied
    /// to its text (a user message is added, rendered from "", when there is none).
    /// </summary>
    protected static List<ChatMessage> RewriteLastUserMessage(IReadOnlyList<ChatMessage> messages, Func<string, string> render)
    {
        var copy = messages.ToList();
        var i = LastUserIndex(copy);
        if (i < 0)
        {
            copy.Add(new ChatMessage(ChatRole.User, render("").Trim()));
        }
        else
        {
            copy[i] = new ChatMessage(ChatRole.User, render(copy[i].Text));
        }

        return copy;
    }

    /// <summary>
    /// Builds the returned response: the given final text as one assistant message, model/finish data from
    /// <paramref name="last"/>, usage summed over every inner call, and the transcript.
    /// </summary>
    protected static ChatResponse Compose(string finalText, ChatResponse last, IEnumerable<ChatResponse> allCalls, string transcript)
    {
        UsageDetails? usage = null;
        foreach (var r in allCalls)
        {
            if (r.Usage is { } u)
            {
                usage ??= new UsageDetails();
                usage.Add(u);
            }
        }

        var props = last.AdditionalProperties is null ? new AdditionalPropertiesDictionary() : new AdditionalPropertiesDictionary(last.AdditionalProperties);
        props[TranscriptKey] = transcript;
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, finalText))
        {
            ModelId = last.ModelId,
            FinishReason = last.FinishReason,
            ResponseId = last.ResponseId,
            CreatedAt = last.CreatedAt,
            Usage = usage,
            AdditionalProperties = props,
        };
    }

    /// <summary>Accumulates a readable audit transcript: "## section" headers and "[role] text" entries.</summary>
    protected sealed class Transcript
    {
        private readonly StringBuilder _text = new();

        public Transcript Section(string title)
        {
            if (_text.Length > 0)
            {
                _text.Append('\n');
            }

            _text.Append("## ").Append(title).Append('\n');
            return this;
        }

        public Transcript Message(ChatRole role, string text)
        {
            _text.Append('[').Append(role.Value).Append("] ").Append(text).Append('\n');
            return this;
        }

        public Transcript Messages(IEnumerable<ChatMessage> messages)
        {
            foreach (var m in messages)
            {
                Message(m.Role, m.Text);
            }

            return this;
        }

        public Transcript Note(string text)
        {
            _text.Append(text).Append('\n');
            return this;
        }

        public override string ToString() => _text.ToString().TrimEnd('\n');
    }
}
