using System.Text.Json.Nodes;
using BiasFree.Engine.Chat;
using BiasFree.Engine.Lora;
using BiasFree.Engine.Models;
using BiasFree.Engine.Safetensors;
using BiasFree.Engine.Tokenization;
using BiasFree.Engine.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests.Training;

/// <summary>A tiny Llama folder with the trained fixture tokenizer (Llama-3 chat template), as a user's base model.</summary>
internal static class TinyBase
{
    public static TempDir Create(long seed = 3)
    {
        var dir = new TempDir();
        var src = Path.Combine(AppContext.BaseDirectory, "Fixtures", "tokenizers", "trained");
        foreach (var f in Directory.GetFiles(src)) File.Copy(f, dir.File(Path.GetFileName(f)));
        var tok = HfTokenizer.FromFolder(dir.Path);
        var config = TinyModels.Config("llama") with { VocabSize = tok.VocabSize, EosTokenIds = [tok.TokenToId("<|eot_id|>")!.Value] };
        using var m = CausalLM.Create(config, ScalarType.Float32, "cpu", seed);
        m.Save(dir.Path);
        return dir;
    }

    public static Dictionary<string, float[]> Tensors(string file)
    {
        using var f = SafetensorsFile.Open(file);
        return f.Names.ToDictionary(n => n, n =>
        {
            using var t = f.Read(n, ScalarType.Float32);
            return t.data<float>().ToArray();
        });
    }
}

public class TaskVectorTests
{
    private static readonly int[] Seq = [1, 4, 9, 16, 25, 36, 49, 64];

    [Fact]
    public void LambdaZeroKeepsEveryWeightBitForBitAndOppositeSignsCancel()
    {
        using var baseModel = CausalLM.Create(TinyModels.Config("qwen2"), ScalarType.Float32, "cpu", seed: 1);
        using var tuned = CausalLM.Create(TinyModels.Config("qwen2"), ScalarType.Float32, "cpu", seed: 2);
        var b = baseModel.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter.detach().clone());
        var f = tuned.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter.detach().clone());
        var tau = TaskVector.Compute(b, f);
        Assert.Equal(b.Count, tau.Count);

        TaskVector.Apply(baseModel, tau, 0);
        foreach (var (name, p) in baseModel.named_parameters())
            Assert.True(p.bytes.SequenceEqual(b[name].bytes), name);

        TaskVector.Apply(baseModel, tau, -0.5);
        var moved = baseModel.named_parameters().First(p => p.name.EndsWith("q_proj.weight")).parameter;
        Assert.True((moved - b["model.layers.0.self_attn.q_proj.weight"]).abs().max().item<float>() > 1e-2); // it did move
        // θ_base − 0.5·τ, element by element.
        using (var expected = b["model.layers.0.self_attn.q_proj.weight"] - 0.5 * tau["model.layers.0.self_attn.q_proj.weight"])
            Assert.True((moved - expected).abs().max().item<float>() < 1e-6);
        TaskVector.Apply(baseModel, tau, +0.5);
        foreach (var (name, p) in baseModel.named_parameters())
            Assert.True((p - b[name]).abs().max().item<float>() < 1e-6, name);
    }

    [Fact]
    public void NegatedLoraMergesToBaseMinusLambdaTau()
    {
        using var model = CausalLM.Create(TinyModels.Config("llama"), ScalarType.Float64, "cpu", seed: 5);
        LoraAdapter.Apply(model, new LoraOptions { Rank = 2, Alpha = 4, TargetModules = ["q_proj", "down_proj"], Seed = 1 });
        using (no_grad())
            foreach (var a in LoraAdapter.Adapters(model)) a.lora_B.weight.normal_(0, 0.3);
        var adapter = LoraAdapter.Adapters(model).First();
        using var baseW = adapter.base_layer.weight.detach().clone();
        using var tau = adapter.EffectiveWeight() - baseW;   // τ = scale·B·A
        TaskVector.NegateLora(model, 0.5);
        using var negated = adapter.EffectiveWeight();
        using var expected = baseW - 0.5 * tau;
        Assert.True((negated - expected).abs().max().item<double>() < 1e-12);
    }
}

