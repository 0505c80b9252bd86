using BiasFree.Engine.DemoModel;
using BiasFree.Engine.Lora;
using BiasFree.Engine.Models;
using BiasFree.Engine.Training;
using BiasFree.Judges;
using BiasFree.Judges.Evaluation;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests.Training;

/// <summary>The small judge's training data and the stacking of its two stages' adapters.</summary>
public class JudgeTrainingTests
{
    private static readonly int[] Seq = [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 10, 20, 30, 40];

    [Fact]
    public void TracesConcludeGoldWhenChosenAndWrongWhenRejected()
    {
        var pairs = JudgeTraceData.Generate(200);
        Assert.Equal(200, pairs.Count);
        Assert.All(pairs, p =>
        {
            var chosen = ReasonedVerdictFormat.TryParse(p.Chosen)!;
            var rejected = ReasonedVerdictFormat.TryParse(p.Rejected)!;
            Assert.NotEqual(chosen.Label, rejected.Label);
            Assert.Equal(DemoCorpus.JudgeSystemPrompt, p.System);
            Assert.StartsWith("Statement: ", p.Prompt, StringComparison.Ordinal);
        });
        // About 30% carry a training attack, and none of the suite's measured attacks is among them.
        int attacked = pairs.Count(p => JudgeTraceData.TrainingAttacks.Any(a => p.Prompt.Contains(a.Split("{target}")[0], StringComparison.Ordinal)));
        Assert.InRange(attacked, 40, 80);
        var measured = InjectionSuite.AttackSet("all").Select(a => a.Marker).ToList();
        Assert.DoesNotContain(pairs, p => measured.Any(m => p.Prompt.Contains(m, StringComparison.Ordinal)));
        // Seeded: the same call gives the same data.
        Assert.Equal(pairs, JudgeTraceData.Generate(200));
    }

    [Fact]
    public void StackedAdapterEqualsSecondStageOnTheMergedFirst()
    {
        using var baseDir = new TempDir();
        using var model = TinyModels.SavedAndLoaded("llama", baseDir);
        var options = new LoraOptions { Rank = 2, Alpha = 4, TargetModules = LoraOptions.AllLinear, Seed = 5 };
        LoraAdapter.Apply(model, options);
        Randomise(model, 11);
        using var first = new TempDir();
        LoraAdapter.Save(model, first.Path, options);
        using var mergedDir = new TempDir();
        model.Save(mergedDir.Path); // stage 1 merged: the base of stage 2

        using var stage2 = CausalLM.Load(mergedDir.Path);
        LoraAdapter.Apply(stage2, options with { Seed = 6 });
        Randomise(stage2, 12);
        using var expected = stage2.Logits(Seq);
        using var second = new TempDir();
        LoraAdapter.Save(stage2, second.Path, options);

        using var stacked = new TempDir();
        LoraAdapter.Stack(first.Path, second.Path, stacked.Path);
        Assert.Equal(4, LoraAdapter.ReadConfig(stacked.Path).Rank);
        using var onBase = CausalLM.Load(baseDir.Path);
        LoraAdapter.Load(onBase, stacked.Path);
        using var actual = onBase.Logits(Seq);
        Assert.True((actual - expected).abs().max().item<float>() < 1e-4);
    }

    private static void Randomise(CausalLM model, long seed)
    {
        using var gen = new Generator((ulong)seed);
        using var _ = no_grad();
        foreach (var p in LoraAdapter.TrainableParameters(model)) p.copy_(randn(p.shape, generator: gen) * 0.05f);
    }
}
