using System.Text.Json;
using System.Text.Json.Nodes;
using BiasFree.Engine.Lora;

namespace BiasFree.Engine.Training;

/// <summary>What <see cref="JudgeTrainer.TrainAsync"/> produced.</summary>
/// <param name="AdapterDir">The stacked PEFT adapter (SFT then DPO) on the original base.</param>
/// <param name="Sft">Stage 1.</param>
/// <param name="Dpo">Stage 2.</param>
public sealed record JudgeTrainingResult(string AdapterDir, TrainingResult Sft, TrainingResult Dpo);

/// <summary>
/// BiasGuard's two-stage recipe for a small judge (Fan, Chen, Liu, Findings of ACL 2025, arXiv:2504.21299, §3.2–3.3) on
/// the engine: stage 1 SFT (LoRA) on the chosen traces, whose conclusions match the gold labels; stage 2 DPO (LoRA) on
/// chosen vs rejected traces with the SFT model, frozen, as the reference (its merged folder is DPO's base). The two
/// adapters are stacked into one PEFT adapter on the original base (<see cref="LoraAdapter.Stack"/>), so the shipped
/// judge is a small adapter and never a copy of the base weights. Writes OUT/adapter, OUT/judge-training.json and
/// keeps the stages' folders under OUT/work (resumable, like every <see cref="DebiasTrainer"/> run; not shipped).
/// </summary>
public static class JudgeTrainer
{
    /// <summary>Runs both stages; see the class summary.</summary>
    public static async Task<JudgeTrainingResult> TrainAsync(string baseFolder, IReadOnlyList<PreferencePair> pairs, string outDir,
        TrainingOptions sft, TrainingOptions dpo, string dataDescription, IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(baseFolder);
        ArgumentNullException.ThrowIfNull(pairs);
        ArgumentNullException.ThrowIfNull(sft);
        ArgumentNullException.ThrowIfNull(dpo);
        if (sft.Method != TrainingMethod.Sft || dpo.Method != TrainingMethod.Dpo) throw new ArgumentException("stage 1 must be SFT and stage 2 DPO");
        var work = Path.Combine(outDir, "work");
        var sftDir = Path.Combine(work, "sft");
        var dpoDir = Path.Combine(work, "dpo");
        var s = await DebiasTrainer.TrainAsync(baseFolder, pairs, sftDir, sft, progress, cancellationToken, dataDescription).ConfigureAwait(false);
        // The SFT model (merged) is DPO's base, and DebiasTrainer's DPO reference is the frozen base: the SFT model, as the recipe says.
        var d = await DebiasTrainer.TrainAsync(s.OutputDir, pairs, dpoDir, dpo, progress, cancellationToken, dataDescription).ConfigureAwait(false);
        var adapter = Path.Combine(outDir, "adapter");
        LoraAdapter.Stack(s.AdapterDir!, d.AdapterDir!, adapter);
        // The stacked adapter applies to the original base (not to stage 2's base, the merged SFT folder under work/).
        var cfgPath = Path.Combine(adapter, "adapter_config.json");
        var cfg = JsonNode.Parse(File.ReadAllText(cfgPath))!.AsObject();
        cfg["base_model_name_or_path"] = Path.GetFileName(Path.TrimEndingDirectorySeparator(baseFolder));
        File.WriteAllText(cfgPath, cfg.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        var record = new JsonObject
        {
            ["recipe"] = "BiasGuard two-stage (SFT on correct traces, then DPO vs incorrect traces with the SFT model as reference); adapters stacked",
            ["base"] = Path.GetFileName(Path.TrimEndingDirectorySeparator(baseFolder)),
            ["data"] = dataDescription,
            ["pairs"] = pairs.Count,
            ["sft"] = Stage(sft, s),
            ["dpo"] = Stage(dpo, d),
        };
        File.WriteAllText(Path.Combine(outDir, "judge-training.json"), record.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return new JudgeTrainingResult(adapter, s, d);
    }

    private static JsonObject Stage(TrainingOptions o, TrainingResult r) => new()
    {
        ["method"] = TrainingOptions.Name(o.Method),
        ["loraRank"] = o.LoraRank,
        ["loraAlpha"] = o.LoraAlpha,
        ["learningRate"] = o.LearningRate,
        ["epochs"] = o.Epochs,
        ["maxSteps"] = o.MaxSteps,
        ["batchSize"] = o.BatchSize,
        ["beta"] = o.Method == TrainingMethod.Dpo ? o.Beta : null,
        ["seed"] = o.Seed,
        ["steps"] = r.Steps,
        ["bestStep"] = r.BestStep,
        ["firstLoss"] = r.FirstLoss,
        ["finalLoss"] = r.FinalLoss,
        ["bestValidationLoss"] = r.BestValidationLoss,
        ["trainExamples"] = r.TrainExamples,
        ["validationExamples"] = r.ValidationExamples,
        ["seconds"] = Math.Round(r.Elapsed.TotalSeconds, 1),
    };
}