public class PeftAdapterTests
{
    private static readonly int[] Seq = [1, 7, 3, 9, 12, 40, 41, 2];

    [Fact]
    public void WrittenAdapterReadsBackToIdenticalLogitsWithPeftNamesAndConfigKeys()
    {
        using var dir = new TempDir();
        using var model = TinyModels.SavedAndLoaded("qwen2", dir);
        var options = new LoraOptions { Rank = 4, Alpha = 8, Dropout = 0.05, TargetModules = LoraOptions.AllLinear, Seed = 9 };
        LoraAdapter.Apply(model, options);
        using (no_grad())
            foreach (var a in LoraAdapter.Adapters(model)) a.lora_B.weight.normal_(0, 0.1);
        using var logits = model.Logits(Seq);

        using var adapterDir = new TempDir();
        LoraAdapter.Save(model, adapterDir.Path, options, baseModel: dir.Path);

        // adapter_config.json: PEFT's LoraConfig keys and values.
        var cfg = JsonNode.Parse(File.ReadAllText(adapterDir.File("adapter_config.json")))!.AsObject();
        Assert.Equal("LORA", cfg["peft_type"]!.GetValue<string>());
        Assert.Equal("CAUSAL_LM", cfg["task_type"]!.GetValue<string>());
        Assert.Equal(4, cfg["r"]!.GetValue<int>());
        Assert.Equal(8.0, cfg["lora_alpha"]!.GetValue<double>());
        Assert.Equal(0.05, cfg["lora_dropout"]!.GetValue<double>());
        Assert.Equal("none", cfg["bias"]!.GetValue<string>());
        Assert.False(cfg["fan_in_fan_out"]!.GetValue<bool>());
        Assert.Equal(dir.Path, cfg["base_model_name_or_path"]!.GetValue<string>());
        Assert.Equal(LoraOptions.AllLinear, cfg["target_modules"]!.AsArray().Select(x => x!.GetValue<string>()));

        // adapter_model.safetensors: base_model.model.<module>.lora_A.weight [r, in] and .lora_B.weight [out, r], nothing else.
        using (var f = SafetensorsFile.Open(adapterDir.File("adapter_model.safetensors")))
        {
            Assert.Equal(2 * 2 * 7, f.Names.Count);
            Assert.All(f.Names, n => Assert.Matches(@"^base_model\.model\.model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)\.lora_(A|B)\.weight$", n));
            var config = TinyModels.Config("qwen2");
            Assert.Equal([4L, config.HiddenSize], f.Entry("base_model.model.model.layers.1.mlp.up_proj.lora_A.weight").Shape);
            Assert.Equal([(long)config.IntermediateSize, 4L], f.Entry("base_model.model.model.layers.1.mlp.up_proj.lora_B.weight").Shape);
        }

        using var other = CausalLM.Load(dir.Path);
        var read = LoraAdapter.Load(other, adapterDir.Path);
        Assert.Equal(options.Rank, read.Rank);
        Assert.Equal(options.Dropout, read.Dropout);
        using var reloaded = other.Logits(Seq);
        Assert.Equal(0f, (reloaded - logits).abs().max().item<float>());
    }

    [Fact]
    public void UnsupportedPeftFeaturesAreRejectedWithTheField()
    {
        using var adapterDir = new TempDir();
        File.WriteAllText(adapterDir.File("adapter_config.json"), """{"peft_type":"LORA","r":4,"lora_alpha":8,"target_modules":["q_proj"],"use_dora":true}""");
        var ex = Assert.Throws<InvalidDataException>(() => LoraAdapter.ReadConfig(adapterDir.Path));
        Assert.Contains("field 'use_dora'", ex.Message);
        File.WriteAllText(adapterDir.File("adapter_config.json"), """{"peft_type":"LORA","r":4,"lora_alpha":8,"target_modules":"all-linear"}""");
        Assert.Equal(LoraOptions.AllLinear, LoraAdapter.ReadConfig(adapterDir.Path).TargetModules);
    }
}

public class DebiasTrainerTests
{
    private static readonly IReadOnlyList<PreferencePair> Data = TemplatePreferenceData.AllContinuations.Take(24).ToList();

