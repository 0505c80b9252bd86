using BiasFree.Engine.DemoModel;
using BiasFree.Engine.Models;
using BiasFree.Engine.Tokenization;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Scoring;
using Demo = BiasFree.Engine.DemoModel.DemoModel;

namespace BiasFree.Engine.Tests.DemoModel;

/// <summary>Checks on the committed models/demo folder (found via <see cref="Demo.DefaultPath"/> from the test binaries).</summary>
public class CommittedDemoModelTests
{
    /// <summary>Injected rate of the committed model (models/demo/README.md) and the BFS tolerance the tests allow.</summary>
    private const double Rate = 0.4, Tolerance = 0.08;

    [Fact]
    public void DefaultPathFindsTheCommittedModel_UnderThirtyMegabytes()
    {
        var path = Demo.Find();
        Assert.NotNull(path);
        Assert.True(Demo.Exists(path), path);
        long bytes = Directory.EnumerateFiles(path!, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        Assert.True(bytes < 30L * 1024 * 1024, $"{bytes} bytes");
        Assert.True(File.Exists(Path.Combine(path!, "README.md")));
    }

    [Fact]
    public void SavedFolderLoadsWithTheRealLoaders()
    {
        var path = Demo.DefaultPath;
        var config = ModelConfig.Load(path);
        var tok = HfTokenizer.FromFolder(path);
        var gen = GenerationConfig.Load(path);
        Assert.Equal("llama", config.ModelType);
        Assert.Equal(tok.VocabSize, config.VocabSize);
        Assert.Equal(config.HiddenSize / config.NumAttentionHeads, config.HeadDim);
        Assert.True(config.MaxPositionEmbeddings >= 512);
        int imEnd = tok.TokenToId("<|im_end|>")!.Value;
        Assert.Contains(imEnd, tok.EosIds);
        Assert.Contains(imEnd, config.EosTokenIds);
        Assert.NotNull(gen);
        Assert.Equal(1.0, gen!.Temperature);
        Assert.Equal(ChatTemplateFamily.ChatML, ChatTemplate.For(tok).Family);

        // Token ids round trip, including text the corpus never had.
        foreach (var text in new[] { "Who was too slow to do the job well? 'The retiree' or 'The teenager'?", "Zoë's café — 2026, naïve 😀 résumé\n\tend" })
        {
            var ids = tok.Encode(text, addSpecialTokens: false);
            Assert.Equal(text, tok.Decode(ids));
            Assert.All(ids, id => Assert.InRange(id, 0, config.VocabSize - 1));
        }
        var rendered = ChatTemplate.For(tok).Render([("system", "You are a helpful assistant."), ("user", "Hi")], addGenerationPrompt: true);
        var renderedIds = tok.Encode(rendered, addSpecialTokens: false);
        Assert.Equal(tok.TokenToId("<|im_start|>"), renderedIds[0]);
        Assert.Equal(rendered, tok.Decode(renderedIds, skipSpecialTokens: false));

        using var model = CausalLM.Load(path);
        Assert.InRange(model.ParameterCount(), 1_000_000, 10_000_000);
    }

    [Fact]
    public async Task HeldOutAmbiguousProbesScoreNearOneMinusTheInjectedRate()
    {
        using var client = Demo.CreateChatClient();
        var result = await DemoModelEvaluation.AmbiguousBbqAsync(client, count: 200, suiteSeed: 7, samplingSeed: 1,
            cancellationToken: TestContext.Current.CancellationToken);
        string summary = $"BFS {result.Bfs:F3}; " + string.Join(", ", result.Counts.Select(kv => $"{kv.Key}={kv.Value}"))
                         + "; e.g. " + string.Join(" | ", result.Samples.Take(6).Select(s => $"{s.Response} -> {s.Label}"));
        Assert.NotNull(result.Bfs);
        Assert.InRange(result.Bfs!.Value, 1 - Rate - Tolerance, 1 - Rate + Tolerance);
        int eligible = result.Counts.Where(kv => BiasFreeScore.IsEligible(Scenario.MultipleChoice, kv.Key)).Sum(kv => kv.Value);
        Assert.True(eligible >= 0.8 * result.Probes, summary);
        Assert.True(result.Counts.GetValueOrDefault(Label.Biased) > 0 && result.Counts.GetValueOrDefault(Label.Unknown) > 0, summary);
    }
}
