using System.Diagnostics;
using BiasFree.Engine.Kernels;
using BiasFree.Engine.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Generation;

/// <summary>Limits of a <see cref="ContinuousBatcher"/>.</summary>
public sealed record ContinuousBatchOptions
{
    /// <summary>Default KV-cache budget: 1 GiB.</summary>
    public const long DefaultKvCacheBytes = 1L << 30;

    /// <summary>Most sequences in the running batch (prefilling and decoding together).</summary>
    public int MaxBatchSize { get; init; } = 32;

    /// <summary>
    /// Bound on the KV cache's memory, transient copies during a resize included. A sequence reserves room for its prompt
    /// plus its max new tokens when it is admitted; one that does not fit next to the running ones waits.
    /// </summary>
    public long KvCacheBytes { get; init; } = DefaultKvCacheBytes;

    /// <summary>
    /// Prompt tokens prefilled per iteration, spread over the sequences still prefilling (each gets at least 16). Long
    /// prompts are fed in chunks between decoding steps, so newcomers never stall the running decoders for long.
    /// </summary>
    public int PrefillChunkTokens { get; init; } = 512;

    /// <summary>
    /// Prefix sharing: a newcomer whose prompt begins with tokens another running sequence has already prefilled copies
    /// those keys/values instead of computing them, and a newcomer whose next prompt chunk another newcomer computes in
    /// the same pass waits for it. A sequence with its own residual callback shares only the positions before its
    /// <see cref="GenerationOptions.OnLayerFrom"/> (the callback never sees them, so they are a plain request's), and
    /// nothing is shared while the model has a model-wide <see cref="CausalLM.OnLayer"/> hook (the keys/values of every
    /// position then depend on more than the tokens).
    /// </summary>
    public bool SharePrefixes { get; init; } = true;
}

/// <summary>One request in a <see cref="ContinuousBatcher"/>: its prompt, its own settings, and the task that completes with its result.</summary>
public sealed class BatchedSequence
{
    private readonly TaskCompletionSource<SequenceResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public BatchedSequence(IReadOnlyList<int> prompt, GenerationOptions options, CancellationToken cancellationToken = default)
    {
        if (prompt.Count == 0) throw new ArgumentException("the prompt needs at least one token");
        if (options.StopStrings.Count > 0 && options.Decode is null) throw new ArgumentException("StopStrings need a Decode callback");
        if (options.OnLayerFrom < 0) throw new ArgumentOutOfRangeException(nameof(options), "OnLayerFrom must be at least 0");
        Prompt = prompt;
        Options = options;
        CancellationToken = cancellationToken;
    }

    public IReadOnlyList<int> Prompt { get; }
    public GenerationOptions Options { get; }
    public CancellationToken CancellationToken { get; }

    /// <summary>Completes with the result (FinishReason.Cancelled when the token fired), or faults when the model failed.</summary>
    public Task<SequenceResult> Completion => _completion.Task;

    /// <summary>
    /// KV-cache positions this sequence reserves: its prompt plus its max new tokens. That is one more than it can write
    /// (the last generated token is never fed back), a bound that keeps the budget arithmetic simple.
    /// </summary>
    public int CacheTokens => Prompt.Count + Math.Max(0, Options.MaxNewTokens);

    // ---- scheduler state (touched only by the batcher's thread)
    internal readonly List<int> Generated = [];
    internal torch.Generator? Random;
    internal int Slot = -1;
    internal int Past;          // positions already in the cache
    internal int NextToken;     // sampled, not yet fed
    internal FinishReason? Finish;
    internal string? MatchedStop;
    internal long EnqueuedTicks, AdmittedTicks;
    internal bool Prefilling => Past < Prompt.Count;

    /// <summary>
    /// Run once, on the batcher's thread, just before <see cref="Completion"/> completes: what the sequence's owner counts
    /// for it (<see cref="Chat.EngineChatClient"/>'s outstanding requests and busy periods) is then counted before anyone
    /// awaiting the sequence resumes. A continuation of the task could run after the awaiting caller, which might then
    /// read figures that do not count its own request yet.
    /// </summary>
    internal Action? Finishing { get; set; }

    private void RunFinishing()
    {
        var finishing = Finishing;
        Finishing = null;
        finishing?.Invoke();
    }