    private static Task<TrainingResult> Train(string baseDir, IReadOnlyList<PreferencePair> data, string outDir, TrainingOptions options,
        IProgress<TrainingProgress>? progress = null, CancellationToken? ct = null) =>
        DebiasTrainer.TrainAsync(baseDir, data, outDir, options, progress, ct ?? TestContext.Current.CancellationToken);

    private static TrainingOptions Options(TrainingMethod method) => new()
    {
        Method = method,
        LoraRank = 4,
        LoraAlpha = 8,
        LearningRate = 5e-3,
        MaxSteps = 12,
        BatchSize = 4,
        ValidationShare = 0.25,
        EvalEvery = 4,
        CheckpointEvery = 3,
        Seed = 1,
    };

    private static double MeanLogProb(CausalLM model, HfTokenizer tok, ChatTemplate template, IEnumerable<PreferencePair> pairs, bool chosen)
    {
        int eot = tok.TokenToId("<|eot_id|>")!.Value;
        var items = pairs.Select(p => DebiasTrainer.Encode(tok, template, p, eot, 256))
            .Select(e => ((IReadOnlyList<int>)e.Prompt, (IReadOnlyList<int>)(chosen ? e.Chosen : e.Rejected!))).ToList();
        return model.LogProbabilities(items).Average(r => r.Mean);
    }

