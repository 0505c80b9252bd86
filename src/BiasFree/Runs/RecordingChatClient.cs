using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;

namespace BiasFree.Runs;

/// <summary>What the innermost client learns about the probe being answered (flows with the async context).</summary>
internal sealed class ProbeCall(string suite, string probeId)
{
    private static readonly AsyncLocal<ProbeCall?> CurrentCall = new();
    private readonly Lock _gate = new();
    private readonly List<RecordedRequest> _requests = [];
    private readonly Dictionary<string, int> _occurrences = new(StringComparer.Ordinal);

    public string Suite { get; } = suite;
    public string ProbeId { get; } = probeId;
    public long PromptTokens { get; private set; }
    public long CompletionTokens { get; private set; }
    public long LatencyMs { get; private set; }

    public static ProbeCall? Current
    {
        get => CurrentCall.Value;
        set => CurrentCall.Value = value;
    }

    public IReadOnlyList<RecordedRequest> Requests
    {
        get
        {
            lock (_gate)
            {
                return [.. _requests];
            }
        }
    }

    /// <summary>
    /// How many times this probe already sent a request with this key. A mitigation may resample an identical
    /// request (Self-Help retries an unparseable rewrite); each repeat gets its own cache entry, so resampling still
    /// reaches the model, and a resumed run replays the same sequence from the cache.
    /// </summary>
    public int NextOccurrence(string key)
    {
        lock (_gate)
        {
            var n = _occurrences.GetValueOrDefault(key);
            _occurrences[key] = n + 1;
            return n;
        }
    }

    public void Record(RecordedRequest request, long promptTokens, long completionTokens, long latencyMs)
    {
        lock (_gate)
        {
            _requests.Add(request);
            PromptTokens += promptTokens;
            CompletionTokens += completionTokens;
            LatencyMs += latencyMs;
        }
    }
}

/// <summary>
/// The innermost client of a run's pipeline, directly over the target: answers from the response cache when
/// it can, otherwise calls the target and caches the reply; records every request for the results table.
/// The cache key is a SHA-256 over the target identity, the method, the probe, the exact messages and the
/// generation settings of the request.
/// </summary>
internal sealed class RecordingChatClient(IChatClient target, RunStore store, string targetIdentity, string method) : DelegatingChatClient(target)
{
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var list = messages as IReadOnlyList<ChatMessage> ?? [.. messages];
        var recorded = list.Select(m => new RecordedMessage(m.Role.Value, m.Text)).ToList();
        var call = ProbeCall.Current;
        var key = CacheKey(targetIdentity, method, call?.Suite, call?.ProbeId, recorded, options);
        if (call?.NextOccurrence(key) is int n and > 0)
        {
            key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{key}#{n.ToString(System.Globalization.CultureInfo.InvariantCulture)}")));
        }

        if (await store.GetCachedAsync(key, cancellationToken).ConfigureAwait(false) is { } hit)
        {
            call?.Record(new RecordedRequest(recorded, hit.Text, Cached: true), hit.PromptTokens, hit.CompletionTokens, 0);
            return new ChatResponse(new ChatMessage(ChatRole.Assistant, hit.Text))
            {
                Usage = new UsageDetails { InputTokenCount = hit.PromptTokens, OutputTokenCount = hit.CompletionTokens },
                FinishReason = ChatFinishReason.Stop,
            };
        }

        var sw = Stopwatch.StartNew();
        ChatResponse response;
        try
        {
            response = await base.GetResponseAsync(list, options, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            call?.Record(new RecordedRequest(recorded, null, Cached: false), 0, 0, sw.ElapsedMilliseconds);
            throw;
        }
        var text = response.Text;
        var pt = response.Usage?.InputTokenCount ?? 0;
        var ct = response.Usage?.OutputTokenCount ?? 0;
        call?.Record(new RecordedRequest(recorded, text, Cached: false), pt, ct, sw.ElapsedMilliseconds);
        await store.PutCachedAsync(key, new CachedResponse(text, pt, ct), CancellationToken.None).ConfigureAwait(false);
        return response;
    }

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var response = await GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        foreach (var update in response.ToChatResponseUpdates())
        {
            yield return update;
        }
    }

    internal static string CacheKey(string targetIdentity, string method, string? suite, string? probeId, IReadOnlyList<RecordedMessage> messages, ChatOptions? options)
    {
        var payload = JsonSerializer.Serialize(new
        {
            target = targetIdentity,
            method,
            suite,
            probe = probeId,
            messages = messages.Select(m => new[] { m.Role, m.Text }),
            temperature = options?.Temperature,
            seed = options?.Seed,
            maxTokens = options?.MaxOutputTokens,
            topP = options?.TopP,
            topK = options?.TopK,
            stop = options?.StopSequences,
        });
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(payload)));
    }
}
