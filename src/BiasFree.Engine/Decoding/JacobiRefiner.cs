using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using static TorchSharp.torch;

namespace BiasFree.Engine.Decoding;

/// <summary>
/// Settings of DiffPO's Jacobi refinement. Defaults are the released inference script's
/// (<c>zjuruizhechen/DiffPO</c>, <c>gen_DiffuPO_answer.py</c>): windows of 32 tokens, at most 1000 iterations per window,
/// and a random number r ∈ {0..12} of the original answer's leading tokens kept frozen.
/// </summary>
public sealed record DiffPoSettings
{
    /// <summary>Tokens refined together in one window (<c>max_new_tokens_for_consistency</c>).</summary>
    public int Window { get; init; } = 32;

    /// <summary>Jacobi iterations per window at most (<c>max_iter</c>).</summary>
    public int MaxIterations { get; init; } = 1000;

    /// <summary>
    /// <c>reserve_tokens</c>: r is drawn uniformly from {0..ReserveTokens} per request (seeded by the request's seed) and
    /// the first r tokens of the original answer are frozen. 0 freezes nothing.
    /// </summary>
    public int ReserveTokens { get; init; } = 12;

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad field.</summary>
    public void Validate()
    {
        if (Window < 1) throw new ArgumentException($"the DiffPO window must be at least 1 token, got {Window}");
        if (MaxIterations < 1) throw new ArgumentException($"DiffPO's max iterations must be at least 1, got {MaxIterations}");
        if (ReserveTokens < 0) throw new ArgumentException($"DiffPO's reserve tokens must not be negative, got {ReserveTokens}");
    }

    /// <summary>r for one request: uniform on {0..<see cref="ReserveTokens"/>}, a pure function of <paramref name="seed"/>.</summary>
    public int FrozenTokensFor(long seed) => ReserveTokens == 0 ? 0 : new Random(unchecked((int)(seed ^ (seed >> 32)))).Next(ReserveTokens + 1);
}

/// <summary>What one refinement did; every figure is counted.</summary>
/// <param name="Tokens">The refined answer (EOS removed).</param>
/// <param name="FinishReason">EOS reached, or the length limit.</param>
/// <param name="FrozenTokens">Leading tokens of the original answer kept as they were (≤ r when the answer is shorter).</param>
/// <param name="Windows">Windows refined.</param>
/// <param name="Iterations">Jacobi iterations over all windows (one aligner forward pass each).</param>
/// <param name="IterationsPerWindow">Iterations of each window.</param>
/// <param name="Converged">True when every window reached a fixed point before <see cref="DiffPoSettings.MaxIterations"/>.</param>
/// <param name="ChangedTokens">Positions where the refined answer differs from the original (a missing token counts as changed).</param>
/// <param name="TokenUpdates">Token changes summed over all iterations (how much the iteration moved, not just where it ended).</param>
/// <param name="ForwardPasses">Aligner forward passes: prefills plus iterations.</param>
public sealed record JacobiResult(IReadOnlyList<int> Tokens, FinishReason FinishReason, int FrozenTokens, int Windows, int Iterations,
    IReadOnlyList<int> IterationsPerWindow, bool Converged, int ChangedTokens, int TokenUpdates, int ForwardPasses);

