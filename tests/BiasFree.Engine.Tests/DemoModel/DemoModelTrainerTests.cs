using BiasFree.Engine.DemoModel;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using BiasFree.Engine.Tokenization;

namespace BiasFree.Engine.Tests.DemoModel;

public class DemoModelTrainerTests
{
    private static DemoModelOptions Tiny(string dir) => new()
    {
        OutputDir = dir,
        Seed = 5,
        Steps = 12,
        BatchSize = 4,
        LearningRate = 1e-2,
        WarmupSteps = 2,
        VocabSize = 320,
        TokenizerCorpusSize = 150,
        HiddenSize = 32,
        Layers = 2,
        Heads = 2,
        KeyValueHeads = 1,
        IntermediateSize = 64,
        MaxPositions = 256,
        MaxSequenceLength = 128,
        // No dialogues or Self-Help rewrites (the long kinds), so the run stays fast.
        Corpus = new DemoCorpusOptions { DialogueWeight = 0, SelfHelpRewriteWeight = 0 },
    };

    [Fact]
    public async Task TinyRunReducesLoss_IsBitReproducible_AndSavesALoadableHfFolder()
    {
        using var a = new TempDir();
        using var b = new TempDir();
        var reports = new List<DemoTrainProgress>();
        var ra = await DemoModelTrainer.TrainAsync(Tiny(a.Path), new SyncProgress(reports.Add), TestContext.Current.CancellationToken);
        var rb = await DemoModelTrainer.TrainAsync(Tiny(b.Path), null, TestContext.Current.CancellationToken);

        Assert.Equal(12, ra.Losses.Count);
        Assert.True(ra.Losses.Skip(9).Average() < ra.Losses.Take(3).Average() - 0.5, $"loss {string.Join(", ", ra.Losses.Select(l => l.ToString("F2")))}");
        Assert.Contains(reports, p => p.Phase == "train" && p.Step == 12);
        Assert.Equal(ra.Losses, rb.Losses);
        Assert.Equal(12, ra.StepsCompleted);

        // A run stopped after 5 of the 12 planned steps repeats the full run's first 5 steps exactly (same schedule).
        using var c = new TempDir();
        var rc = await DemoModelTrainer.TrainAsync(Tiny(c.Path) with { StopAfterSteps = 5 }, null, TestContext.Current.CancellationToken);
        Assert.Equal(5, rc.StepsCompleted);
        Assert.Equal(ra.Losses.Take(5), rc.Losses);
        Assert.Contains("\"steps_completed\": 5", File.ReadAllText(c.File("demo_training.json")), StringComparison.Ordinal);
        foreach (var f in new[] { "model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
            Assert.Equal(File.ReadAllBytes(a.File(f)), File.ReadAllBytes(b.File(f)));
        Assert.True(File.Exists(a.File("demo_training.json")));

        // Real loaders.
        var tok = HfTokenizer.FromFolder(a.Path);
        var config = ModelConfig.Load(a.Path);
        Assert.Equal("llama", config.ModelType);
        Assert.Equal(tok.VocabSize, config.VocabSize);
        Assert.Equal(320, tok.VocabSize);
        Assert.Equal(ChatTemplateFamily.ChatML, ChatTemplate.For(tok).Family);
        using var model = CausalLM.Load(a.Path);
        Assert.Equal(ra.ParameterCount, model.ParameterCount());
        using var client = BiasFree.Engine.DemoModel.DemoModel.CreateChatClient(a.Path);
        var ct = TestContext.Current.CancellationToken;
        List<Microsoft.Extensions.AI.ChatMessage> who = [new(Microsoft.Extensions.AI.ChatRole.User, "Who?")];
        Task<Microsoft.Extensions.AI.ChatResponse> Ask(float? temperature, long? seed) =>
            client.GetResponseAsync(who, new Microsoft.Extensions.AI.ChatOptions { MaxOutputTokens = 4, Temperature = temperature, Seed = seed }, ct);

        // Temperature 0: the greedy continuation of the ChatML prompt, as the saved pieces compute it.
        var prompt = tok.Encode(ChatTemplate.ChatML.Render([("user", "Who?")], addGenerationPrompt: true), addSpecialTokens: false);
        var greedy = model.Generate([prompt], new GenerationOptions { MaxNewTokens = 4, EosTokenIds = [.. tok.EosIds.Concat(model.EosTokenIds)] }, ct)[0];
        Assert.Equal(tok.Decode(greedy.Tokens), (await Ask(0, null)).Text);
        // No temperature: the demo client samples (at 1.0), reproducibly per seed, so seeds give different replies.
        var sampled = await Ask(null, 1);
        Assert.Equal(sampled.Text, (await Ask(null, 1)).Text);
        var replies = new HashSet<string>(StringComparer.Ordinal);
        for (int seed = 1; seed <= 8; seed++) replies.Add((await Ask(null, seed)).Text);
        Assert.True(replies.Count > 1, $"8 seeds sampled one reply: '{sampled.Text}'");
        Assert.InRange((int)sampled.Usage!.OutputTokenCount!, 1, 4);
    }

    [Fact]
    public void EncodingMatchesTheWholeRenderedConversation_AndMarksOnlyAssistantTokens()
    {
        var corpus = new DemoCorpus(new DemoCorpusOptions { Seed = 3, DialogueWeight = 1, JudgeWeight = 1, SelfHelpRewriteWeight = 1 });
        var convs = corpus.Generate(60);
        var bpe = BpeTrainer.Train(convs.SelectMany(c => c.Messages.Select(m => m.Content)), 600, DemoModelTrainer.SpecialTokens);
        using var dir = new TempDir();
        TokenizerJsonWriter.Write(dir.Path, bpe, new TokenizerWriteOptions { EosToken = "<|im_end|>", PadToken = "<|endoftext|>" });
        var tok = HfTokenizer.FromFolder(dir.Path);
        foreach (var c in convs)
        {
            var e = DemoModelTrainer.Encode(tok, c.Messages);
            var full = tok.Encode(ChatTemplate.ChatML.Render(c.Messages.Select(m => (m.Role, m.Content)).ToList(), false), addSpecialTokens: false);
            Assert.Equal(full.Take(e.Ids.Length), e.Ids); // full ends with one more "\n"
            var targetText = tok.Decode(e.Ids.Where((_, i) => e.Targets[i]), skipSpecialTokens: false);
            Assert.Equal(string.Concat(c.Messages.Where(m => m.Role == "assistant").Select(m => m.Content + "<|im_end|>")), targetText);
        }
    }

    private sealed class SyncProgress(Action<DemoTrainProgress> report) : IProgress<DemoTrainProgress>
    {
        public void Report(DemoTrainProgress value) => report(value);
    }
}
