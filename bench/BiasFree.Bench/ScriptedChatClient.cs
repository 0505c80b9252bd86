using Microsoft.Extensions.AI;

/// <summary>
/// A bench target that answers from a script: each reply is a function of the request's last user message, so the
/// benches measure the run path (store, cache, judge, reports) with no model and no server behind it. It counts the
/// requests it answered; streaming is not scripted.
/// </summary>
internal sealed class ScriptedChatClient(Func<string, string> reply) : IChatClient
{
    private long _requests;

    /// <summary>Requests answered so far.</summary>
    public long Requests => Interlocked.Read(ref _requests);

    public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _requests);
        var text = reply(messages.Last(m => m.Role == ChatRole.User).Text);
        return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, text)));
    }

    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException();

    public object? GetService(Type serviceType, object? serviceKey = null) => null;

    public void Dispose()
    {
    }
}
