using BiasFree.Engine.Lora;
using BiasFree.Engine.Models;
using BiasFree.Engine.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests.Training;

public class LoraGradientTests
{
    private static readonly int[] Seq = [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 11, 21];

    /// <summary>A float64 tiny model with adapters on every projection and non-zero B (so both A and B get gradients).</summary>
    private static CausalLM AdaptedModel()
    {
        var model = CausalLM.Create(TinyModels.Config("qwen2"), ScalarType.Float64, "cpu", seed: 11);
        LoraAdapter.Apply(model, new LoraOptions { Rank = 3, Alpha = 6, TargetModules = LoraOptions.AllLinear, Seed = 2 });
        using var gen = new torch.Generator(77);
        using var _ = no_grad();
        foreach (var a in LoraAdapter.Adapters(model))
            a.lora_B.weight.copy_(normal(0, 0.2, a.lora_B.weight.shape, ScalarType.Float64, generator: gen));
        return model;
    }

    [Fact]
    public void AdapterGradientsMatchCentralFiniteDifferences()
    {
        using var model = AdaptedModel();
        using var ids = model.IdsTensor([Seq]);
        using var lossMask = cat([zeros([1, 5], ScalarType.Int64), ones([1, Seq.Length - 5], ScalarType.Int64)], 1);
        // Response-only next-token NLL computed in float64 end to end (NextTokenLoss casts logits to float32).
        Tensor LossTensor()
        {
            using var scope = NewDisposeScope();
            using var output = model.Forward(ids);
            var logProbs = output.Logits.narrow(1, 0, Seq.Length - 1).log_softmax(-1);
            var picked = logProbs.gather(2, ids.narrow(1, 1, Seq.Length - 1).unsqueeze(-1)).squeeze(-1);
            var m = lossMask.narrow(1, 1, Seq.Length - 1).to_type(ScalarType.Float64);
            return (-(picked * m).sum() / m.sum()).MoveToOuterDisposeScope();
        }
        double Loss()
        {
            using var _ = no_grad();
            using var l = LossTensor();
            return l.item<double>();
        }

        using var loss = LossTensor();
        Assert.Equal(ScalarType.Float64, loss.dtype);
        loss.backward();
        var trainable = LoraAdapter.TrainableParameters(model);
        Assert.Equal(2 * 7 * 2, trainable.Count);
        var gen = new Random(5);
        int checkedCount = 0;
        foreach (var p in new[] { trainable[0], trainable[1], trainable[9], trainable[^1] })
        {
            var flat = p.view(-1);
            var grad = p.grad!.view(-1);
            for (int k = 0; k < 4; k++)
            {
                long i = gen.NextInt64(flat.shape[0]);
                double original = flat[i].item<double>();
                // RMSNorm normalises in float32 even in a float64 model, which adds ~1e-7 noise to the loss; h = 1e-3
                // keeps that noise (~5e-5 in the quotient) and the O(h²) truncation error far below the tolerance.
                const double h = 1e-3;
                using (no_grad()) flat[i].fill_(original + h);
                double up = Loss();
                using (no_grad()) flat[i].fill_(original - h);
                double down = Loss();
                using (no_grad()) flat[i].fill_(original);
                double numeric = (up - down) / (2 * h);
                double analytic = grad[i].item<double>();
                Assert.True(Math.Abs(numeric - analytic) <= 2e-4 + 1e-3 * Math.Abs(numeric), $"element {i}: analytic {analytic}, numeric {numeric}");
                checkedCount++;
            }
        }
        Assert.Equal(16, checkedCount);
        // The frozen base weights get no gradient at all.
        Assert.All(model.named_parameters().Where(p => !p.name.Contains(".lora_")), p => Assert.Null(p.parameter.grad));
    }

    [Fact]
    public void MergedWeightsGiveTheUnmergedAdapterLogits()
    {
        using var model = AdaptedModel();
        using var unmerged = model.Logits(Seq);
        using var baseLogits = WithoutAdapters(model);
        // The adapters do change the function (otherwise the comparison below would prove nothing).
        Assert.True((unmerged - baseLogits).abs().max().item<float>() > 1e-3);
        LoraAdapter.Merge(model);
        using var merged = model.Logits(Seq);
        Assert.True((merged - unmerged).abs().max().item<float>() < 1e-10);
    }

