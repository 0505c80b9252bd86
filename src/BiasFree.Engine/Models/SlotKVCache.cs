using static TorchSharp.torch;

namespace BiasFree.Engine.Models;

/// <summary>
/// Key/value cache for continuous batching: one slot (row) per running sequence, preallocated per layer as
/// [slots, kv_heads, width, head_dim]. Each sequence's positions start at 0 in its own slot, so rows of different lengths
/// share the tensor without padding in front; attention masks hide everything past a row's own length.
/// </summary>
/// <remarks>
/// <para><b>Memory.</b> The cache owns exactly <see cref="AllocatedBytes"/> = layers × 2 × slots × width × kv_heads ×
/// head_dim × element size. It changes only through <see cref="Resize"/>, which copies one layer at a time, so while it
/// runs the cache holds the old layers not yet replaced plus the new ones already made, at most one layer more than
/// the larger of the two shapes.
/// <see cref="PeakAllocatedBytes"/> records the largest total ever held, transient copies included.</para>
/// <para><b>Stale data.</b> A slot keeps whatever its previous sequence wrote. That is safe: a query at position p only
/// attends keys 0..p of its own slot, and the pass that reaches position p writes key p before attending (or the
/// batcher copied it from a sequence with the same prefix), so stale entries are overwritten before a real query can
/// see them; only padding queries, whose outputs are dropped, may read them. Slots start zeroed so that no NaN can ever
/// sit under a masked score (NaN + -inf is NaN, which would poison softmax).</para>
/// </remarks>
public sealed class SlotKVCache : IDisposable
{
    private readonly Tensor?[] _k, _v;
    private readonly int _kvHeads, _headDim;
    private readonly ScalarType _dtype;
    private readonly Device _device;

    public SlotKVCache(int layers, int kvHeads, int headDim, ScalarType dtype, Device device)
    {
        _k = new Tensor?[layers];
        _v = new Tensor?[layers];
        _kvHeads = kvHeads;
        _headDim = headDim;
        _dtype = dtype;
        _device = device;
        BytesPerToken = (long)layers * 2 * kvHeads * headDim * ElementSize(dtype);
    }

    /// <summary>A cache shaped for <paramref name="model"/> (its layers, KV heads, head size, dtype and device).</summary>
    public static SlotKVCache For(CausalLM model) =>
        new(model.Config.NumHiddenLayers, model.Config.NumKeyValueHeads, model.Config.HeadDim, model.DType, model.Device);

    public int Layers => _k.Length;
    /// <summary>Rows allocated.</summary>
    public int Slots { get; private set; }
    /// <summary>Positions allocated per row.</summary>
    public int Width { get; private set; }
    /// <summary>Bytes that one cached position of one sequence takes over all layers (keys and values).</summary>
    public long BytesPerToken { get; }
    public long AllocatedBytes { get; private set; }
    public long PeakAllocatedBytes { get; private set; }

    /// <summary>Bytes a cache of <paramref name="slots"/> × <paramref name="width"/> holds.</summary>
    public long BytesFor(int slots, int width) => BytesPerToken * slots * width;

    /// <summary>
    /// Changes the shape to <paramref name="slots"/> × <paramref name="width"/>, keeping the first
    /// <paramref name="keepRows"/> rows and their first min(old, new) width positions. Zero sizes free everything.
    /// </summary>
    public void Resize(int slots, int width, int keepRows)
    {
        if (slots < keepRows) throw new ArgumentOutOfRangeException(nameof(slots), $"cannot keep {keepRows} rows in {slots} slots");
        if (slots == Slots && width == Width) return;
        using var _ = no_grad();
        using var scope = NewDisposeScope(); // roots the narrow() views until the copies are done (docs/engine-performance.md, "Tensor lifetimes")
        bool empty = slots == 0 || width == 0;
        int keepWidth = Math.Min(width, Width);
        for (int layer = 0; layer < Layers; layer++)
        {
            // One layer at a time: allocate the new pair, copy, then free the old pair.
            Tensor? newK = null, newV = null;
            if (!empty)
            {
                newK = zeros([slots, _kvHeads, width, _headDim], _dtype, _device).DetachFromDisposeScope();
                newV = zeros([slots, _kvHeads, width, _headDim], _dtype, _device).DetachFromDisposeScope();
                Track(2 * LayerBytes(slots, width));
                if (_k[layer] is { } oldK && keepRows > 0 && keepWidth > 0)
                {
                    newK.narrow(0, 0, keepRows).narrow(2, 0, keepWidth).copy_(oldK.narrow(0, 0, keepRows).narrow(2, 0, keepWidth));
                    newV.narrow(0, 0, keepRows).narrow(2, 0, keepWidth).copy_(_v[layer]!.narrow(0, 0, keepRows).narrow(2, 0, keepWidth));
                }
            }
            if (_k[layer] is not null)
            {
                _k[layer]!.Dispose();
                _v[layer]!.Dispose();
                Track(-2 * LayerBytes(Slots, Width));
            }
            _k[layer] = newK;
            _v[layer] = newV;
        }
        (Slots, Width) = empty ? (0, 0) : (slots, width);
    }

