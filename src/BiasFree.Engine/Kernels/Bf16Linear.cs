using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Kernels;

/// <summary>
/// y = x Wᵀ + b for bfloat16 x with few rows (decode steps), written for the memory bound and the FMA unit instead of
/// the GEMM.
/// </summary>
/// <remarks>
/// Why: at decode time a projection multiplies a handful of rows by a weight matrix that is read from memory once, so
/// its time should be the time to stream the matrix, or, with more rows, the time of the multiplications. libtorch
/// 2.10 sends these products to oneDNN's brgemm matmul, which repacks each block of the row-major weight into its VNNI
/// layout (`jit_brgemm_matmul_copy_b_transposed` in a profile) before multiplying: on one core of the machine measured
/// it streamed a 49 MB bf16 matrix at 7.5–8 GB/s, while a plain sum over the same bytes read 21–24 GB/s
/// (docs/engine-performance.md). PyTorch 1.13 runs the same oneDNN kernel. These kernels read the weight where it lies:
/// 32 bf16 weights per 64-byte load become two float32 vectors by a shift (the even elements) and a mask (the odd
/// ones), since a bf16 is the top half of a float32 (exact), and meet x, widened to float32 once per call, in float32
/// FMA accumulators. Each sum is rounded once to bfloat16 (round to nearest even), as oneDNN rounds its float32
/// accumulators; the order of the additions differs, so a result can differ from libtorch's in the last bf16 bit.
/// <para>
/// Two kernels, chosen by the rows of x, by measurement (`BiasFree.Bench kernels`: one decode step's products of the
/// bench model, CPU time, 1 thread; docs/engine-performance.md):
/// up to <see cref="StreamRows"/> rows, <see cref="RowRange"/> streams the weight one row after the other (bound by
/// memory); from there to <see cref="MaxRows"/> rows, <see cref="TileRange"/> takes 4 weight rows at a time against 4
/// rows of x in 16 accumulators (bound by the FMAs). Above <see cref="MaxRows"/>, oneDNN's bf16 dot-product
/// instructions (vdpbf16ps, 32 products each, which .NET 10 exposes only as AVX10 intrinsics this CPU lacks) beat
/// float32 FMAs (16 products each) despite the repacking: 16 rows tied, 32 rows took 49 ms against 68 ms.
/// </para>
/// <para>
/// Used only when it applies: AVX-512 present, gradients off, CPU tensors, bf16 input, weight and bias, a contiguous
/// weight, and at most <see cref="MaxRows"/> rows of x. Everything else goes to <c>nn.functional.linear</c>. With
/// several torch threads the weight rows are split into that many contiguous ranges, one .NET worker each. The loops
/// are compiled fully optimized on first use (AggressiveOptimization): tiered compilation would otherwise run a
/// process's first calls as unoptimized code.
/// </para>
/// </remarks>
internal static unsafe class Bf16Linear
{
    /// <summary>Most rows of x handled here (the crossover against oneDNN measured on this machine; see the remarks).</summary>
    public const int MaxRows = 12;

    /// <summary>Up to this many rows the weight is streamed row by row (<see cref="RowRange"/>); above it, in tiles of
    /// <see cref="TileColumns"/> weight rows (<see cref="TileRange"/>).</summary>
    public const int StreamRows = 2;

    /// <summary>Weight rows (output features) per tile of the tiled kernel, and rows of x per block.</summary>
    internal const int TileColumns = 4, TileRows = 4;

    /// <summary>Below this many weight elements a product is not split among threads (the hand-off costs more).</summary>
    internal const long ParallelThreshold = 1L << 20;

    public static bool Supported { get; } = Avx512F.IsSupported;

    /// <summary>x Wᵀ + b through this kernel when it applies, else libtorch's linear.</summary>
    public static Tensor Forward(Tensor x, Tensor weight, Tensor? bias) =>
        TryForward(x, weight, bias, threads: null) ?? nn.functional.linear(x, weight, bias);

