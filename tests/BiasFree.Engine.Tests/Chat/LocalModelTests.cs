using System.Text.Json.Nodes;
using BiasFree.Engine.Chat;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using BiasFree.Engine.Tokenization;
using Microsoft.Extensions.AI;
using TorchSharp;

namespace BiasFree.Engine.Tests.Chat;

/// <summary>
/// A Hugging Face folder made of a real trained tokenizer (fixture) and a tiny random Llama written with the real
/// writer, loaded through <see cref="LocalModel"/> exactly as the CLI loads a user's model folder.
/// </summary>
public class LocalModelTests
{
    private static TempDir MakeFolder(bool withTemplate)
    {
        var dir = new TempDir();
        var src = Path.Combine(AppContext.BaseDirectory, "Fixtures", "tokenizers", "trained");
        foreach (var f in Directory.GetFiles(src)) File.Copy(f, dir.File(Path.GetFileName(f)));
        if (!withTemplate)
        {
            var cfg = JsonNode.Parse(File.ReadAllText(dir.File("tokenizer_config.json")))!.AsObject();
            cfg.Remove("chat_template");
            File.WriteAllText(dir.File("tokenizer_config.json"), cfg.ToJsonString());
        }
        var tok = HfTokenizer.FromFolder(dir.Path);
        var config = TinyModels.Config("llama") with { VocabSize = tok.VocabSize, EosTokenIds = [tok.TokenToId("<|eot_id|>")!.Value] };
        using var m = CausalLM.Create(config, torch.ScalarType.Float32, "cpu", seed: 3);
        m.Save(dir.Path);
        return dir;
    }

    [Fact]
    public async Task LoadedFolderAnswersLikeDirectGreedyGeneration()
    {
        using var dir = MakeFolder(withTemplate: true);
        using var client = LocalModel.Load(dir.Path, new LocalModelOptions { ModelId = "tiny" });
        List<ChatMessage> messages = [new(ChatRole.System, "You are a helpful assistant."), new(ChatRole.User, "Who was late? 'The boy' or 'the girl'?")];
        var response = await client.GetResponseAsync(messages, new ChatOptions { Temperature = 0, MaxOutputTokens = 6 }, TestContext.Current.CancellationToken);

        // Independent path: render with the llama3 template, encode, greedy-generate, decode.
        var tok = HfTokenizer.FromFolder(dir.Path);
        var prompt = ChatTemplate.Llama3.Render(messages, addGenerationPrompt: true);
        var ids = tok.Encode(prompt, addSpecialTokens: false);
        var result = client.Model.Generate([ids], new GenerationOptions { MaxNewTokens = 6, EosTokenIds = [tok.TokenToId("<|eot_id|>")!.Value] }, TestContext.Current.CancellationToken)[0];
        Assert.Equal(tok.Decode(result.Tokens, skipSpecialTokens: true), response.Text);
        Assert.Equal("tiny", response.ModelId);
        Assert.Equal(ids.Count, response.Usage!.InputTokenCount);
    }

    [Fact]
    public void MissingTemplateIsAClearErrorAndCanBeOverridden()
    {
        using var dir = MakeFolder(withTemplate: false);
        var ex = Assert.Throws<ChatTemplateException>(() => LocalModel.Load(dir.Path));
        Assert.Contains("--chat-template", ex.Message);
        using var client = LocalModel.Load(dir.Path, new LocalModelOptions { ChatTemplate = "llama3" });
        Assert.Equal("llama3", ((ChatTemplateFormatter)client.GetService(typeof(ChatTemplateFormatter))!).Template.Name);
    }

    [Fact]
    public void NotAModelFolderAndBadDTypeAreRejected()
    {
        using var dir = new TempDir();
        Assert.Throws<DirectoryNotFoundException>(() => LocalModel.Load(dir.Path));
        Assert.Throws<ArgumentException>(() => LocalModel.ParseDType("float16x"));
        Assert.Equal(torch.ScalarType.BFloat16, LocalModel.ParseDType("bf16"));
    }
}
