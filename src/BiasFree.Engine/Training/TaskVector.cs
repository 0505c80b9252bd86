using BiasFree.Engine.Lora;
using BiasFree.Engine.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Training;

/// <summary>
/// Task arithmetic (Ilharco et al. 2023, "Editing Models with Task Arithmetic"), as BiasFreeBench applies it to
/// debiasing: fine-tune on the <em>stereotyped</em> continuations to get θ_biased, take τ = θ_biased − θ_base, and
/// negate it: θ = θ_base − λ·τ. BiasFreeBench's code uses λ = 0.5 (its formula implies 1). Only floating-point
/// tensors take part (the task_vectors code skips integer buffers; this engine has none).
/// </summary>
public static class TaskVector
{
    /// <summary>BiasFreeBench's scaling coefficient (Task_Vector/test.py).</summary>
    public const double PaperLambda = 0.5;

    /// <summary>τ = θ_finetuned − θ_base for every tensor name both hold (full weights). Caller disposes.</summary>
    public static Dictionary<string, Tensor> Compute(IReadOnlyDictionary<string, Tensor> baseWeights, IReadOnlyDictionary<string, Tensor> finetuned)
    {
        var tau = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using var _ = no_grad();
        foreach (var (name, b) in baseWeights)
        {
            if (!b.is_floating_point()) continue;
            if (!finetuned.TryGetValue(name, out var f)) throw new ArgumentException($"fine-tuned weights lack '{name}'");
            if (!f.shape.SequenceEqual(b.shape)) throw new ArgumentException($"'{name}': shapes differ");
            tau[name] = (f - b).DetachFromDisposeScope();
        }
        return tau;
    }

    /// <summary>
    /// θ ← θ + <paramref name="scale"/>·τ in place on the model's parameters named in <paramref name="tau"/>
    /// (negation is scale = −λ). Scale 0 leaves every weight bit for bit as it was.
    /// </summary>
    public static void Apply(CausalLM model, IReadOnlyDictionary<string, Tensor> tau, double scale)
    {
        if (scale == 0) return;
        using var _ = no_grad();
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        using Scalar alpha = scale; // rooted during the native calls (see RootedScalars)
        foreach (var (name, t) in tau)
        {
            if (!parameters.TryGetValue(name, out var p)) throw new ArgumentException($"the model has no parameter '{name}'");
            p.add_(t.to_type(p.dtype), alpha: alpha);
        }
    }

    /// <summary>
    /// For a LoRA fine-tune, τ of each adapted projection is scale·B·A, so θ_base − λ·τ is the same adapter with B
    /// multiplied by −λ: the result stays a PEFT adapter (loadable unmerged) and merges to exactly θ_base − λ·τ.
    /// </summary>
    public static void NegateLora(CausalLM model, double lambda)
    {
        using var _ = no_grad();
        using Scalar factor = -lambda; // rooted during the native calls (see RootedScalars)
        foreach (var a in LoraAdapter.Adapters(model))
        {
            if (a.Merged) throw new InvalidOperationException("unmerge the adapters before negating them");
            a.lora_B.weight.mul_(factor);
        }
    }
}
