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

    /// <summary>
    /// Model workers (data parallelism): each runs its own replica of the model and its own continuous batch on its own
    /// thread, with <c>torch.get_num_threads() / Workers</c> intra-op threads (at least 1). 1 (the default) is one batcher
    /// over the given model, as before. The KV-cache budget is split evenly among them. More than 1 needs a model that
    /// <see cref="CausalLM.CanReplicate"/> and no client-wide <see cref="LogitsProcessors"/> (they may hold state of their
    /// own); otherwise the client runs 1. <see cref="EngineChatClient.AutoWorkers"/> chooses a value for small models.
    /// </summary>
    public int Workers { get; init; } = 1;
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

    /// <summary>
    /// From the prompt ids: the first position the callback is given (<see cref="GenerationOptions.OnLayerFrom"/>; null
    /// or 0: every position). The positions before it run without the callback, so the batch may share them with other
    /// requests' prompts (prefix sharing). FairSteer steers from the prompt's last token on: promptLength − 1.
    /// </summary>
    public Func<IReadOnlyList<int>, int>? OnLayerFrom { get; init; }

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
/// <see cref="IChatClient"/> over an in-process <see cref="CausalLM"/>. Thread-safe: requests go through a queue and a
/// worker thread runs the model (its forward pass and OnLayer callbacks are not re-entrant). The worker drives a
/// <see cref="ContinuousBatcher"/>: a request joins the running batch at the next decoding step that has room for it,
/// with its own settings, and leaves it as soon as it is done. A seeded sampling request draws from its own generator,
/// so it gives the same text alone or beside any others; an unseeded one takes the next seed of the client's stream.
/// With <see cref="EngineChatClientOptions.Workers"/> &gt; 1, several workers each run a replica of the model, and a
/// request goes to one of them (see <see cref="Workers"/>); a seeded request's tokens do not depend on which.
/// Honours Temperature, TopP, TopK, Seed, MaxOutputTokens, StopSequences and Instructions; reports token usage.
/// </summary>
public sealed class EngineChatClient : IChatClient
{
    private readonly CausalLM _model;
    private readonly ITextTokenizer _tokenizer;
    private readonly IChatFormatter _formatter;
    private readonly EngineChatClientOptions _options;
    // Requests with their own decoder (white-box search): run whole on worker 0's thread, with the given model, between batch steps.
    private readonly Channel<Action> _exclusive = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
    // Worker 0 runs the given model; workers 1.. run replicas of it.
    private readonly ModelWorker[] _workers;
    private readonly Random _seeds;
    private readonly object _dispatchLock = new();
    // Busy time of the client as a whole (any request queued or running), for the combined statistics of several workers.
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    private int _outstanding;
    private long _busySince = -1;
    private double _busySeconds;
    private int _busyPeriods;

    /// <summary>A client over <paramref name="model"/>; it starts the worker(s) that run the model.</summary>
    public EngineChatClient(CausalLM model, ITextTokenizer tokenizer, IChatFormatter formatter, EngineChatClientOptions? options = null)
    {
        _model = model;
        _tokenizer = tokenizer;
        _formatter = formatter;
        _options = options ?? new EngineChatClientOptions();
        if (_options.Workers < 1) throw new ArgumentOutOfRangeException(nameof(options), _options.Workers, "Workers must be at least 1");
        // Client-wide logits processors are shared by every request and may keep state (or run a model) of their own, and
        // a model that cannot be copied has only one instance: both run on one worker.
        int count = _options.LogitsProcessors.Count == 0 && model.CanReplicate ? _options.Workers : 1;
        var batch = new ContinuousBatchOptions
        {
            MaxBatchSize = _options.MaxBatchSize,
            KvCacheBytes = _options.KvCacheBytes / count,
            PrefillChunkTokens = _options.PrefillChunkTokens,
        };
        _seeds = _options.Seed is { } seed ? new Random(unchecked((int)(seed ^ (seed >> 32)))) : new Random();
        _workers = new ModelWorker[count];
        try
        {
            for (int i = 0; i < count; i++) _workers[i] = new ModelWorker(i, i == 0 ? model : model.Replicate(), batch);
        }
        catch
        {
            foreach (var w in _workers.Where(w => w is not null)) w.Dispose();
            throw;
        }
        StartWorkers();
    }

