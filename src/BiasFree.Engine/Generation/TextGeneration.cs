using BiasFree.Engine.Kernels;
using BiasFree.Engine.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Generation;

/// <summary>What the processors see at each decoding step.</summary>
public sealed class LogitsContext
{
    public required IReadOnlyList<IReadOnlyList<int>> Prompts { get; init; }
    /// <summary>Tokens generated so far per row (finished rows stop growing).</summary>
    public required IReadOnlyList<IReadOnlyList<int>> Generated { get; init; }
    public required IReadOnlyList<bool> Finished { get; init; }
    public int Step { get; init; }
}

/// <summary>
/// Rewrites next-token logits [B, V] (float32) before sampling: reward- or value-guided decoding, bans, biases.
/// Return the input tensor or a new one.
/// </summary>
public interface ILogitsProcessor
{
    Tensor Process(Tensor logits, LogitsContext context);
}

public sealed class DelegateLogitsProcessor(Func<Tensor, LogitsContext, Tensor> process) : ILogitsProcessor
{
    public Tensor Process(Tensor logits, LogitsContext context) => process(logits, context);
}

public enum FinishReason
{
    Length,
    EndOfSequence,
    StopSequence,
    Cancelled,
}

public sealed record GenerationOptions
{
    public int MaxNewTokens { get; init; } = 64;
    /// <summary>False = greedy (argmax); true = sample with temperature / top-k / top-p.</summary>
    public bool DoSample { get; init; }
    public double Temperature { get; init; } = 1.0;
    public int? TopK { get; init; }
    public double? TopP { get; init; }
    /// <summary>Seed for sampling; null draws a fresh one.</summary>
    public long? Seed { get; init; }
    /// <summary>
    /// Random generator to sample from instead of a fresh one seeded with <see cref="Seed"/>: a decoder that generates in
    /// several calls (segment by segment) keeps drawing from one stream. The caller owns it.
    /// </summary>
    public torch.Generator? Generator { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    /// <summary>Stop when the generated ids end with one of these sequences (they are removed from the result).</summary>
    public IReadOnlyList<IReadOnlyList<int>> StopTokenSequences { get; init; } = [];
    /// <summary>Stop when the decoded text contains one of these (needs <see cref="Decode"/>; the text is cut by the caller, see <see cref="TextGeneration.CutAtStop"/>).</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];
    public Func<IReadOnlyList<int>, string>? Decode { get; init; }
    /// <summary>Id fed for padding and after a row finished; it is always masked out, so any valid id works.</summary>
    public int PadTokenId { get; init; }
    public IReadOnlyList<ILogitsProcessor> LogitsProcessors { get; init; } = [];
    /// <summary>Residual-stream callback for this generation only (steering).</summary>
    public Func<int, Tensor, Tensor>? OnLayer { get; init; }
    /// <summary>
    /// First position of the sequence that <see cref="OnLayer"/> is given (0: every position). Earlier positions run as if
    /// there were no callback, so their keys and values are a plain request's and <see cref="ContinuousBatcher"/> may share
    /// them with other requests (prefix sharing); the callback sees each position ≥ this exactly once, in order (prompt
    /// chunks, then one position per decoding step). A callback that acts only from the prompt's last token on (FairSteer)
    /// sets this to promptLength − 1. Honoured by <see cref="ContinuousBatcher"/>; <see cref="TextGeneration.Generate"/>,
    /// which feeds left-padded rows together, refuses a value other than 0.
    /// </summary>
    public int OnLayerFrom { get; init; }
    /// <summary>Streaming: called with (row, token) for every generated token except EOS.</summary>
    public Action<int, int>? OnToken { get; init; }
}

public sealed record SequenceResult(IReadOnlyList<int> Tokens, FinishReason FinishReason, int PromptTokens, string? MatchedStop);

public static class TextGeneration
{
    /// <summary>
    /// Generates continuations for a batch of prompts. Prompts are left-padded to equal length; the attention mask hides
    /// the padding and positions count real tokens only, so each row decodes as if it were alone. Uses a KV cache.
    /// When sampling, row b draws from its own generator seeded with Seed + b: row 0 gives the same tokens as its prompt
    /// alone. (Requests that each carry their own settings and seed go through <see cref="ContinuousBatcher"/>.)
    /// </summary>
    public static IReadOnlyList<SequenceResult> Generate(this CausalLM model, IReadOnlyList<IReadOnlyList<int>> prompts,
        GenerationOptions options, CancellationToken cancellationToken = default)
    {
        if (prompts.Count == 0) return [];
        if (prompts.Any(p => p.Count == 0)) throw new ArgumentException("every prompt needs at least one token");
        if (options.StopStrings.Count > 0 && options.Decode is null) throw new ArgumentException("StopStrings need a Decode callback");
        RefuseOnLayerFrom(options);
        int batch = prompts.Count, promptLen = prompts.Max(p => p.Count);
        bool padded = prompts.Any(p => p.Count != promptLen);

        var rows = prompts.Select(p => Enumerable.Repeat(options.PadTokenId, promptLen - p.Count).Concat(p).ToList()).ToList();
        var maskRows = prompts.Select(p => Enumerable.Repeat(0, promptLen - p.Count).Concat(Enumerable.Repeat(1, p.Count)).ToList()).ToList();

        using var _ = no_grad();
        using var cache = model.NewCache(promptLen + options.MaxNewTokens + 1);
        Tensor? mask = padded ? model.IdsTensor(maskRows).DetachFromDisposeScope() : null;
        Tensor logits;
        using (var scope = NewDisposeScope())
        {
            var output = model.Forward(model.IdsTensor(rows), new ForwardArgs
            {
                AttentionMask = mask, Cache = cache, LastTokenLogitsOnly = true, OnLayer = options.OnLayer,
            });
            logits = output.Logits.select(1, -1).to_type(ScalarType.Float32).DetachFromDisposeScope();
        }
        return DecodeLoop(model, prompts, options, cache, logits, mask, cancellationToken);
    }