    private static Tensor WithoutAdapters(CausalLM model)
    {
        var saved = LoraAdapter.Adapters(model).Select(a => a.lora_B.weight.detach().clone()).ToList();
        using (no_grad()) foreach (var a in LoraAdapter.Adapters(model)) a.lora_B.weight.zero_();
        var logits = model.Logits(Seq);
        using (no_grad())
        {
            int i = 0;
            foreach (var a in LoraAdapter.Adapters(model)) a.lora_B.weight.copy_(saved[i++]);
        }
        foreach (var t in saved) t.Dispose();
        return logits;
    }
}

public class DpoLossTests
{
    private static double Softplus(double x) => Math.Log(1 + Math.Exp(x));
    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    [Fact]
    public void LossAndGradientMatchTheHandComputedFloat64Case()
    {
        // Two pairs; policy and reference sequence log-probabilities chosen by hand.
        double[] pc = [-3.2, -7.5], pr = [-4.1, -6.0], rc = [-3.5, -7.0], rr = [-3.9, -6.8];
        const double beta = 0.1;
        using var policyChosen = tensor(pc, ScalarType.Float64).requires_grad_();
        using var policyRejected = tensor(pr, ScalarType.Float64).requires_grad_();
        using var terms = Objectives.DpoLoss(policyChosen, policyRejected, tensor(rc, ScalarType.Float64), tensor(rr, ScalarType.Float64), beta);
        terms.Loss.backward();

        // h_i = β[(pc − rc) − (pr − rr)];  L = mean softplus(−h);  ∂L/∂pc_i = −β σ(−h_i) / n;  ∂L/∂pr_i = +β σ(−h_i) / n.
        var h = Enumerable.Range(0, 2).Select(i => beta * ((pc[i] - rc[i]) - (pr[i] - rr[i]))).ToArray();
        Assert.Equal(0.5 * (Softplus(-h[0]) + Softplus(-h[1])), terms.Loss.item<double>(), 12);
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(-beta * Sigmoid(-h[i]) / 2, policyChosen.grad![i].item<double>(), 12);
            Assert.Equal(beta * Sigmoid(-h[i]) / 2, policyRejected.grad![i].item<double>(), 12);
        }
        Assert.Equal((h[0] + h[1]) / 2, terms.RewardMargin, 12);
        Assert.Equal(0.5, terms.RewardAccuracy); // h[0] = 0.05 > 0, h[1] = −0.13 < 0
        Assert.Equal(beta * ((pc[0] - rc[0]) + (pc[1] - rc[1])) / 2, terms.ChosenReward, 12);
    }

    [Fact]
    public void SftTermOnTheChosenReplyMatchesTheHandComputedFloat64Case()
    {
        // LLaMA-Factory's pref_ftx: L = mean_i [softplus(−h_i) + γ·(−pc_i / n_i)], n_i = tokens of the chosen reply.
        double[] pc = [-3.2, -7.5], pr = [-4.1, -6.0], rc = [-3.5, -7.0], rr = [-3.9, -6.8], n = [4, 5];
        const double beta = 0.1, gamma = 0.5;
        using var policyChosen = tensor(pc, ScalarType.Float64).requires_grad_();
        using var policyRejected = tensor(pr, ScalarType.Float64).requires_grad_();
        using var terms = Objectives.DpoLoss(policyChosen, policyRejected, tensor(rc, ScalarType.Float64), tensor(rr, ScalarType.Float64), beta,
            tensor(n, ScalarType.Float64), gamma);
        terms.Loss.backward();

        // By hand: h = (0.05, −0.13); softplus(−0.05) = 0.6684..., softplus(0.13) = 0.7587...; NLL terms 3.2/4 = 0.8, 7.5/5 = 1.5;
        // L = ((0.66846 + 0.5·0.8) + (0.75874 + 0.5·1.5)) / 2.
        Assert.Equal(1.2893589213474885, terms.Loss.item<double>(), 12);
        Assert.Equal((0.8 + 1.5) / 2, terms.ChosenNll, 12);
        // ∂L/∂pc_i = (−β σ(−h_i) − γ/n_i) / 2: the SFT term pushes the chosen log-likelihood up on its own.
        Assert.Equal(-0.08687513017578949, policyChosen.grad![0].item<double>(), 12);
        Assert.Equal(-0.07662271531936594, policyChosen.grad![1].item<double>(), 12);
        // ∂L/∂pr_i = β σ(−h_i) / 2, as in plain DPO (the SFT term does not touch the rejected reply).
        Assert.Equal(0.024375130175789485, policyRejected.grad![0].item<double>(), 12);
        Assert.Equal(0.026622715319365938, policyRejected.grad![1].item<double>(), 12);
        // The reward statistics are those of plain DPO.
        using var plain = Objectives.DpoLoss(tensor(pc, ScalarType.Float64), tensor(pr, ScalarType.Float64), tensor(rc, ScalarType.Float64), tensor(rr, ScalarType.Float64), beta);
        Assert.Equal(plain.RewardMargin, terms.RewardMargin, 14);
        Assert.True(double.IsNaN(plain.ChosenNll));
    }

    [Fact]
    public void SftTermWithIdenticalRepliesAddsGammaTimesTheChosenNll()
    {
        using var same = tensor(new[] { -6.0, -2.5 }, ScalarType.Float64);
        using var reference = tensor(new[] { -4.0, -3.0 }, ScalarType.Float64);
        using var tokens = tensor(new[] { 3.0, 5.0 }, ScalarType.Float64);
        using var terms = Objectives.DpoLoss(same, same, reference, reference, 0.1, tokens, 2.0);
        Assert.Equal(Math.Log(2) + 2.0 * (6.0 / 3 + 2.5 / 5) / 2, terms.Loss.item<double>(), 14);
        Assert.Throws<ArgumentException>(() => Objectives.DpoLoss(same, same, reference, reference, 0.1, chosenTokens: null, ftx: 1.0));
    }

    [Fact]
    public void IdenticalChosenAndRejectedGiveLogTwo()
    {
        using var same = tensor(new[] { -5.0, -2.5, -9.0 }, ScalarType.Float64);
        using var reference = tensor(new[] { -4.0, -3.0, -1.0 }, ScalarType.Float64);
        using var terms = Objectives.DpoLoss(same, same, reference, reference, 0.1);
        Assert.Equal(Math.Log(2), terms.Loss.item<double>(), 14);
        Assert.Equal(0, terms.RewardMargin);
    }

    [Fact]
    public void SequenceLogProbsEqualTheModelsScoringOfTheResponse()
    {
        using var model = CausalLM.Create(TinyModels.Config("llama"), ScalarType.Float32, "cpu", seed: 3);
        int[] prompt = [1, 5, 9, 13], response = [20, 30, 2];
        using var ids = model.IdsTensor([[.. prompt, .. response, 0, 0]]); // two trailing pads
        using var mask = tensor(new float[] { 0, 0, 0, 0, 1, 1, 1, 0, 0 }).unsqueeze(0);
        using var logps = Objectives.SequenceLogProbs(model, ids, mask);
        var expected = model.LogProbability(prompt, response).Sum;
        Assert.Equal(expected, logps[0].item<float>(), 3);
    }
}

