using BiasFree.Engine.Safetensors;
using TorchSharp;

namespace BiasFree.Tests.Cli;

/// <summary>Bit-for-bit comparison of the weight files of two trained folders (a straight run against a killed and resumed one).</summary>
public static class SameWeights
{
    /// <summary>Asserts that every named file holds the same tensor names and identical values in both folders.</summary>
    public static void Assert(string expectedDir, string actualDir, params string[] files)
    {
        foreach (var file in files)
        {
            using var a = SafetensorsFile.Open(Path.Combine(expectedDir, file));
            using var b = SafetensorsFile.Open(Path.Combine(actualDir, file));
            Xunit.Assert.Equal(a.Names.Order(), b.Names.Order());
            foreach (var name in a.Names)
            {
                using var x = a.Read(name, torch.ScalarType.Float32);
                using var y = b.Read(name, torch.ScalarType.Float32);
                Xunit.Assert.True(x.equal(y).all().item<bool>(), $"{file}: {name} differs");
            }
        }
    }
}