    /// <summary>
    /// Copies the first <paramref name="length"/> positions of slot <paramref name="from"/> over slot <paramref name="to"/>
    /// (used to keep running rows contiguous). Only a row's filled positions matter: whatever lies past them is never
    /// read by a real query, so copying the whole width would only move stale bytes.
    /// </summary>
    public void CopyRow(int from, int to, int length)
    {
        if (from == to || length <= 0) return;
        CheckLength(length);
        using var _ = no_grad();
        using var scope = NewDisposeScope(); // roots the narrow() views until the copies are done (docs/engine-performance.md, "Tensor lifetimes")
        for (int layer = 0; layer < Layers; layer++)
        {
            _k[layer]!.narrow(0, to, 1).narrow(2, 0, length).copy_(_k[layer]!.narrow(0, from, 1).narrow(2, 0, length));
            _v[layer]!.narrow(0, to, 1).narrow(2, 0, length).copy_(_v[layer]!.narrow(0, from, 1).narrow(2, 0, length));
        }
    }

    /// <summary>
    /// Copies positions <paramref name="start"/>..<paramref name="start"/>+<paramref name="count"/>-1 of slot
    /// <paramref name="from"/> into the same positions of slot <paramref name="to"/> (prefix sharing: a sequence takes the
    /// keys/values of a prompt prefix another one has computed).
    /// </summary>
    public void CopyPositions(int from, int to, int start, int count)
    {
        if (count <= 0 || from == to) return;
        if (start < 0 || start + count > Width) throw new ArgumentOutOfRangeException(nameof(count), $"positions {start}..{start + count - 1} are outside the width {Width}");
        using var _ = no_grad();
        using var scope = NewDisposeScope(); // roots the narrow() views until the copies are done (docs/engine-performance.md, "Tensor lifetimes")
        for (int layer = 0; layer < Layers; layer++)
        {
            _k[layer]!.narrow(0, to, 1).narrow(2, start, count).copy_(_k[layer]!.narrow(0, from, 1).narrow(2, start, count));
            _v[layer]!.narrow(0, to, 1).narrow(2, start, count).copy_(_v[layer]!.narrow(0, from, 1).narrow(2, start, count));
        }
    }

    /// <summary>Exchanges the first <paramref name="length"/> positions of two slots (the longer row's filled positions; see <see cref="CopyRow"/>).</summary>
    public void SwapRows(int a, int b, int length)
    {
        if (a == b || length <= 0) return;
        CheckLength(length);
        using var _ = no_grad();
        using var scope = NewDisposeScope(); // roots the narrow() views until the copies are done (docs/engine-performance.md, "Tensor lifetimes")
        for (int layer = 0; layer < Layers; layer++)
        {
            foreach (var t in new[] { _k[layer]!, _v[layer]! })
            {
                var rowA = t.narrow(0, a, 1).narrow(2, 0, length);
                var rowB = t.narrow(0, b, 1).narrow(2, 0, length);
                using var tmp = rowA.clone();
                rowA.copy_(rowB);
                rowB.copy_(tmp);
                rowA.Dispose();
                rowB.Dispose();
            }
        }
    }

    private void CheckLength(int length)
    {
        if (length > Width) throw new ArgumentOutOfRangeException(nameof(length), $"{length} positions are more than the width {Width}");
    }

    /// <summary>
    /// Writes this pass's keys/values, packed as [1, kv_heads, N, D] (token j belongs to slot <paramref name="slots"/>[j]
    /// at position <paramref name="positions"/>[j]). Only real tokens are written: one indexed copy per tensor, no padding.
    /// </summary>
    internal void Write(int layer, Tensor k, Tensor v, Tensor slots, Tensor positions)
    {
        var keys = _k[layer] ?? throw new InvalidOperationException("the slot cache has no room allocated");
        var values = _v[layer]!;
        using (no_grad())
        {
            // [slots, kv_heads, width, D] seen as [slots, width, kv_heads, D]: (slot, position) pairs index whole [kv_heads, D] entries.
            using var kt = keys.permute(0, 2, 1, 3);
            using var vt = values.permute(0, 2, 1, 3);
            using var kIn = k.squeeze(0).transpose(0, 1);
            using var vIn = v.squeeze(0).transpose(0, 1);
            kt.index_put_(kIn, slots, positions);
            vt.index_put_(vIn, slots, positions);
        }
    }

