using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Kernels;

/// <summary>
/// softmax(q kᵀ / √D) v for one query per row (a decode step), grouped-query heads, read from the KV cache where it lies.
/// </summary>
/// <remarks>
/// Why: at batch 32 libtorch's SDPA took 5–7 ms of a bf16 decode step of the bench model (12 layers, ~48 cached
/// positions; docs/engine-performance.md, "fourth run"), although the whole step's attention is only ~28 M
/// multiply-adds: its flash-attention kernel runs two small GEMMs through MKL, with their set-up, for every (row, KV
/// head) and layer. Here each (row, KV head) pair reads its cached keys and values in place, in registers, for all the
/// query heads it serves:
/// <list type="number">
/// <item>the H/KVH query heads that share the KV head are widened to float32 once; each head's scores are dot products
/// with the key rows, 16 keys at a time in 16 float32 FMA accumulators reduced by one tree of vector additions (the
/// bf16 keys widened by a shift and a mask per 32 values, as in <see cref="Bf16Linear"/>: a shuffle-port widening
/// made the kernel twice as slow);</item>
/// <item>scores are scaled by 1/√D (after the dot product, as SDPA does), masked keys take no part at all, and the
/// softmax runs in float32: the maximum, exp(s − max) 16 at a time, their sum added in key order;</item>
/// <item>the output is Σ exp(s − max)·v over the keys in key order, in float32, divided by that sum, and rounded once to
/// the dtype (SDPA's bf16 path rounds the probabilities to bf16 before multiplying them with v; this one does not).</item>
/// </list>
/// Every sum runs over the unmasked keys in key order, so a row's result depends neither on the other rows of the batch
/// nor on how many masked (padding) positions precede its keys: a left-padded row gives the bits of the same sequence
/// alone. Used only when it applies (AVX-512, gradients off, CPU, bf16 or float32 q/k/v with contiguous last
/// dimensions, one query per row, D a multiple of 32, a boolean [B or 1, 1, 1, S] mask or none); everything else goes
/// to SDPA. With several torch threads the (row, KV head) pairs are split into contiguous ranges, which gives the same
/// bits, since the pairs are independent.
/// </remarks>
internal static unsafe class DecodeAttention
{
    public static bool Supported { get; } = Avx512F.IsSupported;

    /// <summary>Below this many multiply-adds the work is not split among threads.</summary>
    private const long ParallelThreshold = 1L << 18;

