using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace BiasFree.Tests.Targets;

/// <summary>One call seen by a <see cref="RecordingChatClient"/>: a copy of the messages and the options as passed.</summary>
public sealed record RecordedCall(IReadOnlyList<ChatMessage> Messages, ChatOptions? Options)
{
    public IReadOnlyList<ChatRole> Roles => Messages.Select(m => m.Role).ToArray();

    public IReadOnlyList<string> Texts => Messages.Select(m => m.Text).ToArray();
}

/// <summary>
/// A model-boundary fake: records every call (messages copied at call time) and answers with
/// <c>reply(callIndex, messages)</c>.
/// </summary>
public sealed class RecordingChatClient(Func<int, IReadOnlyList<ChatMessage>, string> reply) : IChatClient
{
    private readonly List<RecordedCall> _calls = [];
    private readonly Lock _gate = new();

    public RecordingChatClient(params string[] replies)
        : this((i, _) => replies[Math.Min(i, replies.Length - 1)])
    {
    }

    public IReadOnlyList<RecordedCall> Calls
    {
        get
        {
            lock (_gate)
            {
                return _calls.ToArray();
            }
        }
    }

    public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var copy = messages.Select(m => m.Clone()).ToArray();
        int index;
        lock (_gate)
        {
            index = _calls.Count;
            _calls.Add(new RecordedCall(copy, options));
        }

        return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, reply(index, copy)))
        {
            Usage = new UsageDetails { InputTokenCount = 10, OutputTokenCount = 5, TotalTokenCount = 15 },
            ModelId = "recording",
        });
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages,
        ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var response = await GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        foreach (var update in response.ToChatResponseUpdates())
        {
            yield return update;
        }
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose()
    {
    }
}
