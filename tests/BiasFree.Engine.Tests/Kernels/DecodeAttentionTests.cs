using System.Runtime.Intrinsics.X86;
using BiasFree.Engine.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests.Kernels;

/// <summary>
/// The decode attention kernel (<see cref="DecodeAttention"/>) against attention computed in float64 from the same
/// values, with the layouts the model hands it (strided queries, cache views), grouped heads, masks; and the properties
/// the engine relies on: a row's result does not depend on the other rows, on masked positions before its keys, nor on
/// the thread split.
/// </summary>
public class DecodeAttentionTests
{
    /// <summary>softmax(q kᵀ/√D) v in float64, query head h on KV head h / (H / KVH), masked keys left out.</summary>
    private static Tensor Reference(Tensor q, Tensor k, Tensor v, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        long b = q.shape[0], heads = q.shape[1], d = q.shape[3], kvHeads = k.shape[1];
        var q64 = q.to_type(ScalarType.Float64);
        var k64 = k.to_type(ScalarType.Float64).repeat_interleave(heads / kvHeads, dim: 1);
        var v64 = v.to_type(ScalarType.Float64).repeat_interleave(heads / kvHeads, dim: 1);
        var scores = q64.matmul(k64.transpose(2, 3)) / Math.Sqrt(d);
        if (mask is not null) scores = scores.masked_fill(mask.logical_not(), double.NegativeInfinity);
        return scores.softmax(-1).matmul(v64).MoveToOuterDisposeScope();
    }

    /// <summary>Queries laid out as the model's: [B, 1, H + 2·KVH, D] narrowed to the H query heads, transposed.</summary>
    private static Tensor Queries(long b, long heads, long kvHeads, long d, ScalarType dtype, Generator g) =>
        randn([b, 1, heads + 2 * kvHeads, d], generator: g).to_type(dtype).narrow(2, 0, heads).transpose(1, 2);

    /// <summary>A cache [B, KVH, capacity, D] viewed up to <paramref name="length"/> positions, as KVCache.Append returns it.</summary>
    private static Tensor Cache(long b, long kvHeads, long length, long d, ScalarType dtype, Generator g) =>
        (randn([b, kvHeads, length + 7, d], generator: g) * 2).to_type(dtype).narrow(2, 0, length);

    [Theory]
    [InlineData(ScalarType.BFloat16, 3, 12, 4, 64, 48, false)]
    [InlineData(ScalarType.BFloat16, 2, 8, 8, 128, 5, true)]    // one query head per KV head; fewer keys than a group of 16
    [InlineData(ScalarType.BFloat16, 4, 6, 2, 32, 37, true)]    // 16-key groups and a tail
    [InlineData(ScalarType.Float32, 3, 12, 4, 64, 48, true)]
    [InlineData(ScalarType.Float32, 1, 4, 1, 96, 1, false)]     // one key; D of three blocks (one pair and a single block)
    public void MatchesFloat64Attention(ScalarType dtype, int batch, int heads, int kvHeads, int d, int length, bool masked)
    {
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        using var g = new Generator(11);
        var q = Queries(batch, heads, kvHeads, d, dtype, g);
        var k = Cache(batch, kvHeads, length, d, dtype, g);
        var v = Cache(batch, kvHeads, length, d, dtype, g);
        // Each row keeps a different set of keys, always including the last (as the engine's masks do).
        Tensor? mask = null;
        if (masked)
        {
            mask = rand([batch, 1, 1, length], generator: g).gt(0.4);
            using Scalar yes = true;
            mask.narrow(3, length - 1, 1).fill_(yes);
        }
        var y = DecodeAttention.TryAttend(q, k, v, mask);
        if (!Avx512F.IsSupported)
        {
            Assert.Null(y); // the engine then takes SDPA, which the model tests cover
            return;
        }
        Assert.NotNull(y);
        Assert.Equal(new long[] { batch, heads, 1, d }, y.shape);
        Assert.Equal(dtype, y.dtype);
        var exact = Reference(q, k, v, mask);
        var got = y.to_type(ScalarType.Float64);
        // The output is a convex combination of value rows: float32 work errs by a few float32 ulps of the largest
        // |v|, and bf16 adds one rounding of the result (half a bf16 ulp, ≤ 2⁻⁸·|exact|).
        double vmax = v.to_type(ScalarType.Float64).abs().max().item<double>();
        double rounding = dtype == ScalarType.BFloat16 ? Math.Pow(2, -8) : 0;
        var excess = (got - exact).abs() - exact.abs() * rounding - vmax * 1e-5;
        double worst = excess.max().item<double>();
        Assert.True(worst <= 0, $"an output exceeds the bound by {worst}");
    }

