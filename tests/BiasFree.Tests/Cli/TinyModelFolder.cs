using BiasFree.Engine.Models;
using BiasFree.Engine.Tokenization;
using TorchSharp;

namespace BiasFree.Tests.Cli;

/// <summary>A tiny random Llama in Hugging Face format (the engine tests' trained tokenizer, Llama-3 chat template).</summary>
internal static class TinyModelFolder
{
    public static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "BiasFree.slnx")))
            {
                return d.FullName;
            }
        }
        throw new InvalidOperationException("repository root not found");
    }

    /// <summary>Writes config.json, model.safetensors and the tokenizer files into <paramref name="folder"/> (created).</summary>
    public static string Create(string folder, long seed = 5)
    {
        folder = Directory.CreateDirectory(folder).FullName;
        foreach (var f in Directory.GetFiles(Path.Combine(RepoRoot(), "tests", "BiasFree.Engine.Tests", "Fixtures", "tokenizers", "trained")))
        {
            File.Copy(f, Path.Combine(folder, Path.GetFileName(f)));
        }
        var tok = HfTokenizer.FromFolder(folder);
        var config = new ModelConfig
        {
            ModelType = "llama", VocabSize = tok.VocabSize, HiddenSize = 32, IntermediateSize = 48, NumHiddenLayers = 1,
            NumAttentionHeads = 2, NumKeyValueHeads = 1, HeadDim = 16, RmsNormEps = 1e-5, RopeTheta = 10000, MaxPositionEmbeddings = 512,
            BosTokenId = 1, EosTokenIds = [tok.TokenToId("<|eot_id|>")!.Value],
        };
        using (var model = CausalLM.Create(config, torch.ScalarType.Float32, "cpu", seed: seed))
        {
            model.Save(folder);
        }
        return folder;
    }

    /// <summary>Removes the chat template from tokenizer_config.json, so that none can be detected.</summary>
    public static void RemoveChatTemplate(string folder)
    {
        var path = Path.Combine(folder, "tokenizer_config.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        json.Remove("chat_template");
        File.WriteAllText(path, json.ToJsonString());
    }
}
