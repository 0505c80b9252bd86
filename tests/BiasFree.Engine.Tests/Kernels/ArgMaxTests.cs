using BiasFree.Engine.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests.Kernels;

/// <summary>The greedy choice (<see cref="ArgMax"/>) against torch.argmax, including ties, NaN and the fallbacks.</summary>
public class ArgMaxTests
{
    private static long[] TorchArgMax(Tensor t)
    {
        using var a = t.argmax(-1).reshape(-1);
        return a.data<long>().ToArray();
    }

    [Theory]
    [InlineData(ScalarType.Float32, 1, 32000)]
    [InlineData(ScalarType.Float32, 5, 37)]      // a tail after two vectors
    [InlineData(ScalarType.BFloat16, 8, 1000)]
    [InlineData(ScalarType.BFloat16, 3, 7)]      // shorter than one vector
    public void MatchesTorchOnRandomLogits(ScalarType dtype, int rows, int vocab)
    {
        using var g = new Generator(11);
        using var f = randn([rows, vocab], generator: g);
        using var logits = f.to_type(dtype); // bf16 rounding makes ties likely: the first one must win
        Assert.Equal(TorchArgMax(logits), ArgMax.LastDim(logits));
    }

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void FirstOfEqualMaximaAndFirstNaNWin(ScalarType dtype)
    {
        var rows = new float[4][];
        rows[0] = Enumerable.Repeat(1f, 40).ToArray();                          // all equal: index 0
        rows[1] = Enumerable.Range(0, 40).Select(i => i is 21 or 35 ? 5f : 0f).ToArray(); // two maxima: the first
        rows[2] = Enumerable.Range(0, 40).Select(i => i is 19 or 33 ? float.NaN : i).ToArray(); // NaN beats everything
        rows[3] = Enumerable.Repeat(float.NegativeInfinity, 40).ToArray();     // all -inf: index 0
        using var f = tensor(rows.SelectMany(r => r).ToArray(), [4, 40]);
        using var logits = f.to_type(dtype);
        long[] expected = [0, 21, 19, 0];
        Assert.Equal(expected, TorchArgMax(logits));
        Assert.Equal(expected, ArgMax.LastDim(logits));
    }

    [Fact]
    public void NonContiguousAndOtherDtypesFallBackToTorch()
    {
        using var g = new Generator(12);
        using var f = randn([50, 6], generator: g);
        using var strided = f.t(); // [6, 50], rows not contiguous
        Assert.Equal(TorchArgMax(strided), ArgMax.LastDim(strided));
        using var f64 = f.to_type(ScalarType.Float64);
        Assert.Equal(TorchArgMax(f64), ArgMax.LastDim(f64));
        using var threeD = f.reshape(5, 10, 6);
        Assert.Equal(TorchArgMax(threeD), ArgMax.LastDim(threeD));
    }
}
