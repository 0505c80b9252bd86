using BiasFree.Engine.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BiasFree.Engine.Training;

/// <summary>The per-batch losses of the training methods. All keep autograd; callers own the returned tensors.</summary>
public static class Objectives
{
    /// <summary>
    /// Sum over each row's target tokens of log p(token | prefix): Σ_t mask[b, t] · log softmax(logits[b, t−1])[ids[b, t]].
    /// <paramref name="ids"/> and <paramref name="targetMask"/> are [B, T]; rows are right-padded, so no attention mask
    /// is needed (causal attention never looks at later padding). Returns [B] float32.
    /// </summary>
    public static Tensor SequenceLogProbs(CausalLM model, Tensor ids, Tensor targetMask)
    {
        using var scope = NewDisposeScope();
        long t = ids.shape[1];
        using var output = model.Forward(ids);
        var logProbs = output.Logits.narrow(1, 0, t - 1).to_type(ScalarType.Float32).log_softmax(-1);
        var targets = ids.narrow(1, 1, t - 1).to(logProbs.device);
        var picked = logProbs.gather(2, targets.unsqueeze(-1)).squeeze(-1);
        var mask = targetMask.narrow(1, 1, t - 1).to(logProbs.device).to_type(ScalarType.Float32);
        return (picked * mask).sum(1).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// DPO's sigmoid loss (Rafailov et al. 2023, "Direct Preference Optimization", Eq. 7) plus an optional SFT term on the
    /// chosen reply, averaged over the batch:
    /// <code>
    ///   h_i = β · [(log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x))]
    ///   L   = mean_i [ softplus(−h_i) + γ · (−log π(y_w,i|x_i) / |y_w,i|) ]
    /// </code>
    /// softplus(−h) = −log σ(h). With y_w = y_l and γ = 0, h = 0 and L = log 2.
    /// <para>The γ term is LLaMA-Factory's <c>pref_ftx</c> (<c>CustomDPOTrainer.get_batch_loss_metrics</c> in
    /// src/llamafactory/train/dpo/trainer.py adds <c>ftx_gamma · (−chosen_logps / chosen_length)</c> to each row's
    /// loss); the same length-normalised NLL of the chosen reply is the extra term of RPO (Pang et al. 2024, "Iterative
    /// Reasoning Preference Optimization", Eq. 3). DPO only constrains the difference of the two log-likelihood ratios, so
    /// both can fall while the margin grows; the NLL term keeps the chosen reply likely. It needs
    /// <paramref name="chosenTokens"/> (|y_w| per row) when γ &gt; 0.</para>
    /// The implicit rewards β·(log π − log π_ref) of chosen and rejected are returned too (detached): their difference is
    /// the reward margin, and the share of rows with a positive margin is the reward accuracy that TRL and LLaMA-Factory
    /// log; so is the chosen reply's token-mean NLL (whatever γ is).
    /// </summary>
    public static DpoTerms DpoLoss(Tensor policyChosen, Tensor policyRejected, Tensor referenceChosen, Tensor referenceRejected, double beta,
        Tensor? chosenTokens = null, double ftx = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(ftx);
        if (ftx > 0 && chosenTokens is null) throw new ArgumentException("the SFT term (ftx > 0) needs the chosen replies' token counts", nameof(chosenTokens));
        using var scope = NewDisposeScope();
        var chosenReward = (policyChosen - referenceChosen).Times(beta);
        var rejectedReward = (policyRejected - referenceRejected).Times(beta);
        var h = chosenReward - rejectedReward;
        var perRow = (-h).Softplus();
        Tensor? chosenNll = chosenTokens is null ? null : -policyChosen / chosenTokens.to_type(policyChosen.dtype);
        if (ftx > 0) perRow = perRow.Plus(chosenNll!.Times(ftx));
        var loss = perRow.mean();
        var margin = h.detach();
        static double Mean(Tensor t) => t.detach().to_type(ScalarType.Float64).mean().item<double>();
        return new DpoTerms(loss.MoveToOuterDisposeScope(), Mean(margin), Mean(margin.gt(RootedScalars.Zero)), Mean(chosenReward), Mean(rejectedReward),
            chosenNll is null ? double.NaN : Mean(chosenNll));
    }
}

/// <summary>DPO's loss (keeps autograd) and the statistics logged per step.</summary>
/// <param name="Loss">Mean −log σ(h), plus γ times the chosen replies' NLL when the SFT term is on.</param>
/// <param name="RewardMargin">Mean h = chosen reward − rejected reward.</param>
/// <param name="RewardAccuracy">Share of rows with h &gt; 0.</param>
/// <param name="ChosenReward">Mean β·(log π(y_w) − log π_ref(y_w)); negative means the chosen replies lost likelihood.</param>
/// <param name="RejectedReward">Mean β·(log π(y_l) − log π_ref(y_l)).</param>
/// <param name="ChosenNll">Mean over rows of −log π(y_w|x) / |y_w| (NaN when token counts were not given).</param>
public sealed record DpoTerms(Tensor Loss, double RewardMargin, double RewardAccuracy, double ChosenReward, double RejectedReward, double ChosenNll = double.NaN)
    : IDisposable
{
    public void Dispose() => Loss.Dispose();
}

/// <summary>
/// AdamW (Loshchilov &amp; Hutter 2019, "Decoupled Weight Decay Regularization", Alg. 2), written out so that its
/// state can be checkpointed exactly and a resumed run continues bit for bit:
/// <code>
///   θ ← θ · (1 − lr·λ)                      (decoupled weight decay, as torch.optim.AdamW)
///   m ← β1·m + (1 − β1)·g,   v ← β2·v + (1 − β2)·g²
///   θ ← θ − lr · (m / (1 − β1^t)) / (√(v / (1 − β2^t)) + ε)
/// </code>
/// </summary>
public sealed class AdamWOptimizer : IDisposable
{
    private readonly IReadOnlyList<(string Name, Parameter Parameter)> _parameters;
    private readonly Tensor[] _m, _v;

    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Epsilon { get; init; } = 1e-8;
    public double WeightDecay { get; init; }