    /// <summary>
    /// Continues decoding over a cache that already holds every row's prompt: <paramref name="cache"/> has one row per
    /// prompt, each holding its whole prompt (unpadded, so all prompts are cache.Length long), and
    /// <paramref name="lastLogits"/> [B, V] are the model's logits at each prompt's last token. The tokens, seeds and
    /// stopping rules are <see cref="Generate"/>'s: for the same prompts and options the result is Generate's, without
    /// re-reading the prompts. A decoder that extends the same prefixes over and over (blockwise beam search) forks the
    /// cache of a prefix instead of prefilling it again. The cache stays the caller's: afterwards it also holds every
    /// token fed back (all generated tokens but each row's last; padding after a row finished).
    /// </summary>
    public static IReadOnlyList<SequenceResult> GenerateFromCache(this CausalLM model, IReadOnlyList<IReadOnlyList<int>> prompts, KVCache cache, Tensor lastLogits,
        GenerationOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cache);
        ArgumentNullException.ThrowIfNull(lastLogits);
        if (prompts.Count == 0) return [];
        if (prompts.Any(p => p.Count != cache.Length)) throw new ArgumentException($"every prompt must be as long as the cache ({cache.Length} positions): the cache holds the prompts unpadded");
        if (lastLogits.dim() != 2 || lastLogits.shape[0] != prompts.Count) throw new ArgumentException($"lastLogits must be [{prompts.Count}, V]");
        if (options.StopStrings.Count > 0 && options.Decode is null) throw new ArgumentException("StopStrings need a Decode callback");
        RefuseOnLayerFrom(options);
        using var _ = no_grad();
        Tensor logits;
        // to_type makes a new handle even when the dtype is already right; the scope takes it.
        using (NewDisposeScope()) logits = lastLogits.to_type(ScalarType.Float32).clone().DetachFromDisposeScope();
        return DecodeLoop(model, prompts, options, cache, logits, null, cancellationToken);
    }

    // Left-padded rows share one pass, so "positions ≥ OnLayerFrom" would be a different slice of every row.
    private static void RefuseOnLayerFrom(GenerationOptions options)
    {
        if (options.OnLayer is not null && options.OnLayerFrom != 0)
            throw new ArgumentException("OnLayerFrom is honoured by the ContinuousBatcher only; here the callback sees every position (use 0)");
    }

