using BiasFree.Engine.Lora;

namespace BiasFree.Engine.Training;

/// <summary>The training-based debiasing methods of BiasFreeBench (§3.3).</summary>
public enum TrainingMethod
{
    /// <summary>Supervised fine-tuning on (q, r_w), loss on the response only.</summary>
    Sft,
    /// <summary>Direct Preference Optimization on (q, r_w ≻ r_l) against the frozen base.</summary>
    Dpo,
    /// <summary>Fine-tune on (q, r_l), then θ = θ_base − λ·(θ_biased − θ_base).</summary>
    TaskVector,
    /// <summary>Reward and cost models plus a Lagrangian policy update (<see cref="SafeRlhf"/>; simplified, see there).</summary>
    SafeRlhf,
}

/// <summary>
/// Settings of one training run. Defaults follow BiasFreeBench's LLaMA-Factory recipes where they transfer (LoRA on all
/// linear layers, cosine schedule with 10 % warm-up, validation share 0.2 with best-checkpoint selection, DPO β = 0.1,
/// Task Vector λ = 0.5); the learning rate and epoch count are sized for small models on a CPU (the paper's 8e-6 × 20
/// epochs is for an 8B model on GPUs).
/// </summary>
public sealed record TrainingOptions
{
    public TrainingMethod Method { get; init; } = TrainingMethod.Sft;

    /// <summary>LoRA rank r.</summary>
    public int LoraRank { get; init; } = 8;

    /// <summary>LoRA α (the update is scaled by α / r).</summary>
    public double LoraAlpha { get; init; } = 16;

    /// <summary>LoRA dropout on the adapter input (LLaMA-Factory default 0).</summary>
    public double LoraDropout { get; init; }

    /// <summary>Projections that get adapters (default: all linear layers, LLaMA-Factory's <c>lora_target: all</c>).</summary>
    public IReadOnlyList<string> LoraTargets { get; init; } = LoraOptions.AllLinear;

    /// <summary>Task Vector only: fine-tune every weight instead of LoRA adapters (as the paper does).</summary>
    public bool FullFineTune { get; init; }

    /// <summary>Peak AdamW learning rate.</summary>
    public double LearningRate { get; init; } = 2e-3;

    public double WeightDecay { get; init; }

    /// <summary>Passes over the training split (ignored when <see cref="MaxSteps"/> is set).</summary>
    public int Epochs { get; init; } = 3;

    /// <summary>Optimizer steps; null = as many as <see cref="Epochs"/> need.</summary>
    public int? MaxSteps { get; init; }

    /// <summary>Examples per micro-batch.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>Micro-batches accumulated per optimizer step.</summary>
    public int GradientAccumulation { get; init; } = 1;

    /// <summary>Share of steps spent warming the learning rate up linearly.</summary>
    public double WarmupRatio { get; init; } = 0.1;

    /// <summary>Global gradient-norm clip (HF Trainer's max_grad_norm).</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>Share of the data held out for validation and best-checkpoint selection (0 = none; the last weights are kept).</summary>
    public double ValidationShare { get; init; } = 0.2;

    /// <summary>Validate every this many optimizer steps (and at the end).</summary>
    public int EvalEvery { get; init; } = 20;

    /// <summary>Write a resumable checkpoint every this many optimizer steps.</summary>
    public int CheckpointEvery { get; init; } = 10;

    /// <summary>DPO's β.</summary>
    public double Beta { get; init; } = 0.1;

    /// <summary>
    /// DPO only: weight γ of the SFT term γ·NLL(chosen) added to the DPO loss (LLaMA-Factory's <c>pref_ftx</c>; RPO).
    /// 0 is plain DPO, as in BiasFreeBench's recipe; see <see cref="Objectives.DpoLoss"/> and docs/training.md for
    /// why the default here is not 0.
    /// </summary>
    public double PreferenceFtx { get; init; } = DefaultPreferenceFtx;

    /// <summary>Default of <see cref="PreferenceFtx"/>.</summary>
    public const double DefaultPreferenceFtx = 1.0;

    /// <summary>Task Vector's λ (θ_base − λ·τ). BiasFreeBench's code: 0.5.</summary>
    public double TaskVectorLambda { get; init; } = TaskVector.PaperLambda;

    /// <summary>Safe-RLHF only: its own settings (null: <see cref="SafeRlhfOptions"/>' defaults).</summary>
    public SafeRlhfOptions? SafeRlhf { get; init; }

    /// <summary>Longest tokenized example (prompt + response); longer responses are cut.</summary>
    public int MaxLength { get; init; } = 256;

    /// <summary>Seed of the split, the batch order, the adapter initialisation and dropout.</summary>
    public int Seed { get; init; }

    /// <summary>Chat template family of the base model (null: detected, as <c>run</c> does).</summary>
    public string? ChatTemplate { get; init; }