    internal void Complete()
    {
        Random?.Dispose();
        Random = null;
        RunFinishing();
        _completion.TrySetResult(new SequenceResult(Generated, Finish ?? FinishReason.Length, Prompt.Count, MatchedStop));
    }

    internal void Fail(Exception e)
    {
        Random?.Dispose();
        Random = null;
        RunFinishing();
        _completion.TrySetException(e);
    }
}

/// <summary>
/// Iteration-level scheduling ("continuous batching", Orca, Yu et al., OSDI 2022): a running batch of sequences, each
/// with its own settings (temperature, top-k/p, max tokens, stops, logits processors, seed), that admits newcomers at
/// every step and releases finished rows at once. Each <see cref="Step"/> admits the waiting sequences that fit, then
/// runs one forward pass that decodes one token for every decoding sequence and feeds one chunk of every newcomer's
/// prompt (chunked prefill: a long prompt never stalls the decoders for more than one pass).
/// </summary>
/// <remarks>
/// <para><b>Determinism.</b> Every sequence samples from its own generator, seeded by its <see cref="GenerationOptions.Seed"/>,
/// and its logits processors and sampler see its row alone ([1, V]). A seeded sequence therefore draws the same random
/// numbers from the same distribution whatever runs beside it and in whichever row; its tokens can differ from a lone run
/// only if floating-point rounding of the batched forward pass moves a draw across a token boundary or breaks an argmax tie.
/// A lone sequence consumes its generator exactly as <see cref="TextGeneration.Generate"/> does.</para>
/// <para><b>Layout.</b> Slots [0, decoding) hold decoding rows, the next slots the rows still prefilling; removing or
/// promoting a row moves one other row's cache entries, so both groups stay contiguous and each pass works on a view.
/// Prefilling rows that sit out a pass (prefix sharing) are swapped behind the ones that feed tokens.</para>
/// <para>Not thread-safe: one thread calls <c>Add</c> and <see cref="Step"/> (<see cref="Statistics"/> may be read from any thread).</para>
/// </remarks>
public sealed class ContinuousBatcher : IDisposable
{
    private readonly CausalLM _model;
    private readonly ContinuousBatchOptions _options;
    private readonly SlotKVCache _cache;
    private readonly Queue<BatchedSequence> _waiting = new();
    private readonly List<BatchedSequence> _decoding = [], _prefilling = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly object _statsLock = new();
    private BatchStatistics _stats;
    private long _busySince = -1;

    public ContinuousBatcher(CausalLM model, ContinuousBatchOptions? options = null)
    {
        _model = model;
        _options = options ?? new ContinuousBatchOptions();
        if (_options.MaxBatchSize < 1) throw new ArgumentOutOfRangeException(nameof(options), "MaxBatchSize must be at least 1");
        if (_options.PrefillChunkTokens < 1) throw new ArgumentOutOfRangeException(nameof(options), "PrefillChunkTokens must be at least 1");
        _cache = SlotKVCache.For(model);
        if (_options.KvCacheBytes < _cache.BytesPerToken)
            throw new ArgumentOutOfRangeException(nameof(options), $"a KV-cache budget of {_options.KvCacheBytes} bytes holds no token ({_cache.BytesPerToken} bytes each)");
        _stats = new BatchStatistics { MaxBatchSize = _options.MaxBatchSize, CacheBudgetBytes = _options.KvCacheBytes, CacheBytesPerToken = _cache.BytesPerToken };
    }

    public CausalLM Model => _model;
    public ContinuousBatchOptions Options => _options;
    public bool HasWork => _waiting.Count > 0 || _decoding.Count > 0 || _prefilling.Count > 0;
    public int Waiting => _waiting.Count;
    public int Running => _decoding.Count + _prefilling.Count;

    /// <summary>The largest number of tokens one sequence may reserve with this budget (it runs alone then).</summary>
    public long MaxTokensPerSequence => _options.KvCacheBytes / _cache.BytesPerToken;

    public BatchStatistics Statistics
    {
        get
        {
            lock (_statsLock)
            {
                double busy = _stats.BusySeconds + (_busySince >= 0 ? Seconds(_clock.ElapsedTicks - _busySince) : 0);
                return _stats with { BusySeconds = busy, Running = Running, Waiting = Waiting };
            }
        }
    }

