using BiasFree.Engine.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BiasFree.Engine.Models;

// Small building blocks shared by the Llama, Qwen2 and Mistral files. Parameter names match HF exactly
// ("weight", "bias"), so state-dict keys line up with checkpoints without any renaming.

/// <summary>y = x W^T + b. Parameters start uninitialised (loading overwrites them; <see cref="CausalLM.Create"/> initialises).</summary>
public sealed class LinearLayer : nn.Module<Tensor, Tensor>
{
    public Parameter weight;
    public Parameter? bias;
    public int InFeatures { get; }
    public int OutFeatures { get; }

    public LinearLayer(int inFeatures, int outFeatures, bool hasBias, ScalarType dtype, Device device) : base("LinearLayer")
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        weight = new Parameter(empty([outFeatures, inFeatures], dtype, device));
        register_parameter("weight", weight);
        if (hasBias)
        {
            bias = new Parameter(empty([outFeatures], dtype, device));
            register_parameter("bias", bias);
        }
    }

    /// <summary>A layer whose parameters are the given tensors themselves (views into a <see cref="FusedLinear"/> matrix).</summary>
    internal LinearLayer(Tensor weightView, Tensor? biasView) : base("LinearLayer")
    {
        InFeatures = (int)weightView.shape[1];
        OutFeatures = (int)weightView.shape[0];
        // Parameter takes over the tensor's handle, so the parameter *is* the view and shares the fused storage.
        weight = new Parameter(weightView);
        register_parameter("weight", weight);
        if (biasView is not null)
        {
            bias = new Parameter(biasView);
            register_parameter("bias", bias);
        }
    }

    // Decode-sized bf16 products go to a kernel that streams the weight at the memory bound (Kernels/Bf16Linear.cs).
    public override Tensor forward(Tensor x) => Bf16Linear.Forward(x, weight, bias);
}

/// <summary>
/// Several linear layers that read the same input (q/k/v, or gate/up), stored as row blocks of one matrix: each
/// layer's weight is a view of it. Checkpoints, LoRA and training still see separate HF-named layers; inference runs
/// one matrix product instead of several, which at decode time reads the same bytes in one pass and saves the fixed
/// cost of the extra calls, and at larger batches gives the GEMM a wider matrix to tile. On the fused path the parts'
/// own forward hooks do not fire; wrap a part (as LoRA does) to have its own call run again.
/// </summary>
internal sealed class FusedLinear : IDisposable
{
    private readonly Tensor _weight;
    private readonly Tensor? _bias;
    private readonly Parameter[] _weights;
    private readonly Parameter?[] _biases;

    public LinearLayer[] Parts { get; }

    public FusedLinear(int inFeatures, IReadOnlyList<int> outFeatures, bool hasBias, ScalarType dtype, Device device)
    {
        int total = outFeatures.Sum();
        _weight = empty([total, inFeatures], dtype, device).DetachFromDisposeScope();
        _bias = hasBias ? empty([total], dtype, device).DetachFromDisposeScope() : null;
        Parts = new LinearLayer[outFeatures.Count];
        for (int i = 0, row = 0; i < outFeatures.Count; row += outFeatures[i], i++)
            Parts[i] = new LinearLayer(_weight.narrow(0, row, outFeatures[i]), _bias?.narrow(0, row, outFeatures[i]));
        _weights = Parts.Select(p => p.weight).ToArray();
        _biases = Parts.Select(p => p.bias).ToArray();
    }

    /// <summary>
    /// True when one fused product may replace the layers' own calls: gradients are off (training needs each
    /// parameter's own autograd path), and <paramref name="current"/> are still these layers holding these views
    /// (not LoRA wrappers, nor parameters that a dtype/device move or a reassignment replaced).
    /// </summary>
    public bool Serves(params nn.Module<Tensor, Tensor>[] current)
    {
        if (is_grad_enabled()) return false;
        for (int i = 0; i < Parts.Length; i++)
            if (!ReferenceEquals(current[i], Parts[i]) || !ReferenceEquals(Parts[i].weight, _weights[i]) || !ReferenceEquals(Parts[i].bias, _biases[i]))
                return false;
        return true;
    }