    /// <summary>Torch intra-op threads (null: leave as is).</summary>
    public int? Threads { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> for settings outside their ranges.</summary>
    public void Validate()
    {
        static void Check(bool ok, string name, object value, string rule)
        {
            if (!ok) throw new ArgumentOutOfRangeException(name, value, $"{name} {rule}");
        }
        Check(LoraRank >= 1, nameof(LoraRank), LoraRank, "must be at least 1");
        Check(LoraAlpha > 0, nameof(LoraAlpha), LoraAlpha, "must be positive");
        Check(LoraDropout is >= 0 and < 1, nameof(LoraDropout), LoraDropout, "must be in [0, 1)");
        Check(LearningRate > 0, nameof(LearningRate), LearningRate, "must be positive");
        Check(WeightDecay >= 0, nameof(WeightDecay), WeightDecay, "must not be negative");
        Check(Epochs >= 1, nameof(Epochs), Epochs, "must be at least 1");
        Check(MaxSteps is null or >= 1, nameof(MaxSteps), MaxSteps ?? 0, "must be at least 1");
        Check(BatchSize >= 1, nameof(BatchSize), BatchSize, "must be at least 1");
        Check(GradientAccumulation >= 1, nameof(GradientAccumulation), GradientAccumulation, "must be at least 1");
        Check(WarmupRatio is >= 0 and < 1, nameof(WarmupRatio), WarmupRatio, "must be in [0, 1)");
        Check(MaxGradNorm > 0, nameof(MaxGradNorm), MaxGradNorm, "must be positive");
        Check(ValidationShare is >= 0 and < 1, nameof(ValidationShare), ValidationShare, "must be in [0, 1)");
        Check(EvalEvery >= 1, nameof(EvalEvery), EvalEvery, "must be at least 1");
        Check(CheckpointEvery >= 1, nameof(CheckpointEvery), CheckpointEvery, "must be at least 1");
        Check(Beta > 0, nameof(Beta), Beta, "must be positive");
        Check(PreferenceFtx >= 0, nameof(PreferenceFtx), PreferenceFtx, "must not be negative");
        Check(MaxLength >= 8, nameof(MaxLength), MaxLength, "must be at least 8");
        Check(LoraTargets.Count > 0 && LoraTargets.All(LoraOptions.AllLinear.Contains), nameof(LoraTargets), string.Join(",", LoraTargets),
            $"must be among {string.Join(", ", LoraOptions.AllLinear)}");
        if (FullFineTune && Method != TrainingMethod.TaskVector)
            throw new ArgumentException("full fine-tuning is offered for Task Vector only (SFT and DPO train LoRA adapters)", nameof(FullFineTune));
    }

    /// <summary>The method's command-line name.</summary>
    public static string Name(TrainingMethod method) => method switch
    {
        TrainingMethod.Sft => "sft",
        TrainingMethod.Dpo => "dpo",
        TrainingMethod.SafeRlhf => "safe-rlhf",
        _ => "task-vector",
    };

    /// <summary>Parses sft, dpo, task-vector or safe-rlhf.</summary>
    public static TrainingMethod ParseMethod(string name) => name.Trim().ToLowerInvariant() switch
    {
        "sft" => TrainingMethod.Sft,
        "dpo" => TrainingMethod.Dpo,
        "task-vector" or "taskvector" or "tv" => TrainingMethod.TaskVector,
        "safe-rlhf" or "saferlhf" => TrainingMethod.SafeRlhf,
        _ => throw new ArgumentException($"unknown training method '{name}' (use sft, dpo, task-vector or safe-rlhf)"),
    };
}

/// <summary>Progress of a training run, reported after every optimizer step and at phase changes.</summary>
/// <param name="Phase">"load", "encode", "reference", "train", "save".</param>
/// <param name="Step">Optimizer steps done.</param>
/// <param name="TotalSteps">Optimizer steps planned.</param>
/// <param name="Loss">Training loss of the last step (NaN before the first).</param>
/// <param name="TokensPerSecond">Non-padding tokens processed per second over this process's steps.</param>
/// <param name="Elapsed">Wall time of this process so far.</param>
/// <param name="Eta">Estimated time to finish the remaining steps (null before the first step).</param>
/// <param name="ValidationLoss">Last validation loss, when one was computed.</param>
/// <param name="Detail">Method-specific statistics, e.g. DPO's reward margin and accuracy.</param>
public sealed record TrainingProgress(string Phase, int Step, int TotalSteps, double Loss, double TokensPerSecond, TimeSpan Elapsed,
    TimeSpan? Eta, double? ValidationLoss, string? Detail);

/// <summary>What a finished run produced.</summary>
/// <param name="OutputDir">The merged Hugging Face model folder.</param>
/// <param name="AdapterDir">The PEFT adapter folder (null for a full-weight Task Vector).</param>
/// <param name="Steps">Optimizer steps taken.</param>
/// <param name="ResumedFromStep">Step the run continued from (0 for a fresh run).</param>
/// <param name="BestStep">Step whose weights were kept (validation loss), or the last step without validation.</param>
/// <param name="FirstLoss">Loss of the first step.</param>
/// <param name="FinalLoss">Mean loss over the last tenth of the steps.</param>
/// <param name="BestValidationLoss">Validation loss of the kept weights, when validated.</param>
/// <param name="TrainExamples">Training-split size.</param>
/// <param name="ValidationExamples">Validation-split size.</param>
/// <param name="Elapsed">Wall time of this process.</param>
public sealed record TrainingResult(string OutputDir, string? AdapterDir, int Steps, int ResumedFromStep, int BestStep, double FirstLoss,
    double FinalLoss, double? BestValidationLoss, int TrainExamples, int ValidationExamples, TimeSpan Elapsed);
