using BiasFree.Engine.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests;

/// <summary>Tiny random checkpoints written in real HF format (config.json + model.safetensors) and loaded back.</summary>
public static class TinyModels
{
    public static ModelConfig Config(string arch) => arch switch
    {
        "llama" => Base with
        {
            ModelType = "llama",
            RopeScaling = new RopeScaling("llama3", 8, 1, 4, 32), // head_dim 16 puts frequencies in all three bands
        },
        "qwen2" => Base with { ModelType = "qwen2", QkvBias = true, TieWordEmbeddings = true },
        "mistral" => Base with { ModelType = "mistral", SlidingWindow = 5 },
        _ => throw new ArgumentException(arch),
    };

    private static readonly ModelConfig Base = new()
    {
        VocabSize = 97,
        HiddenSize = 64,
        IntermediateSize = 96,
        NumHiddenLayers = 2,
        NumAttentionHeads = 4,
        NumKeyValueHeads = 2,
        HeadDim = 16,
        RmsNormEps = 1e-5,
        RopeTheta = 10000,
        MaxPositionEmbeddings = 256,
        InitializerRange = 0.15, // larger than HF's 0.02 so attention is peaked and errors show
        BosTokenId = 1,
        EosTokenIds = [2],
    };

    /// <summary>
    /// Random model saved with the real writer and loaded with the real loader. <paramref name="ropeTheta"/> replaces the
    /// default 10000, which every tiny model would otherwise share (real Llama-3 and Qwen2 use 500000 and 1000000).
    /// </summary>
    public static CausalLM SavedAndLoaded(string arch, TempDir dir, ScalarType dtype = ScalarType.Float32, long seed = 1, double? ropeTheta = null)
    {
        var config = ropeTheta is { } theta ? Config(arch) with { RopeTheta = theta } : Config(arch);
        using (var m = CausalLM.Create(config, ScalarType.Float32, "cpu", seed))
        {
            RandomizeBiasesAndNorms(m, seed);
            m.Save(dir.Path);
        }
        return CausalLM.Load(dir.Path, dtype);
    }

    /// <summary>HF init leaves biases 0 and norms 1, which would hide bugs in their handling.</summary>
    public static void RandomizeBiasesAndNorms(CausalLM m, long seed)
    {
        using var gen = new torch.Generator((ulong)seed + 100);
        using var _ = no_grad();
        foreach (var (name, p) in m.named_parameters())
        {
            using var scope = NewDisposeScope();
            if (name.EndsWith(".bias", StringComparison.Ordinal)) p.copy_(normal(0, 0.1, p.shape, generator: gen));
            else if (name.EndsWith("norm.weight", StringComparison.Ordinal)) p.copy_(normal(1, 0.1, p.shape, generator: gen));
        }
    }
}
