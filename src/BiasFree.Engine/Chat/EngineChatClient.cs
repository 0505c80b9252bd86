using System.Runtime.CompilerServices;
using System.Threading.Channels;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.Chat;

/// <summary>What the chat client needs from a tokenizer (the lead adapts HfTokenizer to it).</summary>
public interface ITextTokenizer
{
    /// <summary>Token ids of <paramref name="text"/>, with the tokenizer's special tokens (BOS) when asked.</summary>
    IReadOnlyList<int> Encode(string text, bool addSpecialTokens);

    /// <summary>Text of <paramref name="ids"/> (special tokens skipped).</summary>
    string Decode(IEnumerable<int> ids);

    /// <summary>Beginning-of-sequence id, if the tokenizer has one.</summary>
    int? BosId { get; }

    /// <summary>Ids that end a reply.</summary>
    IReadOnlyList<int> EosIds { get; }
}

/// <summary>Renders a conversation to the model's prompt text (a chat template).</summary>
public interface IChatFormatter
{
    /// <summary>The prompt text of <paramref name="messages"/>, ending with the assistant's turn header when <paramref name="addGenerationPrompt"/>.</summary>
    string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt);
}

/// <summary>Settings of an <see cref="EngineChatClient"/>.</summary>
public sealed record EngineChatClientOptions
{
    /// <summary>Model id reported in responses and metadata.</summary>
    public string ModelId { get; init; } = "biasfree-engine";

    /// <summary>Reply length cap when ChatOptions.MaxOutputTokens is null.</summary>
    public int DefaultMaxOutputTokens { get; init; } = 256;
    /// <summary>Used when ChatOptions.Temperature is null; 0 means greedy decoding.</summary>
    public float DefaultTemperature { get; init; }
    /// <summary>Passed to Encode for the rendered prompt. Chat templates usually spell out BOS themselves.</summary>
    public bool AddSpecialTokens { get; init; }
    /// <summary>Extra end-of-turn ids (e.g. &lt;|eot_id|&gt;, &lt;|im_end|&gt;) on top of the tokenizer's and the model config's EOS ids.</summary>
    public IReadOnlyList<int> ExtraEosIds { get; init; } = [];
    /// <summary>Logits processors applied to every request (reward/value guidance).</summary>
    public IReadOnlyList<ILogitsProcessor> LogitsProcessors { get; init; } = [];
    /// <summary>Most requests in the running batch (decoding and prefilling together).</summary>
    public int MaxBatchSize { get; init; } = 32;
    /// <summary>Bound on the KV cache's memory in bytes (default 1 GiB); requests that do not fit next to the running ones wait.</summary>
    public long KvCacheBytes { get; init; } = ContinuousBatchOptions.DefaultKvCacheBytes;
    /// <summary>Prompt tokens prefilled per scheduling step, spread over the newcomers (see <see cref="ContinuousBatchOptions.PrefillChunkTokens"/>).</summary>
    public int PrefillChunkTokens { get; init; } = 512;
    /// <summary>Seeds the client's stream of seeds for sampled requests that carry none; null = a random stream.</summary>
    public long? Seed { get; init; }
}

/// <summary>
/// Per-request white-box strategy (steering hook, logits processors, decoder) handed to <see cref="EngineChatClient"/> in
/// <c>ChatOptions.AdditionalProperties[<see cref="EngineChatClient.RequestHooksKey"/>]</c>. Methods that wrap the engine
/// (FairSteer, BiasFilter) create one per request, so what they count belongs to that request alone.
/// </summary>
public sealed class EngineRequestHooks
{
    /// <summary>
    /// Makes the residual-stream callback of this request from its prompt ids. In a continuous batch the callback sees only
    /// this request's tokens of each pass ([1, T, hidden]): prompt chunks during prefill, then one token per decoding step.
    /// </summary>
    public Func<IReadOnlyList<int>, Func<int, TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>?>? CreateOnLayer { get; init; }

