using System.Runtime.CompilerServices;
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
    // Integers, so that an int64 tensor stays int64 (a floating-point scalar would promote it).
    public static readonly Scalar Zero = 0L;
    public static readonly Scalar IntegerOne = 1L;
    private static readonly Scalar SoftplusThreshold = 20.0;

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

    // TorchSharp's operators with a number (x * 0.5, x - 1, 1 - x) convert the number inside the call, and
    // arange(stop) / arange(start, stop) make their start and step there: the same hazard. These hold the number in a
    // using local for the length of the call (checked in the compiled IL by UnrootedScalarTests).

    /// <summary>a · b (what <c>a * b</c> computes for a number b).</summary>
    public static Tensor Times(this Tensor a, double b)
    {
        using Scalar s = b;
        return a.mul(s);
    }

    /// <summary>a / b (what <c>a / b</c> computes for a number b).</summary>
    public static Tensor Over(this Tensor a, double b)
    {
        using Scalar s = b;
        return a.div(s);
    }

    /// <summary>a + b (what <c>a + b</c> computes for a number b).</summary>
    public static Tensor Plus(this Tensor a, double b)
    {
        using Scalar s = b;
        return a.add(s, One);
    }

    /// <summary>a − b (what <c>a - b</c> computes for a number b).</summary>
    public static Tensor Minus(this Tensor a, double b)
    {
        using Scalar s = b;
        return a.sub(s);
    }

    /// <summary>1 − a (what <c>1 - a</c> computes: −a + 1 rounds the same way).</summary>
    public static Tensor OneMinus(this Tensor a) => a.neg().add_(One, One);

    /// <summary>max(a, b) elementwise (what <c>a.clamp_min(b)</c> computes for a number b).</summary>
    public static Tensor AtLeast(this Tensor a, double b)
    {
        using Scalar s = b;
        return a.clamp_min(s);
    }

    /// <summary>start, start + 1, ..., stop − 1 (what <c>arange(start, stop)</c> computes) as <paramref name="dtype"/>.</summary>
    public static Tensor Range(long start, long stop, ScalarType dtype, Device device)
    {
        using Scalar from = start;
        using Scalar to = stop;
        return arange(from, to, IntegerOne, dtype, device);
    }

    /// <summary>
    /// softplus(x) = log(1 + eˣ), and x itself above 20 (PyTorch's beta 1, threshold 20: what
    /// <c>nn.functional.softplus(x)</c> computes). TorchSharp's public softplus takes doubles and converts them inside
    /// the call; its private <c>softplus1</c>, which it calls with them, takes Scalars, so this passes rooted ones to
    /// that: the same native kernel, the same numbers.
    /// </summary>
    public static Tensor Softplus(this Tensor x) => SoftplusWithScalars(x, One, SoftplusThreshold);

    // TorchSharp 0.107's Tensor.softplus1(Scalar beta, Scalar threshold) (private). A TorchSharp without it fails here
    // with MissingMethodException on the first call, which the engine's training and probe-fitting tests make.
    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "softplus1")]
    private static extern Tensor SoftplusWithScalars(Tensor x, Scalar beta, Scalar threshold);
}