    /// <summary>Views of slots <paramref name="first"/>..<paramref name="first"/>+<paramref name="n"/>-1, their first <paramref name="usedWidth"/> positions: [n, kv_heads, usedWidth, D].</summary>
    internal (Tensor K, Tensor V) Rows(int layer, int first, int n, int usedWidth)
    {
        var keys = _k[layer] ?? throw new InvalidOperationException("the slot cache has no room allocated");
        return (keys.narrow(0, first, n).narrow(2, 0, usedWidth), _v[layer]!.narrow(0, first, n).narrow(2, 0, usedWidth));
    }

    private long LayerBytes(int slots, int width) => (long)slots * width * _kvHeads * _headDim * ElementSize(_dtype);

    private void Track(long delta)
    {
        AllocatedBytes += delta;
        PeakAllocatedBytes = Math.Max(PeakAllocatedBytes, AllocatedBytes);
    }

    private static int ElementSize(ScalarType t) => t switch
    {
        ScalarType.Float64 => 8,
        ScalarType.Float32 => 4,
        ScalarType.BFloat16 or ScalarType.Float16 => 2,
        _ => throw new NotSupportedException($"dtype {t}"),
    };

    public void Dispose() => Resize(0, 0, 0);
}

/// <summary>
/// The slots one forward pass runs on, and how its tokens are laid out. The pass's new tokens are packed into one
/// row [1, N] (sequence after sequence, no padding), so every projection and MLP is one matrix product over all of them;
/// only attention needs them per sequence, as [n, heads, T, D] with each sequence right-padded to the longest T of its
/// <see cref="SlotAttentionGroup"/>.
/// </summary>
public sealed class SlotBatch
{
    public required SlotKVCache Cache { get; init; }
    public required int FirstSlot { get; init; }
    /// <summary>Sequences in the pass (n).</summary>
    public required int Rows { get; init; }
    /// <summary>[N]: for each packed token, the slot and the position its keys/values are written at.</summary>
    public required Tensor WriteSlots { get; init; }
    public required Tensor WritePositions { get; init; }
    /// <summary>Consecutive runs of rows that attend together, in row order (their packed tokens follow one another too).</summary>
    public required IReadOnlyList<SlotAttentionGroup> Groups { get; init; }

    /// <summary>Writes the pass's packed keys/values [1, kv_heads, N, D] into the cache.</summary>
    internal void Append(int layer, Tensor k, Tensor v) => Cache.Write(layer, k, v, WriteSlots, WritePositions);

    /// <summary>
    /// Attention of the packed queries [1, H, N, D] over each row's cached keys/values (after <see cref="Append"/>),
    /// one call per group; returns the packed output [1, N, H·D] (padding dropped).
    /// </summary>
    internal Tensor Attend(int layer, Tensor q, bool windowed)
    {
        long heads = q.shape[1], d = q.shape[3];
        var parts = new List<Tensor>(Groups.Count);
        foreach (var g in Groups)
        {
            // [1, H, N, D] packed → [n_g, H, T_g, D] per sequence.
            var padded = q.squeeze(0).index_select(1, g.PackedToPadded).view(heads, g.Rows, g.PaddedLength, d).transpose(0, 1);
            var (k, v) = Cache.Rows(layer, FirstSlot + g.FirstRow, g.Rows, g.UsedWidth);
            var y = AttentionOps.Attend(padded, k, v, windowed ? g.WindowMask : g.FullMask, false);
            parts.Add(y.transpose(1, 2).reshape(g.Rows * g.PaddedLength, heads * d).index_select(0, g.PaddedToPacked));
        }
        return (parts.Count == 1 ? parts[0] : cat(parts, 0)).unsqueeze(0);
    }
}

/// <summary>
/// Rows of a pass that attend in one call, right-padded to their longest chunk. The batcher puts decoding rows (one
/// token each) first; giving them their own group keeps a prefill chunk of T tokens from padding each of them to T
/// queries, which would multiply their attention work by T for nothing.
/// </summary>
public sealed class SlotAttentionGroup
{
    /// <summary>First row of the group within the pass, and its rows (n_g).</summary>
    public required int FirstRow { get; init; }
    public required int Rows { get; init; }
    /// <summary>The group's longest chunk (T_g).</summary>
    public required int PaddedLength { get; init; }
    /// <summary>[n_g·T_g]: for each padded place, the packed token to take (padding repeats the row's last token).</summary>
    public required Tensor PackedToPadded { get; init; }
    /// <summary>[N_g]: for each of the group's packed tokens, in order, its padded place b·T_g + i within the group.</summary>
    public required Tensor PaddedToPacked { get; init; }
    /// <summary>Positions the group's attention reads (its longest row after this pass).</summary>
    public required int UsedWidth { get; init; }
    /// <summary>[n_g, 1, T_g, UsedWidth]: true where a query may attend a key (causal within its own slot; the window too, if any).</summary>
    public required Tensor FullMask { get; init; }
    public Tensor? WindowMask { get; init; }
}
