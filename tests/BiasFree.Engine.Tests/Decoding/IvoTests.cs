using BiasFree.Engine.Decoding.Ivo;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Lora;
using BiasFree.Engine.Models;
using BiasFree.Engine.Training;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests.Decoding;

public class IvoTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly CausalLM _model;
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private static readonly int[] Eos = [2];
    private static readonly int[] Prompt = [1, 17, 33, 5, 60, 8, 41];

    public IvoTests()
    {
        using (var m = CausalLM.Create(TinyModels.Config("llama"), ScalarType.Float32, "cpu", 5))
            m.Save(_dir.Path);
        _model = CausalLM.Load(_dir.Path);
    }

    public void Dispose()
    {
        _model.Dispose();
        _dir.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>A value model on the tiny base whose head (and LoRA) are random, so V differs between continuations.</summary>
    private ScoreModel RandomValueModel(long seed = 3)
    {
        var value = ScoreModel.Create(_dir.Path, 4, 8, LoraOptions.AllLinear, seed);
        using var _ = no_grad();
        var g = new TorchSharp.torch.Generator((ulong)seed);
        foreach (var (name, p) in value.Trainable)
            if (name.StartsWith("score.", StringComparison.Ordinal) || name.Contains("lora_B", StringComparison.Ordinal))
                p.copy_(randn(p.shape, generator: g) * (name.StartsWith("score.", StringComparison.Ordinal) ? 1.0 : 0.1));
        value.Model.eval();
        return value;
    }

    private static GenerationOptions Sampled(long seed, ILogitsProcessor? guide = null) => new()
    {
        MaxNewTokens = 12, DoSample = true, Temperature = 1.0, Seed = seed, EosTokenIds = Eos,
        LogitsProcessors = guide is null ? [] : [guide],
    };

    [Fact]
    public void Beta_zero_reproduces_base_sampling_with_the_same_seed_bit_for_bit()
    {
        using var value = RandomValueModel();
        int changedByLargeBeta = 0;
        for (long seed = 0; seed < 8; seed++)
        {
            var plain = _model.Generate([Prompt], Sampled(seed), _ct)[0];
            using var zero = new ValueGuide(value, new IvoSettings { Beta = 0, Candidates = 10 });
            var guided = _model.Generate([Prompt], Sampled(seed, zero), _ct)[0];
            Assert.Equal(plain.Tokens, guided.Tokens);
            Assert.Equal(plain.FinishReason, guided.FinishReason);
            // The guide really ran (it scored the candidates; β = 0 only zeroes their weight).
            Assert.True(zero.Steps > 0 && zero.ValueEvaluations >= 10 * zero.Steps, $"guide steps {zero.Steps}, evaluations {zero.ValueEvaluations}");

            using var strong = new ValueGuide(value, new IvoSettings { Beta = 50, Candidates = 10 });
            if (!_model.Generate([Prompt], Sampled(seed, strong), _ct)[0].Tokens.SequenceEqual(plain.Tokens)) changedByLargeBeta++;
        }
        // Otherwise the comparison above could pass because the guide has no effect at all.
        Assert.True(changedByLargeBeta > 0, "β = 50 changed no reply: the value bonus does not reach the sampler");
    }

    [Fact]
    public void Tokenwise_bonus_is_beta_times_the_value_gain_of_each_top_k_candidate()
    {
        using var value = RandomValueModel();
        const double beta = 2.5;
        const int k = 6;
        using var guide = new ValueGuide(value, new IvoSettings { Beta = beta, Candidates = k });
        using var logits = randn([1, _model.Config.VocabSize], generator: new TorchSharp.torch.Generator(9));
        // Two calls: the second feeds only the new token into the guide's cache and forks it for the candidates.
        IReadOnlyList<int> generated = [];
        for (int step = 0; step < 3; step++)
        {
            using var processed = guide.Process(logits, new LogitsContext { Prompts = [Prompt], Generated = [generated], Finished = [false], Step = step });
            var before = logits[0].data<float>().ToArray();
            var after = processed[0].data<float>().ToArray();
            var top = before.Select((v, i) => (v, i)).OrderByDescending(x => x.v).Take(k).Select(x => x.i).ToHashSet();
            double vs = FullValue([.. Prompt, .. generated]);
            for (int a = 0; a < before.Length; a++)
            {
                if (!top.Contains(a))
                {
                    Assert.Equal(before[a], after[a]);
                    continue;
                }
                double expected = beta * (FullValue([.. Prompt, .. generated, a]) - vs);
                Assert.True(Math.Abs(after[a] - before[a] - expected) < 1e-3, $"step {step} token {a}: bonus {after[a] - before[a]}, expected {expected}");
            }
            generated = [.. generated, top.First()];
        }

        double FullValue(IReadOnlyList<int> ids)
        {
            using var _ = no_grad();
            using var v = value.ForwardAll([ids], 0);
            return v[0, ids.Count - 1].item<float>();
        }
    }

    [Theory]
    [InlineData(1, 0, 0.0, 1)]
    [InlineData(7, 3, 1.0, 12)]
    [InlineData(4, 5, 0.25, 9)]
    public void The_Monte_Carlo_target_of_every_prefix_of_a_rollout_is_its_reward(int promptLength, int replyLength, double reward, int rowLength)
    {
        var (targets, mask) = MonteCarloTargets.Row(promptLength, replyLength, reward, rowLength);
        // States: the prompt + the first t reply tokens, t = 0..|reply|, each read at its last token.
        var states = Enumerable.Range(0, replyLength + 1).Select(t => promptLength + t - 1).ToList();
        for (int p = 0; p < rowLength; p++)
        {
            bool state = states.Contains(p);
            Assert.Equal(state ? 1f : 0f, mask[p]);
            Assert.Equal(state ? (float)reward : 0f, targets[p]);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => MonteCarloTargets.Row(promptLength, replyLength, reward, promptLength + replyLength - 1));
    }

    [Fact]
    public void The_fit_loss_is_the_mean_squared_error_of_every_prefix_against_its_rollouts_reward()
    {
        using var value = RandomValueModel();
        using var optimizer = new AdamWOptimizer(value.Trainable);
        var batch = new List<(int[] Prompt, int[] Reply, double Reward)> { (Prompt, [10, 11, 12], 1.0), ([1, 9, 9], [20], 0.0), (Prompt, [], 0.5) };
        // Learning rate 0: the step reports the loss of the current weights and leaves them alone.
        double loss = MonteCarloFit.Step(value, optimizer, batch, pad: 0, learningRate: 0, maxGradNorm: 1);
        var squared = new List<double>();
        using (no_grad())
            foreach (var (prompt, reply, reward) in batch)
                for (int t = 0; t <= reply.Length; t++)
                {
                    IReadOnlyList<int> prefix = [.. prompt, .. reply.Take(t)];
                    using var v = value.ForwardAll([prefix], 0);
                    squared.Add(Math.Pow(v[0, prefix.Count - 1].item<float>() - reward, 2));
                }
        // float32 sums over the batch: equal to a relative 1e-5.
        Assert.True(Math.Abs(squared.Average() - loss) <= 1e-5 * Math.Max(1, squared.Average()), $"fit loss {loss}, per-prefix MSE {squared.Average()}");
    }

    [Fact]
    public void Value_fit_learns_a_synthetic_reward_and_the_shared_prefix_gets_the_mean()
    {
        // One prompt, two kinds of rollouts: replies starting with token 10 earn 1, with token 20 earn 0. The prompt state
        // is shared by both, so its Monte Carlo value is their mean, 0.5.
        using var value = ScoreModel.Create(_dir.Path, 4, 8, LoraOptions.AllLinear, 1);
        using var optimizer = new AdamWOptimizer(value.Trainable);
        var rollouts = new List<(int[] Prompt, int[] Reply, double Reward)>
        {
            (Prompt, [10, 30, 31], 1), (Prompt, [10, 44], 1), (Prompt, [20, 30, 31], 0), (Prompt, [20, 44], 0),
        };
        double first = double.NaN, last = double.NaN;
        for (int step = 0; step < 150; step++)
        {
            last = MonteCarloFit.Step(value, optimizer, rollouts, 0, 1e-2, 1.0);
            if (step == 0) first = last;
        }
        double V(params int[] reply)
        {
            using var _ = no_grad();
            IReadOnlyList<int> ids = [.. Prompt, .. reply];
            using var v = value.ForwardAll([ids], 0);
            return v[0, ids.Count - 1].item<float>();
        }
        Assert.True(last < first / 4, $"MSE went from {first} to {last}");
        Assert.True(V(10) > 0.8 && V(10, 30) > 0.8, $"V(10) = {V(10)}, V(10,30) = {V(10, 30)}");
        Assert.True(V(20) < 0.2 && V(20, 44) < 0.2, $"V(20) = {V(20)}, V(20,44) = {V(20, 44)}");
        Assert.True(Math.Abs(V() - 0.5) < 0.15, $"V(prompt) = {V()}, expected about 0.5");
    }

    [Fact]
    public void Blockwise_search_with_one_block_round_returns_the_sampled_block_of_highest_value()
    {
        using var value = RandomValueModel();
        var settings = new IvoSettings { BlockTokens = 8, Beams = 1, BlocksPerBeam = 6 };
        var gen = new GenerationOptions { MaxNewTokens = 8, DoSample = true, Temperature = 1.0, Seed = 42, EosTokenIds = Eos };
        var decoder = new IvoBlockDecoder(value, settings);
        var result = decoder.Decode(_model, Prompt, gen, _ct);

        // The same six blocks, sampled independently (round 0, beam 0 uses the request's seed), scored independently.
        var blocks = _model.Generate(Enumerable.Repeat<IReadOnlyList<int>>(Prompt, 6).ToList(), gen, _ct);
        var scored = blocks.Select(b =>
        {
            using var _ = no_grad();
            IReadOnlyList<int> ids = [.. Prompt, .. b.Tokens];
            using var v = value.ForwardAll([ids], 0);
            return (b.Tokens, Value: (double)v[0, ids.Count - 1].item<float>());
        }).ToList();
        Assert.True(scored.Select(s => string.Join(',', s.Tokens)).Distinct().Count() > 1, "the six samples coincide; the test would not choose anything");
        var best = scored.MaxBy(s => s.Value);
        Assert.Equal(best.Tokens, result.Tokens);
        Assert.Equal(1, decoder.LastTrace!.Rounds);
        Assert.Equal(best.Value, decoder.LastTrace.Value, 4);
    }

    [Theory]
    [InlineData(4, 2, 4, 12)]
    [InlineData(2, 3, 3, 11)]
    [InlineData(1, 2, 2, 6)]
    [InlineData(3, 1, 5, 10)]
    public void Blockwise_search_returns_the_same_tokens_with_and_without_the_kv_cache(int blockTokens, int beams, int blocks, int maxTokens)
    {
        using var value = RandomValueModel();
        var settings = new IvoSettings { BlockTokens = blockTokens, Beams = beams, BlocksPerBeam = blocks };
        int multiRound = 0;
        var replies = new HashSet<string>();
        for (long seed = 0; seed < 6; seed++)
        {
            var gen = new GenerationOptions { MaxNewTokens = maxTokens, DoSample = true, Temperature = 1.0, Seed = seed, EosTokenIds = Eos };
            var cached = new IvoBlockDecoder(value, settings);
            var recomputed = new IvoBlockDecoder(value, settings) { ReuseCache = false };
            var a = cached.Decode(_model, Prompt, gen, _ct);
            var b = recomputed.Decode(_model, Prompt, gen, _ct);
            Assert.Equal(b.Tokens, a.Tokens);
            Assert.Equal(b.FinishReason, a.FinishReason);
            // The same search, not just the same answer: as many rounds, candidates and sampled tokens.
            Assert.Equal(recomputed.LastTrace, cached.LastTrace! with { Value = recomputed.LastTrace!.Value });
            Assert.True(Math.Abs(cached.LastTrace!.Value - recomputed.LastTrace.Value) < 1e-4, $"seed {seed}: V {cached.LastTrace.Value} with the cache, {recomputed.LastTrace.Value} without");
            if (cached.LastTrace.Rounds > 1) multiRound++;
            replies.Add(string.Join(',', a.Tokens));
        }
        // Otherwise the cache would never have been carried from one round to the next.
        Assert.True(multiRound >= 3, $"only {multiRound} of 6 searches took more than one round");
        Assert.True(replies.Count > 1, "every seed gave the same reply; the seeds are not reaching the search");
    }

    [Fact]
    public void Generating_from_a_prefilled_cache_gives_the_tokens_of_generating_from_the_prompt()
    {
        for (long seed = 0; seed < 4; seed++)
        {
            var gen = new GenerationOptions { MaxNewTokens = 10, DoSample = true, Temperature = 1.0, Seed = seed, EosTokenIds = Eos };
            var rows = Enumerable.Repeat<IReadOnlyList<int>>(Prompt, 3).ToList();
            var expected = _model.Generate(rows, gen, _ct);
            using var cache = _model.NewCache(32);
            using var output = _model.Forward(_model.IdsTensor([Prompt]), new ForwardArgs { Cache = cache, LastTokenLogitsOnly = true });
            using var fork = cache.SelectRows([0, 0, 0]);
            using var last = output.Logits.select(1, -1).expand(3, -1);
            var actual = _model.GenerateFromCache(rows, fork, last, gen, _ct);
            for (int r = 0; r < 3; r++)
            {
                Assert.Equal(expected[r].Tokens, actual[r].Tokens);
                Assert.Equal(expected[r].FinishReason, actual[r].FinishReason);
            }
            Assert.NotEqual(expected[0].Tokens, expected[1].Tokens); // rows draw from Seed + row
        }
        using var empty = _model.NewCache();
        using var logits = zeros(1, _model.Config.VocabSize);
        Assert.Throws<ArgumentException>(() => _model.GenerateFromCache([Prompt], empty, logits, new GenerationOptions(), _ct));
    }

    [Fact]
    public void A_cancelled_blockwise_search_frees_every_tensor_it_created()
    {
        using var value = RandomValueModel();
        var settings = new IvoSettings { BlockTokens = 2, Beams = 2, BlocksPerBeam = 3 };
        var gen = new GenerationOptions { MaxNewTokens = 12, DoSample = true, Temperature = 1.0, Seed = 5, EosTokenIds = [] };
        // A first search creates whatever the model allocates once (rotary tables and the like).
        new IvoBlockDecoder(value, settings).Decode(_model, Prompt, gen, _ct);

        long before = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var done = new IvoBlockDecoder(value, settings).Decode(_model, Prompt, gen, _ct);
        Assert.Equal(12, done.Tokens.Count);
        Assert.Equal(before, TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount);

        // Cancel in round 2: round 1 samples 2 tokens from one beam, round 2 two per beam for two beams (steps 3-6).
        using var cts = new CancellationTokenSource();
        int steps = 0;
        var cancelling = gen with { LogitsProcessors = [new DelegateLogitsProcessor((logits, _) => { if (++steps == 5) cts.Cancel(); return logits; })] };
        var decoder = new IvoBlockDecoder(value, settings);
        var cancelled = decoder.Decode(_model, Prompt, cancelling, cts.Token);
        Assert.Equal(FinishReason.Cancelled, cancelled.FinishReason);
        Assert.True(decoder.LastTrace!.Rounds >= 2, $"cancelled after {decoder.LastTrace.Rounds} round(s): the caches were never carried over");
        Assert.Equal(before, TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }
}