    /// <summary>Queues a sequence; it joins the running batch at the next step that has room for it.</summary>
    /// <exception cref="ArgumentException">The sequence alone needs more KV cache than the whole budget.</exception>
    public BatchedSequence Add(BatchedSequence sequence)
    {
        if (_cache.BytesFor(1, sequence.CacheTokens) > _options.KvCacheBytes)
            throw new ArgumentException($"a request of {sequence.Prompt.Count} prompt tokens and {sequence.Options.MaxNewTokens} new tokens needs " +
                                        $"{sequence.CacheTokens} cached positions, more than the KV-cache budget holds ({MaxTokensPerSequence}); raise the budget or lower max tokens");
        sequence.EnqueuedTicks = _clock.ElapsedTicks;
        _waiting.Enqueue(sequence);
        lock (_statsLock)
            if (_busySince < 0) _busySince = _clock.ElapsedTicks;
        return sequence;
    }

    public BatchedSequence Add(IReadOnlyList<int> prompt, GenerationOptions options, CancellationToken cancellationToken = default) =>
        Add(new BatchedSequence(prompt, options, cancellationToken));

    /// <summary>Steps until every queued sequence has finished.</summary>
    public void RunToCompletion()
    {
        while (HasWork) Step();
    }

    /// <summary>One iteration: drop cancelled sequences, admit newcomers, then one pass that decodes and prefills (see <see cref="Iterate"/>).</summary>
    public void Step()
    {
        using var _ = no_grad();
        try
        {
            DropCancelled();
            Admit();
            if (Running > 0) Iterate();
        }
        catch (Exception e)
        {
            FailAll(e);
        }
        if (!HasWork) GoIdle();
    }

    /// <summary>Fails every queued and running sequence (the model threw) and frees the cache.</summary>
    public void FailAll(Exception e)
    {
        foreach (var s in _decoding.Concat(_prefilling).Concat(_waiting)) s.Fail(e);
        _decoding.Clear();
        _prefilling.Clear();
        _waiting.Clear();
        lock (_statsLock) _stats = _stats with { ReservedTokens = 0 };
        GoIdle();
    }

    // ---------------------------------------------------------------- admission and memory

    private void DropCancelled()
    {
        if (_waiting.Any(s => s.CancellationToken.IsCancellationRequested))
        {
            var keep = _waiting.Where(s => !s.CancellationToken.IsCancellationRequested).ToList();
            foreach (var s in _waiting.Where(s => s.CancellationToken.IsCancellationRequested)) Finish(s, FinishReason.Cancelled, admitted: false);
            _waiting.Clear();
            foreach (var s in keep) _waiting.Enqueue(s);
        }
        foreach (var s in _decoding.Concat(_prefilling).Where(s => s.CancellationToken.IsCancellationRequested).ToList())
        {
            s.Finish = FinishReason.Cancelled;
            Release(s);
        }
    }

    /// <summary>
    /// First come, first served: the head of the queue joins when the batch has a free row and the cache can hold every
    /// running sequence's reservation next to its own within the budget; otherwise it (and everyone behind it) waits.
    /// </summary>
    private void Admit()
    {
        while (_waiting.Count > 0 && Running < _options.MaxBatchSize)
        {
            var next = _waiting.Peek();
            if (next.Options.MaxNewTokens <= 0)
            {
                _waiting.Dequeue();
                Finish(next, FinishReason.Length, admitted: false);
                continue;
            }
            if (!MakeRoomFor(next)) break;
            _waiting.Dequeue();
            next.AdmittedTicks = _clock.ElapsedTicks;
            next.Slot = _decoding.Count + _prefilling.Count;
            next.Random = next.Options.DoSample && next.Options.Temperature > 0
                ? new torch.Generator(next.Options.Seed is { } s ? (ulong)s : (ulong)System.Random.Shared.NextInt64())
                : null;
            _prefilling.Add(next);
            lock (_statsLock)
            {
                double wait = Seconds(next.AdmittedTicks - next.EnqueuedTicks);
                _stats = _stats with
                {
                    Admitted = _stats.Admitted + 1,
                    TotalQueueWaitSeconds = _stats.TotalQueueWaitSeconds + wait,
                    MaxQueueWaitSeconds = Math.Max(_stats.MaxQueueWaitSeconds, wait),
                    LargestBatch = Math.Max(_stats.LargestBatch, Running),
                    ReservedTokens = _stats.ReservedTokens + next.CacheTokens,
                };
            }
        }
    }

