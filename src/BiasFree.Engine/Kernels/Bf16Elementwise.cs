using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Kernels;

/// <summary>
/// RMSNorm, the SwiGLU gate and the rotary embedding as one pass each over bf16 rows, for inference, in place of
/// libtorch's chains of elementwise ops.
/// </summary>
/// <remarks>
/// Why: a decode step runs each of these on a few rows of 768–4096 values, where libtorch's fixed cost per op (the
/// dispatcher, a new tensor, the dispose scope; 1–2 µs each on the machine measured, more under load) outweighs the
/// arithmetic. RMSNorm was eight ops (widen, square, mean, + eps, rsqrt, multiply, round to bf16, × weight), 25 times
/// per step of the bench model; the gate two (silu, × up), 12 times; the rotary embedding four (× cos, roll, × sin, +),
/// 12 times. Each kernel makes the same roundings libtorch's chain
/// makes, in the same places, computing between them in float32:
/// <list type="bullet">
/// <item>RMSNorm: n = bf16(x · 1/√(mean(x²) + ε)), y = bf16(n · w), x widened exactly, mean(x²) summed in float32 (in a
/// different order than libtorch's reduction, so the inverse can differ in its last float32 bit);</item>
/// <item>gate: s = bf16(silu(g)) with silu(g) = g / (1 + e^(−g)), y = bf16(s · u) (the exponential is
/// <see cref="VectorExp"/>'s, not libtorch's, so s can differ in its last float32 bits before rounding);</item>
/// <item>rotary: bf16(bf16(x · cos) + bf16(roll(x) · sin)), the chain's bits exactly (a product of two bf16 values is
/// exact in float32).</item>
/// </list>
/// Each row is computed alone, so a row's result does not depend on the batch. Used only with AVX-512, gradients off,
/// CPU bf16 tensors with contiguous rows, and sizes that are multiples of 16; the callers fall back to the op chains
/// otherwise. Each touches a few KB per row, so they run on the calling thread.
/// </remarks>
internal static unsafe class Bf16Elementwise
{
    private static bool Applies(Tensor t) =>
        Avx512F.IsSupported && t.dtype == ScalarType.BFloat16 && t.device_type == DeviceType.CPU && !is_grad_enabled();

