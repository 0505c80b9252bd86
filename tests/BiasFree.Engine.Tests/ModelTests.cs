using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using BiasFree.Engine.WhiteBox;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests;

public class ModelTests
{
    public static TheoryData<string> Archs => new() { "llama", "qwen2", "mistral" };

    private static readonly int[] Prompt = [1, 5, 17, 42, 8, 93, 3, 3, 60, 11, 27, 4];

    private static double MaxAbsDiff(Tensor a, double[][] b)
    {
        using var expected = tensor(b.SelectMany(r => r).ToArray(), [b.Length, b[0].Length], ScalarType.Float64);
        using var diff = (a.to_type(ScalarType.Float64).cpu() - expected).abs().max();
        return diff.item<double>();
    }

    [Theory, MemberData(nameof(Archs))]
    public void LogitsMatchNaiveFloat64Reference(string arch)
    {
        using var dir = new TempDir();
        using var model = TinyModels.SavedAndLoaded(arch, dir);
        var reference = new ReferenceModel(dir.Path).Logits(Prompt);
        using var logits = model.Logits(Prompt);
        double scale = reference.SelectMany(r => r).Max(Math.Abs);
        Assert.True(scale > 0.5, $"logits too small to be a meaningful test ({scale})");
        Assert.True(MaxAbsDiff(logits, reference) < 2e-4 * scale, $"{arch}: max diff {MaxAbsDiff(logits, reference)} (scale {scale})");
    }

    [Theory]
    [InlineData("llama", 500000.0)]   // Llama 3
    [InlineData("qwen2", 1000000.0)]  // Qwen2
    [InlineData("mistral", 1000000.0)]
    public void RopeThetaFromTheConfigReachesTheRotaryEmbedding(string arch, double theta)
    {
        using var dir = new TempDir();
        using var model = TinyModels.SavedAndLoaded(arch, dir, ropeTheta: theta);
        Assert.Equal(theta, ModelConfig.Load(dir.Path).RopeTheta);
        Assert.Equal(theta, model.Config.RopeTheta);

        var reference = new ReferenceModel(dir.Path).Logits(Prompt);
        using var logits = model.Logits(Prompt);
        double scale = reference.SelectMany(r => r).Max(Math.Abs), tolerance = 2e-4 * scale;
        Assert.True(MaxAbsDiff(logits, reference) < tolerance, $"{arch} θ={theta}: max diff {MaxAbsDiff(logits, reference)} (scale {scale})");

        // The same weights with the default base give logits far outside the tolerance, so a model that ignored
        // rope_theta would fail the comparison above.
        var withDefaultTheta = new ReferenceModel(dir.Path, ropeTheta: 10000).Logits(Prompt);
        Assert.True(MaxAbsDiff(logits, withDefaultTheta) > 100 * tolerance, $"{arch}: θ barely changes the logits ({MaxAbsDiff(logits, withDefaultTheta)})");
    }

    [Theory, MemberData(nameof(Archs))]
    public void Bfloat16LoadStaysCloseToReference(string arch)
    {
        using var dir = new TempDir();
        using var model = TinyModels.SavedAndLoaded(arch, dir, ScalarType.BFloat16);
        Assert.Equal(ScalarType.BFloat16, model.DType);
        var reference = new ReferenceModel(dir.Path).Logits(Prompt);
        using var logits = model.Logits(Prompt);
        double scale = reference.SelectMany(r => r).Max(Math.Abs);
        Assert.True(MaxAbsDiff(logits, reference) < 0.1 * scale, $"{arch}: bf16 max diff {MaxAbsDiff(logits, reference)} (scale {scale})");
    }

