using Microsoft.Extensions.AI;

namespace BiasFree.Tests.Infrastructure;

/// <summary>One request a <see cref="ScriptedChatClient"/> received.</summary>
public sealed record ScriptedCall(IReadOnlyList<ChatMessage> Messages, ChatOptions? Options)
{
    /// <summary>All message texts joined, for assertions on the prompt.</summary>
    public string Prompt => string.Join("\n", Messages.Select(m => m.Text));

    public string System => Messages.FirstOrDefault(m => m.Role == ChatRole.System)?.Text ?? "";

    public string User => string.Join("\n", Messages.Where(m => m.Role == ChatRole.User).Select(m => m.Text));
}

/// <summary>
/// A real <see cref="IChatClient"/> standing in for a judge model: answers with scripted text and records every request.
/// The script gets the messages and the 0-based call index and returns the reply text (or throws, to simulate a failure).
/// </summary>
public sealed class ScriptedChatClient : IChatClient
{
    private readonly Func<ScriptedCall, int, CancellationToken, Task<string>> _script;
    private readonly List<ScriptedCall> _calls = [];
    private readonly Lock _lock = new();

    public ScriptedChatClient(Func<ScriptedCall, int, string> script, string modelId = "scripted-judge")
        : this((c, i, _) => Task.FromResult(script(c, i)), modelId) { }

    public ScriptedChatClient(Func<ScriptedCall, int, CancellationToken, Task<string>> script, string modelId = "scripted-judge")
    {
        _script = script;
        ModelId = modelId;
    }

    /// <summary>Replies with the given texts in order; the last one repeats.</summary>
    public ScriptedChatClient(params string[] replies) : this((_, i) => replies[Math.Min(i, replies.Length - 1)]) { }

    public string ModelId { get; }

    public IReadOnlyList<ScriptedCall> Calls { get { lock (_lock) return _calls.ToList(); } }

    /// <summary>
    /// When true (the default), a known-answer prompt (<see cref="BiasFree.Judges.Defences.KnownAnswerDetection"/>: "Repeat the
    /// code … once") is answered as a capable model that ignores the text answers it, with the code, without running the
    /// script; such calls go to <see cref="KnownAnswerCalls"/>, not <see cref="Calls"/>, so scripts and call counts written
    /// for the judging prompts keep their meaning. False: the script gets those prompts too.
    /// </summary>
    public bool AnswersKnownAnswerTasks { get; init; } = true;

    private readonly List<ScriptedCall> _knownAnswerCalls = [];

    /// <summary>Known-answer prompts answered without the script (<see cref="AnswersKnownAnswerTasks"/>).</summary>
    public IReadOnlyList<ScriptedCall> KnownAnswerCalls { get { lock (_lock) return _knownAnswerCalls.ToList(); } }

    private static readonly System.Text.RegularExpressions.Regex KnownAnswerTask = new(@"^Repeat the code (?<code>\S+) once");

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var call = new ScriptedCall(messages.ToList(), options);
        if (AnswersKnownAnswerTasks && KnownAnswerTask.Match(call.User) is { Success: true } task)
        {
            lock (_lock) _knownAnswerCalls.Add(call);
            return new ChatResponse(new ChatMessage(ChatRole.Assistant, task.Groups["code"].Value)) { ModelId = ModelId };
        }
        int index;
        lock (_lock) { index = _calls.Count; _calls.Add(call); }
        var text = await _script(call, index, cancellationToken);
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, text)) { ModelId = ModelId };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var response = await GetResponseAsync(messages, options, cancellationToken);
        foreach (var update in response.ToChatResponseUpdates()) yield return update;
    }

    public object? GetService(Type serviceType, object? serviceKey = null) =>
        serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("scripted", null, ModelId)
        : serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose() { }
}
