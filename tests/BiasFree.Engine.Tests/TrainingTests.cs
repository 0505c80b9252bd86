using BiasFree.Engine.Models;
using BiasFree.Engine.Safetensors;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests;

public class TrainingTests
{
    private static readonly int[] Seq = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23];

    [Fact]
    public void FullFineTuneReducesLossAndSavedCheckpointReloadsIdentically()
    {
        using var model = CausalLM.Create(TinyModels.Config("qwen2"), ScalarType.Float32, "cpu", seed: 4);
        using var optimizer = optim.AdamW(model.parameters(), lr: 3e-3);
        using var ids = model.IdsTensor([Seq, Seq.Reverse().ToArray()]);
        // Only the second half of each row is a target (prompt/response-style masking).
        using var lossMask = cat([zeros([2, 6], ScalarType.Int64), ones([2, 6], ScalarType.Int64)], 1);
        model.train();
        double first = 0, last = 0;
        for (int step = 0; step < 12; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = model.NextTokenLoss(ids, lossMask);
            loss.backward();
            optimizer.step();
            if (step == 0) first = loss.item<float>();
            last = loss.item<float>();
        }
        model.eval();
        Assert.True(last < first * 0.7, $"loss {first} -> {last}");

        using var dir = new TempDir();
        model.Save(dir.Path);
        Assert.Contains("\"model_type\": \"qwen2\"", File.ReadAllText(dir.File("config.json")));
        File.WriteAllText(dir.File("generation_config.json"), """{"eos_token_id":[2,77],"do_sample":true,"temperature":0.6}""");
        using var reloaded = CausalLM.Load(dir.Path);
        Assert.Equal([2, 77], reloaded.EosTokenIds);
        Assert.Equal(0.6, reloaded.GenerationDefaults!.Temperature);
        using var a = model.Logits(Seq);
        using var b = reloaded.Logits(Seq);
        Assert.Equal(0f, (a - b).abs().max().item<float>());
    }

    [Fact]
    public void Float16CheckpointIsConvertedOnLoad()
    {
        using var dir = new TempDir();
        using var model = CausalLM.Create(TinyModels.Config("llama"), ScalarType.Float32, "cpu", seed: 6);
        model.Save(dir.Path);
        using (var scope = NewDisposeScope())
            SafetensorsWriter.Save(dir.File("model.safetensors"),
                model.ExportStateDict().Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.to_type(ScalarType.Float16))));
        using var f32 = CausalLM.Load(dir.Path, ScalarType.Float32);
        using var bf16 = CausalLM.Load(dir.Path, ScalarType.BFloat16);
        Assert.All(f32.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.All(bf16.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
        using var expected = model.Logits(Seq);
        using var got = f32.Logits(Seq);
        Assert.True((expected - got).abs().max().item<float>() < 0.05);
    }
}
