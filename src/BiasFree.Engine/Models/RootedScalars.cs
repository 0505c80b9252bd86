using TorchSharp;

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
}
