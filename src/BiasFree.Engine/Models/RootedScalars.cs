using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Models;

/// <summary>
/// Scalars that stay referenced. TorchSharp 0.107 frees a <see cref="Scalar"/>'s native value in its finalizer and does
/// not track scalars in dispose scopes, so the Scalar an implicit conversion makes (<c>x.pow(2)</c>, <c>logits / t</c>)
/// has no root while the native call that receives its handle runs; a garbage collection at that moment frees it under
/// the call ("Unknown scalar type", an assertion in c10/core/Scalar.h, or a crash). Constants used on every pass live
/// here for the process's lifetime; a per-call value is held by a <c>using</c> local (its Dispose call keeps it alive
/// to the end of the block). See docs/engine-performance.md, "Tensor lifetimes".
/// </summary>
internal static class RootedScalars
{
    public static readonly Scalar Two = 2;
    public static readonly Scalar One = 1.0;
    public static readonly Scalar NegativeInfinity = double.NegativeInfinity;

    // TorchSharp 0.107's additions without an alpha (a + b, add(b), add_(b), for a tensor or a scalar b) make their alpha
    // of 1 by an implicit conversion inside the call and pass only its handle on, so the same collection can free it
    // under the native call: the demo run once lost 16 probes to "Expected false to be true ... toFloat at
    // c10/core/Scalar.h:140" raised from THSTensor_add_scalar_ (RMSNorm's add_(eps)). These pass the rooted One instead;
    // the sums are the same (libtorch multiplies by an alpha of 1 either way).

    /// <summary>a + b with a rooted alpha (what <c>a + b</c> computes).</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary>a + b with a rooted alpha (what <c>a + b</c> computes).</summary>
    public static Tensor Plus(this Tensor a, Scalar b) => a.add(b, One);

    /// <summary>a += b in place with a rooted alpha (what <c>a.add_(b)</c> computes).</summary>
    public static Tensor PlusInPlace(this Tensor a, Tensor b) => a.add_(b, One);

    /// <summary>a += b in place with a rooted alpha (what <c>a.add_(b)</c> computes).</summary>
    public static Tensor PlusInPlace(this Tensor a, Scalar b) => a.add_(b, One);
}