    /// <summary>
    /// The attention of q [B, H, 1, D] over k, v [B, KVH, S, D] (H a multiple of KVH; query head h reads KV head
    /// h / (H / KVH)) with an optional boolean mask [B or 1, 1, 1, S] (true: may attend), as [B, H, 1, D] in q's dtype;
    /// null when this kernel does not apply.
    /// </summary>
    public static Tensor? TryAttend(Tensor q, Tensor k, Tensor v, Tensor? mask, int? threads = null)
    {
        if (!Supported || is_grad_enabled()) return null;
        var dtype = q.dtype;
        if (dtype is not (ScalarType.BFloat16 or ScalarType.Float32) || k.dtype != dtype || v.dtype != dtype) return null;
        if (q.device_type != DeviceType.CPU || k.device_type != DeviceType.CPU || v.device_type != DeviceType.CPU) return null;
        // Each shape and stride query is a native call: read each tensor's once.
        long[] qs = q.shape, ks = k.shape, vs = v.shape;
        if (qs.Length != 4 || ks.Length != 4 || !vs.SequenceEqual(ks)) return null;
        long b = qs[0], heads = qs[1], d = qs[3], kvHeads = ks[1], s = ks[2];
        if (qs[2] != 1 || kvHeads == 0 || heads % kvHeads != 0 || d % 32 != 0 || d == 0 || d > 512 || s == 0) return null;
        if (ks[0] != b || ks[3] != d) return null;
        long[] qt = q.stride(), kt = k.stride(), vt = v.stride();
        if (qt[3] != 1 || kt[3] != 1 || vt[3] != 1) return null;
        long maskRowStride = 0, maskStep = 0;
        if (mask is not null)
        {
            long[] ms = mask.shape;
            if (mask.dtype != ScalarType.Bool || mask.device_type != DeviceType.CPU || ms.Length != 4) return null;
            if (ms[0] != b && ms[0] != 1 || ms[1] != 1 || ms[2] != 1 || ms[3] != s) return null;
            long[] mt = mask.stride();
            maskRowStride = ms[0] == 1 ? 0 : mt[0];
            maskStep = mt[3];
        }

        var y = empty([b, heads, 1, d], dtype, q.device);
        var args = new Args
        {
            Q = (byte*)TensorMemory.Data(q), K = (byte*)TensorMemory.Data(k), V = (byte*)TensorMemory.Data(v),
            Mask = mask is null ? null : (byte*)TensorMemory.Data(mask), Y = (byte*)TensorMemory.Data(y),
            Bf16 = dtype == ScalarType.BFloat16, Rep = (int)(heads / kvHeads), KvHeads = (int)kvHeads, S = (int)s, D = (int)d,
            QRow = qt[0], QHead = qt[1], KRow = kt[0], KHead = kt[1], KPos = kt[2],
            VRow = vt[0], VHead = vt[1], VPos = vt[2], MaskRow = maskRowStride, MaskStep = maskStep,
            Scale = (float)(1.0 / Math.Sqrt(d)),
        };
        long pairs = b * kvHeads;
        int workers = b * heads * s * d * 2 >= ParallelThreshold ? (int)Math.Min(pairs, Math.Max(1, threads ?? torch.get_num_threads())) : 1;
        if (workers == 1) Range(args, 0, pairs);
        else
            Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers },
                t => Range(args, pairs * t / workers, pairs * (t + 1) / workers));
        // The pointers are into these tensors' native memory: keep them referenced until the loops are done.
        GC.KeepAlive(q);
        GC.KeepAlive(k);
        GC.KeepAlive(v);
        GC.KeepAlive(mask);
        return y;
    }

    /// <summary>Addresses and strides (in elements) of one call, shared by its workers.</summary>
    private struct Args
    {
        public byte* Q, K, V, Mask, Y;
        public bool Bf16;
        public int Rep, KvHeads, S, D;
        public long QRow, QHead, KRow, KHead, KPos, VRow, VHead, VPos, MaskRow, MaskStep;
        public float Scale;
    }

    // Per worker thread: the scores of one (row, KV head) pair (Rep × S floats) and the positions its mask keeps.
    [ThreadStatic] private static float[]? _scores;
    [ThreadStatic] private static int[]? _kept;

    /// <summary>(row, KV head) pairs [first, last): pair p is row p / KVH, KV head p mod KVH.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Range(Args a, long first, long last)
    {
        int rep = a.Rep, s = a.S, d = a.D, blocks = d / 32, size = a.Bf16 ? 2 : 4;
        bool bf16 = a.Bf16;
        if (_scores is null || _scores.Length < rep * s + 16) _scores = GC.AllocateUninitializedArray<float>(rep * s + 16, pinned: true);
        if (_kept is null || _kept.Length < s) _kept = GC.AllocateUninitializedArray<int>(s, pinned: true);
        float* qf = stackalloc float[rep * d];
        float* tail = stackalloc float[16];
        var scale = Vector512.Create(a.Scale);
        fixed (float* scores = _scores)
        fixed (int* kept = _kept)
        {
            for (long p = first; p < last; p++)
            {
                long row = p / a.KvHeads;
                int g = (int)(p % a.KvHeads);
                byte* mask = a.Mask == null ? null : a.Mask + row * a.MaskRow;
                int n = 0;
                for (int j = 0; j < s; j++)
                    if (mask == null || mask[j * a.MaskStep] != 0) kept[n++] = j;
                byte* kBase = a.K + (row * a.KRow + g * a.KHead) * size;
                byte* vBase = a.V + (row * a.VRow + g * a.VHead) * size;
                long kPos = a.KPos * size, vPos = a.VPos * size;
                // The group's query heads in float32, each block of 32 split the way Block splits a key row.
                for (int r = 0; r < rep; r++)
                {
                    byte* qRow = a.Q + (row * a.QRow + (long)(g * rep + r) * a.QHead) * size;
                    for (int bl = 0; bl < blocks; bl++)
                    {
                        var (e, o) = Block(qRow, bf16, bl);
                        e.Store(qf + r * d + 32 * bl);
                        o.Store(qf + r * d + 32 * bl + 16);
                    }
                }

                for (int r = 0; r < rep; r++)
                {
                    float* qr = qf + r * d;
                    float* sr = scores + r * s;
                    // Scores, scaled after the dot product: 16 keys at a time, their 16 accumulators reduced by one tree
                    // into one vector (each lane summed in the order ReduceOne sums one accumulator, so a key's score
                    // does not depend on which keys share its group).
                    int t0 = 0;
                    for (; t0 + 16 <= n; t0 += 16) Scores16(kBase, kept + t0, kPos, qr, blocks, bf16, scale, sr + t0);
                    for (; t0 < n; t0++)
                    {
                        byte* kj = kBase + kept[t0] * kPos;
                        var acc = Vector512<float>.Zero;
                        for (int bl = 0; bl < blocks; bl++) acc = Dot(kj, bf16, bl, qr, acc);
                        sr[t0] = Bf16Linear.ReduceOne(acc) * a.Scale;
                    }
                    // Softmax: the maximum, the exponentials 16 at a time, their sum in key order.
                    var vmax = Vector512.Create(float.NegativeInfinity);
                    int m16 = 0;
                    for (; m16 + 16 <= n; m16 += 16) vmax = Avx512F.Max(vmax, Vector512.Load(sr + m16));
                    float max = MaxLane(vmax);
                    for (; m16 < n; m16++) max = Math.Max(max, sr[m16]);
                    vmax = Vector512.Create(max);
                    int t16 = 0;
                    for (; t16 + 16 <= n; t16 += 16) VectorExp.Exp(Vector512.Load(sr + t16) - vmax).Store(sr + t16);
                    if (t16 < n)
                    {
                        for (int i = 0; i < 16; i++) tail[i] = t16 + i < n ? sr[t16 + i] : max;
                        VectorExp.Exp(Vector512.Load(tail) - vmax).Store(tail);
                        for (int i = 0; t16 + i < n; i++) sr[t16 + i] = tail[i];
                    }
                    float sum = 0f;
                    for (int t = 0; t < n; t++) sum += sr[t];
                    var total = Vector512.Create(sum);
                    // Output: Σ exp(s − max)·v in key order, divided by the sum, rounded once. Two blocks (four
                    // accumulators, four independent FMA chains) at a time.
                    byte* yr = a.Y + ((row * a.KvHeads + g) * rep + r) * (long)d * size;
                    int b2 = 0;
                    for (; b2 + 2 <= blocks; b2 += 2)
                    {
                        Vector512<float> e0 = default, o0 = default, e1 = default, o1 = default;
                        for (int t = 0; t < n; t++)
                        {
                            var pt = Vector512.Create(sr[t]);
                            byte* vj = vBase + kept[t] * vPos;
                            var (ve0, vo0) = Block(vj, bf16, b2);
                            var (ve1, vo1) = Block(vj, bf16, b2 + 1);
                            e0 = Avx512F.FusedMultiplyAdd(pt, ve0, e0);
                            o0 = Avx512F.FusedMultiplyAdd(pt, vo0, o0);
                            e1 = Avx512F.FusedMultiplyAdd(pt, ve1, e1);
                            o1 = Avx512F.FusedMultiplyAdd(pt, vo1, o1);
                        }
                        Store(e0 / total, o0 / total, yr, bf16, b2);
                        Store(e1 / total, o1 / total, yr, bf16, b2 + 1);
                    }
                    if (b2 < blocks)
                    {
                        Vector512<float> e0 = default, o0 = default;
                        for (int t = 0; t < n; t++)
                        {
                            var pt = Vector512.Create(sr[t]);
                            var (ve0, vo0) = Block(vBase + kept[t] * vPos, bf16, b2);
                            e0 = Avx512F.FusedMultiplyAdd(pt, ve0, e0);
                            o0 = Avx512F.FusedMultiplyAdd(pt, vo0, o0);
                        }
                        Store(e0 / total, o0 / total, yr, bf16, b2);
                    }
                }
            }
        }
    }

    /// <summary>Scores of 16 keys (positions <paramref name="kept"/>[0..15]) against one query head, scaled, into <paramref name="dst"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scores16(byte* kBase, int* kept, long kPos, float* q, int blocks, bool bf16, Vector512<float> scale, float* dst)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        Vector512<float> a8 = default, a9 = default, a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default;
        byte* k0 = kBase + kept[0] * kPos, k1 = kBase + kept[1] * kPos, k2 = kBase + kept[2] * kPos, k3 = kBase + kept[3] * kPos;
        byte* k4 = kBase + kept[4] * kPos, k5 = kBase + kept[5] * kPos, k6 = kBase + kept[6] * kPos, k7 = kBase + kept[7] * kPos;
        byte* k8 = kBase + kept[8] * kPos, k9 = kBase + kept[9] * kPos, k10 = kBase + kept[10] * kPos, k11 = kBase + kept[11] * kPos;
        byte* k12 = kBase + kept[12] * kPos, k13 = kBase + kept[13] * kPos, k14 = kBase + kept[14] * kPos, k15 = kBase + kept[15] * kPos;
        for (int bl = 0; bl < blocks; bl++)
        {
            a0 = Dot(k0, bf16, bl, q, a0); a1 = Dot(k1, bf16, bl, q, a1); a2 = Dot(k2, bf16, bl, q, a2); a3 = Dot(k3, bf16, bl, q, a3);
            a4 = Dot(k4, bf16, bl, q, a4); a5 = Dot(k5, bf16, bl, q, a5); a6 = Dot(k6, bf16, bl, q, a6); a7 = Dot(k7, bf16, bl, q, a7);
            a8 = Dot(k8, bf16, bl, q, a8); a9 = Dot(k9, bf16, bl, q, a9); a10 = Dot(k10, bf16, bl, q, a10); a11 = Dot(k11, bf16, bl, q, a11);
            a12 = Dot(k12, bf16, bl, q, a12); a13 = Dot(k13, bf16, bl, q, a13); a14 = Dot(k14, bf16, bl, q, a14); a15 = Dot(k15, bf16, bl, q, a15);
        }
        // ReduceTile puts argument t's sum in lane 4·(t mod 4) + t div 4; passing key i as argument 4·(i mod 4) + i div 4
        // puts key i's in lane i.
        (Bf16Linear.ReduceTile(a0, a4, a8, a12, a1, a5, a9, a13, a2, a6, a10, a14, a3, a7, a11, a15) * scale).Store(dst);
    }

    /// <summary>acc + block <paramref name="bl"/> of a key row times the same block of q (split as <see cref="Block"/> splits it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Dot(byte* row, bool bf16, int bl, float* q, Vector512<float> acc)
    {
        var (e, o) = Block(row, bf16, bl);
        return Avx512F.FusedMultiplyAdd(o, Vector512.Load(q + 32 * bl + 16), Avx512F.FusedMultiplyAdd(e, Vector512.Load(q + 32 * bl), acc));
    }

    private static readonly Vector512<uint> HighHalves = Vector512.Create(0xFFFF0000u);
    private static readonly Vector512<int> InterleaveLow = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    private static readonly Vector512<int> InterleaveHigh = Vector512.Create(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);

    /// <summary>
    /// Elements 32·bl .. 32·bl + 31 of a row as two float32 vectors. bf16: one 64-byte load, the even elements by a shift
    /// and the odd ones by a mask (exact: a bf16 is a float32's top half; no shuffles, as in Bf16Linear). float32: the
    /// first 16 and the last 16.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float> First, Vector512<float> Second) Block(byte* row, bool bf16, int bl)
    {
        if (bf16)
        {
            var w = Vector512.Load((uint*)((ushort*)row + 32 * bl));
            return (Avx512F.ShiftLeftLogical(w, 16).AsSingle(), (w & HighHalves).AsSingle());
        }
        return (Vector512.Load((float*)row + 32 * bl), Vector512.Load((float*)row + 32 * bl + 16));
    }

    /// <summary>Block <paramref name="bl"/> of an output row from its two halves: bf16 re-interleaved and rounded once; float32 as is.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector512<float> e, Vector512<float> o, byte* row, bool bf16, int bl)
    {
        if (bf16)
        {
            ushort* dst = (ushort*)row + 32 * bl;
            Avx512F.ConvertToVector256UInt16(Bf16Linear.RoundAll(Avx512F.PermuteVar16x32x2(e, InterleaveLow, o))).Store(dst);
            Avx512F.ConvertToVector256UInt16(Bf16Linear.RoundAll(Avx512F.PermuteVar16x32x2(e, InterleaveHigh, o))).Store(dst + 16);
        }
        else
        {
            e.Store((float*)row + 32 * bl);
            o.Store((float*)row + 32 * bl + 16);
        }
    }

    /// <summary>The largest of 16 lanes (the order of a maximum does not change it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float MaxLane(Vector512<float> v)
    {
        var h = Avx.Max(v.GetLower(), v.GetUpper());
        var q = Sse.Max(h.GetLower(), h.GetUpper());
        return Math.Max(Math.Max(q.GetElement(0), q.GetElement(1)), Math.Max(q.GetElement(2), q.GetElement(3)));
    }
}