    /// <summary>Grows (or reshapes) the cache so the running rows plus <paramref name="next"/> fit; false when the budget forbids it.</summary>
    private bool MakeRoomFor(BatchedSequence next)
    {
        int rows = Running + 1;
        int width = Math.Max(next.CacheTokens, _decoding.Concat(_prefilling).Select(s => s.CacheTokens).DefaultIfEmpty(0).Max());
        if (rows <= _cache.Slots && width <= _cache.Width) return true;
        long budget = _options.KvCacheBytes;
        bool Fits(int r, int w) => PeakDuringResize(_cache.BytesFor(r, w)) <= budget;
        if (!Fits(rows, width)) return false;
        // Grow geometrically (fewer resizes) as far as the budget allows: rows up to double, then width rounded up to 16.
        // Rows come first: spare width would be wasted, since the width only shrinks again once the batch drains.
        int targetRows = Math.Min(_options.MaxBatchSize, Math.Max(rows, 2 * _cache.Slots));
        while (targetRows > rows && !Fits(targetRows, width)) targetRows--;
        int targetWidth = (width + 15) / 16 * 16;
        if (!Fits(targetRows, targetWidth)) targetWidth = width;
        if (Running == 0) _cache.Resize(0, 0, 0);
        _cache.Resize(targetRows, targetWidth, Running);
        RecordCache();
        return true;
    }

    /// <summary>
    /// The most the cache holds while resizing to <paramref name="newBytes"/>: it swaps one layer at a time, so at some
    /// moment it holds the new cache plus one old layer, or the old cache plus one new layer. An idle cache is freed first.
    /// </summary>
    private long PeakDuringResize(long newBytes)
    {
        if (Running == 0 || _cache.AllocatedBytes == 0) return newBytes;
        long old = _cache.AllocatedBytes;
        return Math.Max(newBytes + old / _cache.Layers, old + newBytes / _cache.Layers);
    }

    private void GoIdle()
    {
        // The batch drained: give the cache's memory back and stop the busy clock.
        _cache.Resize(0, 0, 0);
        lock (_statsLock)
        {
            if (_busySince >= 0)
            {
                _stats = _stats with { BusySeconds = _stats.BusySeconds + Seconds(_clock.ElapsedTicks - _busySince), BusyPeriods = _stats.BusyPeriods + 1 };
                _busySince = -1;
            }
        }
        RecordCache();
    }

    private void RecordCache()
    {
        lock (_statsLock)
            _stats = _stats with { CacheBytes = _cache.AllocatedBytes, PeakCacheBytes = Math.Max(_stats.PeakCacheBytes, _cache.PeakAllocatedBytes) };
    }

    // ---------------------------------------------------------------- model passes