    [Fact]
    public async Task SftWritesAMergedFolderAndAPeftAdapterThatGiveTheSameLogitsAndRaiseTheChosenResponses()
    {
        using var baseDir = TinyBase.Create();
        using var outDir = new TempDir();
        var progress = new List<TrainingProgress>();
        var result = await Train(baseDir.Path, Data, outDir.Path, Options(TrainingMethod.Sft), new SyncProgress(progress.Add));
        Assert.Equal(12, result.Steps);
        Assert.Equal(6, result.ValidationExamples);
        Assert.Equal(18, result.TrainExamples);
        Assert.True(result.FinalLoss < result.FirstLoss, $"{result.FirstLoss} -> {result.FinalLoss}");
        Assert.False(Directory.Exists(Path.Combine(outDir.Path, "checkpoint")));
        var train = progress.Where(p => p.Phase == "train").ToList();
        Assert.Equal(Enumerable.Range(1, 12), train.Select(p => p.Step));
        Assert.All(train, p => Assert.True(p.TokensPerSecond > 0 && p.Eta is not null && !double.IsNaN(p.Loss)));

        var tok = HfTokenizer.FromFolder(baseDir.Path);
        var template = ChatTemplate.For(tok);
        using var merged = CausalLM.Load(outDir.Path);
        using var adapted = CausalLM.Load(baseDir.Path);
        using var vanilla = CausalLM.Load(baseDir.Path);
        LoraAdapter.Load(adapted, result.AdapterDir!);
        int[] probe = [.. tok.Encode(template.Render([("user", Data[0].Prompt)], true), false)];
        using var a = merged.Logits(probe);
        using var b = adapted.Logits(probe);
        Assert.True((a - b).abs().max().item<float>() < 1e-4);
        Assert.True(MeanLogProb(merged, tok, template, Data, chosen: true) > MeanLogProb(vanilla, tok, template, Data, chosen: true) + 0.1);

        // The merged folder is a complete model folder: the chat client loads it, and with --adapter the base does too.
        Assert.True(LocalModel.IsModelFolder(outDir.Path));
        using var client = LocalModel.Load(baseDir.Path, new LocalModelOptions { Adapter = result.AdapterDir });
        var record = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir.Path, "training.json")))!.AsObject();
        Assert.Equal("sft", record["method"]!.GetValue<string>());
        Assert.Equal(result.BestStep, record["best_step"]!.GetValue<int>());
    }

    [Fact]
    public async Task ATrainedFolderKeepsTheBasesChatTemplateFileAndTokenizerFiles()
    {
        // Newer transformers save the chat template as chat_template.jinja beside a tokenizer_config.json without one.
        using var baseDir = TinyBase.Create();
        var configPath = Path.Combine(baseDir.Path, "tokenizer_config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        var templateText = config["chat_template"]!.GetValue<string>();
        config.Remove("chat_template");
        File.WriteAllText(configPath, config.ToJsonString());
        File.WriteAllText(Path.Combine(baseDir.Path, "chat_template.jinja"), templateText);
        File.WriteAllText(Path.Combine(baseDir.Path, "merges.txt"), "#version: 0.2\n");

        using var outDir = new TempDir();
        await Train(baseDir.Path, Data, outDir.Path, Options(TrainingMethod.Sft) with { MaxSteps = 1, ValidationShare = 0 });

        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "merges.txt" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(baseDir.Path, f)), File.ReadAllBytes(Path.Combine(outDir.Path, f)));
        var trained = HfTokenizer.FromFolder(outDir.Path);
        Assert.Equal(templateText, trained.ChatTemplateSource);
        Assert.Equal(ChatTemplate.For(HfTokenizer.FromFolder(baseDir.Path)).Name, ChatTemplate.For(trained).Name);
    }

    [Fact]
    public async Task DpoWidensTheMarginBetweenChosenAndRejected()
    {
        using var baseDir = TinyBase.Create();
        using var outDir = new TempDir();
        var progress = new List<TrainingProgress>();
        // Plain DPO (no SFT term), so that the first loss is exactly log 2.
        var result = await Train(baseDir.Path, Data, outDir.Path, Options(TrainingMethod.Dpo) with { ValidationShare = 0, LearningRate = 1e-2, PreferenceFtx = 0 },
            new SyncProgress(progress.Add));
        Assert.Equal(Math.Log(2), result.FirstLoss, 4); // the adapters start at B = 0: policy = reference
        Assert.True(result.FinalLoss < result.FirstLoss);
        Assert.Contains("margin", progress.Last(p => p.Phase == "train").Detail);
        // training.json keeps one row of statistics per step; the margin is the chosen minus the rejected reward.
        var steps = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir.Path, "training.json")))!["dpo_steps"]!.AsArray();
        Assert.Equal(12, steps.Count);
        // (The record rounds each value to 4 decimals, hence the tolerance.)
        Assert.All(steps, r => Assert.InRange(r![0]!.GetValue<double>() - (r[2]!.GetValue<double>() - r[3]!.GetValue<double>()), -2e-4, 2e-4));

        var tok = HfTokenizer.FromFolder(baseDir.Path);
        var template = ChatTemplate.For(tok);
        using var trained = CausalLM.Load(outDir.Path);
        using var vanilla = CausalLM.Load(baseDir.Path);
        double Margin(CausalLM m) => MeanLogProb(m, tok, template, Data, true) - MeanLogProb(m, tok, template, Data, false);
        Assert.True(Margin(trained) > Margin(vanilla) + 0.05, $"{Margin(vanilla)} -> {Margin(trained)}");
    }

    [Fact]
    public async Task TaskVectorMovesAwayFromTheStereotypedResponses()
    {
        using var baseDir = TinyBase.Create();
        using var outDir = new TempDir();
        var options = Options(TrainingMethod.TaskVector) with { ValidationShare = 0, TaskVectorLambda = 1.0 };
        await Train(baseDir.Path, Data, outDir.Path, options);
        var tok = HfTokenizer.FromFolder(baseDir.Path);
        var template = ChatTemplate.For(tok);
        using var negated = CausalLM.Load(outDir.Path);
        using var vanilla = CausalLM.Load(baseDir.Path);
        Assert.True(MeanLogProb(negated, tok, template, Data, chosen: false) < MeanLogProb(vanilla, tok, template, Data, chosen: false) - 0.05);

        // Full-weight variant: no adapter folder, and λ = 0 would give the base back (checked on weights below).
        using var fullDir = new TempDir();
        var full = await Train(baseDir.Path, Data, fullDir.Path, options with { FullFineTune = true, TaskVectorLambda = 0, MaxSteps = 3 });
        Assert.Null(full.AdapterDir);
        var got = TinyBase.Tensors(Path.Combine(fullDir.Path, "model.safetensors"));
        var expected = TinyBase.Tensors(Path.Combine(baseDir.Path, "model.safetensors"));
        Assert.Equal(expected.Keys.Order(), got.Keys.Order());
        foreach (var (name, values) in expected) Assert.Equal(values, got[name]);
    }

    [Fact]
    public async Task AnInterruptedRunResumesToTheSameWeights()
    {
        using var baseDir = TinyBase.Create();
        var options = Options(TrainingMethod.Sft) with { LoraDropout = 0.1 };
        using var straight = new TempDir();
        await Train(baseDir.Path, Data, straight.Path, options);

        using var interrupted = new TempDir();
        using var cts = new CancellationTokenSource();
        // Cancel right after step 7 (the checkpoint of step 6 exists; step 7's work is lost, as after a crash).
        var stop = new SyncProgress(p => { if (p.Phase == "train" && p.Step == 7) cts.Cancel(); });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Train(baseDir.Path, Data, interrupted.Path, options, stop, cts.Token));
        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(interrupted.Path, "checkpoint", "state.json")))!;
        Assert.Equal(6, state["step"]!.GetValue<int>());
        var resumed = await Train(baseDir.Path, Data, interrupted.Path, options);
        Assert.Equal(6, resumed.ResumedFromStep);

        foreach (var file in new[] { "model.safetensors", Path.Combine("adapter", "adapter_model.safetensors") })
        {
            var a = TinyBase.Tensors(Path.Combine(straight.Path, file));
            var b = TinyBase.Tensors(Path.Combine(interrupted.Path, file));
            foreach (var (name, values) in a) Assert.Equal(values, b[name]);
        }

        // Different settings must not continue someone else's checkpoint.
        using var other = new TempDir();
        using var cts2 = new CancellationTokenSource();
        var stop2 = new SyncProgress(p => { if (p.Phase == "train" && p.Step == 4) cts2.Cancel(); });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Train(baseDir.Path, Data, other.Path, options, stop2, cts2.Token));
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => Train(baseDir.Path, Data, other.Path, options with { LearningRate = 1e-3 }));
        Assert.Contains("different training", ex.Message);
    }

    [Fact]
    public async Task SafeRlhfTrainsScoreModelsAndAPolicyAndRecordsTheLagrangeMultiplier()
    {
        using var baseDir = TinyBase.Create();
        using var outDir = new TempDir();
        var pairs = Data.Take(16).ToList();
        var rl = new SafeRlhfOptions { ScoreModelSteps = 6, Iterations = 3, PromptsPerIteration = 2, SamplesPerPrompt = 2, MaxNewTokens = 4, CostLimit = -3, LambdaMax = 1000 };
        var progress = new List<TrainingProgress>();
        var result = await SafeRlhf.TrainAsync(baseDir.Path, pairs, outDir.Path, Options(TrainingMethod.SafeRlhf) with { BatchSize = 4 }, rl,
            new SyncProgress(progress.Add), TestContext.Current.CancellationToken);
        Assert.Equal(3, result.Steps);
        Assert.Contains(progress, p => p.Phase == "reward-model");
        Assert.Contains(progress, p => p.Phase == "cost-model");
        var record = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir.Path, "training.json")))!.AsObject();
        Assert.Equal("safe-rlhf", record["method"]!.GetValue<string>());
        Assert.True(record["cost_pairs"]!.GetValue<int>() > 0 && record["reward_pairs"]!.GetValue<int>() > 0);
        var lambdas = record["iterations"]!.AsArray().Select(x => x!["lambda"]!.GetValue<double>()).ToList();
        // With d far below every cost the constraint is violated, so λ rises each iteration: λ_{k+1} = λ_k·exp(λ_lr·(E[C] − d)).
        Assert.Equal(1.0, lambdas[0], 12);
        Assert.True(lambdas[1] > lambdas[0] && lambdas[2] > lambdas[1], string.Join(",", lambdas));
        // The policy is a PEFT adapter like the other methods' and the merged folder computes the same function.
        var tok = HfTokenizer.FromFolder(baseDir.Path);
        using var merged = CausalLM.Load(outDir.Path);
        using var adapted = CausalLM.Load(baseDir.Path);
        LoraAdapter.Load(adapted, result.AdapterDir!);
        int[] probe = [.. tok.Encode("Who was late?", false)];
        using var a = merged.Logits(probe);
        using var b = adapted.Logits(probe);
        Assert.True((a - b).abs().max().item<float>() < 1e-4);
    }

    [Fact]
    public async Task AnInterruptedSafeRlhfRunResumesToTheSameWeights()
    {
        using var baseDir = TinyBase.Create();
        var pairs = Data.Take(16).ToList();
        var options = Options(TrainingMethod.SafeRlhf) with
        {
            BatchSize = 4,
            CheckpointEvery = 3,
            SafeRlhf = new SafeRlhfOptions { ScoreModelSteps = 4, Iterations = 7, PromptsPerIteration = 2, SamplesPerPrompt = 2, MaxNewTokens = 4, CostLimit = -1 },
        };
        var ct = TestContext.Current.CancellationToken;
        using var straight = new TempDir();
        await SafeRlhf.TrainAsync(baseDir.Path, pairs, straight.Path, options, null, null, ct);

        using var interrupted = new TempDir();
        using var cts = new CancellationTokenSource();
        // Cancel after iteration 5: the checkpoint of iteration 3 exists, iterations 4–5 are lost, as after a crash.
        var stop = new SyncProgress(p => { if (p.Phase == "train" && p.Step == 5) cts.Cancel(); });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => SafeRlhf.TrainAsync(baseDir.Path, pairs, interrupted.Path, options, null, stop, cts.Token));
        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(interrupted.Path, "checkpoint", "state.json")))!;
        Assert.Equal(3, state["iteration"]!.GetValue<int>());
        Assert.NotNull(state["cost_loss"]);
        // Resuming must not refit the score models: no reward-model or cost-model progress.
        var phases = new List<string>();
        var resumed = await SafeRlhf.TrainAsync(baseDir.Path, pairs, interrupted.Path, options, null, new SyncProgress(p => phases.Add(p.Phase)), ct);
        Assert.Equal(3, resumed.ResumedFromStep);
        Assert.DoesNotContain("reward-model", phases);
        Assert.DoesNotContain("cost-model", phases);

        var a = JsonNode.Parse(File.ReadAllText(Path.Combine(straight.Path, "training.json")))!;
        var b = JsonNode.Parse(File.ReadAllText(Path.Combine(interrupted.Path, "training.json")))!;
        Assert.Equal(a["iterations"]!.ToJsonString(), b["iterations"]!.ToJsonString());
        foreach (var file in new[] { "model.safetensors", Path.Combine("adapter", "adapter_model.safetensors") })
        {
            var x = TinyBase.Tensors(Path.Combine(straight.Path, file));
            var y = TinyBase.Tensors(Path.Combine(interrupted.Path, file));
            foreach (var (name, values) in x) Assert.Equal(values, y[name]);
        }

        // Other settings must not continue this checkpoint.
        using var other = new TempDir();
        using var cts2 = new CancellationTokenSource();
        var stop2 = new SyncProgress(p => { if (p.Phase == "train" && p.Step == 4) cts2.Cancel(); });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => SafeRlhf.TrainAsync(baseDir.Path, pairs, other.Path, options, null, stop2, cts2.Token));
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => SafeRlhf.TrainAsync(baseDir.Path, pairs, other.Path,
            options with { SafeRlhf = options.SafeRlhf! with { CostLimit = 0 } }, null, null, ct));
        Assert.Contains("different training", ex.Message);
    }

    [Fact]
    public async Task DpoRefusesSftOnlyData()
    {
        using var baseDir = TinyBase.Create();
        using var outDir = new TempDir();
        var sftOnly = Data.Select(p => p with { Rejected = null }).ToList();
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => Train(baseDir.Path, sftOnly, outDir.Path, Options(TrainingMethod.Dpo)));
        Assert.Contains("no rejected response", ex.Message);
    }

    [Fact]
    public void ScheduleWarmsUpThenDecaysToZero()
    {
        var o = new TrainingOptions { LearningRate = 1.0, WarmupRatio = 0.1 };
        Assert.Equal(0.1, DebiasTrainer.LearningRateAt(0, 100, o), 12);
        Assert.Equal(1.0, DebiasTrainer.LearningRateAt(9, 100, o), 12);
        Assert.Equal(1.0, DebiasTrainer.LearningRateAt(10, 100, o), 12);
        Assert.Equal(0.5, DebiasTrainer.LearningRateAt(55, 100, o), 12);
        Assert.True(DebiasTrainer.LearningRateAt(99, 100, o) < 0.001);
    }

    private sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