    /// <summary>Logits processors for this request, after the client-wide ones.</summary>
    public IReadOnlyList<ILogitsProcessor> LogitsProcessors { get; init; } = [];

    /// <summary>
    /// A decoder that replaces plain generation for this request (e.g. BiasFilter's segment search). It runs on the engine's
    /// worker thread between batch steps (the model is not re-entrant), with the model, the prompt ids and the request's options.
    /// </summary>
    public Func<CausalLM, IReadOnlyList<int>, GenerationOptions, CancellationToken, SequenceResult>? Decoder { get; init; }

    /// <summary>Called after generation to add what the strategy observed (e.g. gate firings) to the response's AdditionalProperties.</summary>
    public Action<AdditionalPropertiesDictionary>? Describe { get; init; }
}

/// <summary>
/// <see cref="IChatClient"/> over an in-process <see cref="CausalLM"/>. Thread-safe: requests go through one queue and a
/// single worker runs the model (its forward pass and OnLayer callbacks are not re-entrant). The worker drives a
/// <see cref="ContinuousBatcher"/>: a request joins the running batch at the next decoding step that has room for it,
/// with its own settings, and leaves it as soon as it is done. A seeded sampling request draws from its own generator,
/// so it gives the same text alone or beside any others; an unseeded one takes the next seed of the client's stream.
/// Honours Temperature, TopP, TopK, Seed, MaxOutputTokens, StopSequences and Instructions; reports token usage.
/// </summary>
public sealed class EngineChatClient : IChatClient
{
    private readonly CausalLM _model;
    private readonly ITextTokenizer _tokenizer;
    private readonly IChatFormatter _formatter;
    private readonly EngineChatClientOptions _options;
    private readonly Channel<BatchedSequence> _queue = Channel.CreateUnbounded<BatchedSequence>(new UnboundedChannelOptions { SingleReader = true });
    // Requests with their own decoder (white-box search): run whole on the worker thread between batch steps.
    private readonly Channel<Action> _exclusive = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ContinuousBatcher _batcher;
    private readonly Random _seeds;
    private readonly Task _worker;

