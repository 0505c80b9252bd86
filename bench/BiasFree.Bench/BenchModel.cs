using BiasFree.Engine.Models;

/// <summary>The random ~125M-parameter Llama every engine benchmark measures (GPT-3 Small's width with Llama's blocks).</summary>
internal static class BenchModel
{
    /// <summary>12 layers, hidden 768, MLP 2048, 12 heads (4 KV heads), vocabulary 32k; or fewer layers / a smaller vocabulary.</summary>
    public static ModelConfig Config(int layers = 12, int vocabulary = 32000) => new()
    {
        ModelType = "llama",
        VocabSize = vocabulary,
        HiddenSize = 768,
        IntermediateSize = 2048,
        NumHiddenLayers = layers,
        NumAttentionHeads = 12,
        NumKeyValueHeads = 4,
        HeadDim = 64,
        RmsNormEps = 1e-5,
        MaxPositionEmbeddings = 4096,
    };
}