    [Fact]
    public void ARowGivesTheSameBitsAloneAfterMaskedPositionsAndOnAnyThreadSplit()
    {
        if (!Avx512F.IsSupported) return;
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        using var g = new Generator(5);
        const int batch = 4, heads = 6, kvHeads = 2, d = 64, length = 40, padding = 9;
        var q = Queries(batch, heads, kvHeads, d, ScalarType.BFloat16, g);
        var k = Cache(batch, kvHeads, length, d, ScalarType.BFloat16, g);
        var v = Cache(batch, kvHeads, length, d, ScalarType.BFloat16, g);
        var all = DecodeAttention.TryAttend(q, k, v, null, threads: 1)!;

        // The same batch split among 3 workers.
        Assert.True(DecodeAttention.TryAttend(q, k, v, null, threads: 3)!.equal(all).all().item<bool>());

        for (int row = 0; row < batch; row++)
        {
            // Alone.
            var alone = DecodeAttention.TryAttend(q.narrow(0, row, 1), k.narrow(0, row, 1), v.narrow(0, row, 1), null)!;
            Assert.True(alone.equal(all.narrow(0, row, 1)).all().item<bool>(), $"row {row} alone differs");

            // Behind masked positions holding other values (a left-padded row): 9 garbage keys/values first.
            var kPadded = cat([randn([1, kvHeads, padding, d], generator: g).to_type(ScalarType.BFloat16), k.narrow(0, row, 1)], 2);
            var vPadded = cat([randn([1, kvHeads, padding, d], generator: g).to_type(ScalarType.BFloat16), v.narrow(0, row, 1)], 2);
            var mask = ones([1, 1, 1, padding + length], ScalarType.Bool);
            using Scalar no = false;
            mask.narrow(3, 0, padding).fill_(no);
            var padded = DecodeAttention.TryAttend(q.narrow(0, row, 1), kPadded, vPadded, mask)!;
            Assert.True(padded.equal(all.narrow(0, row, 1)).all().item<bool>(), $"row {row} behind masked positions differs");
        }
    }

    [Fact]
    public void DeclinesWhatItDoesNotHandle()
    {
        using var scope = NewDisposeScope();
        using var g = new Generator(3);
        var k = Cache(1, 2, 8, 64, ScalarType.BFloat16, g);
        var v = Cache(1, 2, 8, 64, ScalarType.BFloat16, g);
        using (inference_mode())
        {
            // Two queries per row (prefill), D not a multiple of 32, mixed dtypes, float64.
            Assert.Null(DecodeAttention.TryAttend(randn([1, 4, 2, 64]).to_type(ScalarType.BFloat16), k, v, null));
            Assert.Null(DecodeAttention.TryAttend(randn([1, 4, 1, 48]).to_type(ScalarType.BFloat16), Cache(1, 2, 8, 48, ScalarType.BFloat16, g), Cache(1, 2, 8, 48, ScalarType.BFloat16, g), null));
            Assert.Null(DecodeAttention.TryAttend(randn([1, 4, 1, 64]), k, v, null));
            Assert.Null(DecodeAttention.TryAttend(randn([1, 4, 1, 64], ScalarType.Float64), k.to_type(ScalarType.Float64), v.to_type(ScalarType.Float64), null));
        }
        // Gradients on: autograd needs SDPA's graph.
        Assert.Null(DecodeAttention.TryAttend(randn([1, 4, 1, 64]).to_type(ScalarType.BFloat16), k, v, null));
    }
}