    [Theory, MemberData(nameof(Archs))]
    public void CachedIncrementalDecodingEqualsFullRecompute(string arch)
    {
        using var dir = new TempDir();
        using var model = TinyModels.SavedAndLoaded(arch, dir);
        using var full = model.Logits(Prompt);
        using var _ = no_grad();
        using var cache = model.NewCache(initialCapacity: 2); // forces the cache to grow
        // Prefill 4 tokens, then a 3-token chunk, then one token at a time (the Mistral window of 5 binds from step 6 on).
        int[][] chunks = [Prompt[..4], Prompt[4..7], .. Prompt[7..].Select(t => new[] { t })];
        int pos = 0;
        foreach (var chunk in chunks)
        {
            using var output = model.Forward(model.IdsTensor([chunk]), new ForwardArgs { Cache = cache });
            using var expected = full.narrow(0, pos, chunk.Length);
            double diff = (output.Logits[0] - expected).abs().max().item<float>();
            Assert.True(diff < 1e-4, $"{arch}: cached logits at {pos} differ by {diff}");
            pos += chunk.Length;
        }
        Assert.Equal(Prompt.Length, cache.Length);
    }

    [Theory, MemberData(nameof(Archs))]
    public void BatchedLeftPaddedGenerationEqualsPerSequence(string arch)
    {
        using var dir = new TempDir();
        using var model = TinyModels.SavedAndLoaded(arch, dir);
        IReadOnlyList<int>[] prompts = [Prompt[..3], Prompt, Prompt[2..9], [7]];
        var options = new GenerationOptions { MaxNewTokens = 8 };
        var batched = model.Generate(prompts, options, TestContext.Current.CancellationToken);
        for (int i = 0; i < prompts.Length; i++)
        {
            var single = model.Generate([prompts[i]], options, TestContext.Current.CancellationToken)[0];
            Assert.Equal(single.Tokens, batched[i].Tokens);
            Assert.Equal(prompts[i].Count, batched[i].PromptTokens);
        }
        // Padded rows also give the same logits as their unpadded forward pass.
        using var _ = no_grad();
        var mask = model.IdsTensor([[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1], Enumerable.Repeat(1, 12).ToList()]);
        var ids = model.IdsTensor([[0, 0, 0, 0, 0, 0, 0, 0, 0, .. Prompt[..3]], Prompt]);
        using var output = model.Forward(ids, new ForwardArgs { AttentionMask = mask });
        using var alone = model.Logits(Prompt[..3]);
        Assert.True((output.Logits[0].narrow(0, 9, 3) - alone).abs().max().item<float>() < 1e-4);
    }

    [Fact]
    public void SteeringCallbackChangesLogitsAndRemovingItRestoresThem()
    {
        using var dir = new TempDir();
        using var model = TinyModels.SavedAndLoaded("llama", dir);
        using var baseline = model.Logits(Prompt);
        using var direction = randn([64], generator: new torch.Generator(3));
        var seen = new List<int>();
        model.OnLayer = (layer, h) =>
        {
            seen.Add(layer);
            return layer == 0 ? h + direction * 2.0 : h;
        };
        using var steered = model.Logits(Prompt);
        Assert.Equal([0, 1], seen);
        Assert.True((steered - baseline).abs().max().item<float>() > 1e-2);
        model.OnLayer = null;
        using var restored = model.Logits(Prompt);
        Assert.Equal(0f, (restored - baseline).abs().max().item<float>());

        // A per-call callback that returns its input unchanged only observes.
        using var _ = no_grad();
        Tensor? captured = null;
        using var output = model.Forward(model.IdsTensor([Prompt]), new ForwardArgs
        {
            OnLayer = (layer, h) =>
            {
                if (layer == 1) captured = h.detach().clone().DetachFromDisposeScope();
                return h;
            },
            CaptureHiddenStates = true,
        });
        Assert.Equal(0f, (output.Logits[0] - baseline).abs().max().item<float>());
        Assert.NotNull(captured);
        Assert.Equal(3, output.HiddenStates.Count);
        Assert.Equal(0f, (output.HiddenStates[2] - captured).abs().max().item<float>());
        captured.Dispose();
    }