public class AdamWTests
{
    [Fact]
    public void UpdateFollowsTheAdamWFormulaAndMatchesTorch()
    {
        using var p1 = new TorchSharp.Modules.Parameter(tensor(new[] { 0.5f, -1.0f, 2.0f }));
        using var p2 = new TorchSharp.Modules.Parameter(tensor(new[] { 0.5f, -1.0f, 2.0f }));
        using var ours = new AdamWOptimizer([("p", p1)]) { WeightDecay = 0.01 };
        using var theirs = optim.AdamW([p2], lr: 0.1, weight_decay: 0.01);
        for (int step = 0; step < 5; step++)
        {
            ours.ZeroGrad();
            theirs.zero_grad();
            ((p1 * p1 * p1).sum()).backward();
            ((p2 * p2 * p2).sum()).backward();
            ours.Update(0.1);
            theirs.step();
        }
        Assert.True((p1 - p2).abs().max().item<float>() < 1e-6, $"{p1.str()} vs {p2.str()}");
        // And the moments round-trip: restoring them into a fresh optimizer gives the same next step.
        var state = ours.State().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        using var p3 = new TorchSharp.Modules.Parameter(p1.detach().clone());
        using var restored = new AdamWOptimizer([("p", p3)]) { WeightDecay = 0.01 };
        restored.Restore(n => state[n].clone(), ours.Step);
        foreach (var (opt, p) in new[] { (ours, p1), (restored, p3) })
        {
            opt.ZeroGrad();
            ((p * p * p).sum()).backward();
            opt.Update(0.1);
        }
        Assert.True(p1.equal(p3).all().item<bool>());
    }
}