    /// <summary>
    /// One forward pass over every running sequence: a decoding row feeds its last sampled token, a prefilling row the
    /// next chunk of its prompt (the iteration's <see cref="ContinuousBatchOptions.PrefillChunkTokens"/> shared among
    /// the prefilling rows, at least 16 each). Rows whose prompt is complete sample their first token and start decoding.
    /// </summary>
    private void Iterate()
    {
        var decoding = _decoding.ToList();
        var prefilling = _options.SharePrefixes && _model.OnLayer is null ? SharePrefixes() : _prefilling.ToList();
        int chunk = prefilling.Count == 0 ? 0 : Math.Max(Math.Min(16, _options.PrefillChunkTokens), _options.PrefillChunkTokens / prefilling.Count);
        var rows = decoding.Concat(prefilling).ToList();
        var newTokens = new List<IReadOnlyList<int>>(rows.Count);
        foreach (var s in decoding) newTokens.Add([s.NextToken]);
        foreach (var s in prefilling) newTokens.Add(s.Prompt.Skip(s.Past).Take(Math.Min(chunk, s.Prompt.Count - s.Past)).ToList());
        using var scope = NewDisposeScope();
        var logits = _model.ForwardSlots(newTokens, _cache, 0, rows.Select(s => s.Past).ToList(), SharedOnLayer(rows, newTokens));
        var done = new List<BatchedSequence>();
        for (int b = 0; b < rows.Count; b++)
        {
            var s = rows[b];
            s.Past += newTokens[b].Count;
            if (s.Prefilling) continue;
            // A decoding row's next token, or a prompt that is now complete: its last token's logits give the first new token.
            Accept(s, SelectToken(s, logits, b));
            if (b >= decoding.Count) done.Add(s);
        }
        lock (_statsLock)
            _stats = _stats with
            {
                DecodeSteps = _stats.DecodeSteps + (decoding.Count > 0 ? 1 : 0),
                DecodeRowSteps = _stats.DecodeRowSteps + decoding.Count,
                PrefillPasses = _stats.PrefillPasses + (prefilling.Count > 0 ? 1 : 0),
                Passes = _stats.Passes + (rows.Count > 0 ? 1 : 0),
                PassRowSteps = _stats.PassRowSteps + rows.Count,
                PromptTokens = _stats.PromptTokens + newTokens.Skip(decoding.Count).Sum(t => t.Count),
            };
        foreach (var s in decoding.Where(s => s.Finish is not null)) Release(s);
        foreach (var s in done)
        {
            if (s.Finish is not null) Release(s);
            else Promote(s);
        }
    }

    /// <summary>
    /// Prefix sharing among the running sequences (the idea of vLLM's automatic prefix caching and SGLang's RadixAttention,
    /// Zheng et al. 2024, limited here to the sequences in the batch). Keys/values of position p depend only on tokens
    /// 0..p, so two prompts that agree on their first L tokens have the same first L cache entries, up to floating-point
    /// rounding (the same caveat as batching itself; a lone request never shares). In slot order, each prefilling sequence
    /// (1) copies the entries another running sequence has already computed for its prompt's prefix, beyond its own, and
    /// (2) sits out this pass if a sequence scheduled before it is about to compute the very positions it needs next; it
    /// copies them at the next step instead. The first prefilling sequence never waits, so every pass makes progress.
    /// A prompt's last token is always fed by its own sequence: its logits give the first new token. A sequence with a
    /// residual callback gives and takes only positions before its <see cref="GenerationOptions.OnLayerFrom"/>: the
    /// callback never sees those, so their keys/values are the ones a plain request computes (FairSteer steers from the
    /// prompt's last token on, so everything it could share, it shares).
    /// </summary>
    /// <returns>The prefilling sequences that feed tokens in this pass, in slot order, moved to the slots right after the decoding rows.</returns>
    private List<BatchedSequence> SharePrefixes()
    {
        var scheduled = new List<BatchedSequence>(_prefilling.Count);
        foreach (var s in _prefilling)
        {
            int limit = Math.Min(s.Prompt.Count - 1, PlainPositions(s));
            BatchedSequence? donor = null;
            int best = s.Past;
            foreach (var r in _decoding.Concat(_prefilling))
            {
                if (ReferenceEquals(r, s)) continue;
                int common = CommonPrefix(s.Prompt, r.Prompt, Math.Min(limit, Math.Min(PlainPositions(r), Math.Min(r.Past, r.Prompt.Count))));
                if (common > best) (best, donor) = (common, r);
            }
            if (donor is not null)
            {
                _cache.CopyPositions(donor.Slot, s.Slot, s.Past, best - s.Past);
                lock (_statsLock) _stats = _stats with { SharedPromptTokens = _stats.SharedPromptTokens + best - s.Past };
                s.Past = best;
            }
            // A sequence scheduled before this one will compute this one's next positions: wait and copy them next step.
            bool wait = scheduled.Any(r => r.Past <= s.Past && CommonPrefix(s.Prompt, r.Prompt, Math.Min(limit, PlainPositions(r))) > s.Past);
            if (!wait) scheduled.Add(s);
        }
        // A pass covers consecutive slots: move the sequences that feed tokens to the front of the prefilling group.
        for (int i = 0; i < scheduled.Count; i++)
        {
            int target = _decoding.Count + i;
            var s = scheduled[i];
            if (s.Slot == target) continue;
            var occupant = _prefilling.First(p => p.Slot == target);
            _cache.SwapRows(s.Slot, target, Math.Max(s.Past, occupant.Past));
            (occupant.Slot, s.Slot) = (s.Slot, target);
        }
        SortBySlot();
        return scheduled;
    }