    [Fact]
    public void SteeringMovesTheHookedResidualByAlphaVAtTheLastPositionOnlyAndTheLogitsFollow()
    {
        const int layer = 0;
        const double alpha = 2.5;
        using var dir = new TempDir();
        using var model = TinyModels.SavedAndLoaded("llama", dir);
        using var v = randn([64], generator: new torch.Generator(3));
        var vd = v.to_type(ScalarType.Float64).data<double>().ToArray();
        int last = Prompt.Length - 1;
        using var _ = no_grad();
        using var plain = model.Forward(model.IdsTensor([Prompt]), new ForwardArgs { CaptureHiddenStates = true });
        using var steered = model.Forward(model.IdsTensor([Prompt]), new ForwardArgs
        {
            OnLayer = Steering.AddVector(layer, v, alpha, lastTokenOnly: true),
            CaptureHiddenStates = true,
        });

        // Up to the hooked layer's input nothing moves; its output moves by α·v at the last position and nowhere else.
        for (int i = 0; i <= layer; i++)
            Assert.Equal(0f, (steered.HiddenStates[i] - plain.HiddenStates[i]).abs().max().item<float>());
        using var moved = steered.HiddenStates[layer + 1][0] - plain.HiddenStates[layer + 1][0]; // [T, H]
        Assert.Equal(0f, moved.narrow(0, 0, last).abs().max().item<float>());
        Assert.True((moved[last] - v * alpha).abs().max().item<float>() < 1e-5, "the last position did not move by α·v");

        // Causal attention: earlier positions' logits are untouched; all logits equal the float64 reference with the
        // same injection, which differs from the unsteered reference by far more than the tolerance.
        Assert.Equal(0f, (steered.Logits[0].narrow(0, 0, last) - plain.Logits[0].narrow(0, 0, last)).abs().max().item<float>());
        var reference = new ReferenceModel(dir.Path);
        var expected = reference.Logits(Prompt, (l, h) =>
        {
            if (l == layer) for (int j = 0; j < vd.Length; j++) h[last][j] += alpha * vd[j];
        });
        double scale = expected.SelectMany(r => r).Max(Math.Abs), tolerance = 2e-4 * scale;
        Assert.True(MaxAbsDiff(steered.Logits[0], expected) < tolerance, $"steered logits differ from the reference by {MaxAbsDiff(steered.Logits[0], expected)}");
        var unsteered = reference.Logits(Prompt);
        Assert.True(expected[last].Zip(unsteered[last], (a, b) => Math.Abs(a - b)).Max() > 100 * tolerance, "the steer is too weak to test");
    }

    [Fact]
    public void SteeringDuringGenerationPicksTheSteeredReferenceArgmaxAtEveryStep()
    {
        const int layer = 1;
        const double alpha = 6;
        using var dir = new TempDir();
        using var model = TinyModels.SavedAndLoaded("llama", dir);
        var ct = TestContext.Current.CancellationToken;
        using var v = randn([64], generator: new torch.Generator(9));
        var vd = v.to_type(ScalarType.Float64).data<double>().ToArray();
        var plain = model.Generate([Prompt], new GenerationOptions { MaxNewTokens = 6 }, ct)[0];
        var steered = model.Generate([Prompt], new GenerationOptions { MaxNewTokens = 6, OnLayer = Steering.AddVector(layer, v, alpha, lastTokenOnly: true) }, ct)[0];
        Assert.NotEqual(plain.Tokens, steered.Tokens);

        // With the KV cache the hook sees the prompt, then one new token per step, so "last token only" steers every
        // position from the prompt's last token on. Each greedy token is the argmax of the reference steered that way.
        var reference = new ReferenceModel(dir.Path);
        var sequence = Prompt.ToList();
        foreach (var token in steered.Tokens)
        {
            var logits = reference.Logits(sequence, (l, h) =>
            {
                if (l != layer) return;
                for (int t = Prompt.Length - 1; t < h.Length; t++)
                    for (int j = 0; j < vd.Length; j++) h[t][j] += alpha * vd[j];
            });
            var lastRow = logits[^1];
            Assert.Equal(Array.IndexOf(lastRow, lastRow.Max()), token);
            sequence.Add(token);
        }

        // The hook was per call: the model is unsteered again.
        Assert.Equal(plain.Tokens, model.Generate([Prompt], new GenerationOptions { MaxNewTokens = 6 }, ct)[0].Tokens);
    }

