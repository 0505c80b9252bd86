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

    /// <summary>
    /// The tiled kernel (more than <see cref="Bf16Linear.StreamRows"/> rows): 4 × 4 blocks, the 4 × 1 blocks of the
    /// last rows of x (rows not a multiple of 4), the 1 × 1 products of the last weight rows (output features not a
    /// multiple of 4), the elements past the last multiple of 32 and the bias, each against the exact product.
    /// </summary>
    [Theory]
    [InlineData(4, 96, 768, false)]
    [InlineData(8, 1280, 768, true)]
    [InlineData(12, 64, 2048, false)]
    [InlineData(5, 333, 1000, true)]   // a 4 × 1 row, 1 × 1 outputs, a tail past 992
    [InlineData(7, 18, 45, true)]      // one full 32-chunk and a 13-element tail
    [InlineData(6, 9, 20, false)]      // shorter than one vector: all tail
    public void TiledMatchesTheExactProductRoundedOnce(int rows, int outFeatures, int inFeatures, bool withBias)
    {
        if (!Avx512F.IsSupported) return; // the kernel declines (MatchesTheExactProductRoundedOnce checks that)
        using var _ = inference_mode();
        using var x = RandomBf16([rows, 1, inFeatures], 11);
        using var w = RandomBf16([outFeatures, inFeatures], 12);
        using var b = withBias ? RandomBf16([outFeatures], 13) : null;
        using var y = Bf16Linear.TryForward(x, w, b);
        Assert.NotNull(y);
        Assert.Equal(new long[] { rows, 1, outFeatures }, y.shape);
        AssertCloseToExact(y, x, w, b, $"tiled, rows {rows}, {outFeatures}x{inFeatures}");
        if (withBias) return;
        using var theirs = nn.functional.linear(x, w, b);
        using var differ = y.ne(theirs).sum();
        Assert.True(differ.item<long>() <= y.numel() / 10, $"{differ.item<long>()} of {y.numel()} outputs differ from libtorch's");
    }

    /// <summary>
    /// Every path of the tiled kernel computes an output the same way, so a row's result does not depend on the other
    /// rows in the product nor on where its weight row falls: rows 4 and 5 of a 6-row product (4 × 1 blocks) equal the
    /// same rows inside a 4-row product (a 4 × 4 block), the last output features (1 × 1) equal the same features
    /// inside a tile, and a single row forced through the tiled kernel equals its row in the 6-row product.
    /// </summary>
    [Theory]
    [InlineData(768, true)]
    [InlineData(1000, false)] // with a tail past the last multiple of 32
    public void TiledRowsDoNotDependOnTheirNeighbours(int k, bool withBias)
    {
        if (!Avx512F.IsSupported) return;
        using var _ = inference_mode();
        const int n = 4 * 9 + 3;
        using var x = RandomBf16([6, k], 14);
        using var w = RandomBf16([n, k], 15);
        using var b = withBias ? RandomBf16([n], 16) : null;
        using var all = Tiled(x, w, b);
        using var last4 = Tiled(x.narrow(0, 2, 4), w, b);
        AssertSameBits(all.narrow(0, 2, 4), last4, "rows 2–5 alone");
        // The last 4 weight rows start a tile of their own: its first 3 outputs were 1 × 1 products in `all`.
        using var tailW = w.narrow(0, n - 4, 4).contiguous();
        using var tailB = b?.narrow(0, n - 4, 4).contiguous();
        using var tail = Tiled(x, tailW, tailB);
        AssertSameBits(all.narrow(1, n - 4, 4), tail, "the last output features as a tile");
        for (int row = 0; row < 6; row++)
        {
            using var one = Tiled(x.narrow(0, row, 1), w, b);
            AssertSameBits(all.narrow(0, row, 1), one, $"row {row} alone");
        }
    }

    /// <summary>
    /// Rounding in float32 makes the order of the lane additions visible only now and then in a bf16 result, so this
    /// test makes it decide the result: one 32-element chunk whose lanes hold 2³⁰, 1 and −2³⁰ (lanes 0, 1, 2; weights
    /// all 1). The documented tree adds lane 0 to lane 2 first and gives exactly 1; adding lanes 0 and 1 first loses
    /// the 1 (2³⁰ + 1 rounds to 2³⁰) and gives 0. Five identical rows against five identical weight rows run the 4 × 4
    /// block, the 4 × 1 block and the 1 × 1 product: each must give 1.
    /// </summary>
    [Fact]
    public void EveryTiledPathAddsTheLanesInOneOrder()
    {
        if (!Avx512F.IsSupported) return;
        using var _ = inference_mode();
        var row = new float[32];
        row[0] = 1 << 30; // lane 0 (even element 0)
        row[2] = 1;       // lane 1
        row[4] = -(1 << 30); // lane 2
        using var one = tensor(row, ScalarType.Float32);
        using var x = one.unsqueeze(0).expand(5, 32).contiguous().to_type(ScalarType.BFloat16);
        using var w = ones([5, 32], ScalarType.BFloat16);
        using var y = Tiled(x, w, null);
        using var values = y.to_type(ScalarType.Float32);
        Assert.All(values.data<float>().ToArray(), v => Assert.Equal(1f, v));
    }

    private static Tensor Tiled(Tensor x, Tensor w, Tensor? b) =>
        Bf16Linear.TryForward(x, w, b, threads: 1, maxRows: Bf16Linear.MaxRows, streamRows: 0)!;

    private static void AssertSameBits(Tensor a, Tensor b, string what)
    {
        using var scope = NewDisposeScope();
        Assert.Equal(a.shape, b.shape);
        // Widening to float32 is exact, so equal floats are equal bf16 values (the random inputs make no NaN).
        var differ = a.to_type(ScalarType.Float32).ne(b.to_type(ScalarType.Float32)).sum().item<long>();
        Assert.True(differ == 0, $"{what}: {differ} outputs differ");
    }

    [Fact]
    public void SplittingTilesAmongThreadsGivesTheSameBits()
    {
        if (!Avx512F.IsSupported) return;
        using var _ = inference_mode();
        long n = Bf16Linear.ParallelThreshold / 512 + 13; // above the threshold with K = 512, not divisible by 4 nor the workers
        using var x = RandomBf16([Bf16Linear.MaxRows - 1, 512], 17);
        using var w = RandomBf16([n, 512], 18);
        using var one = Bf16Linear.TryForward(x, w, null, threads: 1)!;
        using var three = Bf16Linear.TryForward(x, w, null, threads: 3)!;
        AssertSameBits(one, three, "3 workers");
        AssertCloseToExact(three, x, w, null, "tiled, 3 workers");
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

    [Theory, MemberData(nameof(ModelTests.Archs), MemberType = typeof(ModelTests))]
    public void BatchedBfloat16DecodeStepsStayCloseToReference(string arch)
    {
        // Five sequences decoding together: every projection and the lm_head get 5 rows, the tiled kernel's 4 × 4
        // blocks and a 4 × 1 block. Each row against the float64 reference model run on that sequence alone.
        int[][] prompts =
        [
            [1, 5, 17, 42, 8, 93, 3, 3, 60, 11], [2, 9, 14, 70, 33, 6, 81, 12, 4, 7], [50, 51, 52, 1, 1, 2, 90, 17, 5, 3],
            [8, 8, 8, 40, 41, 42, 43, 9, 10, 96], [77, 3, 21, 64, 5, 30, 2, 18, 19, 20],
        ];
        Assert.InRange(prompts.Length, Bf16Linear.StreamRows + 1, Bf16Linear.MaxRows);
        using var dir = new TempDir();
        using var model = TinyModels.SavedAndLoaded(arch, dir, ScalarType.BFloat16);
        var referenceModel = new ReferenceModel(dir.Path);
        var references = prompts.Select(p => referenceModel.Logits(p)).ToArray();
        double scale = references.SelectMany(r => r).SelectMany(r => r).Max(Math.Abs);
        using var _ = inference_mode();
        using var cache = model.NewCache();
        int start = prompts[0].Length - 4;
        using (var first = model.Forward(model.IdsTensor(prompts.Select(p => (IReadOnlyList<int>)p[..start]).ToList()), new ForwardArgs { Cache = cache })) { }
        for (int t = start; t < prompts[0].Length; t++)
        {
            using var step = model.Forward(model.IdsTensor(prompts.Select(p => (IReadOnlyList<int>)new[] { p[t] }).ToList()), new ForwardArgs { Cache = cache });
            for (int row = 0; row < prompts.Length; row++)
            {
                using var got = step.Logits[row, 0].to_type(ScalarType.Float64);
                using var expected = tensor(references[row][t], ScalarType.Float64);
                double diff = (got - expected).abs().max().item<double>();
                Assert.True(diff < 0.1 * scale, $"{arch}: row {row}, step at position {t}: max diff {diff} (scale {scale})");
            }
        }
    }
}
