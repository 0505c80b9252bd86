using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BiasFree.Engine.Kernels;

/// <summary>
/// e^x for 16 float32 lanes, within about one float32 ulp, in AVX-512 float32 arithmetic only.
/// </summary>
/// <remarks>
/// Why not <c>Vector512.Exp</c>: .NET 10 computes it through float64 (each vector widened to two, and narrowed back),
/// which made it a visible share of the decode attention and SwiGLU kernels' time; their results are rounded to bf16
/// or feed a float32 softmax, where one float32 ulp is far below what they keep.
/// Method (the textbook one, e.g. Cephes' expf): n = round(x·log₂e), r = x − n·ln 2 with ln 2 split in two parts so
/// that r is nearly exact, e^r by its Taylor polynomial to degree 7 (|r| ≤ ln2/2, so the first omitted term is below
/// 0.35⁸/8! ≈ 5·10⁻⁹ relative, under one float32 ulp), then scaled by 2ⁿ (vscalefps, which also gives 0 and ∞ past the
/// float32 range). x is first clamped to [−104, 89] (beyond those e^x is 0 or ∞ in float32) in an order that lets NaN
/// through.
/// </remarks>
internal static class VectorExp
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        // vmaxps/vminps return their second operand when either is NaN: x second, so NaN stays NaN.
        x = Avx512F.Min(Vector512.Create(89f), Avx512F.Max(Vector512.Create(-104f), x));
        var n = Avx512F.RoundScale(x * Vector512.Create(1.44269504088896341f), 0); // round to nearest (even)
        var r = Avx512F.FusedMultiplyAdd(n, Vector512.Create(-0.693145751953125f), x);
        r = Avx512F.FusedMultiplyAdd(n, Vector512.Create(-1.428606765330187e-6f), r);
        var p = Vector512.Create(1f / 5040);
        p = Avx512F.FusedMultiplyAdd(p, r, Vector512.Create(1f / 720));
        p = Avx512F.FusedMultiplyAdd(p, r, Vector512.Create(1f / 120));
        p = Avx512F.FusedMultiplyAdd(p, r, Vector512.Create(1f / 24));
        p = Avx512F.FusedMultiplyAdd(p, r, Vector512.Create(1f / 6));
        p = Avx512F.FusedMultiplyAdd(p, r, Vector512.Create(0.5f));
        p = Avx512F.FusedMultiplyAdd(p, r, Vector512<float>.One);
        p = Avx512F.FusedMultiplyAdd(p, r, Vector512<float>.One);
        return Avx512F.Scale(p, n);
    }
}