    /// <summary>The product, or null when this kernel does not apply (see the class remarks).</summary>
    public static Tensor? TryForward(Tensor x, Tensor weight, Tensor? bias) => TryForward(x, weight, bias, threads: null);

    /// <summary>As above; <paramref name="threads"/> overrides torch's thread count for the split (tests).</summary>
    internal static Tensor? TryForward(Tensor x, Tensor weight, Tensor? bias, int? threads) => TryForward(x, weight, bias, threads, MaxRows, StreamRows);

    /// <summary>
    /// As above, with the routing overridden (tests and the kernel benchmark): at most <paramref name="maxRows"/> rows,
    /// and the streaming kernel up to <paramref name="streamRows"/> rows (0: always the tiled one).
    /// </summary>
    internal static Tensor? TryForward(Tensor x, Tensor weight, Tensor? bias, int? threads, int maxRows, int streamRows)
    {
        if (!Supported || x.dtype != ScalarType.BFloat16 || weight.dtype != ScalarType.BFloat16 || is_grad_enabled()) return null;
        if (x.device_type != DeviceType.CPU || weight.device_type != DeviceType.CPU) return null;
        if (bias is not null && (bias.dtype != ScalarType.BFloat16 || bias.device_type != DeviceType.CPU || !bias.is_contiguous())) return null;
        var xShape = x.shape;
        var wShape = weight.shape;
        if (wShape.Length != 2 || xShape.Length == 0) return null;
        long n = wShape[0], k = wShape[1];
        if (xShape[^1] != k || k == 0) return null;
        long rows = 1;
        for (int i = 0; i < xShape.Length - 1; i++) rows *= xShape[i];
        if (rows == 0 || rows > maxRows || !weight.is_contiguous()) return null;

        // The result's shape is x's with the last dimension replaced by the output features.
        var outShape = (long[])xShape.Clone();
        outShape[^1] = n;
        var xc = x.is_contiguous() ? x : x.contiguous();
        var y = empty(outShape, ScalarType.BFloat16, x.device);
        Run((ushort*)TensorMemory.Data(xc), (ushort*)TensorMemory.Data(weight),
            bias is null ? null : (ushort*)TensorMemory.Data(bias), (ushort*)TensorMemory.Data(y), (int)rows, n, (int)k,
            n * k >= ParallelThreshold ? Math.Max(1, threads ?? torch.get_num_threads()) : 1, rows > streamRows);
        // The native memory behind the pointers belongs to these tensors: keep them referenced until the kernel is done.
        GC.KeepAlive(xc);
        GC.KeepAlive(weight);
        GC.KeepAlive(bias);
        if (!ReferenceEquals(xc, x)) xc.Dispose();
        return y;
    }

    // x widened to float32, per calling thread (workers of a parallel product only read the caller's).
    [ThreadStatic] private static float[]? _widened;