    /// <summary>All layers' outputs side by side: [.., sum of out features], in the order given at construction.</summary>
    public Tensor Forward(Tensor x) => Bf16Linear.Forward(x, _weight, _bias);

    public void Dispose()
    {
        _weight.Dispose();
        _bias?.Dispose();
    }
}

public sealed class EmbeddingLayer : nn.Module<Tensor, Tensor>
{
    public Parameter weight;

    public EmbeddingLayer(int vocab, int dim, ScalarType dtype, Device device) : base("EmbeddingLayer")
    {
        weight = new Parameter(empty([vocab, dim], dtype, device));
        register_parameter("weight", weight);
    }

    public override Tensor forward(Tensor ids) => weight.index_select(0, ids.reshape(-1)).reshape([.. ids.shape, weight.shape[1]]);
}

/// <summary>RMSNorm: x / sqrt(mean(x^2) + eps) * weight, computed in fp32 (bf16 squares lose too much precision).</summary>
public sealed class RMSNorm : nn.Module<Tensor, Tensor>
{
    public Parameter weight;
    // Held for the module's lifetime: see RootedScalars.
    private readonly Scalar _eps;
    private readonly double _epsilon; // the same ε as a number, for the fused bf16 kernel

    public RMSNorm(int dim, double eps, ScalarType dtype, Device device) : base("RMSNorm")
    {
        _eps = eps;
        _epsilon = eps;
        weight = new Parameter(ones([dim], dtype, device));
        register_parameter("weight", weight);
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        // bf16 at inference: one pass per row instead of eight ops (Kernels/Bf16Elementwise.cs), the same roundings.
        if (Bf16Elementwise.TryRmsNorm(x, weight, _epsilon) is { } fused) return fused.MoveToOuterDisposeScope();
        var x32 = x.to_type(ScalarType.Float32);
        if (is_grad_enabled()) return (weight * (x32 * rsqrt(x32.pow(RootedScalars.Two).mean([-1], keepdim: true).Plus(_eps))).to_type(x.dtype)).MoveToOuterDisposeScope();
        // Inference: the temporaries are this call's own, so they are updated in place (fewer allocations per token;
        // with gradients on, autograd needs the originals). Same operations in the same order, so the same numbers.
        var inverse = x32.pow(RootedScalars.Two).mean([-1], keepdim: true);
        inverse.PlusInPlace(_eps).rsqrt_();
        var normed = (x32 * inverse).to_type(x.dtype);
        return normed.mul_(weight).MoveToOuterDisposeScope();
    }
}

/// <summary>A module whose linear projections can be swapped (LoRA wraps them in place).</summary>
public interface IProjectionOwner
{
    IReadOnlyList<string> ProjectionNames { get; }
    nn.Module<Tensor, Tensor> GetProjection(string name);
    void SetProjection(string name, nn.Module<Tensor, Tensor> module);
}

/// <summary>Base for modules that must replace a registered child (register_module refuses to overwrite).</summary>
public abstract class ProjectionOwnerModule(string name) : nn.Module(name)
{
    protected void ReplaceChild(string childName, nn.Module module) => _internal_submodules[childName] = module;
}

/// <summary>SwiGLU feed-forward: down(silu(gate(x)) * up(x)).</summary>
public sealed class GatedMlp : ProjectionOwnerModule, IProjectionOwner
{
    public nn.Module<Tensor, Tensor> gate_proj, up_proj, down_proj;
    private readonly FusedLinear _gateUp;
    private readonly int _intermediate;

