using BiasFree.Engine.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests;

/// <summary>
/// The engine never hands TorchSharp a Scalar that nothing keeps alive (<see cref="ScalarLifetimeScan"/>; README's main
/// job once lost 16 probes to one freed under RMSNorm's <c>add_(eps)</c>). A collection has to land inside the native
/// call to show the fault, so it cannot be provoked reliably at run time; the rule is checked in the compiled IL instead.
/// </summary>
public class UnrootedScalarTests
{
    private static string TorchSharpPath => typeof(torch).Assembly.Location;

    [Fact]
    public void TheEngineHandsTorchSharpOnlyScalarsThatStayReferenced()
    {
        var sites = ScalarLifetimeScan.Find(TorchSharpPath, typeof(CausalLM).Assembly.Location);

        Assert.True(sites.Count == 0, $"{sites.Count} places pass a Scalar nothing keeps alive:\n{string.Join("\n", sites)}");
    }

    [Fact]
    public void TheScanReportsEachUnsafeSampleAndNoSafeOne()
    {
        var flagged = ScalarLifetimeScan.Find(TorchSharpPath, typeof(Samples).Assembly.Location)
            .Where(s => s.Method.StartsWith(typeof(Samples).FullName + "::", StringComparison.Ordinal))
            .Select(s => s.Method[(s.Method.IndexOf("::", StringComparison.Ordinal) + 2)..s.Method.IndexOf('(', StringComparison.Ordinal)])
            .Distinct()
            .Order()
            .ToList();

        Assert.Equal(
            [nameof(Samples.UnsafeAddition), nameof(Samples.UnsafeConversion), nameof(Samples.UnsafeDoubleOperator),
             nameof(Samples.UnsafeLocalNotKept), nameof(Samples.UnsafeRangeFromStop)],
            flagged);
    }

    [Fact]
    public void TorchSharpsAdditionWithoutAlphaIsAMakerAndTheProductOfTwoTensorsIsNot()
    {
        var makers = ScalarLifetimeScan.ScalarMakers(TorchSharpPath);

        Assert.Contains("TorchSharp.torch+Tensor::op_Addition(TorchSharp.torch+Tensor,TorchSharp.torch+Tensor)", makers);
        Assert.Contains("TorchSharp.torch+Tensor::add(TorchSharp.torch+Tensor)", makers);
        Assert.DoesNotContain("TorchSharp.torch+Tensor::add(TorchSharp.torch+Tensor,TorchSharp.Scalar)", makers);
        Assert.DoesNotContain("TorchSharp.torch+Tensor::op_Multiply(TorchSharp.torch+Tensor,TorchSharp.torch+Tensor)", makers);
    }

    /// <summary>What the scan must and must not report (compiled here, never run).</summary>
    internal static class Samples
    {
        public static Tensor UnsafeDoubleOperator(Tensor x) => x * 0.5;

        public static Tensor UnsafeAddition(Tensor a, Tensor b) => a + b;

        public static Tensor UnsafeConversion(Tensor x) => x.pow(3);

        public static Tensor UnsafeLocalNotKept(Tensor x)
        {
            Scalar three = 3;
            var y = x.pow(three);
            return y.neg();
        }

        public static Tensor UnsafeRangeFromStop(Scalar stop) => arange(stop);

        public static Tensor SafeUsingLocal(Tensor x)
        {
            using Scalar three = 3;
            return x.pow(three);
        }

        public static Tensor SafeKeptAlive(Tensor x)
        {
            Scalar three = 3;
            var y = x.pow(three);
            GC.KeepAlive(three);
            return y;
        }

        public static Tensor SafeRootedConstant(Tensor x) => x.pow(RootedScalars.Two);

        public static Tensor SafeAdditionWithAlpha(Tensor a, Tensor b) => a.add(b, RootedScalars.One);

        public static Tensor SafeProduct(Tensor a, Tensor b) => a * b;
    }
}
