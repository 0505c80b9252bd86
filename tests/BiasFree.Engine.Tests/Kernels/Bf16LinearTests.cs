using System.Runtime.Intrinsics.X86;
using BiasFree.Engine.Kernels;
using BiasFree.Engine.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests.Kernels;

/// <summary>
/// The decode-sized bf16 product (<see cref="Bf16Linear"/>) against the exact product of the same bf16 values, and the
/// model's bf16 decode steps, which run through it, against the float64 reference model.
/// </summary>
public class Bf16LinearTests
{
    private static Tensor RandomBf16(long[] shape, long seed)
    {
        using var g = new Generator((ulong)seed);
        using var f = randn(shape, generator: g);
        return f.to_type(ScalarType.BFloat16);
    }

    /// <summary>
    /// Each output must be the exact sum (float64 over the bf16 inputs) up to float32 accumulation error and one bf16
    /// rounding: |y − exact| ≤ ulp_bf16(exact) + 2⁻²⁰·Σ|x·w|. A wrong index, a lost tail element or a missed bias
    /// would be off by a whole term, far above that.
    /// </summary>
    private static void AssertCloseToExact(Tensor y, Tensor x, Tensor w, Tensor? b, string what)
    {
        using var scope = NewDisposeScope();
        var x64 = x.to_type(ScalarType.Float64).reshape(-1, x.shape[^1]);
        var w64 = w.to_type(ScalarType.Float64);
        var exact = x64.matmul(w64.t());
        if (b is not null) exact += b.to_type(ScalarType.Float64);
        var magnitude = x64.abs().matmul(w64.abs().t());
        var got = y.to_type(ScalarType.Float64).reshape(exact.shape);
        // ulp of bf16 at |exact|: 2^(floor(log2|exact|) − 7).
        var ulp = exact.abs().clamp_min(1e-30).log2().floor().sub(7).exp2();
        var excess = (got - exact).abs() - ulp - magnitude * Math.Pow(2, -20);
        double worst = excess.max().item<double>();
        Assert.True(worst <= 0, $"{what}: an output exceeds the bound by {worst}");
    }

    [Theory]
    [InlineData(1, 96, 768, false)]
    [InlineData(2, 333, 1000, true)]   // K not a multiple of 32: the tail path
    [InlineData(3, 64, 2048, true)]
    [InlineData(1, 17, 5, false)]      // shorter than one vector
    public void MatchesTheExactProductRoundedOnce(int rows, int outFeatures, int inFeatures, bool withBias)
    {
        using var _ = inference_mode();
        using var x = RandomBf16([rows, 1, inFeatures], 1);
        using var w = RandomBf16([outFeatures, inFeatures], 2);
        using var b = withBias ? RandomBf16([outFeatures], 3) : null;
        using var y = Bf16Linear.TryForward(x, w, b);
        if (!Avx512F.IsSupported)
        {
            Assert.Null(y); // the model then takes libtorch's linear, which the other engine tests cover
            return;
        }
        Assert.NotNull(y);
        Assert.Equal(new long[] { rows, 1, outFeatures }, y.shape);
        Assert.Equal(ScalarType.BFloat16, y.dtype);
        AssertCloseToExact(y, x, w, b, $"rows {rows}, {outFeatures}x{inFeatures}");

        // libtorch's product of the same values agrees but for the last bit of a few outputs (summation order). With a
        // bias it is not compared: libtorch then differs in about a quarter of the outputs, as if it rounded the product
        // to bf16 before adding the bias, while this kernel adds it to the float32 sum, which the bound above checks.
        if (withBias) return;
        using var theirs = nn.functional.linear(x, w, b);
        using var differ = y.ne(theirs).sum();
        Assert.True(differ.item<long>() <= y.numel() / 10, $"{differ.item<long>()} of {y.numel()} outputs differ from libtorch's");
    }

    [Fact]
    public void SplittingAmongThreadsGivesTheSameBits()
    {
        if (!Avx512F.IsSupported) return;
        using var _ = inference_mode();
        long n = Bf16Linear.ParallelThreshold / 512 + 13; // above the threshold with K = 512, not divisible by the workers
        using var x = RandomBf16([2, 512], 4);
        using var w = RandomBf16([n, 512], 5);
        using var one = Bf16Linear.TryForward(x, w, null, threads: 1)!;
        using var three = Bf16Linear.TryForward(x, w, null, threads: 3)!;
        Assert.True(one.to_type(ScalarType.Float32).allclose(three.to_type(ScalarType.Float32), 0, 0), "the split changed a result");
        AssertCloseToExact(three, x, w, null, "3 workers");
    }

    [Fact]
    public void DeclinesWhatItDoesNotHandle()
    {
        using var x = RandomBf16([1, 64], 6);
        using var w = RandomBf16([32, 64], 7);
        // Gradients on: training needs autograd's own product.
        using (var withGrad = Bf16Linear.TryForward(x, w, null)) Assert.Null(withGrad);
        using var _ = inference_mode();
        using var xf = x.to_type(ScalarType.Float32);
        using var wf = w.to_type(ScalarType.Float32);
        using (var fp32 = Bf16Linear.TryForward(xf, wf, null)) Assert.Null(fp32);
        using var many = RandomBf16([Bf16Linear.MaxRows + 1, 64], 8);
        using (var tooMany = Bf16Linear.TryForward(many, w, null)) Assert.Null(tooMany);
        using var wt = RandomBf16([64, 32], 9);
        using var strided = wt.t(); // [32, 64], not contiguous
        using (var notContiguous = Bf16Linear.TryForward(x, strided, null)) Assert.Null(notContiguous);
        // Forward still answers, through libtorch.
        using var y = Bf16Linear.Forward(many, w, null);
        using var expected = nn.functional.linear(many, w);
        Assert.True(y.to_type(ScalarType.Float32).allclose(expected.to_type(ScalarType.Float32), 0, 0));
    }

    [Theory, MemberData(nameof(ModelTests.Archs), MemberType = typeof(ModelTests))]
    public void Bfloat16DecodeStepsStayCloseToReference(string arch)
    {
        // Decode steps feed one row per sequence, so every projection and the lm_head run through the kernel.
        int[] prompt = [1, 5, 17, 42, 8, 93, 3, 3, 60, 11, 27, 4];
        using var dir = new TempDir();
        using var model = TinyModels.SavedAndLoaded(arch, dir, ScalarType.BFloat16);
        var reference = new ReferenceModel(dir.Path).Logits(prompt);
        double scale = reference.SelectMany(r => r).Max(Math.Abs);
        using var _ = inference_mode();
        using var cache = model.NewCache();
        int start = prompt.Length - 4;
        using (var first = model.Forward(model.IdsTensor([prompt[..start]]), new ForwardArgs { Cache = cache })) { }
        for (int t = start; t < prompt.Length; t++)
        {
            using var step = model.Forward(model.IdsTensor([[prompt[t]]]), new ForwardArgs { Cache = cache });
            using var row = step.Logits[0, 0].to_type(ScalarType.Float64);
            using var expected = tensor(reference[t], ScalarType.Float64);
            double diff = (row - expected).abs().max().item<double>();
            Assert.True(diff < 0.1 * scale, $"{arch}: step at position {t}: max diff {diff} (scale {scale})");
        }
    }
}
