using System.Runtime.InteropServices;
using BiasFree.Engine.Models;
using TorchSharp;
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
/// <para><b>Cost.</b> The hook runs at every decoding step, where the model's own work is small (a few ms on CPU for the
/// demo model), so it avoids per-step tensor operations: on a CPU float32 tensor the gate reads the activations in place
/// and computes w·h + b in managed code (exactly <see cref="LogisticProbe.Logit"/>, in float64, the function the fit's
/// validation accuracy is computed with); a pass where no position is steered returns its input itself (no copy, no
/// tensor op), one where every position of the pass is steered is a single addition, and only a mixed pass builds a
/// mask for <c>torch.where</c>. On other devices the logits are one float64 product read back to the host once per
/// pass. The vector is converted to the pass's device and dtype once, not per step.</para>
/// </summary>
public sealed class FairSteerHook
{
    private readonly float[] _vectorValues; // v, α not applied
    private readonly double[] _weight;
    private readonly double _bias;
    private Tensor? _weightTensor;         // float64 [H] on the device of the last non-CPU pass
    private Tensor? _scaled;               // α·v in the dtype and on the device of the last pass
    private long[] _firings = [];
    private long _seen; // positions of the sequence that passed the hooked layer so far
    private long[] _steps = [];
    private bool[] _steerRow = []; // PromptGated: the decision taken at the row's first steered position
    private bool[] _steer = [];    // per pass: steer position (b, s) of the steered span, row-major
    private double[] _logits = [];

    /// <param name="layer">Decoder layer whose output is steered (0-based).</param>
    /// <param name="vector">Steering vector v [hidden].</param>
    /// <param name="probe">The layer's probe (label 1 = unbiased).</param>
    /// <param name="alpha">Scale α.</param>
    /// <param name="mode">Gated, always, or gate only.</param>
    /// <param name="fromPosition">
    /// Steer every position whose index among the positions this hook is given is ≥ this (counted over all passes, so
    /// chunked prefill and decoding steps line up) instead of only the last position of each pass. With
    /// <c>fromPosition = promptLength − 1</c> the prompt's last token and every generated one are steered, whether the
    /// prompt arrives in one pass or in chunks, and a single full pass over prompt + continuation equals step-by-step
    /// decoding with the cache (the gate at position t sees only positions ≤ t). In a <see cref="Generation.ContinuousBatcher"/>
    /// with <see cref="Generation.GenerationOptions.OnLayerFrom"/> = promptLength − 1 the hook is given only those positions,
    /// so 0 is right there. Null: the last position of each pass (right for a one-pass prefill followed by single-token steps).
    /// </param>
    public FairSteerHook(int layer, float[] vector, LogisticProbe probe, double alpha, SteeringMode mode = SteeringMode.Gated, int? fromPosition = null)
    {
        if (vector.Length != probe.Weight.Length) throw new ArgumentException($"vector has {vector.Length} values, the probe {probe.Weight.Length}");
        Layer = layer;
        Alpha = alpha;
        Mode = mode;
        FromPosition = fromPosition;
        _vectorValues = (float[])vector.Clone();
        _weight = (double[])probe.Weight.Clone();
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

    /// <summary>
    /// Steers <paramref name="h"/> [B, T, H] when <paramref name="layer"/> is <see cref="Layer"/>; other layers pass through.
    /// Returns <paramref name="h"/> itself when nothing is steered, so unsteered positions stay bit-identical.
    /// </summary>
    public Tensor Apply(int layer, Tensor h)
    {
        if (layer != Layer) return h;
        int batch = (int)h.shape[0], length = (int)h.shape[1], hidden = (int)h.shape[2];
        if (hidden != _weight.Length) throw new ArgumentException($"hidden size {hidden}, the probe has {_weight.Length}");
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
        int n = batch * span;
        if (_steer.Length < n)
        {
            _steer = new bool[n];
            _logits = new double[n];
        }
        GateLogits(h, batch, length, from, span);
        int steered = 0;
        for (int b = 0; b < batch; b++)
        {
            // σ(w·h + b) < 0.5 ⇔ w·h + b < 0: the probe says "biased".
            if (Mode == SteeringMode.PromptGated && _steps[b] == 0) _steerRow[b] = _logits[b * span] < 0;
            long fired = 0;
            for (int t = 0; t < span; t++)
            {
                bool fire = Mode == SteeringMode.PromptGated ? _steerRow[b] : _logits[b * span + t] < 0;
                fired += fire ? 1 : 0;
                bool steer = Mode switch { SteeringMode.Always => true, SteeringMode.GateOnly => false, _ => fire };
                _steer[b * span + t] = steer;
                steered += steer ? 1 : 0;
            }
            _firings[b] += fired;
            _steps[b] += span;
        }
        if (steered == 0) return h;
        using var scope = NewDisposeScope();
        var vector = ScaledVector(h);
        Tensor result;
        if (steered == n && from == 0) result = h.Plus(vector);
        else
        {
            var part = from == 0 ? h : h.narrow(1, from, span);                                   // [B, S, H]
            var mask = tensor(_steer.AsSpan(0, n).ToArray(), [batch, span, 1]).to(h.device);
            // torch.where keeps unsteered positions bit-identical to the input.
            var steeredPart = where(mask, part.Plus(vector), part);
            result = from == 0 ? steeredPart : cat([h.narrow(1, 0, from), steeredPart], 1);
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>w·h + b for every position of the steered span into <see cref="_logits"/> (row-major [B, S]).</summary>
    private void GateLogits(Tensor h, int batch, int length, int from, int span)
    {
        int hidden = _weight.Length;
        if (h.device_type == TorchSharp.DeviceType.CPU && h.dtype == ScalarType.Float32 && h.is_contiguous())
        {
            // In place: no copy, no tensor op. bytes starts at the tensor's first element (its storage offset).
            var values = MemoryMarshal.Cast<byte, float>(h.bytes);
            for (int b = 0; b < batch; b++)
                for (int t = 0; t < span; t++)
                {
                    var row = values.Slice(((b * length) + from + t) * hidden, hidden);
                    double z = _bias;
                    for (int i = 0; i < hidden; i++) z += _weight[i] * row[i];
                    _logits[b * span + t] = z;
                }
            return;
        }
        using var scope = NewDisposeScope();
        if (_weightTensor is null || !SameDevice(_weightTensor, h))
        {
            _weightTensor?.Dispose();
            _weightTensor = tensor(_weight).to(h.device).DetachFromDisposeScope();
        }
        using Scalar bias = _bias; // rooted during the native call (see RootedScalars)
        var logits = h.narrow(1, from, span).to_type(ScalarType.Float64).matmul(_weightTensor).Plus(bias).cpu(); // [B, S]
        logits.contiguous().data<double>().ToArray().CopyTo(_logits.AsSpan(0, batch * span));
    }

    private static bool SameDevice(Tensor a, Tensor b) => a.device_type == b.device_type && a.device_index == b.device_index;

    /// <summary>α·v in <paramref name="h"/>'s dtype and on its device, made once (a generation keeps one device and dtype).</summary>
    private Tensor ScaledVector(Tensor h)
    {
        if (_scaled is null || !SameDevice(_scaled, h) || _scaled.dtype != h.dtype)
        {
            _scaled?.Dispose();
            using var scope = NewDisposeScope();
            _scaled = tensor(_vectorValues).Times(Alpha).to_type(ScalarType.Float32).to_type(h.dtype).to(h.device).DetachFromDisposeScope();
        }
        return _scaled;
    }
}
