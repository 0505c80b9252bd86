using System.Text.Json;
using BiasFree.Engine.Tokenization;

namespace BiasFree.Engine.Tests.Tokenization;

/// <summary>
/// The C#-side inputs of the oracle fixtures are reproducible: training on corpus.txt gives the committed
/// trained/ folder byte for byte, and chat_templates.json holds our Jinja sources. With
/// BIASFREE_REGEN_FIXTURES=1 these tests rewrite them instead (then run tools/oracle/make-expected.mjs).
/// </summary>
public sealed class FixtureSourceTests
{
    [Fact]
    public void TrainedFixture_IsReproducedByTrainer()
    {
        var bpe = Fixtures.TrainFixture(Fixtures.Path_("corpus.txt"));
        if (Fixtures.Regenerate)
        {
            TokenizerJsonWriter.Write(Path.Combine(Fixtures.SourceDir, "trained"), bpe, Fixtures.TrainedWriteOptions);
            return;
        }
        Assert.Equal(File.ReadAllBytes(Fixtures.Path_("trained", "tokenizer.json")), TokenizerJsonWriter.TokenizerJson(bpe, Fixtures.TrainedWriteOptions));
        Assert.Equal(File.ReadAllBytes(Fixtures.Path_("trained", "tokenizer_config.json")), TokenizerJsonWriter.TokenizerConfigJson(bpe, Fixtures.TrainedWriteOptions));
    }

    [Fact]
    public void ChatTemplateSources_MatchFixture()
    {
        var sources = new Dictionary<string, string>
        {
            ["llama3"] = ChatTemplate.Llama3.JinjaSource,
            ["chatml"] = ChatTemplate.ChatML.JinjaSource,
            ["qwen2"] = ChatTemplate.Qwen2.JinjaSource,
            ["mistral"] = ChatTemplate.Mistral.JinjaSource,
        };
        if (Fixtures.Regenerate)
        {
            File.WriteAllText(Path.Combine(Fixtures.SourceDir, "chat_templates.json"), JsonSerializer.Serialize(sources, new JsonSerializerOptions { WriteIndented = true }) + "\n");
            return;
        }
        var committed = JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(Fixtures.Path_("chat_templates.json")))!;
        Assert.Equal(committed, sources);
    }
}
