using static TorchSharp.torch;

namespace BiasFree.Engine.WhiteBox;

/// <summary>How a FairSteer hook acts (the method and the ablations the paper reports).</summary>
public enum SteeringMode
{
    /// <summary>FairSteer: h ← h + α·v only where the probe says "biased" (σ(w·h + b) &lt; 0.5).</summary>
    Gated,

    /// <summary>Ablation: h ← h + α·v at every step, whatever the probe says (firings are still counted).</summary>
    Always,

    /// <summary>Ablation: the probe runs and its firings are counted, but nothing is added (cost of the gate alone).</summary>
    GateOnly,

    /// <summary>
    /// Variant for free-text answers: the probe is judged once per row, at the first steered position (the prompt's last
    /// token, where the probes were fitted), and that decision holds for every decoded token of the reply. The paper's
    /// answers are one letter, so its per-step gate only ever judges that position; on a multi-token reply the per-step
    /// gate also judges generated tokens, whose activations the probe never saw. Firings count the steered positions.
    /// </summary>
    PromptGated,
}

/// <summary>
/// FairSteer's dynamic activation steering (Li et al., 2025, arXiv 2504.14492, §3.3) as a residual-stream callback for
/// <see cref="Models.ForwardArgs.OnLayer"/> / <see cref="Generation.GenerationOptions.OnLayer"/>.
/// At layer <see cref="Layer"/> it reads the hidden state h of the steered positions, evaluates the probe
/// σ(w·h + b), and where it is below 0.5 ("biased") replaces h by h + α·v. With the KV cache a decoding step passes one
/// position per row, so the last position is exactly the token being decoded; at prefill only the prompt's last position
/// is steered (the paper's hook reads index −1 on every forward call). Rows are independent: a batch of requests gets a
/// gate decision per row, and <see cref="Firings"/> counts them per row.
/// Create one hook per generation: it keeps counters.
/// </summary>
public sealed class FairSteerHook
{
    private readonly Tensor _vector;   // [H] float32, α already applied
    private readonly Tensor _weight;   // [H] float32
    private readonly double _bias;
    private long[] _firings = [];
    private long _seen; // positions of the sequence that passed the hooked layer so far
    private long[] _steps = [];
    private bool[] _steerRow = []; // PromptGated: the decision taken at the row's first steered position

    /// <param name="layer">Decoder layer whose output is steered (0-based).</param>
    /// <param name="vector">Steering vector v [hidden].</param>
    /// <param name="probe">The layer's probe (label 1 = unbiased).</param>
    /// <param name="alpha">Scale α.</param>
    /// <param name="mode">Gated, always, or gate only.</param>
    /// <param name="fromPosition">
    /// Steer every position whose index in the sequence is ≥ this (counted over all passes, so chunked prefill and decoding
    /// steps line up) instead of only the last position of each pass. With <c>fromPosition = promptLength − 1</c> the prompt's
    /// last token and every generated one are steered, whether the prompt arrives in one pass or in chunks, and a single full
    /// pass over prompt + continuation equals step-by-step decoding with the cache (the gate at position t sees only
    /// positions ≤ t). Null: the last position of each pass (right for a one-pass prefill followed by single-token steps).
    /// </param>
    public FairSteerHook(int layer, float[] vector, LogisticProbe probe, double alpha, SteeringMode mode = SteeringMode.Gated, int? fromPosition = null)
    {
        if (vector.Length != probe.Weight.Length) throw new ArgumentException($"vector has {vector.Length} values, the probe {probe.Weight.Length}");
        Layer = layer;
        Alpha = alpha;
        Mode = mode;
        FromPosition = fromPosition;
        _vector = (tensor(vector) * alpha).to_type(ScalarType.Float32).DetachFromDisposeScope();
        _weight = tensor(probe.Weight.Select(w => (float)w).ToArray()).DetachFromDisposeScope();
        _bias = probe.Bias;
    }

    public int Layer { get; }
    public double Alpha { get; }
    public SteeringMode Mode { get; }
    public int? FromPosition { get; }

    /// <summary>Per row: positions where the probe said "biased" (gate fired), over all passes so far.</summary>
    public IReadOnlyList<long> Firings => _firings;

    /// <summary>Per row: positions the gate looked at (prompt's last token + one per decoded token).</summary>
    public IReadOnlyList<long> Steps => _steps;

    /// <summary>The callback to hand to the model (same as <see cref="Apply"/>).</summary>
    public Func<int, Tensor, Tensor> OnLayer => Apply;

    /// <summary>Steers <paramref name="h"/> [B, T, H] when <paramref name="layer"/> is <see cref="Layer"/>; other layers pass through.</summary>
    public Tensor Apply(int layer, Tensor h)
    {
        if (layer != Layer) return h;
        int batch = (int)h.shape[0], length = (int)h.shape[1];
        if (_firings.Length != batch)
        {
            _firings = new long[batch];
            _steps = new long[batch];
            _steerRow = new bool[batch];
        }
        long start = _seen;
        _seen += length;
        int from = FromPosition is int p ? (int)Math.Clamp(p - start, 0, length) : length - 1;
        int span = length - from;
        if (span == 0) return h; // a prompt chunk before the steered positions
        using var scope = NewDisposeScope();
        var part = h.narrow(1, from, span);                                             // [B, S, H]
        var logits = part.to_type(ScalarType.Float32).matmul(_weight.to(h.device)) + _bias; // [B, S]
        var fire = logits.lt(0);                                                        // σ < 0.5 ⇔ w·h + b < 0
        var counts = fire.sum(1).cpu().data<long>().ToArray();
        if (Mode == SteeringMode.PromptGated)
        {
            var first = fire.select(1, 0).cpu().data<bool>().ToArray();
            for (int b = 0; b < batch; b++)
            {
                if (_steps[b] == 0) _steerRow[b] = first[b];
                counts[b] = _steerRow[b] ? span : 0;
            }
        }
        for (int b = 0; b < batch; b++)
        {
            _firings[b] += counts[b];
            _steps[b] += span;
        }
        if (Mode == SteeringMode.GateOnly) return h;
        var steer = Mode switch
        {
            SteeringMode.Always => ones_like(fire),
            SteeringMode.PromptGated => tensor(_steerRow).to(h.device).view(batch, 1).expand(batch, span),
            _ => fire,
        };
        var added = part + _vector.to(h.device).to_type(h.dtype);
        // torch.where keeps unsteered positions bit-identical to the input.
        var steeredPart = where(steer.unsqueeze(-1), added, part);
        var result = from == 0 ? steeredPart : cat([h.narrow(1, 0, from), steeredPart], 1);
        return result.MoveToOuterDisposeScope();
    }
}