    public GatedMlp(int hidden, int intermediate, bool bias, ScalarType dtype, Device device) : base("GatedMlp")
    {
        _intermediate = intermediate;
        _gateUp = new FusedLinear(hidden, [intermediate, intermediate], bias, dtype, device);
        gate_proj = _gateUp.Parts[0];
        up_proj = _gateUp.Parts[1];
        down_proj = new LinearLayer(intermediate, hidden, bias, dtype, device);
        register_module("gate_proj", gate_proj);
        register_module("up_proj", up_proj);
        register_module("down_proj", down_proj);
    }

    public Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor gated;
        if (_gateUp.Serves(gate_proj, up_proj))
        {
            // One product for gate and up; silu's output is a fresh tensor, so the gating multiply happens in place.
            var both = _gateUp.Forward(x);
            // bf16: one pass instead of two ops (Kernels/Bf16Elementwise.cs), the same roundings.
            gated = Bf16Elementwise.TrySiluGate(both, _intermediate) ?? nn.functional.silu(both.narrow(-1, 0, _intermediate)).mul_(both.narrow(-1, _intermediate, _intermediate));
        }
        else gated = nn.functional.silu(gate_proj.call(x)) * up_proj.call(x);
        return down_proj.call(gated).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _gateUp.Dispose();
        base.Dispose(disposing);
    }

    public IReadOnlyList<string> ProjectionNames => ["gate_proj", "up_proj", "down_proj"];

    public nn.Module<Tensor, Tensor> GetProjection(string name) => name switch
    {
        "gate_proj" => gate_proj,
        "up_proj" => up_proj,
        "down_proj" => down_proj,
        _ => throw new ArgumentException($"no projection '{name}'"),
    };

    public void SetProjection(string name, nn.Module<Tensor, Tensor> module)
    {
        switch (name)
        {
            case "gate_proj": gate_proj = module; break;
            case "up_proj": up_proj = module; break;
            case "down_proj": down_proj = module; break;
            default: throw new ArgumentException($"no projection '{name}'");
        }
        ReplaceChild(name, module);
    }
}

/// <summary>
/// Rotary position embedding (HF "rotate_half" convention: the two halves of each head are the pair dimensions).
/// Frequencies are kept in double precision on the CPU and turned into cos/sin tables once per forward pass.
/// </summary>
public sealed class RotaryEmbedding
{
    public double[] InvFreq { get; }

    public RotaryEmbedding(int headDim, double theta, RopeScaling? scaling)
    {
        int half = headDim / 2;
        InvFreq = new double[half];
        for (int i = 0; i < half; i++) InvFreq[i] = 1.0 / Math.Pow(theta, 2.0 * i / headDim);
        if (scaling is null) return;
        switch (scaling.Type)
        {
            case "linear":
                for (int i = 0; i < half; i++) InvFreq[i] /= scaling.Factor;
                break;
            case "llama3":
                ApplyLlama3Scaling(InvFreq, scaling);
                break;
            default:
                throw new NotSupportedException($"rope_scaling type '{scaling.Type}' is not supported");
        }
    }