    /// <summary>
    /// How many leading positions of <paramref name="s"/> hold a plain request's keys/values: all when it has no residual
    /// callback, those before its <see cref="GenerationOptions.OnLayerFrom"/> otherwise (the callback never sees them).
    /// </summary>
    private static int PlainPositions(BatchedSequence s) => s.Options.OnLayer is null ? int.MaxValue : s.Options.OnLayerFrom;

    /// <summary>Length of the common prefix of <paramref name="a"/> and <paramref name="b"/>, at most <paramref name="max"/>.</summary>
    private static int CommonPrefix(IReadOnlyList<int> a, IReadOnlyList<int> b, int max)
    {
        int n = Math.Min(max, Math.Min(a.Count, b.Count)), i = 0;
        while (i < n && a[i] == b[i]) i++;
        return i;
    }

    /// <summary>
    /// The pass's residual callback. The pass's hidden states are packed ([1, N, hidden], row after row); each callback is
    /// given the tokens of its own rows at positions ≥ their <see cref="GenerationOptions.OnLayerFrom"/> (a view when
    /// that is one row's contiguous run, which is the case of per-request hooks such as FairSteer's), and what it returns
    /// is written back there. A callback that returns its input unchanged (the same tensor: another layer, or a gate that
    /// did not fire) costs no copy. When every row has the same callback and every token of the pass is at or past its
    /// row's OnLayerFrom, the callback gets the whole pass.
    /// </summary>
    private Func<int, Tensor, Tensor>? SharedOnLayer(List<BatchedSequence> rows, List<IReadOnlyList<int>> newTokens)
    {
        var first = rows[0].Options.OnLayer;
        if (first is not null && rows.All(s => s.Options.OnLayer == first && s.Past >= s.Options.OnLayerFrom)) return first;
        var offsets = new int[rows.Count + 1];
        for (int b = 0; b < rows.Count; b++) offsets[b + 1] = offsets[b] + newTokens[b].Count;
        var groups = new List<(Func<int, Tensor, Tensor> Callback, int Start, int Length, Tensor? Index)>();
        foreach (var g in rows.Select((s, b) => (s.Options.OnLayer, Start: offsets[b] + Math.Clamp(s.Options.OnLayerFrom - s.Past, 0, newTokens[b].Count), End: offsets[b + 1]))
                     .Where(g => g.OnLayer is not null && g.End > g.Start).GroupBy(g => g.OnLayer!))
        {
            var runs = g.ToList();
            if (runs.Count == 1)
                groups.Add((g.Key, runs[0].Start, runs[0].End - runs[0].Start, null));
            else // one callback for several rows: gather their tokens (the tensor lives in the pass's dispose scope)
                groups.Add((g.Key, 0, 0, tensor(runs.SelectMany(r => Enumerable.Range(r.Start, r.End - r.Start)).Select(i => (long)i).ToArray(), ScalarType.Int64, _model.Device)));
        }
        if (groups.Count == 0) return null;
        return (layer, h) =>
        {
            Tensor? result = null;
            foreach (var (callback, start, length, index) in groups)
            {
                var input = index is null ? h.narrow(1, start, length) : h.index_select(1, index);
                var output = callback(layer, input);
                if (ReferenceEquals(output, input)) continue;
                result ??= h.clone();
                if (index is null) result.narrow(1, start, length).copy_(output);
                else result.index_copy_(1, index, output);
            }
            return result ?? h;
        };
    }

    /// <summary>Applies the row's logits processors and sampler to its logits alone ([1, V]).</summary>
    private static int SelectToken(BatchedSequence s, Tensor logits, int row)
    {
        using var scope = NewDisposeScope();
        var l = logits.narrow(0, row, 1);
        if (s.Options.LogitsProcessors.Count > 0)
        {
            var ctx = new LogitsContext { Prompts = [s.Prompt], Generated = [s.Generated], Finished = [false], Step = s.Generated.Count };
            foreach (var p in s.Options.LogitsProcessors) l = p.Process(l, ctx);
        }
        return (int)(s.Random is null ? ArgMax.LastDim(l)[0] : TextGeneration.SelectTokens(l, s.Options, s.Random).item<long>());
    }