    /// <summary>
    /// A worker count for <paramref name="model"/> on this machine: one per processor (at most <see cref="MaxAutoWorkers"/>)
    /// for a small model (at most <see cref="SmallModelParameters"/> parameters) on the CPU that can be replicated, as long
    /// as each worker's share of <paramref name="kvCacheBytes"/> still holds one sequence of the model's full context;
    /// otherwise 1. A small model's matrix products are too narrow to keep several intra-op threads busy (threads spend
    /// their time waiting at each parallel region), whereas replicas run whole passes side by side; a large model gains
    /// from intra-op threads and would pay for each replica's weights.
    /// </summary>
    public static int AutoWorkers(CausalLM model, long kvCacheBytes = ContinuousBatchOptions.DefaultKvCacheBytes)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.Device.type != TorchSharp.DeviceType.CPU || !model.CanReplicate || model.ParameterCount() > SmallModelParameters) return 1;
        int workers = Math.Clamp(Environment.ProcessorCount, 1, MaxAutoWorkers);
        using var cache = SlotKVCache.For(model);
        long perSequence = cache.BytesFor(1, model.Config.MaxPositionEmbeddings);
        while (workers > 1 && kvCacheBytes / workers < perSequence) workers--;
        return workers;
    }

    /// <summary>Largest model (parameters) that <see cref="AutoWorkers"/> gives more than one worker (the demo model has about 2.5 M).</summary>
    public const long SmallModelParameters = 16_000_000;

    /// <summary>Most workers <see cref="AutoWorkers"/> chooses.</summary>
    public const int MaxAutoWorkers = 8;

    /// <summary>Model workers running (see <see cref="EngineChatClientOptions.Workers"/>).</summary>
    public int Workers => _workers.Length;

    /// <summary>The model, for white-box access (hooks, steering).</summary>
    public CausalLM Model => _model;

    /// <summary>ChatOptions.AdditionalProperties key of an <see cref="EngineRequestHooks"/> for one request.</summary>
    public const string RequestHooksKey = "biasfree.engine.hooks";

    /// <summary>
    /// Counters of the engine: requests served, batch occupancy, tokens/s, queue wait and KV-cache use
    /// (<c>Requests</c>, <c>Batches</c> and <c>LargestBatch</c> keep their earlier meaning and deconstruction).
    /// </summary>
    public BatchStatistics Statistics
    {
        get
        {
            if (_workers.Length == 1) return _workers[0].Batcher.Statistics;
            var parts = _workers.Select(w => w.Batcher.Statistics).ToList();
            lock (_dispatchLock)
            {
                double busy = _busySeconds + (_busySince >= 0 ? (double)(_clock.ElapsedTicks - _busySince) / System.Diagnostics.Stopwatch.Frequency : 0);
                return BatchStatistics.Combine(parts, busy, _busyPeriods);
            }
        }
    }

    /// <summary>Each worker's own counters, worker 0 first (<see cref="Statistics"/> combines them).</summary>
    public IReadOnlyList<BatchStatistics> WorkerStatistics => [.. _workers.Select(w => w.Batcher.Statistics)];

    /// <inheritdoc/>
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var (prompt, gen) = Prepare(messages, options);
        var hooks = Hooks(options);
        var completion = hooks?.Decoder is { } decoder
            ? RunExclusive(() => decoder(_model, prompt, gen, cancellationToken))
            : Enqueue(prompt, gen, hooks is not null, cancellationToken).Completion;
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
        var pending = Enqueue(prompt, gen, Hooks(options) is not null, stop.Token);
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

    private BatchedSequence Enqueue(IReadOnlyList<int> prompt, GenerationOptions gen, bool hooked, CancellationToken ct)
    {
        var sequence = new BatchedSequence(prompt, gen, ct);
        var worker = Dispatch(prompt, hooked);
        sequence.Finishing = () => Done(worker);
        if (!worker.Queue.Writer.TryWrite(sequence))
        {
            sequence.Finishing = null;
            Done(worker);
            throw new ObjectDisposedException(nameof(EngineChatClient));
        }
        worker.Wake();
        return sequence;
    }

    /// <summary>
    /// Picks the worker for a request and counts it as outstanding there. Requests with hooks, and every request while the
    /// model has a model-wide <see cref="CausalLM.OnLayer"/> hook, go to worker 0: hooks were registered on, or written
    /// for, the one model instance and thread the caller knows (<see cref="Model"/>), and a per-request logits processor
    /// may run a model of its own (IVO's value model), which must not run on two threads at once. Other requests go to
    /// the worker whose recent prompts share the longest prefix with this one, so that prefix sharing still finds its
    /// donors (a BBQ context's questions arrive together), unless that worker has <see cref="AffinitySlack"/> more
    /// requests outstanding than the least loaded one; ties go to the least loaded.
    /// </summary>
    private ModelWorker Dispatch(IReadOnlyList<int> prompt, bool hooked)
    {
        lock (_dispatchLock)
        {
            var chosen = _workers[0];
            if (_workers.Length > 1 && !hooked && _model.OnLayer is null)
            {
                var least = _workers.MinBy(w => w.Outstanding)!;
                int bestPrefix = -1;
                foreach (var w in _workers)
                {
                    int prefix = w.LongestPrefix(prompt);
                    if (prefix > bestPrefix || (prefix == bestPrefix && w.Outstanding < chosen.Outstanding)) (bestPrefix, chosen) = (prefix, w);
                }
                if (chosen.Outstanding - least.Outstanding > AffinitySlack(_options.MaxBatchSize)) chosen = least;
                chosen.Remember(prompt);
            }
            chosen.Outstanding++;
            if (_outstanding++ == 0) _busySince = _clock.ElapsedTicks;
            return chosen;
        }
    }

    // How many more outstanding requests than the least loaded worker a worker may hold and still take a request for its prefix.
    private static int AffinitySlack(int maxBatchSize) => Math.Max(4, maxBatchSize / 4);

    private void Done(ModelWorker worker)
    {
        lock (_dispatchLock)
        {
            worker.Outstanding--;
            if (--_outstanding == 0 && _busySince >= 0)
            {
                _busySeconds += (double)(_clock.ElapsedTicks - _busySince) / System.Diagnostics.Stopwatch.Frequency;
                _busySince = -1;
                _busyPeriods++;
            }
        }
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
        // Wake worker 0 if it sleeps on an empty queue.
        _workers[0].Queue.Writer.TryWrite(WakeUp);
        _workers[0].Wake();
        return done.Task;
    }

    // A placeholder the worker skips: it only ends the worker's wait for requests.
    private static readonly BatchedSequence WakeUp = new([0], new GenerationOptions());

    /// <summary>
    /// Starts the workers. One worker runs the loop it always ran: an async loop that sleeps on its queue between busy
    /// periods. Several workers each get a dedicated thread instead, because each sets its own intra-op thread count
    /// (libtorch keeps it per thread: OpenMP's and MKL's settings are thread-local) and an async loop could resume on any
    /// thread. The process-wide default that new threads inherit is put back once every worker has set its own, so other
    /// torch work in the process keeps its threads.
    /// </summary>
    private void StartWorkers()
    {
        if (_workers.Length == 1)
        {
            var only = _workers[0];
            only.Loop = Task.Factory.StartNew(() => AsyncLoop(only), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap();
            return;
        }
        int before = TorchSharp.torch.get_num_threads();
        int perWorker = Math.Max(1, before / _workers.Length);
        using var ready = new CountdownEvent(_workers.Length);
        foreach (var w in _workers)
        {
            w.Dedicated = true;
            w.Loop = Task.Factory.StartNew(() => DedicatedLoop(w, perWorker, ready), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }
        ready.Wait();
        TorchSharp.torch.set_num_threads(before);
    }

    private async Task AsyncLoop(ModelWorker w)
    {
        while (true)
        {
            if (RunOnce(w)) continue;
            // Nothing runs: sleep until a request arrives (or the client closes).
            if (!await w.Queue.Reader.WaitToReadAsync().ConfigureAwait(false)) return;
        }
    }

    // Runs on the worker's own thread for the client's lifetime: the thread's torch settings stay with the worker.
    private void DedicatedLoop(ModelWorker w, int threads, CountdownEvent ready)
    {
        try
        {
            // Reading the count first makes libtorch initialise this thread's setting now, from the process-wide default;
            // it would otherwise do so at the first parallel op, after the default is restored, and undo the line below.
            _ = TorchSharp.torch.get_num_threads();
            TorchSharp.torch.set_num_threads(threads);
        }
        finally
        {
            ready.Signal();
        }
        while (true)
        {
            if (RunOnce(w)) continue;
            if (w.Queue.Reader.Completion.IsCompleted) return;
            // Writers release the semaphore after each write, so this thread wakes directly and no wake-up is lost.
            w.Signal.Wait();
        }
    }

    /// <summary>Runs the exclusive jobs (worker 0), admits what the queue holds, and steps the batch; false when there was nothing to step.</summary>
    private bool RunOnce(ModelWorker w)
    {
        if (w.Index == 0)
            while (_exclusive.Reader.TryRead(out var job)) job();
        // Newcomers join at the next step.
        while (w.Queue.Reader.TryRead(out var s))
        {
            if (ReferenceEquals(s, WakeUp)) continue;
            try
            {
                w.Batcher.Add(s);
            }
            catch (ArgumentException e)
            {
                s.Fail(e);
            }
        }
        if (!w.Batcher.HasWork) return false;
        w.Batcher.Step();
        return true;
    }

    /// <summary>One model instance, its continuous batch, its queue and the prompts most recently sent to it.</summary>
    private sealed class ModelWorker(int index, CausalLM model, ContinuousBatchOptions options) : IDisposable
    {
        private const int RecentPrompts = 16;
        private readonly Queue<IReadOnlyList<int>> _recent = new();

        public int Index { get; } = index;
        public CausalLM Model { get; } = model;
        public ContinuousBatcher Batcher { get; } = new(model, options);
        public Channel<BatchedSequence> Queue { get; } = Channel.CreateUnbounded<BatchedSequence>(new UnboundedChannelOptions { SingleReader = true });
        public Task Loop { get; set; } = Task.CompletedTask;
        /// <summary>True when a dedicated thread runs this worker and sleeps on <see cref="Signal"/>.</summary>
        public bool Dedicated { get; set; }
        public SemaphoreSlim Signal { get; } = new(0);

        /// <summary>Wakes a dedicated worker after a write to its queue (the async loop wakes from the queue itself).</summary>
        public void Wake()
        {
            if (Dedicated) Signal.Release();
        }
        /// <summary>Requests sent here and not finished (guarded by the client's dispatch lock).</summary>
        public int Outstanding { get; set; }

        /// <summary>The longest common prefix of <paramref name="prompt"/> with a prompt recently sent here.</summary>
        public int LongestPrefix(IReadOnlyList<int> prompt)
        {
            int best = 0;
            foreach (var r in _recent)
            {
                int n = Math.Min(r.Count, prompt.Count), i = 0;
                while (i < n && r[i] == prompt[i]) i++;
                best = Math.Max(best, i);
            }
            return best;
        }

        public void Remember(IReadOnlyList<int> prompt)
        {
            _recent.Enqueue(prompt);
            if (_recent.Count > RecentPrompts) _recent.Dequeue();
        }

        public void Dispose()
        {
            Batcher.Dispose();
            if (Index > 0) Model.Dispose();
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
            OnLayerFrom = Hooks(o) is { CreateOnLayer: not null, OnLayerFrom: { } from } ? from(prompt) : 0,
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
        // Decoding strategies that run the model themselves (Decoding/) need the client's EOS ids and defaults.
        if (serviceType == typeof(EngineChatClientOptions)) return _options;
        return null;
    }

    /// <summary>Stops the workers after the queued requests (waits up to 30 s).</summary>
    public void Dispose()
    {
        foreach (var w in _workers)
        {
            w.Queue.Writer.TryComplete();
            w.Wake();
        }
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        foreach (var w in _workers)
        {
            var left = deadline - DateTime.UtcNow;
            if (left > TimeSpan.Zero && w.Loop.Wait(left)) w.Dispose();
        }
    }
}