    [Fact]
    public void HiddenStatesAreDetachedFromDisposeScopes()
    {
        using var dir = new TempDir();
        using var model = TinyModels.SavedAndLoaded("qwen2", dir);
        IReadOnlyList<Tensor> states;
        using (var scope = NewDisposeScope()) states = model.HiddenStates(Prompt);
        Assert.Equal(3, states.Count);
        Assert.Equal(new long[] { Prompt.Length, 64 }, states[2].shape); // still valid after the scope ended
        foreach (var s in states) s.Dispose();
    }

    [Theory, MemberData(nameof(Archs))]
    public void LogProbabilityEqualsSumOfLogSoftmax(string arch)
    {
        using var dir = new TempDir();
        using var model = TinyModels.SavedAndLoaded(arch, dir);
        int[] prompt = Prompt[..5], cont = Prompt[5..];
        var result = model.LogProbability(prompt, cont);
        using var logProbs = model.Logits(Prompt).log_softmax(-1);
        double expected = 0;
        for (int j = 0; j < cont.Length; j++)
        {
            double lp = logProbs[prompt.Length + j - 1, cont[j]].item<float>();
            Assert.Equal(lp, result.PerToken[j], 4);
            expected += lp;
        }
        Assert.Equal(expected, result.Sum, 4);
        // Batched (right-padded) scoring agrees with one-at-a-time scoring.
        var batch = model.LogProbabilities([(prompt, cont), (Prompt[..2], Prompt[2..4])]);
        Assert.Equal(result.Sum, batch[0].Sum, 4);
        Assert.Equal(model.LogProbability(Prompt[..2], Prompt[2..4]).Sum, batch[1].Sum, 4);
    }

    [Fact]
    public void Llama3RopeScalingMatchesHandComputedFrequencies()
    {
        // Llama 3.1 8B: head_dim 128, theta 500000, factor 8, low 1, high 4, original context 8192.
        var rope = new RotaryEmbedding(128, 500000, new RopeScaling("llama3", 8, 1, 4, 8192));
        Assert.Equal(1.0, rope.InvFreq[0], 12);                       // wavelength 6.3 < 2048: unchanged
        Assert.Equal(0.016560440080994446, rope.InvFreq[20], 12);     // wavelength 379: unchanged
        Assert.Equal(0.0013718935677611381, rope.InvFreq[30], 12);    // wavelength 2948: smoothly interpolated
        Assert.Equal(3.428102195952591e-05, rope.InvFreq[40], 12);    // wavelength 22911 > 8192: divided by 8
        Assert.Equal(3.068925988914511e-07, rope.InvFreq[63], 15);

        var parsed = ModelConfig.Parse("""
            {"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":128256,"hidden_size":4096,
             "intermediate_size":14336,"num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,
             "rms_norm_eps":1e-05,"rope_theta":500000.0,"max_position_embeddings":131072,"tie_word_embeddings":false,
             "rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192,"rope_type":"llama3"},
             "bos_token_id":128000,"eos_token_id":[128001,128008,128009],"torch_dtype":"bfloat16"}
            """);
        Assert.Equal(128, parsed.HeadDim);
        Assert.Equal(500000.0, parsed.RopeTheta);
        Assert.Equal(new[] { 128001, 128008, 128009 }, parsed.EosTokenIds);
        Assert.Equal(new RopeScaling("llama3", 8, 1, 4, 8192), parsed.RopeScaling);
    }

    [Fact]
    public void SlidingWindowMaskMatchesExplicitRule()
    {
        using var padding = tensor(new long[] { 0, 0, 1, 1, 1, 1, 1, 1 }, [1, 8]);
        using var mask = AttentionOps.BuildMask(1, 3, 5, padding, 3, CPU);
        Assert.Equal(new long[] { 1, 1, 5, 8 }, mask.shape);
        for (int q = 0; q < 5; q++)
            for (int k = 0; k < 8; k++)
            {
                int qp = q + 3;
                bool expected = (k <= qp && qp - k < 3 && k >= 2) || k == qp;
                Assert.Equal(expected, mask[0, 0, q, k].item<bool>());
            }
    }

