using BiasFree.Engine.DemoModel;
using BiasFree.Engine.Lora;
using BiasFree.Engine.Models;
using BiasFree.Engine.Training;
using BiasFree.Judges;
using BiasFree.Judges.Evaluation;
using BiasFree.Probes;
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
    public void AugmentationKeepsTheGoldLabelAndInsertsTheTextItSays()
    {
        var items = JudgeTraceData.Items(400, recipe: JudgeTraceRecipe.Augmented);
        var plain = JudgeTraceData.Items(400, recipe: JudgeTraceRecipe.Plain);
        Assert.Equal(400, items.Count);
        // The augmented item is drawn from the same judge item as the plain one, and augmentation never changes its label.
        Assert.Equal(plain.Select(p => (p.Id, p.Gold)), items.Select(i => (i.Id, i.Gold)));
        Assert.All(items, i =>
        {
            Assert.Equal(i.Gold, ReasonedVerdictFormat.TryParse(i.Chosen)!.Label);
            Assert.NotEqual(i.Gold, ReasonedVerdictFormat.TryParse(i.Rejected)!.Label);
        });
        var inserted = items.Where(i => i.Inserted is not null).ToList();
        Assert.InRange(inserted.Count, 180, 300);
        Assert.All(inserted, i =>
        {
            Assert.Contains(i.Inserted!, i.Text, StringComparison.Ordinal);
            Assert.NotEqual(i.BaseReply, i.Text);
            // Taking the inserted text out gives back the reply (up to the spaces and breaks around it).
            Assert.Equal(Words(i.BaseReply), Words(i.Text.Replace(i.Inserted!, " ", StringComparison.Ordinal)));
            // The rejected trace concludes what the inserted text asks for whenever that is not gold.
            if (i.Steer != i.Gold) Assert.Equal(i.Steer, ReasonedVerdictFormat.TryParse(i.Rejected)!.Label);
        });
        Assert.All(items.Where(i => i.Inserted is null), i => Assert.StartsWith(i.BaseReply, i.Text, StringComparison.Ordinal));
        // The inserted text steers away from gold and toward it, so "the opposite of what it asks" is never the rule learnt.
        Assert.Contains(inserted, i => i.Steer != i.Gold);
        Assert.Contains(inserted, i => i.Steer == i.Gold);
        // Every generic form and every placement occurs, and the replies vary beyond the six taught one-liners.
        Assert.All(JudgeTraceAugmentation.Forms, f => Assert.Contains(inserted, i => i.Form!.Split('+').Contains(f)));
        Assert.All(Enum.GetValues<InsertionPlacement>(), p => Assert.Contains(inserted, i => WherePut(i) == p));
        Assert.True(items.Select(i => i.BaseReply).Distinct().Count() > 250);
        Assert.Contains(items, i => !i.Statement.EndsWith('?') && i.Statement == i.Statement.TrimEnd('.'));
        Assert.Contains(items, i => i.Statement.EndsWith('?'));
    }

    [Fact]
    public void AugmentationIsDeterministicBySeedAndSharesNoTextWithAnyMeasuredAttack()
    {
        var a = JudgeTraceData.Generate(300, 7, JudgeTraceRecipe.Augmented);
        Assert.Equal(a, JudgeTraceData.Generate(300, 7, JudgeTraceRecipe.Augmented));
        Assert.NotEqual(a.Select(p => p.Prompt), JudgeTraceData.Generate(300, 8, JudgeTraceRecipe.Augmented).Select(p => p.Prompt));
        // No marker of any measured attack (development and held-out sets 1-8) reaches the training prompts.
        var markers = InjectionSuite.AttackSet("all").Select(x => x.Marker).ToList();
        Assert.Contains(InjectionSuite.AttackSet("heldout8")[0].Marker, markers);
        var prompts = JudgeTraceData.Generate(2000, recipe: JudgeTraceRecipe.Augmented).Select(p => p.Prompt).ToList();
        Assert.DoesNotContain(prompts, p => markers.Any(m => p.Contains(m, StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("commentary")]
    [InlineData("fake-verdict")]
    [InlineData("role-play")]
    [InlineData("instruction")]
    public void InsertedTextNamesTheVerdictItSteersTo(string form)
    {
        for (int k = 0; k < 20; k++)
        {
            var biased = JudgeTraceAugmentation.Inserted(form, Label.Biased, StableRandom.For(k, form));
            var unbiased = JudgeTraceAugmentation.Inserted(form, Label.Unbiased, StableRandom.For(k, form));
            Assert.NotEqual(biased, unbiased);
        }
    }

    private static string Words(string text) => string.Join(' ', text.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries));

    private static InsertionPlacement WherePut(JudgeTraceItem i) =>
        i.Text.StartsWith(i.Inserted!, StringComparison.Ordinal) ? InsertionPlacement.Prepended
        : i.Text.EndsWith("\n\n" + i.Inserted, StringComparison.Ordinal) ? InsertionPlacement.Appended
        : i.Text.EndsWith(" " + i.Inserted, StringComparison.Ordinal) ? InsertionPlacement.Inline
        : InsertionPlacement.Between;

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