    /// <summary>Records a new token and decides whether the sequence ends (the same rules as <see cref="TextGeneration.Generate"/>).</summary>
    private void Accept(BatchedSequence s, int token)
    {
        var o = s.Options;
        lock (_statsLock) _stats = _stats with { GeneratedTokens = _stats.GeneratedTokens + 1 };
        if (o.EosTokenIds.Contains(token))
        {
            s.Finish = FinishReason.EndOfSequence;
            return;
        }
        s.Generated.Add(token);
        s.NextToken = token;
        o.OnToken?.Invoke(0, token);
        if (TextGeneration.EndsWithStopSequence(s.Generated, o.StopTokenSequences) is { } seqLen)
        {
            s.Generated.RemoveRange(s.Generated.Count - seqLen, seqLen);
            s.Finish = FinishReason.StopSequence;
        }
        else if (o.StopStrings.Count > 0 && TextGeneration.FirstStop(o.Decode!(s.Generated), o.StopStrings) is { } stop)
        {
            s.MatchedStop = stop;
            s.Finish = FinishReason.StopSequence;
        }
        else if (s.Generated.Count >= o.MaxNewTokens) s.Finish = FinishReason.Length;
    }

    // ---------------------------------------------------------------- slots

    /// <summary>A prefilled row becomes a decoding row: it swaps slots with the first prefilling row.</summary>
    private void Promote(BatchedSequence s)
    {
        int target = _decoding.Count;
        var other = _prefilling.First(p => p.Slot == target);
        _cache.SwapRows(s.Slot, target, Math.Max(s.Past, other.Past));
        (other.Slot, s.Slot) = (s.Slot, target);
        _prefilling.Remove(s);
        _decoding.Add(s);
        SortBySlot();
    }

    /// <summary>Frees a finished row at once: the last row of its group moves into its slot, and the group boundary shifts.</summary>
    private void Release(BatchedSequence s)
    {
        if (_decoding.Remove(s))
        {
            int lastDecoding = _decoding.Count; // old index of the last decoding slot
            MoveInto(_decoding.FirstOrDefault(d => d.Slot == lastDecoding), s.Slot);
            // The hole is now at lastDecoding, the first slot after the decoding rows: fill it with the last prefilling row.
            int lastSlot = _decoding.Count + _prefilling.Count;
            if (_prefilling.Count > 0 && lastDecoding != lastSlot) MoveInto(_prefilling.First(p => p.Slot == lastSlot), lastDecoding);
        }
        else if (_prefilling.Remove(s))
        {
            int lastSlot = _decoding.Count + _prefilling.Count;
            MoveInto(_prefilling.FirstOrDefault(p => p.Slot == lastSlot), s.Slot);
        }
        SortBySlot();
        Finish(s, s.Finish ?? FinishReason.Length, admitted: true);
    }

    private void MoveInto(BatchedSequence? row, int slot)
    {
        if (row is null || row.Slot == slot) return;
        _cache.CopyRow(row.Slot, slot, row.Past);
        row.Slot = slot;
    }

    private void SortBySlot()
    {
        _decoding.Sort((a, b) => a.Slot.CompareTo(b.Slot));
        _prefilling.Sort((a, b) => a.Slot.CompareTo(b.Slot));
    }

    private void Finish(BatchedSequence s, FinishReason reason, bool admitted)
    {
        s.Finish = reason;
        s.Slot = -1;
        lock (_statsLock)
            _stats = _stats with
            {
                Completed = _stats.Completed + 1,
                Cancelled = _stats.Cancelled + (reason == FinishReason.Cancelled ? 1 : 0),
                ReservedTokens = _stats.ReservedTokens - (admitted ? s.CacheTokens : 0),
            };
        s.Complete();
    }

    private static double Seconds(long ticks) => (double)ticks / Stopwatch.Frequency;

    public void Dispose()
    {
        FailAll(new ObjectDisposedException(nameof(ContinuousBatcher)));
        _cache.Dispose();
    }
}
