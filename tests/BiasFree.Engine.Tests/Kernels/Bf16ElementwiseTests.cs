using System.Runtime.Intrinsics.X86;
using BiasFree.Engine.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests.Kernels;

/// <summary>
/// The fused bf16 RMSNorm, SwiGLU gate and rotary kernels (<see cref="Bf16Elementwise"/>) against the libtorch op
/// chains they replace, on the layouts the model hands them.
/// </summary>
public class Bf16ElementwiseTests
{
    private static Tensor Random(long[] shape, long seed, double scale = 1)
    {
        using var g = new Generator((ulong)seed);
        using var f = randn(shape, generator: g);
        return (f * scale).to_type(ScalarType.BFloat16);
    }

    /// <summary>
    /// Equal to <paramref name="expected"/> up to one bf16 ulp per element, with at most <paramref name="maxDiffering"/>
    /// of the elements differing at all (a last-bit difference of a float32 intermediate flips a rounding now and then; a
    /// wrong index, scale or rounding would change most elements, by more).
    /// </summary>
    private static void AssertNearlyEqual(Tensor got, Tensor expected, double maxDiffering, string what)
    {
        using var scope = NewDisposeScope();
        Assert.Equal(expected.shape, got.shape);
        var g = got.to_type(ScalarType.Float64);
        var e = expected.to_type(ScalarType.Float64);
        var ulp = e.abs().clamp_min(1e-30).log2().floor().sub(7).exp2();
        double worst = ((g - e).abs() - ulp).max().item<double>();
        Assert.True(worst <= 0, $"{what}: an element is off by more than one bf16 ulp ({worst} beyond)");
        double differing = g.ne(e).to_type(ScalarType.Float64).mean().item<double>();
        Assert.True(differing <= maxDiffering, $"{what}: {differing:P2} of the elements differ");
    }

    [Theory]
    [InlineData(1, 768)]
    [InlineData(32, 768)]
    [InlineData(5, 16)]
    public void RmsNormMatchesTheOpChain(int rows, int hidden)
    {
        if (!Avx512F.IsSupported) return;
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        var x = Random([rows, 1, hidden], 1, 3);
        var w = Random([hidden], 2);
        const double eps = 1e-5;
        var got = Bf16Elementwise.TryRmsNorm(x, w, eps);
        Assert.NotNull(got);
        // RMSNorm's op chain at inference (Models/Layers.cs).
        using Scalar two = 2, epsilon = eps; // rooted during the native calls (docs/engine-performance.md, "Tensor lifetimes")
        var x32 = x.to_type(ScalarType.Float32);
        var inverse = x32.pow(two).mean([-1], keepdim: true).add(epsilon).rsqrt();
        var expected = (x32 * inverse).to_type(ScalarType.BFloat16).mul(w);
        AssertNearlyEqual(got, expected, 0.01, "rmsnorm");
    }

    [Theory]
    [InlineData(1, 2048)]
    [InlineData(32, 2048)]
    [InlineData(3, 16)]
    public void SiluGateMatchesTheOpChain(int rows, int intermediate)
    {
        if (!Avx512F.IsSupported) return;
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        var both = Random([rows, 1, 2 * intermediate], 3, 4);
        var got = Bf16Elementwise.TrySiluGate(both, intermediate);
        Assert.NotNull(got);
        var expected = nn.functional.silu(both.narrow(-1, 0, intermediate)).mul(both.narrow(-1, intermediate, intermediate));
        AssertNearlyEqual(got, expected, 0.01, "silu gate");
    }

    [Theory]
    [InlineData(1, 1, 64)]
    [InlineData(32, 1, 64)]
    [InlineData(2, 5, 128)]  // a prefill
    public void RotaryGivesTheOpChainsBits(int batch, int tokens, int d)
    {
        if (!Avx512F.IsSupported) return;
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        const int heads = 12, kvHeads = 4;
        // As the model hands it: the q and k heads of the fused q/k/v output, a strided view.
        var x = Random([batch, tokens, heads + 2 * kvHeads, d], 4).narrow(2, 0, heads + kvHeads);
        var cos = Random([batch, tokens, 1, d], 5);
        var sin = Random([batch, tokens, 1, d], 6);
        var got = Bf16Elementwise.TryRotary(x, cos, sin);
        Assert.NotNull(got);
        var expected = x * cos + x.roll(d / 2, -1) * sin;
        Assert.True(got.equal(expected).all().item<bool>(), "the fused rotary differs from x·cos + roll(x)·sin");
    }

    [Fact]
    public void DeclinesWhatItDoesNotHandle()
    {
        using var scope = NewDisposeScope();
        var x = Random([2, 1, 64], 7);
        var w = Random([64], 8);
        using (inference_mode())
        {
            Assert.Null(Bf16Elementwise.TryRmsNorm(x.to_type(ScalarType.Float32), w.to_type(ScalarType.Float32), 1e-5));
            Assert.Null(Bf16Elementwise.TryRmsNorm(Random([2, 1, 40], 9), Random([40], 10), 1e-5)); // not a multiple of 16
            Assert.Null(Bf16Elementwise.TrySiluGate(Random([2, 1, 60], 11), 30));
            Assert.Null(Bf16Elementwise.TryRotary(Random([1, 1, 2, 48], 12), Random([1, 1, 1, 48], 13), Random([1, 1, 1, 48], 14)));
        }
        // Gradients on: autograd needs the op chain.
        Assert.Null(Bf16Elementwise.TryRmsNorm(x, w, 1e-5));
    }
}