    /// <summary>RMSNorm over the last dimension of x with weight w (both bf16), or null when this kernel does not apply.</summary>
    public static Tensor? TryRmsNorm(Tensor x, Tensor weight, double eps)
    {
        if (!Applies(x) || !Applies(weight) || !x.is_contiguous() || !weight.is_contiguous()) return null;
        long[] shape = x.shape;
        if (shape.Length == 0 || weight.shape is not [var h] || shape[^1] != h || h % 16 != 0 || h == 0) return null;
        long rows = x.numel() / h;
        var y = empty(shape, ScalarType.BFloat16, x.device);
        ushort* xp = (ushort*)TensorMemory.Data(x), wp = (ushort*)TensorMemory.Data(weight), yp = (ushort*)TensorMemory.Data(y);
        float epsilon = (float)eps;
        for (long m = 0; m < rows; m++) RmsRow(xp + m * h, wp, yp + m * h, (int)h, epsilon);
        GC.KeepAlive(x);
        GC.KeepAlive(weight);
        return y;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RmsRow(ushort* x, ushort* w, ushort* y, int h, float eps)
    {
        var acc = Vector512<float>.Zero;
        for (int i = 0; i < h; i += 16)
        {
            var v = Widen(x + i);
            acc = Avx512F.FusedMultiplyAdd(v, v, acc);
        }
        // mean + ε in float32, then 1/√ as libtorch's rsqrt does it (a square root, then a division).
        float inverse = 1f / MathF.Sqrt(Bf16Linear.ReduceOne(acc) / h + eps);
        var inv = Vector512.Create(inverse);
        for (int i = 0; i < h; i += 16)
        {
            var normed = Narrowed(Widen(x + i) * inv);
            Store(Widen(normed) * Widen(w + i), y + i);
        }
    }

    /// <summary>
    /// bf16(bf16(silu(g)) · u) for gate/up laid out side by side in the last dimension of <paramref name="both"/>
    /// ([.., 2·I], gate first, as the fused gate/up product returns them), as [.., I]; null when this kernel does not apply.
    /// </summary>
    public static Tensor? TrySiluGate(Tensor both, long intermediate)
    {
        if (!Applies(both) || !both.is_contiguous() || intermediate % 16 != 0 || intermediate == 0) return null;
        long[] shape = both.shape;
        if (shape.Length == 0 || shape[^1] != 2 * intermediate) return null;
        long rows = both.numel() / shape[^1];
        var outShape = (long[])shape.Clone();
        outShape[^1] = intermediate;
        var y = empty(outShape, ScalarType.BFloat16, both.device);
        ushort* bp = (ushort*)TensorMemory.Data(both), yp = (ushort*)TensorMemory.Data(y);
        for (long m = 0; m < rows; m++) GateRow(bp + m * 2 * intermediate, yp + m * intermediate, (int)intermediate);
        GC.KeepAlive(both);
        return y;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GateRow(ushort* both, ushort* y, int n)
    {
        var one = Vector512.Create(1f);
        for (int i = 0; i < n; i += 16)
        {
            var g = Widen(both + i);
            var silu = Narrowed(g / (one + VectorExp.Exp(-g)));
            Store(Widen(silu) * Widen(both + n + i), y + i);
        }
    }

    /// <summary>
    /// Rotary embedding x·cos + roll(x, D/2)·sin for bf16 x [B, T, heads, D] (any strides but a contiguous last
    /// dimension) with tables [B, T, 1, D] (sin with rotate_half's sign folded in, see RotaryEmbedding), as a contiguous
    /// [B, T, heads, D]; the three roundings of libtorch's x·cos, roll(x)·sin and their sum. Null when this kernel does
    /// not apply (D/2 must be a multiple of 16).
    /// </summary>
    public static Tensor? TryRotary(Tensor x, Tensor cos, Tensor sin)
    {
        if (!Applies(x) || !Applies(cos) || !Applies(sin) || !cos.is_contiguous() || !sin.is_contiguous()) return null;
        long[] shape = x.shape;
        if (shape is not [var b, var t, var heads, var d] || d % 32 != 0 || d == 0) return null;
        long[] strides = x.stride();
        if (strides[3] != 1 || !cos.shape.SequenceEqual(new[] { b, t, 1, d }) || !sin.shape.SequenceEqual(new[] { b, t, 1, d })) return null;
        var y = empty(shape, ScalarType.BFloat16, x.device);
        ushort* xp = (ushort*)TensorMemory.Data(x), cp = (ushort*)TensorMemory.Data(cos), sp = (ushort*)TensorMemory.Data(sin), yp = (ushort*)TensorMemory.Data(y);
        for (long i = 0; i < b; i++)
            for (long j = 0; j < t; j++)
            {
                long table = (i * t + j) * d;
                for (long h = 0; h < heads; h++)
                    RotaryRow(xp + i * strides[0] + j * strides[1] + h * strides[2], cp + table, sp + table, yp + ((i * t + j) * heads + h) * d, (int)d);
            }
        GC.KeepAlive(x);
        GC.KeepAlive(cos);
        GC.KeepAlive(sin);
        return y;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RotaryRow(ushort* x, ushort* cos, ushort* sin, ushort* y, int d)
    {
        int half = d / 2;
        for (int i = 0; i < d; i += 16)
        {
            // roll(x, D/2)[i] = x[(i − D/2) mod D]: with D/2 a multiple of 16, a whole chunk from the other half.
            var straight = Widen(Narrowed(Widen(x + i) * Widen(cos + i)));
            var rolled = Widen(Narrowed(Widen(x + (i + half) % d) * Widen(sin + i)));
            Store(straight + rolled, y + i);
        }
    }

    /// <summary>16 bf16 values widened to float32 (exact: a bf16 is a float32's top half).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen(ushort* p) =>
        Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512UInt32(Vector256.Load(p)), 16).AsSingle();

    /// <summary>16 float32 values rounded to bf16 (nearest even, as libtorch converts).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ushort> Narrowed(Vector512<float> f) => Avx512F.ConvertToVector256UInt16(Bf16Linear.RoundAll(f));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Widen(Vector256<ushort> b) =>
        Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512UInt32(b), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector512<float> f, ushort* p) => Narrowed(f).Store(p);
}