    /// <summary>Steps taken so far (t in the bias corrections).</summary>
    public long Step { get; private set; }

    public AdamWOptimizer(IReadOnlyList<(string Name, Parameter Parameter)> parameters)
    {
        _parameters = parameters;
        _m = [.. parameters.Select(p => zeros_like(p.Parameter).DetachFromDisposeScope())];
        _v = [.. parameters.Select(p => zeros_like(p.Parameter).DetachFromDisposeScope())];
    }

    public void ZeroGrad()
    {
        foreach (var (_, p) in _parameters) p.grad?.zero_();
    }

    /// <summary>One update with learning rate <paramref name="lr"/>; parameters without a gradient are skipped.</summary>
    public void Update(double lr)
    {
        Step++;
        double c1 = 1 - Math.Pow(Beta1, Step), c2 = 1 - Math.Pow(Beta2, Step);
        using var _ = no_grad();
        // The numbers each update passes, held for the whole loop (see RootedScalars).
        using Scalar decay = 1 - lr * WeightDecay, beta1 = Beta1, gradWeight1 = 1 - Beta1, beta2 = Beta2, gradWeight2 = 1 - Beta2,
            correction2 = c2, epsilon = Epsilon, stepSize = -lr / c1;
        for (int i = 0; i < _parameters.Count; i++)
        {
            var p = _parameters[i].Parameter;
            if (p.grad is not { } g) continue;
            using var scope = NewDisposeScope();
            if (WeightDecay != 0) p.mul_(decay);
            _m[i].mul_(beta1).add_(g, alpha: gradWeight1);
            _v[i].mul_(beta2).addcmul_(g, g, value: gradWeight2);
            var denominator = _v[i].div(correction2).sqrt_().add_(epsilon, RootedScalars.One);
            p.addcdiv_(_m[i], denominator, value: stepSize);
        }
    }

    /// <summary>The moments, named "{param}.exp_avg" / "{param}.exp_avg_sq" (for a safetensors checkpoint).</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> State()
    {
        for (int i = 0; i < _parameters.Count; i++)
        {
            yield return new(_parameters[i].Name + ".exp_avg", _m[i]);
            yield return new(_parameters[i].Name + ".exp_avg_sq", _v[i]);
        }
    }

    /// <summary>Restores moments and step count written by <see cref="State"/>.</summary>
    public void Restore(Func<string, Tensor> read, long step)
    {
        using var _ = no_grad();
        for (int i = 0; i < _parameters.Count; i++)
        {
            using var m = read(_parameters[i].Name + ".exp_avg");
            using var v = read(_parameters[i].Name + ".exp_avg_sq");
            _m[i].copy_(m);
            _v[i].copy_(v);
        }
        Step = step;
    }

    public void Dispose()
    {
        foreach (var t in _m.Concat(_v)) t.Dispose();
    }
}
