using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using BiasFree.Engine.Training;
using static TorchSharp.torch;

namespace BiasFree.Engine.Decoding.Ivo;

/// <summary>
/// IVO's tokenwise rule as a logits processor. At state s (prompt + reply so far) it takes the k most likely next tokens
/// of the base, scores each continuation with the value model, and adds β·(V(s∘a) − V(s)) to that token's logit before
/// the engine's own sampler (temperature, top-k, top-p, seed) picks:
///     logits'(a) = logits_base(a) + β·(V(s∘a) − V(s))   for a in top-k(logits_base),   logits'(a) = logits_base(a) otherwise.
/// This is the KL-regularised optimum π(a|s) ∝ π_base(a|s)·exp(β·Q(s,a)) that IVO and its baselines (ARGS, VAS) build
/// on, with Q(s,a) read as V(s∘a) (the reply so far is deterministic given a) and V(s) standing in for the tokens that
/// are not scored; subtracting V(s) leaves the candidates' ratios unchanged and keeps the unscored tokens at their base
/// odds. With β = 0 the logits are the base logits exactly, so the reply is the engine's plain sample for the same seed.
/// </summary>
/// <remarks>
/// The value model keeps one KV cache per row: each call feeds the tokens the row gained since the last call (the whole
/// prompt at first), reads V(s) at the last position, then forks the cache into k rows (<see cref="KVCache.SelectRows"/>)
/// and reads V(s∘a) for all candidates in one single-token pass. One instance serves one generation (its rows).
/// </remarks>
public sealed class ValueGuide(ScoreModel value, IvoSettings settings) : ILogitsProcessor, IDisposable
{
    private readonly Dictionary<int, (KVCache Cache, int Fed)> _rows = [];
    private readonly Dictionary<int, double> _first = [], _last = [];

    /// <summary>Sequences scored by the value model so far (one per state s and one per candidate).</summary>
    public long ValueEvaluations { get; private set; }

    /// <summary>Decoding steps guided so far (over all rows).</summary>
    public int Steps { get; private set; }

    /// <summary>V of row <paramref name="row"/>'s prompt (the first state), or null before the first step.</summary>
    public double? FirstValue(int row = 0) => _first.TryGetValue(row, out var v) ? v : null;

    /// <summary>V of row <paramref name="row"/>'s state at its last guided step, or null.</summary>
    public double? LastValue(int row = 0) => _last.TryGetValue(row, out var v) ? v : null;

    /// <inheritdoc />
    public Tensor Process(Tensor logits, LogitsContext context)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var result = logits.clone();
        int k = (int)Math.Min(settings.Candidates, logits.shape[^1]);
        for (int b = 0; b < (int)logits.shape[0]; b++)
        {
            if (context.Finished[b]) continue;
            IReadOnlyList<int> state = [.. context.Prompts[b], .. context.Generated[b]];
            if (!_rows.TryGetValue(b, out var row)) row = (value.Model.NewCache(state.Count + 32), 0);
            // V(s): feed what the cache has not seen yet (the prompt at first, then the token chosen last step).
            var fresh = state.Skip(row.Fed).ToList();
            double vs;
            if (fresh.Count == 0 && _last.TryGetValue(b, out var seen)) vs = seen;
            else
            {
                using var h = value.Hidden(value.Model.IdsTensor([fresh]), row.Cache);
                using var v = value.Head(h.select(1, -1));
                vs = v.cpu().to_type(ScalarType.Float64).data<double>()[0];
                ValueEvaluations++;
            }
            _rows[b] = (row.Cache, state.Count);
            _first.TryAdd(b, vs);
            _last[b] = vs;

            // V(s∘a) for the base's top-k candidates, in one pass over a k-row fork of the cache.
            var candidates = logits[b].topk(k).indexes;
            using var fork = row.Cache.SelectRows(Enumerable.Repeat(0, k).ToList());
            using var hc = value.Hidden(candidates.to(ScalarType.Int64).cpu().view(k, 1).to(value.Model.Device), fork);
            using var vsa = value.Head(hc.select(1, -1)).to_type(ScalarType.Float64);
            var bonus = vsa.Minus(vs).Times(settings.Beta).to_type(result.dtype).to(result.device);
            result[b].index_add_(0, candidates, bonus, RootedScalars.One);
            ValueEvaluations += k;
            Steps++;
        }
        return result.MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var (cache, _) in _rows.Values) cache.Dispose();
        _rows.Clear();
    }
}