    /// <summary>The decoding loop of <see cref="Generate"/>; takes ownership of <paramref name="logits"/> and <paramref name="mask"/> (null: no padding).</summary>
    private static IReadOnlyList<SequenceResult> DecodeLoop(CausalLM model, IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions options, KVCache cache,
        Tensor logits, Tensor? mask, CancellationToken cancellationToken)
    {
        int batch = prompts.Count;
        var generated = Enumerable.Range(0, batch).Select(_ => new List<int>()).ToList();
        var finish = new FinishReason?[batch];
        var matched = new string?[batch];
        var eos = options.EosTokenIds.ToHashSet();
        // One generator per row (row b: Seed + b), so a row's draws do not depend on how many rows run beside it;
        // a caller-owned Generator (a decoder generating in several calls) serves every row in row order instead.
        bool sampling = options.DoSample && options.Temperature > 0;
        long baseSeed = options.Seed ?? Random.Shared.NextInt64();
        var gens = sampling && options.Generator is null
            ? Enumerable.Range(0, batch).Select(b => new torch.Generator(unchecked((ulong)(baseSeed + b)))).ToList()
            : [];
        try
        {
            for (int step = 0; step < options.MaxNewTokens; step++)
            {
                if (cancellationToken.IsCancellationRequested)
                {
                    for (int b = 0; b < batch; b++) finish[b] ??= FinishReason.Cancelled;
                    break;
                }
                long[] next;
                using (var scope = NewDisposeScope())
                {
                    var ctx = new LogitsContext { Prompts = prompts, Generated = generated, Finished = finish.Select(f => f is not null).ToList(), Step = step };
                    var processed = logits;
                    foreach (var p in options.LogitsProcessors) processed = p.Process(processed, ctx);
                    next = sampling
                        ? Enumerable.Range(0, batch).Select(b => SelectTokens(processed.narrow(0, b, 1), options, options.Generator ?? gens[b]).item<long>()).ToArray()
                        : ArgMax.LastDim(processed);
                }
                for (int b = 0; b < batch; b++)
                {
                    if (finish[b] is not null) continue;
                    int token = (int)next[b];
                    if (eos.Contains(token))
                    {
                        finish[b] = FinishReason.EndOfSequence;
                        continue;
                    }
                    generated[b].Add(token);
                    options.OnToken?.Invoke(b, token);
                    if (EndsWithStopSequence(generated[b], options.StopTokenSequences) is { } seqLen)
                    {
                        generated[b].RemoveRange(generated[b].Count - seqLen, seqLen);
                        finish[b] = FinishReason.StopSequence;
                    }
                    else if (options.StopStrings.Count > 0 && FirstStop(options.Decode!(generated[b]), options.StopStrings) is { } stop)
                    {
                        matched[b] = stop;
                        finish[b] = FinishReason.StopSequence;
                    }
                    else if (generated[b].Count >= options.MaxNewTokens) finish[b] = FinishReason.Length;
                }
                if (finish.All(f => f is not null)) break;

                // Feed the chosen tokens (finished rows get padding; their outputs are ignored).
                using var stepScope = NewDisposeScope();
                var feed = tensor(next.Select((t, b) => finish[b] is null ? t : options.PadTokenId).ToArray(), [batch, 1], ScalarType.Int64, model.Device);
                if (mask is not null)
                {
                    var newMask = cat([mask, ones([batch, 1], ScalarType.Int64, model.Device)], 1).DetachFromDisposeScope();
                    mask.Dispose();
                    mask = newMask;
                }
                var output = model.Forward(feed, new ForwardArgs { AttentionMask = mask, Cache = cache, OnLayer = options.OnLayer });
                logits.Dispose();
                logits = output.Logits.select(1, -1).to_type(ScalarType.Float32).DetachFromDisposeScope();
            }
        }
        finally
        {
            foreach (var g in gens) g.Dispose();
            logits.Dispose();
            mask?.Dispose();
        }
        return Enumerable.Range(0, batch)
            .Select(b => new SequenceResult(generated[b], finish[b] ?? FinishReason.Length, prompts[b].Count, matched[b]))
            .ToList();
    }

    /// <summary>Greedy argmax, or sampling after temperature, top-k and top-p (nucleus) filtering.</summary>
    public static Tensor SelectTokens(Tensor logits, GenerationOptions o, torch.Generator gen)
    {
        if (!o.DoSample || o.Temperature <= 0) return logits.argmax(-1);
        using var scope = NewDisposeScope();
        using Scalar temperature = o.Temperature; // rooted during the native call (see RootedScalars)
        var l = logits / temperature;
        if (o.TopK is int k && k > 0 && k < l.shape[^1])
        {
            var kth = l.topk(k).values.narrow(-1, k - 1, 1);
            l = l.masked_fill(l.lt(kth), RootedScalars.NegativeInfinity);
        }
        if (o.TopP is double p && p < 1.0)
        {
            var (sorted, indices) = l.sort(-1, descending: true);
            var probs = sorted.softmax(-1);
            // Drop a token when the tokens ranked above it already hold more than p of the mass (the top one always stays).
            using Scalar mass = p;
            var remove = (probs.cumsum(-1) - probs).gt(mass);
            var removeOriginal = zeros_like(remove).scatter(-1, indices, remove);
            l = l.masked_fill(removeOriginal, RootedScalars.NegativeInfinity);
        }
        return multinomial(l.softmax(-1), 1, generator: gen).squeeze(-1).MoveToOuterDisposeScope();
    }

    internal static int? EndsWithStopSequence(List<int> ids, IReadOnlyList<IReadOnlyList<int>> stops)
    {
        foreach (var s in stops)
        {
            if (s.Count == 0 || s.Count > ids.Count) continue;
            bool match = true;
            for (int i = 0; i < s.Count && match; i++) match = ids[ids.Count - s.Count + i] == s[i];
            if (match) return s.Count;
        }
        return null;
    }

    internal static string? FirstStop(string text, IReadOnlyList<string> stops)
    {
        string? best = null;
        int bestAt = int.MaxValue;
        foreach (var s in stops)
        {
            if (s.Length == 0) continue;
            int at = text.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0 && at < bestAt) (best, bestAt) = (s, at);
        }
        return best;
    }

    /// <summary>Cuts <paramref name="text"/> before the earliest occurrence of any stop string.</summary>
    public static string CutAtStop(string text, IReadOnlyList<string> stops)
    {
        int cut = text.Length;
        foreach (var s in stops)
        {
            if (s.Length == 0) continue;
            int at = text.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0) cut = Math.Min(cut, at);
        }
        return text[..cut];
    }
}