    /// <summary>
    /// Llama 3.1 long-context scaling: wavelengths longer than original_context/low_freq_factor are slowed by `factor`,
    /// those shorter than original_context/high_freq_factor are untouched, and the band between is interpolated smoothly.
    /// </summary>
    private static void ApplyLlama3Scaling(double[] invFreq, RopeScaling s)
    {
        double lowFreqWavelen = s.OriginalMaxPositionEmbeddings / s.LowFreqFactor;
        double highFreqWavelen = s.OriginalMaxPositionEmbeddings / s.HighFreqFactor;
        for (int i = 0; i < invFreq.Length; i++)
        {
            double wavelen = 2 * Math.PI / invFreq[i];
            if (wavelen < highFreqWavelen) continue;
            if (wavelen > lowFreqWavelen)
            {
                invFreq[i] /= s.Factor;
                continue;
            }
            double smooth = (s.OriginalMaxPositionEmbeddings / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
            invFreq[i] = (1 - smooth) * invFreq[i] / s.Factor + smooth * invFreq[i];
        }
    }

    private readonly object _tablesLock = new();
    private (ScalarType DType, Device Device, int Length, Tensor Cos, Tensor SinRotated)? _tables;

    /// <summary>
    /// cos and sign-folded sin tables of shape [B, T, 1, headDim] for the given [B, T] positions, all below
    /// <paramref name="limit"/>. Values are computed once per position in float64 and rounded to <paramref name="dtype"/>
    /// (the same numbers as computing them per call); each pass then only gathers its rows.
    /// </summary>
    public (Tensor Cos, Tensor SinRotated) CosSin(Tensor positionIds, ScalarType dtype, int limit)
    {
        using var scope = NewDisposeScope();
        long b = positionIds.shape[0], t = positionIds.shape[1];
        var flat = positionIds.reshape(-1);
        // The gathers run under the lock too: another thread that needs longer tables replaces (and frees) these ones,
        // and a gather from a freed table reads freed memory (a crash, or "Unknown scalar type").
        lock (_tablesLock)
        {
            var (cosTable, sinTable) = Tables(dtype, positionIds.device, limit);
            var cos = cosTable.index_select(0, flat).view(b, t, 1, -1);
            var sin = sinTable.index_select(0, flat).view(b, t, 1, -1);
            return (cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope());
        }
    }

    // Called under _tablesLock.
    private (Tensor Cos, Tensor SinRotated) Tables(ScalarType dtype, Device device, int limit)
    {
        // Device objects are compared by type and index (a tensor's .device is a new object every time).
        bool same = _tables is { } t && t.DType == dtype && t.Device.type == device.type && t.Device.index == device.index;
        if (same && _tables!.Value.Length >= limit) return (_tables.Value.Cos, _tables.Value.SinRotated);
        // Grow by doubling (a long generation asks one position more per step); a new dtype or device starts over.
        int length = Math.Max(limit, Math.Max(256, same ? 2 * _tables!.Value.Length : 0));
        using var scope = NewDisposeScope();
        var inv = tensor(InvFreq, ScalarType.Float64, device);
        var freqs = RootedScalars.Range(0, length, ScalarType.Float64, device).unsqueeze(-1) * inv; // [N, D/2]
        var emb = cat([freqs, freqs], -1);                                            // [N, D]
        var cos = emb.cos().to_type(dtype);
        // rotate_half(x) = cat(-x2, x1) = roll(x, D/2) with the first half negated; the sign goes into sin, which
        // is exact (negation only flips the sign bit), so x * cos + roll(x) * sinRotated equals the HF formula.
        long half = InvFreq.Length;
        var sin = emb.sin();
        var sinRotated = cat([-sin.narrow(-1, 0, half), sin.narrow(-1, half, half)], -1).to_type(dtype);
        if (_tables is { } old)
        {
            old.Cos.Dispose();
            old.SinRotated.Dispose();
        }
        _tables = (dtype, device, length, cos.DetachFromDisposeScope(), sinRotated.DetachFromDisposeScope());
        return (_tables.Value.Cos, _tables.Value.SinRotated);
    }

    /// <summary>x * cos + rotate_half(x) * sin for x laid out [B, T, heads, D] with tables from <see cref="CosSin"/>.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sinRotated)
    {
        using var scope = NewDisposeScope();
        // bf16 at inference: one pass instead of four ops (Kernels/Bf16Elementwise.cs), the same roundings.
        if (Bf16Elementwise.TryRotary(x, cos, sinRotated) is { } fused) return fused.MoveToOuterDisposeScope();
        long half = x.shape[^1] / 2;
        var y = x * cos;
        var rotated = x.roll(half, -1) * sinRotated;
        return (is_grad_enabled() ? y.Plus(rotated) : y.PlusInPlace(rotated)).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Per-layer key/value cache, preallocated as [B, KVH, capacity, D] and grown by doubling.
/// Buffers live outside dispose scopes; dispose the cache when the sequence is done.
/// </summary>
public sealed class KVCache : IDisposable
{
    private readonly Tensor?[] _k, _v;
    private int _capacity;

    public int Length { get; private set; }
    public int Layers => _k.Length;

    public KVCache(int layers, int initialCapacity = 128)
    {
        _k = new Tensor?[layers];
        _v = new Tensor?[layers];
        _capacity = Math.Max(1, initialCapacity);
    }

    /// <summary>Writes the new keys/values after the cached ones and returns views of everything cached so far.</summary>
    internal (Tensor K, Tensor V) Append(int layer, Tensor k, Tensor v)
    {
        int n = (int)k.shape[2];
        EnsureCapacity(layer, k, Length + n);
        // The scope roots the narrow() views while native code copies into them (docs/engine-performance.md, "Tensor lifetimes").
        using var scope = NewDisposeScope();
        using (no_grad())
        {
            _k[layer]!.narrow(2, Length, n).copy_(k);
            _v[layer]!.narrow(2, Length, n).copy_(v);
        }
        return (_k[layer]!.narrow(2, 0, Length + n).MoveToOuterDisposeScope(), _v[layer]!.narrow(2, 0, Length + n).MoveToOuterDisposeScope());
    }

    private void EnsureCapacity(int layer, Tensor like, int needed)
    {
        var cur = _k[layer];
        if (cur is not null && cur.shape[2] >= needed) return;
        int cap = Math.Max(_capacity, cur is null ? 0 : (int)cur.shape[2]);
        while (cap < needed) cap *= 2;
        _capacity = cap;
        long[] shape = [like.shape[0], like.shape[1], cap, like.shape[3]];
        var newK = zeros(shape, like.dtype, like.device).DetachFromDisposeScope();
        var newV = zeros(shape, like.dtype, like.device).DetachFromDisposeScope();
        if (cur is not null && Length > 0)
        {
            using var scope = NewDisposeScope(); // roots the narrow() views during the copies (docs/engine-performance.md, "Tensor lifetimes")
            using (no_grad())
            {
                newK.narrow(2, 0, Length).copy_(cur.narrow(2, 0, Length));
                newV.narrow(2, 0, Length).copy_(_v[layer]!.narrow(2, 0, Length));
            }
        }
        cur?.Dispose();
        _v[layer]?.Dispose();
        _k[layer] = newK;
        _v[layer] = newV;
    }

    /// <summary>Forgets everything after the first <paramref name="length"/> positions (speculative decoding: drop rejected drafts).</summary>
    public void Truncate(int length)
    {
        if (length < 0 || length > Length) throw new ArgumentOutOfRangeException(nameof(length), $"cache holds {Length} positions");
        Length = length;
    }

    /// <summary>
    /// Keeps, reorders or duplicates batch rows: row i of the result is row rows[i] of this cache (beam search,
    /// forking one prefix into several candidates). Returns a new cache; this one is left untouched.
    /// </summary>
    public KVCache SelectRows(IReadOnlyList<int> rows)
    {
        var result = new KVCache(Layers, _capacity) { Length = Length };
        for (int i = 0; i < Layers; i++)
        {
            if (_k[i] is null) continue;
            using var index = torch.tensor(rows.Select(r => (long)r).ToArray(), ScalarType.Int64, _k[i]!.device);
            result._k[i] = _k[i]!.index_select(0, index).DetachFromDisposeScope();
            result._v[i] = _v[i]!.index_select(0, index).DetachFromDisposeScope();
        }
        return result;
    }

    /// <summary>Called once per forward pass, after every layer appended its new entries.</summary>
    internal void Advance(int n) => Length += n;

    public void Dispose()
    {
        for (int i = 0; i < _k.Length; i++)
        {
            _k[i]?.Dispose();
            _v[i]?.Dispose();
            _k[i] = _v[i] = null;
        }
        Length = 0;
    }
}

/// <summary>Everything a decoder layer needs for one forward pass, computed once by the model.</summary>
public sealed class LayerInputs
{
    /// <summary>Rotary tables [B, T, 1, D] (see <see cref="RotaryEmbedding.CosSin"/>; sin has rotate_half's sign folded in).</summary>
    public required Tensor Cos { get; init; }
    public required Tensor Sin { get; init; }
    public KVCache? Cache { get; init; }
    /// <summary>Slot cache rows of a continuous batch (instead of <see cref="Cache"/>).</summary>
    public SlotBatch? Slots { get; init; }
    /// <summary>Boolean attention mask [B, 1, T, S] (true = may attend) for full-attention layers, or null to use SDPA's causal fast path.</summary>
    public Tensor? FullMask { get; init; }
    public Tensor? WindowMask { get; init; }
    public bool IsCausal { get; init; }
    public bool WindowIsCausal { get; init; }
}

public static class AttentionOps
{
    /// <summary>
    /// Builds the [B, 1, T, S] boolean mask: causal, optional sliding window (query - key &lt; window), and left padding.
    /// Every query may always see itself so that padding rows never become all-masked (softmax of nothing = NaN,
    /// and NaN * 0 weights would then leak into real rows through later layers).
    /// </summary>
    public static Tensor BuildMask(int batch, int pastLength, int queryLength, Tensor? paddingMask, int? window, Device device)
    {
        using var scope = NewDisposeScope();
        int total = pastLength + queryLength;
        var keyPos = RootedScalars.Range(0, total, ScalarType.Int64, device).view(1, 1, 1, total);
        var queryPos = RootedScalars.Range(pastLength, total, ScalarType.Int64, device).view(1, 1, queryLength, 1);
        var allowed = keyPos.le(queryPos);
        if (window is { } w)
        {
            using Scalar width = w;
            allowed = allowed.logical_and((queryPos - keyPos).lt(width));
        }
        if (paddingMask is not null) allowed = allowed.logical_and(paddingMask.to_type(ScalarType.Bool).view(batch, 1, 1, total));
        allowed = allowed.logical_or(keyPos.eq(queryPos)).expand(batch, 1, queryLength, total);
        return allowed.contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Scaled dot-product attention with grouped-query heads. q is [B, H, T, D]; k and v are [B, KVH, S, D].
    /// One query per row (decoding): the H query heads are regrouped as [B, KVH, H/KVH, D], so each KV head serves its
    /// group of queries as rows of one attention call and the cache is read as it lies, with no repeated copy. The
    /// mask, if any, is [B, 1, 1, S] and broadcasts over those rows, since they all sit at the same position.
    /// Several queries per row (prefill, chunks): K/V heads are repeated to match the query heads.
    /// </summary>
    public static Tensor Attend(Tensor q, Tensor k, Tensor v, Tensor? mask, bool isCausal)
    {
        using var scope = NewDisposeScope();
        long b = q.shape[0], heads = q.shape[1], t = q.shape[2], d = q.shape[3], kvHeads = k.shape[1];
        long rep = heads / kvHeads;
        // One query per row at inference: the decode kernel reads the cache in place (Kernels/DecodeAttention.cs).
        if (t == 1 && !isCausal && DecodeAttention.TryAttend(q, k, v, mask) is { } fast) return fast.MoveToOuterDisposeScope();
        if (rep > 1 && t == 1 && !isCausal)
        {
            var grouped = nn.functional.scaled_dot_product_attention(q.reshape(b, kvHeads, rep, d), k, v, mask, 0.0, false);
            return grouped.view(b, heads, 1, d).MoveToOuterDisposeScope();
        }
        if (rep > 1)
        {
            k = k.repeat_interleave(rep, dim: 1);
            v = v.repeat_interleave(rep, dim: 1);
        }
        return nn.functional.scaled_dot_product_attention(q, k, v, mask, 0.0, isCausal).MoveToOuterDisposeScope();
    }
}
