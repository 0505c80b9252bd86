using System.Text.Json;
using BiasFree.Engine.Tokenization;

namespace BiasFree.Engine.Tests.Tokenization;

/// <summary>Paths of the committed tokenizer fixtures and the training recipe of the "trained" one.</summary>
internal static class Fixtures
{
    /// <summary>Set to 1 to rewrite the C#-generated fixtures (trained tokenizer, chat template sources) in the source tree.</summary>
    public const string RegenVariable = "BIASFREE_REGEN_FIXTURES";

    public static bool Regenerate => Environment.GetEnvironmentVariable(RegenVariable) == "1";

    public static string Dir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "tokenizers");

    public static string Path_(params string[] parts) => Path.Combine([Dir, .. parts]);

    public static string SourceDir
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            {
                if (File.Exists(Path.Combine(d.FullName, "BiasFree.slnx"))) return Path.Combine(d.FullName, "tests", "BiasFree.Engine.Tests", "Fixtures", "tokenizers");
            }
            throw new InvalidOperationException("repository root not found");
        }
    }

    public static readonly string[] TrainedSpecials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"];

    public const int TrainedVocabSize = 700;

    public static TrainedBpe TrainFixture(string corpusPath) =>
        BpeTrainer.Train(File.ReadLines(corpusPath), TrainedVocabSize, TrainedSpecials);

    public static TokenizerWriteOptions TrainedWriteOptions => new()
    {
        BosToken = "<|begin_of_text|>",
        EosToken = "<|eot_id|>",
        PadToken = "<|end_of_text|>",
        AddBosToken = true,
        ChatTemplate = ChatTemplate.Llama3.JinjaSource,
    };

    public static JsonElement ReadJson(params string[] parts) => JsonDocument.Parse(File.ReadAllBytes(Path_(parts))).RootElement;
}