    [Fact]
    public void ConfigReadsQwen2AndMistralSpecifics()
    {
        var qwen = ModelConfig.Parse("""
            {"architectures":["Qwen2ForCausalLM"],"model_type":"qwen2","vocab_size":151936,"hidden_size":896,"intermediate_size":4864,
             "num_hidden_layers":24,"num_attention_heads":14,"num_key_value_heads":2,"rms_norm_eps":1e-06,"rope_theta":1000000.0,
             "sliding_window":32768,"use_sliding_window":false,"max_window_layers":21,"tie_word_embeddings":true,"torch_dtype":"bfloat16",
             "bos_token_id":151643,"eos_token_id":151645,"max_position_embeddings":32768,"hidden_act":"silu"}
            """);
        Assert.True(qwen.QkvBias);
        Assert.False(qwen.OutputBias);
        Assert.True(qwen.TieWordEmbeddings);
        Assert.Null(qwen.SlidingWindowForLayer(23));
        Assert.Equal(64, qwen.HeadDim);
        Assert.Equal(1000000.0, qwen.RopeTheta);
        Assert.Equal(new[] { 151645 }, qwen.EosTokenIds);
        var mistral = ModelConfig.Parse("""
            {"architectures":["MistralForCausalLM"],"model_type":"mistral","vocab_size":32000,"hidden_size":4096,"intermediate_size":14336,
             "num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,"sliding_window":4096,"rope_theta":10000.0}
            """);
        Assert.Equal(4096, mistral.SlidingWindowForLayer(0));
        Assert.Equal(10000.0, mistral.RopeTheta);
        Assert.Equal(1e-6, mistral.RmsNormEps); // absent from this config: the default
        Assert.Equal(10000.0, ModelConfig.Parse("""{"model_type":"llama","vocab_size":8,"hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,"num_attention_heads":2}""").RopeTheta);
        var round = ModelConfig.Parse(mistral.ToJson());
        Assert.Equal(mistral.ToJson(), round.ToJson());
        var gen = GenerationConfig.Parse("""{"bos_token_id":1,"eos_token_id":[2,3],"do_sample":true,"temperature":0.7,"top_p":0.9}""");
        Assert.Equal(new[] { 2, 3 }, gen.EosTokenIds);
        Assert.True(gen.DoSample);
        Assert.Equal(0.9, gen.TopP);
    }

    [Fact]
    public void ShardedCheckpointLoadsAndMissingWeightsAreReported()
    {
        using var dir = new TempDir();
        using var model = TinyModels.SavedAndLoaded("llama", dir);
        using var sharded = new TempDir();
        File.Copy(dir.File("config.json"), sharded.File("config.json"));
        using (var scope = NewDisposeScope())
            Safetensors.SafetensorsWriter.SaveSharded(sharded.Path, model.ExportStateDict(), maxShardBytes: 40_000);
        Assert.True(Directory.GetFiles(sharded.Path, "model-*.safetensors").Length > 2);
        using var reloaded = CausalLM.Load(sharded.Path);
        using var a = model.Logits(Prompt);
        using var b = reloaded.Logits(Prompt);
        Assert.Equal(0f, (a - b).abs().max().item<float>());

        using var partial = new TempDir();
        File.Copy(dir.File("config.json"), partial.File("config.json"));
        using (var scope = NewDisposeScope())
            Safetensors.SafetensorsWriter.Save(partial.File("model.safetensors"), model.ExportStateDict().Where(kv => !kv.Key.Contains("layers.1.mlp")));
        var e = Assert.Throws<InvalidDataException>(() => CausalLM.Load(partial.Path));
        Assert.Contains("model.layers.1.mlp.gate_proj.weight", e.Message);
    }

    [Fact]
    public void CudaRequestFailsClearlyWithoutCuda()
    {
        if (torch.cuda.is_available()) return;
        var e = Assert.Throws<InvalidOperationException>(() => CausalLM.Create(TinyModels.Config("llama"), ScalarType.Float32, "cuda"));
        Assert.Contains("CUDA is not available", e.Message);
    }
}
