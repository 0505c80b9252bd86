using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using BiasFree.Engine.Kernels;

namespace BiasFree.Engine.Tests.Kernels;

/// <summary><see cref="VectorExp"/> against Math.Exp in float64, over the range the kernels feed it and its edges.</summary>
public class VectorExpTests
{
    [Fact]
    public void IsWithinTwoFloatUlpsOfTheExactExponential()
    {
        if (!Avx512F.IsSupported) return;
        var rng = new Random(3);
        var inputs = Enumerable.Range(0, 4096).Select(_ => (float)(rng.NextDouble() * 180 - 95))
            .Concat([0f, -0f, 1f, -1f, 88.5f, -87.3f, 1e-8f, -1e-8f, 0.34657f, -0.34657f]).ToArray();
        double worst = 0;
        for (int i = 0; i + 16 <= inputs.Length; i += 16)
        {
            var got = VectorExp.Exp(Vector512.Create(inputs, i));
            for (int l = 0; l < 16; l++)
            {
                double exact = Math.Exp(inputs[i + l]);
                double ulp = Math.Max(MathF.BitIncrement((float)exact) - (float)exact, float.Epsilon);
                worst = Math.Max(worst, Math.Abs(got.GetElement(l) - exact) / ulp);
            }
        }
        Assert.True(worst <= 2, $"off by {worst:F2} float32 ulps");
    }

    [Fact]
    public void HandlesTheEdges()
    {
        if (!Avx512F.IsSupported) return;
        var got = VectorExp.Exp(Vector512.Create([float.NegativeInfinity, float.PositiveInfinity, float.NaN, -200f, 200f, 0f,
            -1000f, 1000f, 0, 0, 0, 0, 0, 0, 0, 0]));
        Assert.Equal(0f, got.GetElement(0));
        Assert.Equal(float.PositiveInfinity, got.GetElement(1));
        Assert.True(float.IsNaN(got.GetElement(2)));
        Assert.Equal(0f, got.GetElement(3));
        Assert.Equal(float.PositiveInfinity, got.GetElement(4));
        Assert.Equal(1f, got.GetElement(5));
        Assert.Equal(0f, got.GetElement(6));
        Assert.Equal(float.PositiveInfinity, got.GetElement(7));
    }
}