    private static readonly Vector512<uint> HighHalves = Vector512.Create(0xFFFF0000u);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run(ushort* x, ushort* w, ushort* bias, ushort* y, int rows, long n, int k, int threads, bool tiled)
    {
        // x widened to float32 once, [rows, k32], each row padded with zeros to a multiple of 32 and stored per chunk of
        // 32 as its 16 even-indexed values, then its 16 odd-indexed ones. A 64-byte load of 32 weights then yields the
        // even weights as float32 by a shift (w << 16) and the odd ones by a mask (w & 0xFFFF0000), one instruction
        // each, and they meet their x values in these two halves.
        int k32 = (k + 31) & ~31;
        int needed = rows * k32 + 16;
        if (_widened is null || _widened.Length < needed) _widened = GC.AllocateUninitializedArray<float>(needed, pinned: true);
        fixed (float* xfp0 = _widened)
        {
            // 64-byte aligned start (the array is pinned, so the address holds), so the x loads never split cache lines.
            float* xfp = (float*)(((nint)xfp0 + 63) & ~(nint)63);
            for (int m = 0; m < rows; m++)
            {
                float* dst = xfp + (long)m * k32;
                ushort* src = x + (long)m * k;
                for (int i = 0; i < k32; i++) dst[Slot(i)] = i < k ? Widen(src[i]) : 0f;
            }
            if (threads == 1)
            {
                if (tiled) TileRange(xfp, w, bias, y, rows, n, k, k32, 0, n);
                else RowRange(xfp, w, bias, y, rows, n, k, k32, 0, n);
                return;
            }
            // Contiguous ranges of weight rows, one per worker: each worker then reads one sequential stream. For the
            // tiled kernel the boundaries fall on whole tiles, so every output is computed by the same code path (and
            // gives the same bits) however many workers share the product.
            nint xAddr = (nint)xfp, wAddr = (nint)w, bAddr = (nint)bias, yAddr = (nint)y;
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                long first = Boundary(n, t, threads, tiled), last = Boundary(n, t + 1, threads, tiled);
                if (tiled) TileRange((float*)xAddr, (ushort*)wAddr, (ushort*)bAddr, (ushort*)yAddr, rows, n, k, k32, first, last);
                else RowRange((float*)xAddr, (ushort*)wAddr, (ushort*)bAddr, (ushort*)yAddr, rows, n, k, k32, first, last);
            });
        }
    }

    /// <summary>Start of worker t's range of weight rows (whole tiles for the tiled kernel; the last range ends at n).</summary>
    private static long Boundary(long n, int t, int threads, bool tiled)
    {
        if (t == threads) return n;
        long b = n * t / threads;
        return tiled ? b & ~(long)(TileColumns - 1) : b;
    }

    /// <summary>Where element i of an x row sits in its widened, de-interleaved copy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Slot(int i) => (i & ~31) + ((i & 31) >> 1) + (i & 1) * 16;

    /// <summary>
    /// Output features [first, last) for every row of x. The weight is read one row after the other, a single
    /// sequential stream: on the machine measured, reading two or four weight rows side by side (to load each x vector
    /// once for several rows) halved the bandwidth one core got (8 against 17 GB/s) unless the next rows are prefetched
    /// (as <see cref="TileRange"/> does), while x stays in the L1 cache anyway. Further rows of x read the weight row
    /// again from L1, and convert it again, which is why more than <see cref="StreamRows"/> rows go to the tiles.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowRange(float* x, ushort* w, ushort* bias, ushort* y, int rows, long n, int k, int k32, long first, long last)
    {
        int full = k & ~31;
        for (long j = first; j < last; j++)
        {
            ushort* wj = w + j * k;
            float b = bias == null ? 0f : Widen(bias[j]);
            for (int m = 0; m < rows; m++)
            {
                float* xm = x + (long)m * k32;
                float s = Dot1(wj, xm, full);
                for (int i = full; i < k; i++) s += Widen(wj[i]) * xm[Slot(i)];
                y[m * n + j] = Round(s + b);
            }
        }
    }

    /// <summary>One weight row (its first <paramref name="full"/> elements, a multiple of 32) against one x row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot1(ushort* w, float* x, int full)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        int i = 0;
        for (; i + 64 <= full; i += 64)
        {
            var v0 = Vector512.Load((uint*)(w + i));
            var v1 = Vector512.Load((uint*)(w + i + 32));
            a0 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(v0, 16).AsSingle(), Vector512.LoadAligned(x + i), a0);
            a1 = Avx512F.FusedMultiplyAdd((v0 & HighHalves).AsSingle(), Vector512.LoadAligned(x + i + 16), a1);
            a2 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(v1, 16).AsSingle(), Vector512.LoadAligned(x + i + 32), a2);
            a3 = Avx512F.FusedMultiplyAdd((v1 & HighHalves).AsSingle(), Vector512.LoadAligned(x + i + 48), a3);
        }
        if (i < full)
        {
            var v0 = Vector512.Load((uint*)(w + i));
            a0 = Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(v0, 16).AsSingle(), Vector512.LoadAligned(x + i), a0);
            a1 = Avx512F.FusedMultiplyAdd((v0 & HighHalves).AsSingle(), Vector512.LoadAligned(x + i + 16), a1);
        }
        return Vector512.Sum((a0 + a1) + (a2 + a3));
    }

    /// <summary>
    /// Output features [first, last) for every row of x, <see cref="TileColumns"/> weight rows at a time: each tile of
    /// weight rows is read from memory once and then, from the L1 cache, against x in blocks of
    /// <see cref="TileRows"/> rows. One 4 × 4 block keeps 16 accumulators, so every x vector loaded serves four weight
    /// rows and every widened weight vector four rows of x: 32 FMAs per 12 loads, where one weight row against one x
    /// row needs a load per FMA. From four rows of x on the products are bound by the FMAs (the work grows with the
    /// rows, the bytes do not), so this kernel is about keeping the FMA unit busy; the streaming kernel is about the
    /// memory bus.
    /// <para>
    /// Every output is computed the same way in every path (4 × 4 block, 4 × 1 block for the last rows of x, 1 × 1 for
    /// the last weight rows): one float32 accumulator vector, per 32 weights first the even-indexed products then the
    /// odd-indexed ones, then one fixed tree of additions over its 16 lanes (<see cref="ReduceTile"/>,
    /// <see cref="ReduceOne"/>), then the elements past the last multiple of 32, then the bias, then one rounding. So a
    /// row's result does not depend on which other rows share the product, nor on how the weight rows are split among
    /// threads.
    /// </para>
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileRange(float* x, ushort* w, ushort* bias, ushort* y, int rows, long n, int k, int k32, long first, long last)
    {
        int full = k & ~31;
        float* sums = stackalloc float[16];
        long j = first;
        for (; j + TileColumns <= last; j += TileColumns)
        {
            ushort* wj = w + j * k;
            int m = 0;
            for (; m + TileRows <= rows; m += TileRows)
            {
                var tile = Tile4x4(wj, k, x + (long)m * k32, k32, full);
                // Lane 4·r + c of the reduced tile is row m + r, output feature j + c (see ReduceTile).
                if (full == k)
                {
                    // No elements past the last multiple of 32: add the bias and round all 16 at once (the same
                    // operations as Finish, lane by lane), and store each row's four outputs as one 8-byte write.
                    var b = bias == null ? Vector512<float>.Zero
                        : Vector512.Create(Vector128.Create(Widen(bias[j]), Widen(bias[j + 1]), Widen(bias[j + 2]), Widen(bias[j + 3])));
                    var packed = Avx512F.ConvertToVector256UInt16(RoundAll(tile + b)).AsUInt64();
                    for (int r = 0; r < TileRows; r++) *(ulong*)(y + (m + r) * n + j) = packed.GetElement(r);
                    continue;
                }
                tile.Store(sums);
                for (int r = 0; r < TileRows; r++)
                    for (int c = 0; c < TileColumns; c++)
                        y[(m + r) * n + j + c] = Finish(sums[4 * r + c], wj + (long)c * k, x + (long)(m + r) * k32, full, k, bias, j + c);
            }
            for (; m < rows; m++)
            {
                float* xm = x + (long)m * k32;
                Tile4x1(wj, k, xm, full, sums);
                for (int c = 0; c < TileColumns; c++)
                    y[m * n + j + c] = Finish(sums[c], wj + (long)c * k, xm, full, k, bias, j + c);
            }
        }
        for (; j < last; j++)
        {
            ushort* wj = w + j * k;
            for (int m = 0; m < rows; m++)
            {
                float* xm = x + (long)m * k32;
                y[m * n + j] = Finish(ReduceOne(Tile1x1(wj, xm, full)), wj, xm, full, k, bias, j);
            }
        }
    }

    /// <summary>
    /// The four cache lines of the next tile that one step of a tile's loop (32 weights of each of its 4 rows, 256
    /// bytes) stands for. A tile's 4 rows lie back to back, so this walks the next tile front to back, one sequential
    /// stream, while the loads walk 4 rows side by side. Why: without it, reading 4 weight rows side by side cut what
    /// one core read from memory to about a third (one step's products at 4 rows of x: 30 ms, against 13–15 ms with
    /// it and 17 ms for the one-row-at-a-time stream; `BiasFree.Bench kernels`), as the streaming kernel's remarks
    /// found for 2 and 4 rows.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(byte* p)
    {
        Sse.Prefetch0(p);
        Sse.Prefetch0(p + 64);
        Sse.Prefetch0(p + 128);
        Sse.Prefetch0(p + 192);
    }

    /// <summary>A reduced sum plus the elements past <paramref name="full"/>, plus the bias, rounded to bf16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ushort Finish(float s, ushort* w, float* x, int full, int k, ushort* bias, long j)
    {
        for (int i = full; i < k; i++) s += Widen(w[i]) * x[Slot(i)];
        return Round(s + (bias == null ? 0f : Widen(bias[j])));
    }

    /// <summary>
    /// Weight rows w .. w + 3k against x rows x .. x + 3·k32 (the first <paramref name="full"/> elements): the 16
    /// dot products, reduced, lane 4·r + c for x row r and weight row c.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Vector512<float> Tile4x4(ushort* w, int k, float* x, int k32, int full)
    {
        // a{r}{c}: x row r, weight row c.
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
        ushort* w1 = w + k, w2 = w1 + k, w3 = w2 + k;
        float* x1 = x + k32, x2 = x1 + k32, x3 = x2 + k32;
        byte* ahead = (byte*)(w + TileColumns * (long)k);
        for (int i = 0; i < full; i += 32)
        {
            Prefetch(ahead + 8L * i);
            var v0 = Vector512.Load((uint*)(w + i));
            var v1 = Vector512.Load((uint*)(w1 + i));
            var v2 = Vector512.Load((uint*)(w2 + i));
            var v3 = Vector512.Load((uint*)(w3 + i));
            var e0 = Avx512F.ShiftLeftLogical(v0, 16).AsSingle(); var o0 = (v0 & HighHalves).AsSingle();
            var e1 = Avx512F.ShiftLeftLogical(v1, 16).AsSingle(); var o1 = (v1 & HighHalves).AsSingle();
            var e2 = Avx512F.ShiftLeftLogical(v2, 16).AsSingle(); var o2 = (v2 & HighHalves).AsSingle();
            var e3 = Avx512F.ShiftLeftLogical(v3, 16).AsSingle(); var o3 = (v3 & HighHalves).AsSingle();
            var xe = Vector512.LoadAligned(x + i); var xo = Vector512.LoadAligned(x + i + 16);
            a00 = Avx512F.FusedMultiplyAdd(o0, xo, Avx512F.FusedMultiplyAdd(e0, xe, a00));
            a01 = Avx512F.FusedMultiplyAdd(o1, xo, Avx512F.FusedMultiplyAdd(e1, xe, a01));
            a02 = Avx512F.FusedMultiplyAdd(o2, xo, Avx512F.FusedMultiplyAdd(e2, xe, a02));
            a03 = Avx512F.FusedMultiplyAdd(o3, xo, Avx512F.FusedMultiplyAdd(e3, xe, a03));
            xe = Vector512.LoadAligned(x1 + i); xo = Vector512.LoadAligned(x1 + i + 16);
            a10 = Avx512F.FusedMultiplyAdd(o0, xo, Avx512F.FusedMultiplyAdd(e0, xe, a10));
            a11 = Avx512F.FusedMultiplyAdd(o1, xo, Avx512F.FusedMultiplyAdd(e1, xe, a11));
            a12 = Avx512F.FusedMultiplyAdd(o2, xo, Avx512F.FusedMultiplyAdd(e2, xe, a12));
            a13 = Avx512F.FusedMultiplyAdd(o3, xo, Avx512F.FusedMultiplyAdd(e3, xe, a13));
            xe = Vector512.LoadAligned(x2 + i); xo = Vector512.LoadAligned(x2 + i + 16);
            a20 = Avx512F.FusedMultiplyAdd(o0, xo, Avx512F.FusedMultiplyAdd(e0, xe, a20));
            a21 = Avx512F.FusedMultiplyAdd(o1, xo, Avx512F.FusedMultiplyAdd(e1, xe, a21));
            a22 = Avx512F.FusedMultiplyAdd(o2, xo, Avx512F.FusedMultiplyAdd(e2, xe, a22));
            a23 = Avx512F.FusedMultiplyAdd(o3, xo, Avx512F.FusedMultiplyAdd(e3, xe, a23));
            xe = Vector512.LoadAligned(x3 + i); xo = Vector512.LoadAligned(x3 + i + 16);
            a30 = Avx512F.FusedMultiplyAdd(o0, xo, Avx512F.FusedMultiplyAdd(e0, xe, a30));
            a31 = Avx512F.FusedMultiplyAdd(o1, xo, Avx512F.FusedMultiplyAdd(e1, xe, a31));
            a32 = Avx512F.FusedMultiplyAdd(o2, xo, Avx512F.FusedMultiplyAdd(e2, xe, a32));
            a33 = Avx512F.FusedMultiplyAdd(o3, xo, Avx512F.FusedMultiplyAdd(e3, xe, a33));
        }
        // ReduceTile's argument t lands in lane 4·(t mod 4) + t div 4: pass weight row c's accumulators as t = 4c + r.
        return ReduceTile(a00, a10, a20, a30, a01, a11, a21, a31, a02, a12, a22, a32, a03, a13, a23, a33);
    }

    /// <summary>Weight rows w .. w + 3k against one x row; the four reduced sums go to <paramref name="sums"/>[0..3].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x1(ushort* w, int k, float* x, int full, float* sums)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        ushort* w1 = w + k, w2 = w1 + k, w3 = w2 + k;
        byte* ahead = (byte*)(w + TileColumns * (long)k);
        for (int i = 0; i < full; i += 32)
        {
            Prefetch(ahead + 8L * i);
            var v0 = Vector512.Load((uint*)(w + i));
            var v1 = Vector512.Load((uint*)(w1 + i));
            var v2 = Vector512.Load((uint*)(w2 + i));
            var v3 = Vector512.Load((uint*)(w3 + i));
            var xe = Vector512.LoadAligned(x + i); var xo = Vector512.LoadAligned(x + i + 16);
            a0 = Avx512F.FusedMultiplyAdd((v0 & HighHalves).AsSingle(), xo, Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(v0, 16).AsSingle(), xe, a0));
            a1 = Avx512F.FusedMultiplyAdd((v1 & HighHalves).AsSingle(), xo, Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(v1, 16).AsSingle(), xe, a1));
            a2 = Avx512F.FusedMultiplyAdd((v2 & HighHalves).AsSingle(), xo, Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(v2, 16).AsSingle(), xe, a2));
            a3 = Avx512F.FusedMultiplyAdd((v3 & HighHalves).AsSingle(), xo, Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(v3, 16).AsSingle(), xe, a3));
        }
        sums[0] = ReduceOne(a0);
        sums[1] = ReduceOne(a1);
        sums[2] = ReduceOne(a2);
        sums[3] = ReduceOne(a3);
    }

    /// <summary>One weight row against one x row, unreduced (the tiled kernel's order, for the last weight rows).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Vector512<float> Tile1x1(ushort* w, float* x, int full)
    {
        Vector512<float> a = default;
        for (int i = 0; i < full; i += 32)
        {
            var v = Vector512.Load((uint*)(w + i));
            a = Avx512F.FusedMultiplyAdd((v & HighHalves).AsSingle(), Vector512.LoadAligned(x + i + 16),
                Avx512F.FusedMultiplyAdd(Avx512F.ShiftLeftLogical(v, 16).AsSingle(), Vector512.LoadAligned(x + i), a));
        }
        return a;
    }

    /// <summary>
    /// The sum of one accumulator's 16 lanes, in the order <see cref="ReduceTile"/> adds them: lane i + lane i+8, then
    /// i + i+4, then i + i+2, then the last two.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float ReduceOne(Vector512<float> a)
    {
        var h = a.GetLower() + a.GetUpper();
        var q = h.GetLower() + h.GetUpper();
        return (q.GetElement(0) + q.GetElement(2)) + (q.GetElement(1) + q.GetElement(3));
    }

    /// <summary>
    /// The 16 lane sums of 16 accumulators in one vector, by 15 vector additions (16 separate reductions take about
    /// eight operations each, which at K = 768 would add 15 % to the block's FMAs). Accumulator t's sum lands in lane
    /// 4·(t mod 4) + t div 4; each is added in the same order as <see cref="ReduceOne"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> ReduceTile(
        Vector512<float> t0, Vector512<float> t1, Vector512<float> t2, Vector512<float> t3,
        Vector512<float> t4, Vector512<float> t5, Vector512<float> t6, Vector512<float> t7,
        Vector512<float> t8, Vector512<float> t9, Vector512<float> t10, Vector512<float> t11,
        Vector512<float> t12, Vector512<float> t13, Vector512<float> t14, Vector512<float> t15)
    {
        // Halves: a vector of two accumulators, the lower 256 bits lane i + i+8 of the first, the upper of the second.
        var h0 = Halves(t0, t1); var h1 = Halves(t2, t3); var h2 = Halves(t4, t5); var h3 = Halves(t6, t7);
        var h4 = Halves(t8, t9); var h5 = Halves(t10, t11); var h6 = Halves(t12, t13); var h7 = Halves(t14, t15);
        // Quarters: 128-bit lane q of Quarters(h(2i), h(2i+1)) holds accumulator 4i + q's four partial sums.
        var q0 = Quarters(h0, h1); var q1 = Quarters(h2, h3); var q2 = Quarters(h4, h5); var q3 = Quarters(h6, h7);
        // Pairs (within each 128-bit lane q): accumulators q and q+4 (from q0, q1), q+8 and q+12 (from q2, q3).
        var p0 = Avx512F.Shuffle(q0, q1, 0x44) + Avx512F.Shuffle(q0, q1, 0xEE);
        var p1 = Avx512F.Shuffle(q2, q3, 0x44) + Avx512F.Shuffle(q2, q3, 0xEE);
        // Singles: lane 4q + r is accumulator q + 4r.
        return Avx512F.Shuffle(p0, p1, 0x88) + Avx512F.Shuffle(p0, p1, 0xDD);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Halves(Vector512<float> a, Vector512<float> b) =>
        Avx512F.Shuffle4x128(a, b, 0x44) + Avx512F.Shuffle4x128(a, b, 0xEE);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Quarters(Vector512<float> a, Vector512<float> b) =>
        Avx512F.Shuffle4x128(a, b, 0x88) + Avx512F.Shuffle4x128(a, b, 0xDD);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Widen(ushort b) => BitConverter.Int32BitsToSingle(b << 16);

    /// <summary><see cref="Round"/> for 16 values at once: the bf16 bits in the low half of each lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<uint> RoundAll(Vector512<float> f)
    {
        var bits = f.AsUInt32();
        var rounded = (bits + Vector512.Create(0x7FFFu) + ((bits >> 16) & Vector512<uint>.One)) >> 16;
        var nan = (bits >> 16) | Vector512.Create(0x40u);
        return Vector512.ConditionalSelect(Vector512.Equals(f, f).AsUInt32(), rounded, nan);
    }

    /// <summary>float32 to bf16, round to nearest even (NaN stays a quiet NaN), as torch's conversion does.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ushort Round(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return (ushort)((bits >> 16) | 0x40);
        bits += 0x7FFF + ((bits >> 16) & 1);
        return (ushort)(bits >> 16);
    }
}