/// <summary>
/// DiffPO's inference (Chen et al., "DiffPO: Diffusion-styled Preference Optimization for Efficient Inference-Time
/// Alignment of Large Language Models", arXiv 2503.04240, ACL 2025; checked against the released
/// <c>gen_DiffuPO_answer.py</c>, which builds on CLLM's Jacobi decoding): the aligner reads the chat
/// [question, original answer] and refines the answer window by window by Jacobi fixed-point iteration.
/// </summary>
/// <remarks>
/// <para>Per window of W positions after the fixed prefix (the prompt, the frozen leading tokens of the original answer
/// and the windows already refined), the initial point y⁽⁰⁾ is the original answer's tokens at those positions, padded.
/// One iteration runs the aligner once over prefix ++ y and sets every y_t ← argmax p(· | prefix, y_&lt;t) at once
/// (the logits one position earlier). The window stops at a fixed point or after <see cref="DiffPoSettings.MaxIterations"/>.
/// Windows continue until a window holds EOS or the length limit is reached.</para>
/// <para><b>Fixed point.</b> Only the tokens up to and including the window's first EOS are compared: later ones never
/// reach the reply and, under causal attention, never influence the ones before them. So an answer that already is the
/// aligner's greedy continuation (followed by EOS) is returned unchanged after one iteration.</para>
/// <para><b>What it converges to.</b> Position t is final once every earlier one is, so a window converges in at most W
/// iterations to the aligner's greedy decoding after the fixed prefix: with enough iterations the original answer
/// matters only through its r frozen tokens; it is the starting point, which is what a consistency-trained aligner
/// makes cheap (few iterations), not a constraint.</para>
/// <para>The prefix (minus its last token) sits in a KV cache; each iteration feeds [last prefix token] ++ y[..W−1]
/// and the cache is cut back after it (<see cref="KVCache.Truncate"/>).</para>
/// </remarks>
public static class JacobiRefiner
{
    /// <summary>Refines <paramref name="answer"/> given <paramref name="prompt"/> (the rendered chat up to the assistant turn).</summary>
    /// <param name="model">The aligner.</param>
    /// <param name="prompt">Prompt ids; at least one token.</param>
    /// <param name="answer">The original answer's ids (no EOS).</param>
    /// <param name="frozenTokens">r: leading answer tokens that never change (capped at the answer's length).</param>
    /// <param name="settings">Window and iteration limit.</param>
    /// <param name="maxNewTokens">Length limit of the refined answer (frozen tokens included).</param>
    /// <param name="eosTokenIds">Ids that end the answer; the first one also pads the initial point.</param>
    /// <param name="cancellationToken">Checked between iterations.</param>
    public static JacobiResult Refine(CausalLM model, IReadOnlyList<int> prompt, IReadOnlyList<int> answer, int frozenTokens, DiffPoSettings settings,
        int maxNewTokens, IReadOnlyCollection<int> eosTokenIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(answer);
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        if (prompt.Count == 0) throw new ArgumentException("the aligner's prompt needs at least one token", nameof(prompt));
        if (eosTokenIds.Count == 0) throw new ArgumentException("DiffPO needs an EOS id to know where the answer ends", nameof(eosTokenIds));
        var eos = eosTokenIds as ISet<int> ?? eosTokenIds.ToHashSet();
        int pad = model.Config.PadTokenId is int p && eos.Contains(p) ? p : eosTokenIds.First();

        int r = Math.Clamp(frozenTokens, 0, Math.Min(answer.Count, maxNewTokens));
        var output = new List<int>(answer.Take(r));
        var perWindow = new List<int>();
        int iterations = 0, updates = 0, passes = 0;
        bool converged = true;
        var finish = FinishReason.Length;

        using var _ = no_grad();
        using var cache = model.NewCache(prompt.Count + maxNewTokens + 8);
        // The cache holds everything fixed but its last token, which each iteration feeds in front of the window.
        var pending = prompt.Concat(output).ToList();
        int last = pending[^1];
        pending.RemoveAt(pending.Count - 1);
        if (pending.Count > 0)
        {
            Feed(model, cache, pending);
            passes++;
        }
        int position = r; // index into the original answer where the next window's initial point starts

        while (output.Count < maxNewTokens)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                finish = FinishReason.Cancelled;
                break;
            }
            int w = Math.Min(settings.Window, maxNewTokens - output.Count);
            var y = new int[w];
            for (int i = 0; i < w; i++) y[i] = position + i < answer.Count ? answer[position + i] : pad;

            int baseLength = cache.Length;
            int windowIterations = 0;
            bool fixedPoint = false;
            while (windowIterations < settings.MaxIterations && !cancellationToken.IsCancellationRequested)
            {
                var next = ArgmaxStep(model, cache, last, y);
                windowIterations++;
                passes++;
                int changed = 0;
                for (int i = 0; i < w; i++) changed += next[i] != y[i] ? 1 : 0;
                updates += changed;
                fixedPoint = SameUpToEos(y, next, eos);
                if (fixedPoint)
                {
                    // The cache now holds [last] ++ y[..^1] for exactly this y: keep it for the next window.
                    break;
                }
                cache.Truncate(baseLength);
                y = next;
            }
            iterations += windowIterations;
            perWindow.Add(windowIterations);
            converged &= fixedPoint;

            int eosAt = Array.FindIndex(y, eos.Contains);
            output.AddRange(eosAt < 0 ? y : y[..eosAt]);
            position += w;
            if (eosAt >= 0)
            {
                finish = FinishReason.EndOfSequence;
                break;
            }
            if (output.Count >= maxNewTokens) break;
            if (!fixedPoint)
            {
                cache.Truncate(baseLength);
                Feed(model, cache, [last, .. y[..^1]]);
                passes++;
            }
            last = y[^1];
        }

        int changedTokens = 0;
        for (int i = 0; i < Math.Max(output.Count, answer.Count); i++)
            changedTokens += i < output.Count && i < answer.Count && output[i] == answer[i] ? 0 : 1;
        return new JacobiResult(output, finish, r, perWindow.Count, iterations, perWindow, converged, changedTokens, updates, passes);
    }

    /// <summary>True when <paramref name="next"/> equals <paramref name="y"/> at every position up to and including y's first EOS.</summary>
    private static bool SameUpToEos(int[] y, int[] next, ISet<int> eos)
    {
        for (int i = 0; i < y.Length; i++)
        {
            if (next[i] != y[i]) return false;
            if (eos.Contains(y[i])) return true;
        }
        return true;
    }

    private static void Feed(CausalLM model, KVCache cache, IReadOnlyList<int> ids)
    {
        using var scope = NewDisposeScope();
        using var output = model.Forward(model.IdsTensor([ids]), new ForwardArgs { Cache = cache, LastTokenLogitsOnly = true });
    }

    /// <summary>One Jacobi step: feeds [last] ++ y[..W−1] over the cache and returns argmax of each of the W rows.</summary>
    private static int[] ArgmaxStep(CausalLM model, KVCache cache, int last, int[] y)
    {
        using var scope = NewDisposeScope();
        var input = new int[y.Length];
        input[0] = last;
        Array.Copy(y, 0, input, 1, y.Length - 1);
        using var output = model.Forward(model.IdsTensor([input]), new ForwardArgs { Cache = cache });
        var best = output.Logits[0].to_type(ScalarType.Float32).argmax(-1).cpu().to_type(ScalarType.Int64);
        return [.. best.data<long>().ToArray().Select(v => (int)v)];
    }
}
