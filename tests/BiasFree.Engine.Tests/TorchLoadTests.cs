using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests;

/// <summary>Guards the GLIBCXX_3.4.32 fix in Directory.Build.targets: if the shim is not patched, this fails at once.</summary>
public class TorchLoadTests
{
    [Fact]
    public void TorchSharpLoadsAndMultiplies()
    {
        using var a = tensor(new float[] { 1, 2, 3, 4 }, new long[] { 2, 2 });
        using var b = tensor(new float[] { 5, 6, 7, 8 }, new long[] { 2, 2 });
        using var c = matmul(a, b);
        Assert.Equal(new float[] { 19, 22, 43, 50 }, c.data<float>().ToArray());
    }
}