    /// <summary>A client over <paramref name="model"/>; it starts the worker that runs the model.</summary>
    public EngineChatClient(CausalLM model, ITextTokenizer tokenizer, IChatFormatter formatter, EngineChatClientOptions? options = null)
    {
        _model = model;
        _tokenizer = tokenizer;
        _formatter = formatter;
        _options = options ?? new EngineChatClientOptions();
        _batcher = new ContinuousBatcher(model, new ContinuousBatchOptions
        {
            MaxBatchSize = _options.MaxBatchSize,
            KvCacheBytes = _options.KvCacheBytes,
            PrefillChunkTokens = _options.PrefillChunkTokens,
        });
        _seeds = _options.Seed is { } seed ? new Random(unchecked((int)(seed ^ (seed >> 32)))) : new Random();
        _worker = Task.Factory.StartNew(WorkerLoop, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
    }

    /// <summary>The model, for white-box access (hooks, steering).</summary>
    public CausalLM Model => _model;

    /// <summary>ChatOptions.AdditionalProperties key of an <see cref="EngineRequestHooks"/> for one request.</summary>
    public const string RequestHooksKey = "biasfree.engine.hooks";

    /// <summary>
    /// Counters of the engine: requests served, batch occupancy, tokens/s, queue wait and KV-cache use
    /// (<c>Requests</c>, <c>Batches</c> and <c>LargestBatch</c> keep their earlier meaning and deconstruction).
    /// </summary>
    public BatchStatistics Statistics => _batcher.Statistics;

    /// <inheritdoc/>
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var (prompt, gen) = Prepare(messages, options);
        var hooks = Hooks(options);
        var completion = hooks?.Decoder is { } decoder
            ? RunExclusive(() => decoder(_model, prompt, gen, cancellationToken))
            : Enqueue(prompt, gen, cancellationToken).Completion;
        var result = await completion.WaitAsync(cancellationToken).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        string text = TextGeneration.CutAtStop(_tokenizer.Decode(result.Tokens), gen.StopStrings);
        AdditionalPropertiesDictionary? described = null;
        if (hooks?.Describe is { } describe)
        {
            described = [];
            describe(described);
        }
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, text))
        {
            AdditionalProperties = described,
            ModelId = options?.ModelId ?? _options.ModelId,
            CreatedAt = DateTimeOffset.UtcNow,
            ResponseId = Guid.NewGuid().ToString("N"),
            FinishReason = Map(result.FinishReason),
            Usage = Usage(prompt.Count, result.Tokens.Count),
        };
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages,
        ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var tokensChannel = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var (prompt, gen) = Prepare(messages, options);
        gen = gen with { OnToken = (_, t) => tokensChannel.Writer.TryWrite(t) };
        string responseId = Guid.NewGuid().ToString("N");
        string modelId = options?.ModelId ?? _options.ModelId;
        // Cancelled when the caller's token fires or when the consumer stops enumerating early.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var pending = Enqueue(prompt, gen, stop.Token);
        _ = pending.Completion.ContinueWith(_ => tokensChannel.Writer.TryComplete(), TaskScheduler.Default);
        try
        {
            // Decode the whole output each time and emit only text that can no longer change: hold back an incomplete
            // UTF-8 tail (U+FFFD) and anything that could still grow into a stop string.
            var tokens = new List<int>();
            int emitted = 0;
            await foreach (int token in tokensChannel.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            {
                tokens.Add(token);
                string text = _tokenizer.Decode(tokens);
                int stable = StableLength(text, gen.StopStrings);
                if (stable > emitted)
                {
                    yield return new ChatResponseUpdate(ChatRole.Assistant, text[emitted..stable]) { ResponseId = responseId, ModelId = modelId };
                    emitted = stable;
                }
            }
            cancellationToken.ThrowIfCancellationRequested();
            var result = await pending.Completion.ConfigureAwait(false);
            string final = TextGeneration.CutAtStop(_tokenizer.Decode(result.Tokens), gen.StopStrings);
            var last = new ChatResponseUpdate(ChatRole.Assistant, emitted < final.Length ? final[emitted..] : "")
            {
                ResponseId = responseId,
                ModelId = modelId,
                FinishReason = Map(result.FinishReason),
            };
            last.Contents.Add(new UsageContent(Usage(prompt.Count, result.Tokens.Count)));
            yield return last;
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
        }
    }

    private BatchedSequence Enqueue(IReadOnlyList<int> prompt, GenerationOptions gen, CancellationToken ct)
    {
        var sequence = new BatchedSequence(prompt, gen, ct);
        if (!_queue.Writer.TryWrite(sequence)) throw new ObjectDisposedException(nameof(EngineChatClient));
        return sequence;
    }

    private Task<SequenceResult> RunExclusive(Func<SequenceResult> decode)
    {
        var done = new TaskCompletionSource<SequenceResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        var job = () =>
        {
            try
            {
                done.TrySetResult(decode());
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }
        };
        if (!_exclusive.Writer.TryWrite(job)) throw new ObjectDisposedException(nameof(EngineChatClient));
        // Wake the worker if it sleeps on an empty queue.
        _queue.Writer.TryWrite(WakeUp);
        return done.Task;
    }

    // A placeholder the worker skips: it only ends the worker's wait for requests.
    private static readonly BatchedSequence WakeUp = new([0], new GenerationOptions());

    private async Task WorkerLoop()
    {
        while (true)
        {
            while (_exclusive.Reader.TryRead(out var job)) job();
            // Newcomers join at the next step; when nothing runs, sleep until a request arrives (or the client closes).
            while (_queue.Reader.TryRead(out var s))
            {
                if (ReferenceEquals(s, WakeUp)) continue;
                try
                {
                    _batcher.Add(s);
                }
                catch (ArgumentException e)
                {
                    s.Fail(e);
                }
            }
            if (_batcher.HasWork)
            {
                _batcher.Step();
                continue;
            }
            if (!await _queue.Reader.WaitToReadAsync().ConfigureAwait(false)) return;
        }
    }

    private static int StableLength(string text, IReadOnlyList<string> stops)
    {
        int end = text.Length;
        while (end > 0 && text[end - 1] == '\uFFFD') end--;
        int cut = TextGeneration.CutAtStop(text[..end], stops).Length;
        if (cut < end) return cut;
        foreach (var s in stops)
            for (int k = Math.Min(s.Length - 1, end); k > 0; k--)
                if (string.CompareOrdinal(text, end - k, s, 0, k) == 0)
                {
                    cut = Math.Min(cut, end - k);
                    break;
                }
        return cut;
    }

    private (IReadOnlyList<int> Prompt, GenerationOptions Options) Prepare(IEnumerable<ChatMessage> messages, ChatOptions? o)
    {
        var list = messages.ToList();
        if (!string.IsNullOrEmpty(o?.Instructions)) list.Insert(0, new ChatMessage(ChatRole.System, o.Instructions));
        var prompt = _tokenizer.Encode(_formatter.Render(list, addGenerationPrompt: true), _options.AddSpecialTokens);
        if (prompt.Count == 0 && _tokenizer.BosId is int bos) prompt = [bos];
        if (prompt.Count == 0) throw new ArgumentException("the rendered prompt is empty and the tokenizer has no BOS id");

        float temperature = o?.Temperature ?? _options.DefaultTemperature;
        var eos = _tokenizer.EosIds.Concat(_model.EosTokenIds).Concat(_options.ExtraEosIds).Distinct().ToList();
        var gen = new GenerationOptions
        {
            MaxNewTokens = o?.MaxOutputTokens ?? _options.DefaultMaxOutputTokens,
            DoSample = temperature > 0,
            Temperature = temperature > 0 ? temperature : 1.0,
            TopK = o?.TopK,
            TopP = o?.TopP,
            // Unseeded sampling takes the next seed of the client's stream (its own generator either way).
            Seed = o?.Seed ?? (temperature > 0 ? NextSeed() : null),
            EosTokenIds = eos,
            StopStrings = o?.StopSequences?.Where(s => s.Length > 0).ToList() ?? [],
            Decode = ids => _tokenizer.Decode(ids),
            PadTokenId = _model.Config.PadTokenId ?? eos.FirstOrDefault(),
            LogitsProcessors = [.. _options.LogitsProcessors, .. Hooks(o)?.LogitsProcessors ?? []],
            OnLayer = Hooks(o)?.CreateOnLayer?.Invoke(prompt),
        };
        return (prompt, gen);
    }

    private long NextSeed()
    {
        lock (_seeds) return _seeds.NextInt64();
    }

    private static EngineRequestHooks? Hooks(ChatOptions? o) =>
        o?.AdditionalProperties?.TryGetValue(RequestHooksKey, out var h) == true ? h as EngineRequestHooks : null;

    private static UsageDetails Usage(int input, int output) =>
        new() { InputTokenCount = input, OutputTokenCount = output, TotalTokenCount = input + output };

    private static ChatFinishReason Map(FinishReason r) => r switch
    {
        FinishReason.Length => ChatFinishReason.Length,
        _ => ChatFinishReason.Stop,
    };

    /// <summary>Metadata, this client, its model, tokenizer or formatter, by type.</summary>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return new ChatClientMetadata("biasfree-engine", null, _options.ModelId);
        if (serviceType.IsInstanceOfType(this)) return this;
        if (serviceType.IsInstanceOfType(_model)) return _model;
        if (serviceType.IsInstanceOfType(_tokenizer)) return _tokenizer;
        if (serviceType.IsInstanceOfType(_formatter)) return _formatter;
        return null;
    }

    /// <summary>Stops the worker after the queued requests (waits up to 30 s).</summary>
    public void Dispose()
    {
        _queue.Writer.TryComplete();
        if (_worker.Wait(TimeSpan.FromSeconds(30))) _batcher.Dispose();
    }
}
