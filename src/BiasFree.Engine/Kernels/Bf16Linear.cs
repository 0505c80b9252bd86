using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Kernels;

/// <summary>
/// y = x Wᵀ + b for bfloat16 x with few rows (decode steps), written for the memory bound instead of the GEMM.
/// </summary>
/// <remarks>
/// Why: at decode time a projection multiplies a handful of rows by a weight matrix that is read from memory once, so
/// its time should be the time to stream the matrix. libtorch 2.10 sends these products to oneDNN's brgemm matmul, which
/// repacks each block of the row-major weight into its VNNI layout (`jit_brgemm_matmul_copy_b_transposed` in a profile)
/// before multiplying: on one core of the machine measured it streamed a 49 MB bf16 matrix at 7.5–8 GB/s, while a plain
/// sum over the same bytes read 21–24 GB/s (docs/engine-performance.md). PyTorch 1.13 runs the same oneDNN kernel.
/// This kernel reads the weight where it lies, one row after the other: 32 bf16 weights per 64-byte load become two
/// float32 vectors by a shift (the even elements) and a mask (the odd ones), since a bf16 is the top half of a float32
/// (exact), and meet x, widened to float32 once per call, in float32 FMA accumulators. Each sum is rounded once to
/// bfloat16 (round to nearest even), as oneDNN rounds its float32 accumulators; the order of the additions differs,
/// so a result can differ from libtorch's in the last bf16 bit.
/// <para>
/// Used only when it applies: AVX-512 present, gradients off, CPU tensors, bf16 input, weight and bias, a contiguous
/// weight, and at most <see cref="MaxRows"/> rows of x. Each extra row costs another pass of FMAs over the (cached)
/// weight row, and from four rows on oneDNN's bf16 dot-product instructions were as fast or faster on every decode
/// shape measured. Everything else goes to <c>nn.functional.linear</c>. With several torch threads the weight rows are
/// split into that many contiguous ranges, one .NET worker each. The loops are compiled fully optimized on first use
/// (AggressiveOptimization): tiered compilation would otherwise run a process's first calls as unoptimized code.
/// </para>
/// </remarks>
internal static unsafe class Bf16Linear
{
    /// <summary>Most rows of x handled here (the crossover against oneDNN measured on this machine; see the remarks).</summary>
    public const int MaxRows = 3;

    /// <summary>Below this many weight elements a product is not split among threads (the hand-off costs more).</summary>
    internal const long ParallelThreshold = 1L << 20;

    public static bool Supported { get; } = Avx512F.IsSupported;

    /// <summary>x Wᵀ + b through this kernel when it applies, else libtorch's linear.</summary>
    public static Tensor Forward(Tensor x, Tensor weight, Tensor? bias) =>
        TryForward(x, weight, bias, threads: null) ?? nn.functional.linear(x, weight, bias);

    /// <summary>The product, or null when this kernel does not apply (see the class remarks).</summary>
    public static Tensor? TryForward(Tensor x, Tensor weight, Tensor? bias) => TryForward(x, weight, bias, threads: null);

    /// <summary>As above; <paramref name="threads"/> overrides torch's thread count for the split (tests).</summary>
    internal static Tensor? TryForward(Tensor x, Tensor weight, Tensor? bias, int? threads)
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
        if (rows == 0 || rows > MaxRows || !weight.is_contiguous()) return null;

        // The result's shape is x's with the last dimension replaced by the output features.
        var outShape = (long[])xShape.Clone();
        outShape[^1] = n;
        var xc = x.is_contiguous() ? x : x.contiguous();
        var y = empty(outShape, ScalarType.BFloat16, x.device);
        Run((ushort*)TensorMemory.Data(xc), (ushort*)TensorMemory.Data(weight),
            bias is null ? null : (ushort*)TensorMemory.Data(bias), (ushort*)TensorMemory.Data(y), (int)rows, n, (int)k,
            n * k >= ParallelThreshold ? Math.Max(1, threads ?? torch.get_num_threads()) : 1);
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
    private static void Run(ushort* x, ushort* w, ushort* bias, ushort* y, int rows, long n, int k, int threads)
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
                RowRange(xfp, w, bias, y, rows, n, k, k32, 0, n);
                return;
            }
            // Contiguous ranges of weight rows, one per worker: each worker then reads one sequential stream.
            nint xAddr = (nint)xfp, wAddr = (nint)w, bAddr = (nint)bias, yAddr = (nint)y;
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
                RowRange((float*)xAddr, (ushort*)wAddr, (ushort*)bAddr, (ushort*)yAddr, rows, n, k, k32, n * t / threads, n * (t + 1) / threads));
        }
    }

    /// <summary>Where element i of an x row sits in its widened, de-interleaved copy.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Slot(int i) => (i & ~31) + ((i & 31) >> 1) + (i & 1) * 16;

    /// <summary>
    /// Output features [first, last) for every row of x. The weight is read one row after the other, a single
    /// sequential stream: on the machine measured, reading two or four weight rows side by side (to load each x vector
    /// once for several rows) halved the bandwidth one core got (8 against 17 GB/s), while x stays in the L1 cache
    /// anyway. Further rows of x read the weight row again from L1.
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Widen(ushort b) => BitConverter.Int32BitsToSingle(b << 16);

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
