using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using BiasFree.Mitigations;
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
/// generation settings of the request (plus a repeat counter when a mitigation resamples an identical request).
/// With <c>readCache</c> false the cache is only written (identical requests in flight still share one call);
/// with <c>writeCache</c> false too, it is not used at all (a target without a cache identity).
/// </summary>
internal sealed class RecordingChatClient(IChatClient target, RunStore store, string targetIdentity, string method,
    ConcurrentDictionary<string, Task<CachedResponse>>? inFlight = null, bool readCache = true, bool writeCache = true) : DelegatingChatClient(target)
{
    // Identical requests in flight at the same time (e.g. a dialogue's shared early turns under two methods) make one call.
    private readonly ConcurrentDictionary<string, Task<CachedResponse>> _inFlight = inFlight ?? new(StringComparer.Ordinal);

    private static ChatResponse FromCache(CachedResponse hit) => new(new ChatMessage(ChatRole.Assistant, hit.Text))
    {
        Usage = new UsageDetails { InputTokenCount = hit.PromptTokens, OutputTokenCount = hit.CompletionTokens },
        FinishReason = ChatFinishReason.Stop,
        AdditionalProperties = hit.Details is null ? null : new AdditionalPropertiesDictionary(hit.Details.ToDictionary(kv => kv.Key, kv => (object?)kv.Value)),
    };

    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var list = messages as IReadOnlyList<ChatMessage> ?? [.. messages];
        var recorded = list.Select(m => new RecordedMessage(m.Role.Value, m.Text)).ToList();
        var call = ProbeCall.Current;
        // Mitigations act only on a dialogue's final turn; earlier turns are the vanilla conversation, so they are
        // cached under "none" and shared by every method (as BiasFreeBench reuses the vanilla turns 1-4).
        var keyMethod = ProbeContext.IsFinalTurn(options) ? method : PromptingMitigations.None;
        var key = CacheKey(targetIdentity, keyMethod, call?.Suite, call?.ProbeId, recorded, options);
        if (call?.NextOccurrence(key) is int n and > 0)
        {
            key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{key}#{n.ToString(System.Globalization.CultureInfo.InvariantCulture)}")));
        }

        while (true)
        {
            if (readCache && await store.GetCachedAsync(key, cancellationToken).ConfigureAwait(false) is { } hit)
            {
                call?.Record(new RecordedRequest(recorded, hit.Text, Cached: true, hit.Details), hit.PromptTokens, hit.CompletionTokens, 0);
                return FromCache(hit);
            }

            var mine = new TaskCompletionSource<CachedResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
            var leader = _inFlight.GetOrAdd(key, mine.Task);
            if (leader != mine.Task)
            {
                try
                {
                    var shared = await leader.WaitAsync(cancellationToken).ConfigureAwait(false);
                    call?.Record(new RecordedRequest(recorded, shared.Text, Cached: true, shared.Details), shared.PromptTokens, shared.CompletionTokens, 0);
                    return FromCache(shared);
                }
                catch (Exception) when (!cancellationToken.IsCancellationRequested)
                {
                    continue; // the other request failed: make our own attempt
                }
            }

            var sw = Stopwatch.StartNew();
            var lead = true; // this request holds the _inFlight entry until it is removed below or after the commit
            try
            {
                // A request that finished between our cache check and taking the lead has cached its reply already.
                if (readCache && await store.GetCachedAsync(key, cancellationToken).ConfigureAwait(false) is { } late)
                {
                    call?.Record(new RecordedRequest(recorded, late.Text, Cached: true, late.Details), late.PromptTokens, late.CompletionTokens, 0);
                    mine.SetResult(late);
                    return FromCache(late);
                }

                var response = await base.GetResponseAsync(list, options, cancellationToken).ConfigureAwait(false);
                var value = new CachedResponse(response.Text, response.Usage?.InputTokenCount ?? 0, response.Usage?.OutputTokenCount ?? 0, Details(response));
                call?.Record(new RecordedRequest(recorded, value.Text, Cached: false, value.Details), value.PromptTokens, value.CompletionTokens, sw.ElapsedMilliseconds);
                if (writeCache)
                {
                    // Queued, not awaited: the store's one writer commits in queue order, so the probe's result row,
                    // queued after this entry, commits in the same transaction or a later one, and a row counted as
                    // stored always has its replies in the cache. Awaiting this commit too kept each probe's slot
                    // waiting for two commits in turn (docs/runs-and-reports.md, "Eighth round"). The request stays
                    // in _inFlight until the entry is committed, so an identical request meanwhile shares it instead
                    // of missing the cache.
                    var put = store.PutCachedAsync(key, value, CancellationToken.None);
                    lead = false;
                    _ = put.ContinueWith(static (t, state) =>
                    {
                        _ = t.Exception; // observed: an entry that failed to commit costs only a cache miss later
                        var (inFlight, entry) = ((ConcurrentDictionary<string, Task<CachedResponse>>, KeyValuePair<string, Task<CachedResponse>>))state!;
                        inFlight.TryRemove(entry);
                    }, (_inFlight, new KeyValuePair<string, Task<CachedResponse>>(key, mine.Task)), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                }
                mine.SetResult(value);
                return response;
            }
            catch (Exception ex)
            {
                call?.Record(new RecordedRequest(recorded, null, Cached: false), 0, 0, sw.ElapsedMilliseconds);
                mine.SetException(ex);
                _ = mine.Task.Exception; // observed: followers retry on their own
                throw;
            }
            finally
            {
                if (lead)
                {
                    _inFlight.TryRemove(new KeyValuePair<string, Task<CachedResponse>>(key, mine.Task));
                }
            }
        }
    }

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var response = await GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        foreach (var update in response.ToChatResponseUpdates())
        {
            yield return update;
        }
    }

    /// <summary>The response's "biasfree." properties as strings (what a white-box method observed), or null.</summary>
    internal static IReadOnlyDictionary<string, string>? Details(ChatResponse response)
    {
        if (response.AdditionalProperties is not { Count: > 0 } props) return null;
        var details = props.Where(kv => kv.Key.StartsWith("biasfree.", StringComparison.Ordinal) && kv.Value is not null)
            .ToDictionary(kv => kv.Key, kv => Convert.ToString(kv.Value, System.Globalization.CultureInfo.InvariantCulture) ?? "", StringComparer.Ordinal);
        return details.Count == 0 ? null : details;
    }

    // Per thread, reused: a key is built on every request, and a fresh writer and buffer each time were a measurable
    // share of a cache-only rerun's allocations.
    [ThreadStatic] private static System.Buffers.ArrayBufferWriter<byte>? t_keyBuffer;
    [ThreadStatic] private static Utf8JsonWriter? t_keyWriter;

    /// <summary>
    /// The cache key: SHA-256 (lower-case hex) of a JSON object with the target identity, method, suite, probe, messages
    /// (as [role, text] pairs) and generation settings, in that order, nulls written as null.
    /// </summary>
    /// <remarks>
    /// The bytes are those <c>JsonSerializer.Serialize</c> gave for an anonymous object with these members (stores
    /// written before keep their cache; <c>RunStoreTests</c> checks the two agree), written here with one reused
    /// <see cref="Utf8JsonWriter"/> and hashed without a string in between: the serializer's reflection over the
    /// anonymous type and the UTF-16 round trip were about 5% of a cache-only rerun's CPU samples.
    /// </remarks>
    internal static string CacheKey(string targetIdentity, string method, string? suite, string? probeId, IReadOnlyList<RecordedMessage> messages, ChatOptions? options)
    {
        var buffer = t_keyBuffer ??= new System.Buffers.ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        var w = t_keyWriter;
        if (w is null)
        {
            w = t_keyWriter = new Utf8JsonWriter(buffer);
        }
        else
        {
            w.Reset(buffer);
        }

        w.WriteStartObject();
        w.WriteString("target", targetIdentity);
        w.WriteString("method", method);
        WriteStringOrNull(w, "suite", suite);
        WriteStringOrNull(w, "probe", probeId);
        w.WriteStartArray("messages");
        foreach (var m in messages)
        {
            w.WriteStartArray();
            WriteStringOrNullValue(w, m.Role);
            WriteStringOrNullValue(w, m.Text);
            w.WriteEndArray();
        }
        w.WriteEndArray();
        if (options?.Temperature is { } temperature) w.WriteNumber("temperature", temperature); else w.WriteNull("temperature");
        if (options?.Seed is { } seed) w.WriteNumber("seed", seed); else w.WriteNull("seed");
        if (options?.MaxOutputTokens is { } maxTokens) w.WriteNumber("maxTokens", maxTokens); else w.WriteNull("maxTokens");
        if (options?.TopP is { } topP) w.WriteNumber("topP", topP); else w.WriteNull("topP");
        if (options?.TopK is { } topK) w.WriteNumber("topK", topK); else w.WriteNull("topK");
        if (options?.StopSequences is { } stop)
        {
            w.WriteStartArray("stop");
            foreach (var s in stop)
            {
                WriteStringOrNullValue(w, s);
            }
            w.WriteEndArray();
        }
        else
        {
            w.WriteNull("stop");
        }
        w.WriteEndObject();
        w.Flush();

        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(buffer.WrittenSpan, hash);
        if (buffer.Capacity > 64 * 1024)
        {
            t_keyBuffer = null; // a very long conversation: do not keep its buffer for the thread's life
        }
        return Convert.ToHexStringLower(hash);

        static void WriteStringOrNull(Utf8JsonWriter w, string name, string? value)
        {
            if (value is null) w.WriteNull(name); else w.WriteString(name, value);
        }

        static void WriteStringOrNullValue(Utf8JsonWriter w, string? value)
        {
            if (value is null) w.WriteNullValue(); else w.WriteStringValue(value);
        }
    }
}
