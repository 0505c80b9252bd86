using BiasFree.Engine.Lora;
using BiasFree.Engine.Models;
using BiasFree.Engine.Safetensors;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests;

public class LoraTests
{
    private static readonly int[] Seq = [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 10, 20, 30, 40];

    [Fact]
    public void TrainingReducesLossAndLeavesBaseWeightsBitIdentical()
    {
        using var dir = new TempDir();
        using var model = TinyModels.SavedAndLoaded("llama", dir);
        using var before = model.Logits(Seq);
        var baseWeights = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

        var options = new LoraOptions { Rank = 4, Alpha = 8, TargetModules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], Seed = 3 };
        var adapters = LoraAdapter.Apply(model, options);
        Assert.Equal(2 * 7, adapters.Count);
        using var fresh = model.Logits(Seq);
        Assert.Equal(0f, (fresh - before).abs().max().item<float>()); // B = 0: a new adapter changes nothing

        var trainable = LoraAdapter.TrainableParameters(model);
        Assert.Equal(model.parameters().Count(p => p.requires_grad), trainable.Count);
        using var optimizer = optim.AdamW(trainable, lr: 1e-2);
        using var ids = model.IdsTensor([Seq]);
        double first = 0, last = 0;
        model.train();
        for (int step = 0; step < 15; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = model.NextTokenLoss(ids);
            loss.backward();
            optimizer.step();
            if (step == 0) first = loss.item<float>();
            last = loss.item<float>();
        }
        model.eval();
        Assert.True(last < first * 0.7, $"loss {first} -> {last}");

        // Frozen weights are bit-identical (names now carry ".base_layer.").
        foreach (var (name, p) in model.named_parameters().Where(p => !p.name.Contains(".lora_")))
        {
            var original = baseWeights[name.Replace(".base_layer.", ".")];
            Assert.True(original.equal(p).all().item<bool>(), name);
        }

        // Merge gives the same function; unmerge restores the base weight.
        using var trained = model.Logits(Seq);
        LoraAdapter.Merge(model);
        using var merged = model.Logits(Seq);
        Assert.True((merged - trained).abs().max().item<float>() < 1e-4);
        LoraAdapter.Unmerge(model);
        var q = model.named_parameters().First(p => p.name == "model.layers.0.self_attn.q_proj.base_layer.weight").parameter;
        Assert.True((q - baseWeights["model.layers.0.self_attn.q_proj.weight"]).abs().max().item<float>() < 1e-6);

        // Adapter round trip (PEFT names) onto a freshly loaded base model.
        using var adapterDir = new TempDir();
        LoraAdapter.Save(model, adapterDir.Path, options);
        using (var f = SafetensorsFile.Open(Path.Combine(adapterDir.Path, "adapter_model.safetensors")))
            Assert.Contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", f.Names);
        using var other = CausalLM.Load(dir.Path);
        LoraAdapter.Load(other, adapterDir.Path);
        using var reloaded = other.Logits(Seq);
        Assert.True((reloaded - trained).abs().max().item<float>() < 1e-5);

        // Saving a model with adapters writes merged weights under plain HF names.
        using var mergedDir = new TempDir();
        model.Save(mergedDir.Path);
        using var plain = CausalLM.Load(mergedDir.Path);
        using var plainLogits = plain.Logits(Seq);
        Assert.True((plainLogits - trained).abs().max().item<float>() < 1e-4);
        foreach (var t in baseWeights.Values) t.Dispose();
    }
}
