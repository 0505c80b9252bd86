using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Kernels;

/// <summary>
/// Greedy token choice: the index of the largest logit of each row, returned to the host, with torch.argmax's
/// semantics (the first index among equal maxima; a NaN counts as the maximum, the first NaN wins).
/// </summary>
/// <remarks>
/// Why: a decode loop needs each row's id on the host every step (EOS, streaming). libtorch 2.10's argmax over the last
/// dimension runs a scalar-per-element reduction: over a [32, 32000] bf16 logits tensor it took 3.8 ms of one core, and
/// 1.5 ms after a float32 conversion (docs/engine-performance.md), against a decode step of tens of milliseconds. Two
/// vectorized passes over each row (the maximum, then its first position) read the logits twice from cache instead.
/// Float32 and bfloat16 contiguous CPU rows take this path with AVX-512; anything else goes through torch.argmax.
/// </remarks>
public static unsafe class ArgMax
{
    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_data(IntPtr handle);

    /// <summary>argmax over the last dimension of <paramref name="logits"/>, one id per row ([.., V] → numel / V ids).</summary>
    public static long[] LastDim(Tensor logits)
    {
        var shape = logits.shape;
        long v = shape.Length == 0 ? 1 : shape[^1];
        bool fast = Avx512F.IsSupported && logits.device_type == DeviceType.CPU && v > 0 && logits.is_contiguous()
            && (logits.dtype == ScalarType.Float32 || logits.dtype == ScalarType.BFloat16);
        if (!fast)
        {
            using var scope = NewDisposeScope();
            return logits.argmax(-1).reshape(-1).cpu().data<long>().ToArray();
        }
        long rows = logits.numel() / v;
        var result = new long[rows];
        void* data = (void*)THSTensor_data(logits.Handle);
        for (long r = 0; r < rows; r++)
            result[r] = logits.dtype == ScalarType.Float32 ? RowF32((float*)data + r * v, v) : RowBf16((ushort*)data + r * v, v);
        GC.KeepAlive(logits); // its memory is read through the pointer above
        return result;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static long RowF32(float* p, long n)
    {
        long i = 0;
        var best = Vector512.Create(float.NegativeInfinity);
        var nan = Vector512<float>.Zero.AsUInt32();
        for (; i + 16 <= n; i += 16)
        {
            var x = Vector512.Load(p + i);
            nan |= ~Vector512.Equals(x, x).AsUInt32();
            best = Vector512.Max(best, x);
        }
        float max = float.NegativeInfinity;
        bool anyNan = nan != Vector512<uint>.Zero;
        for (int l = 0; l < 16; l++) max = Math.Max(max, best.GetElement(l));
        for (long t = i; t < n; t++)
        {
            if (float.IsNaN(p[t])) anyNan = true;
            else if (p[t] > max) max = p[t];
        }
        if (anyNan)
            for (long t = 0; t < n; t++)
                if (float.IsNaN(p[t])) return t;
        var target = Vector512.Create(max);
        for (i = 0; i + 16 <= n; i += 16)
        {
            ulong hits = Vector512.Equals(Vector512.Load(p + i), target).ExtractMostSignificantBits();
            if (hits != 0) return i + BitOperations.TrailingZeroCount(hits);
        }
        for (; i < n; i++)
            if (p[i] == max) return i;
        return 0; // unreachable: max is one of the row's values
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static long RowBf16(ushort* p, long n)
    {
        long i = 0;
        var best = Vector512.Create(float.NegativeInfinity);
        var nan = Vector512<uint>.Zero;
        for (; i + 16 <= n; i += 16)
        {
            var x = Widen16(p + i);
            nan |= ~Vector512.Equals(x, x).AsUInt32();
            best = Vector512.Max(best, x);
        }
        float max = float.NegativeInfinity;
        bool anyNan = nan != Vector512<uint>.Zero;
        for (int l = 0; l < 16; l++) max = Math.Max(max, best.GetElement(l));
        for (long t = i; t < n; t++)
        {
            float f = Bf16Linear.Widen(p[t]);
            if (float.IsNaN(f)) anyNan = true;
            else if (f > max) max = f;
        }
        if (anyNan)
            for (long t = 0; t < n; t++)
                if (float.IsNaN(Bf16Linear.Widen(p[t]))) return t;
        var target = Vector512.Create(max);
        for (i = 0; i + 16 <= n; i += 16)
        {
            ulong hits = Vector512.Equals(Widen16(p + i), target).ExtractMostSignificantBits();
            if (hits != 0) return i + BitOperations.TrailingZeroCount(hits);
        }
        for (; i < n; i++)
            if (Bf16Linear.Widen(p[i]) == max) return i;
        return 0;
    }

    private static Vector512<float> Widen16(ushort* p) =>
        Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512Int32(Vector256.Load(p)), 16).AsSingle();
}
