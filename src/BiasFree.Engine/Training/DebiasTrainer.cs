using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using BiasFree.Engine.Lora;
using BiasFree.Engine.Models;
using BiasFree.Engine.Safetensors;
using BiasFree.Engine.Tokenization;
using BiasFree.Probes;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BiasFree.Engine.Training;

/// <summary>One tokenized example: the rendered prompt and a response (its ids end with the template's end-of-turn token).</summary>
public sealed record EncodedExample(int[] Prompt, int[] Chosen, int[]? Rejected);

/// <summary>
/// Trains a debiased model from a base Hugging Face folder with one of BiasFreeBench's training methods and writes
///   OUT/                     the merged model (config.json, model.safetensors, the base's tokenizer files): a model folder for <c>run --target OUT</c>
///   OUT/adapter/             the PEFT adapter (adapter_config.json + adapter_model.safetensors) for <c>run --target BASE --adapter OUT/adapter</c>
///   OUT/training.json        what was done (method, data, settings, losses, wall time)
/// While training, OUT/checkpoint/ holds the last resumable state; calling <see cref="TrainAsync"/> again with the same
/// base, data and options after a crash (even kill -9) continues from it and ends with the same weights as an
/// uninterrupted run (seeded split, batch order, initialisation and dropout; optimizer moments are checkpointed).
/// </summary>
public static class DebiasTrainer
{
    private const string RecordFile = "training.json";

    /// <summary>Trains and saves; see the class summary. <paramref name="baseFolder"/> is a Hugging Face model folder.</summary>
    public static Task<TrainingResult> TrainAsync(string baseFolder, IReadOnlyList<PreferencePair> data, string outputDir, TrainingOptions options,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default, string? dataDescription = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(baseFolder);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentException.ThrowIfNullOrWhiteSpace(outputDir);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.Method == TrainingMethod.SafeRlhf)
            return SafeRlhf.TrainAsync(baseFolder, data, outputDir, options, options.SafeRlhf, progress, cancellationToken);
        if (data.Count < 2) throw new ArgumentException($"training needs at least 2 examples, got {data.Count}", nameof(data));
        if (options.Method == TrainingMethod.Dpo && data.FirstOrDefault(p => p.Rejected is null) is { } sftOnly)
            throw new ArgumentException($"DPO needs preference pairs, but '{sftOnly.Id}' has no rejected response (an Alpaca file is SFT data)", nameof(data));
        if (!File.Exists(Path.Combine(baseFolder, "config.json")) || !File.Exists(Path.Combine(baseFolder, "tokenizer.json")))
            throw new DirectoryNotFoundException($"'{baseFolder}' is not a model folder (it needs config.json and tokenizer.json)");
        return Task.Run(() => Train(Path.GetFullPath(baseFolder), data, Path.GetFullPath(outputDir), options, progress, dataDescription, cancellationToken), cancellationToken);
    }

    private static TrainingResult Train(string baseFolder, IReadOnlyList<PreferencePair> data, string outDir, TrainingOptions o,
        IProgress<TrainingProgress>? progress, string? dataDescription, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        if (o.Threads is int threads) torch.set_num_threads(threads);
        if (File.Exists(Path.Combine(outDir, RecordFile)) && !TrainingCheckpoint.Exists(outDir))
            throw new ArgumentException($"{outDir} already holds a finished training ({RecordFile}); remove it or choose another output folder");
        void Report(string phase, int step, int total) =>
            progress?.Report(new TrainingProgress(phase, step, total, double.NaN, 0, clock.Elapsed, null, null, null));

        // 1. Base model, tokenizer and chat template (the ones `run --target` uses, so training sees the prompts inference will).
        Report("load", 0, 0);
        using var model = TrainingLoop.LoadBase(baseFolder, o.ChatTemplate, out var tokenizer, out var template, out int endOfTurn);
        int pad = model.Config.PadTokenId ?? endOfTurn;

        // 2. Encode, split (seeded) into train / validation.
        Report("encode", 0, 0);
        var encoded = data.Select(p => Encode(tokenizer, template, p, endOfTurn, o.MaxLength, o.Method)).ToList();
        var plan = TrainingLoop.Plan(data.Count, o, "train");
        var (valIdx, steps) = (plan.Validation, plan.Steps);
        int totalSteps = steps.Count;

        // 3. Trainable parameters: LoRA adapters (seeded init, B = 0 so the model starts as the base), or every weight.
        LoraOptions? lora = null;
        using var dropoutGenerator = new torch.Generator((ulong)o.Seed);
        Dictionary<string, Tensor>? baseCopy = null;
        List<(string Name, Parameter Parameter)> trainable;
        if (o.FullFineTune)
        {
            baseCopy = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone().DetachFromDisposeScope(), StringComparer.Ordinal);
            foreach (var p in model.parameters()) p.requires_grad = true;
            trainable = [.. model.named_parameters().Select(p => (p.name, p.parameter))];
        }
        else
        {
            (lora, trainable) = TrainingLoop.ApplyLora(model, o, dropoutGenerator);
        }

        // 4. DPO's reference: log π_ref(y|x) of every example under the frozen base (the adapters are still zero here).
        double[]? refChosen = null, refRejected = null;
        if (o.Method == TrainingMethod.Dpo)
        {
            Report("reference", 0, totalSteps);
            (refChosen, refRejected) = ReferenceLogProbs(model, encoded, pad, o.BatchSize);
        }

        // 5. Train (resuming from the checkpoint when there is one).
        string fingerprint = Fingerprint(baseFolder, data, o);
        TrainingLoop.StepResult Step(int step)
        {
            double stepLoss = 0;
            long tokensRead = 0;
            var dpoStats = new List<DpoTerms>();
            foreach (var mb in steps[step])
            {
                using var scope = NewDisposeScope();
                Tensor loss;
                if (o.Method == TrainingMethod.Dpo)
                {
                    var (ids, mask, tokens) = Batch(mb.Select(i => encoded[i].Prompt.Concat(encoded[i].Chosen).ToArray())
                        .Concat(mb.Select(i => encoded[i].Prompt.Concat(encoded[i].Rejected!).ToArray())).ToList(),
                        mb.Select(i => encoded[i].Prompt.Length).Concat(mb.Select(i => encoded[i].Prompt.Length)).ToList(), pad);
                    tokensRead += tokens;
                    var logps = Objectives.SequenceLogProbs(model, ids, mask);
                    int n = mb.Length;
                    var terms = Objectives.DpoLoss(logps.narrow(0, 0, n), logps.narrow(0, n, n),
                        tensor(mb.Select(i => (float)refChosen![i]).ToArray()), tensor(mb.Select(i => (float)refRejected![i]).ToArray()), o.Beta,
                        tensor(mb.Select(i => (float)encoded[i].Chosen.Length).ToArray()), o.PreferenceFtx);
                    dpoStats.Add(terms with { Loss = null! });
                    loss = terms.Loss;
                }
                else
                {
                    var (ids, mask, tokens) = Batch(mb.Select(i => encoded[i].Prompt.Concat(SftTarget(encoded[i], o.Method)).ToArray()).ToList(),
                        mb.Select(i => encoded[i].Prompt.Length).ToList(), pad);
                    tokensRead += tokens;
                    loss = model.NextTokenLoss(ids, mask);
                }
                loss.Over(steps[step].Count).backward();
                stepLoss += loss.item<float>() / steps[step].Count;
            }
            if (dpoStats.Count == 0) return new(stepLoss, tokensRead, null);
            // Chosen/rejected rewards show the failure DPO's margin hides: both falling while the margin grows.
            double[] st = [dpoStats.Average(d => d.RewardMargin), dpoStats.Average(d => d.RewardAccuracy), dpoStats.Average(d => d.ChosenReward),
                dpoStats.Average(d => d.RejectedReward), dpoStats.Average(d => d.ChosenNll)];
            return new(stepLoss, tokensRead,
                FormattableString.Invariant($"margin {st[0]:0.000} · reward acc {st[1]:0.00} · chosen {st[2]:+0.000;-0.000} · rejected {st[3]:+0.000;-0.000} · chosen NLL {st[4]:0.000}"), st);
        }
        var outcome = TrainingLoop.Run(model, trainable, dropoutGenerator, o, totalSteps, outDir, fingerprint, Step,
            valIdx.Count > 0 ? () => ValidationLoss(model, encoded, valIdx, pad, o, refChosen, refRejected) : null, progress, clock, ct);
        var (state, detail) = (outcome.State, outcome.LastDetail);

        // 6. The loop left the best validated weights in place (HF's load_best_model_at_end); apply the method's final transform.
        Report("save", state.Step, totalSteps);
        if (o.Method == TrainingMethod.TaskVector)
        {
            if (baseCopy is not null)
            {
                // θ = θ_base − λ·τ with τ = θ_biased − θ_base, on every weight.
                var finetuned = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone().DetachFromDisposeScope(), StringComparer.Ordinal);
                var tau = TaskVector.Compute(baseCopy, finetuned);
                using (no_grad())
                    foreach (var (name, p) in model.named_parameters()) p.copy_(baseCopy[name]);
                TaskVector.Apply(model, tau, -o.TaskVectorLambda);
                DisposeAll(tau);
                DisposeAll(finetuned);
            }
            else TaskVector.NegateLora(model, o.TaskVectorLambda);
        }

        // 7. Outputs: merged folder (+ the base's tokenizer and generation files), PEFT adapter, record; then drop the checkpoint.
        string? adapterDir = null;
        Directory.CreateDirectory(outDir);
        model.Save(outDir);
        ModelFolder.CopyTokenizerFiles(baseFolder, outDir);
        if (lora is not null)
        {
            adapterDir = Path.Combine(outDir, "adapter");
            LoraAdapter.Save(model, adapterDir, lora, baseFolder);
        }
        var result = outcome.Result(outDir, adapterDir, plan, clock.Elapsed);
        WriteRecord(outDir, baseFolder, data, o, result, state, dataDescription, detail);
        DisposeAll(baseCopy);
        TrainingCheckpoint.Delete(outDir);
        return result;
    }

    private static IEnumerable<int> SftTarget(EncodedExample e, TrainingMethod method) =>
        // Task Vector fine-tunes on the stereotyped response r_l (BiasFreeBench's task_vector file); an Alpaca item has only its output.
        method == TrainingMethod.TaskVector ? e.Rejected ?? e.Chosen : e.Chosen;

    /// <summary>
    /// Renders [system?, user] with the model's chat template and a generation prompt, and appends each response's
    /// ids plus the end-of-turn token: the exact token sequence the chat client produces and then generates.
    /// Responses are cut so prompt + response fits <paramref name="maxLength"/>.
    /// </summary>
    public static EncodedExample Encode(HfTokenizer tokenizer, ChatTemplate template, PreferencePair pair, int endOfTurn, int maxLength,
        TrainingMethod method = TrainingMethod.Sft)
    {
        var messages = new List<(string Role, string Content)>();
        if (pair.System is { } system) messages.Add(("system", system));
        messages.Add(("user", pair.Prompt));
        var prompt = tokenizer.Encode(template.Render(messages, addGenerationPrompt: true), addSpecialTokens: false).ToArray();
        if (prompt.Length >= maxLength - 1) throw new ArgumentException($"item '{pair.Id}': the prompt alone is {prompt.Length} tokens (max length {maxLength})");
        int[] Response(string text)
        {
            var ids = tokenizer.Encode(text, addSpecialTokens: false).Append(endOfTurn).ToArray();
            return ids.Length + prompt.Length > maxLength ? ids[..(maxLength - prompt.Length)] : ids;
        }
        return new EncodedExample(prompt, Response(pair.Chosen), pair.Rejected is null ? null : Response(pair.Rejected));
    }

    /// <summary>Right-padded [B, T] ids and a 0/1 mask over response tokens; also the count of real tokens.</summary>
    private static (Tensor Ids, Tensor Mask, long Tokens) Batch(IReadOnlyList<int[]> rows, IReadOnlyList<int> promptLengths, int pad)
    {
        int t = rows.Max(r => r.Length);
        var ids = new long[rows.Count * t];
        var mask = new float[rows.Count * t];
        long tokens = 0;
        for (int b = 0; b < rows.Count; b++)
        {
            for (int i = 0; i < t; i++)
            {
                bool real = i < rows[b].Length;
                ids[b * t + i] = real ? rows[b][i] : pad;
                mask[b * t + i] = real && i >= promptLengths[b] ? 1f : 0f;
            }
            tokens += rows[b].Length;
        }
        return (tensor(ids, [rows.Count, t], ScalarType.Int64), tensor(mask, [rows.Count, t], ScalarType.Float32), tokens);
    }

    private static (double[] Chosen, double[] Rejected) ReferenceLogProbs(CausalLM model, IReadOnlyList<EncodedExample> encoded, int pad, int batchSize)
    {
        var chosen = new double[encoded.Count];
        var rejected = new double[encoded.Count];
        using var _ = no_grad();
        model.eval();
        for (int start = 0; start < encoded.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var idx = Enumerable.Range(start, Math.Min(batchSize, encoded.Count - start)).ToList();
            var (ids, mask, _) = Batch(idx.Select(i => encoded[i].Prompt.Concat(encoded[i].Chosen).ToArray())
                .Concat(idx.Select(i => encoded[i].Prompt.Concat(encoded[i].Rejected!).ToArray())).ToList(),
                idx.Select(i => encoded[i].Prompt.Length).Concat(idx.Select(i => encoded[i].Prompt.Length)).ToList(), pad);
            var logps = Objectives.SequenceLogProbs(model, ids, mask).to_type(ScalarType.Float64).data<double>().ToArray();
            for (int k = 0; k < idx.Count; k++)
            {
                chosen[idx[k]] = logps[k];
                rejected[idx[k]] = logps[idx.Count + k];
            }
        }
        return (chosen, rejected);
    }

    /// <summary>The training objective on the validation split (SFT/Task Vector: token-mean NLL; DPO: mean DPO loss with its SFT term).</summary>
    private static double ValidationLoss(CausalLM model, IReadOnlyList<EncodedExample> encoded, IReadOnlyList<int> valIdx, int pad, TrainingOptions o,
        double[]? refChosen, double[]? refRejected)
    {
        using var _ = no_grad();
        double total = 0, weight = 0;
        foreach (var chunk in valIdx.Chunk(o.BatchSize))
        {
            using var scope = NewDisposeScope();
            if (o.Method == TrainingMethod.Dpo)
            {
                var (ids, mask, _) = Batch(chunk.Select(i => encoded[i].Prompt.Concat(encoded[i].Chosen).ToArray())
                    .Concat(chunk.Select(i => encoded[i].Prompt.Concat(encoded[i].Rejected!).ToArray())).ToList(),
                    chunk.Select(i => encoded[i].Prompt.Length).Concat(chunk.Select(i => encoded[i].Prompt.Length)).ToList(), pad);
                var logps = Objectives.SequenceLogProbs(model, ids, mask);
                int n = chunk.Length;
                using var terms = Objectives.DpoLoss(logps.narrow(0, 0, n), logps.narrow(0, n, n),
                    tensor(chunk.Select(i => (float)refChosen![i]).ToArray()), tensor(chunk.Select(i => (float)refRejected![i]).ToArray()), o.Beta,
                    tensor(chunk.Select(i => (float)encoded[i].Chosen.Length).ToArray()), o.PreferenceFtx);
                total += terms.Loss.item<float>() * n;
                weight += n;
            }
            else
            {
                var (ids, mask, _) = Batch(chunk.Select(i => encoded[i].Prompt.Concat(SftTarget(encoded[i], o.Method)).ToArray()).ToList(),
                    chunk.Select(i => encoded[i].Prompt.Length).ToList(), pad);
                long targets = (long)mask.narrow(1, 1, mask.shape[1] - 1).sum().item<float>();
                total += model.NextTokenLoss(ids, mask).item<float>() * targets;
                weight += targets;
            }
        }
        return weight == 0 ? double.NaN : total / weight;
    }

    /// <summary>
    /// Linear warm-up over the first <see cref="TrainingOptions.WarmupRatio"/> of the steps, then cosine decay to 0
    /// (HF's get_cosine_schedule_with_warmup, which LLaMA-Factory's <c>lr_scheduler_type: cosine</c> uses; the first
    /// warm-up step uses lr/W instead of 0).
    /// </summary>
    public static double LearningRateAt(int step, int totalSteps, TrainingOptions o)
    {
        int warmup = (int)Math.Ceiling(totalSteps * o.WarmupRatio);
        if (step < warmup) return o.LearningRate * (step + 1) / warmup;
        double progress = (step - warmup) / (double)Math.Max(1, totalSteps - warmup);
        return o.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }

    // ------------------------------------------------------------------ checkpoints

    private static string Fingerprint(string baseFolder, IReadOnlyList<PreferencePair> data, TrainingOptions o) =>
        TrainingCheckpoint.Fingerprint(baseFolder, data, o with { Threads = null });

    private static void WriteRecord(string outDir, string baseFolder, IReadOnlyList<PreferencePair> data, TrainingOptions o, TrainingResult r,
        TrainingLoop.RunState state, string? dataDescription, string? lastDetail)
    {
        var rec = new JsonObject
        {
            ["trainer"] = "BiasFree.Engine.Training.DebiasTrainer",
            ["method"] = TrainingOptions.Name(o.Method),
            ["base_model"] = baseFolder,
            ["data"] = dataDescription,
            ["examples"] = data.Count,
            ["examples_per_bias_type"] = new JsonObject(PreferenceData.CountByCategory(data).Select(c => KeyValuePair.Create(c.Category, (JsonNode?)c.Count))),
            ["train_examples"] = r.TrainExamples,
            ["validation_examples"] = r.ValidationExamples,
            ["lora"] = o.FullFineTune ? null : new JsonObject { ["r"] = o.LoraRank, ["alpha"] = o.LoraAlpha, ["dropout"] = o.LoraDropout, ["targets"] = string.Join(",", o.LoraTargets) },
            ["full_fine_tune"] = o.FullFineTune,
            ["learning_rate"] = o.LearningRate,
            ["epochs"] = o.Epochs,
            ["steps"] = r.Steps,
            ["batch_size"] = o.BatchSize,
            ["gradient_accumulation"] = o.GradientAccumulation,
            ["warmup_ratio"] = o.WarmupRatio,
            ["beta"] = o.Method == TrainingMethod.Dpo ? o.Beta : null,
            ["pref_ftx"] = o.Method == TrainingMethod.Dpo ? o.PreferenceFtx : null,
            ["task_vector_lambda"] = o.Method == TrainingMethod.TaskVector ? o.TaskVectorLambda : null,
            ["seed"] = o.Seed,
            ["first_loss"] = Math.Round(r.FirstLoss, 5),
            ["final_loss"] = Math.Round(r.FinalLoss, 5),
            ["best_step"] = r.BestStep,
            ["best_validation_loss"] = r.BestValidationLoss is { } b ? Math.Round(b, 5) : null,
            ["last_step_statistics"] = lastDetail,
            // One row per step: [reward margin, reward accuracy, chosen reward, rejected reward, chosen token-mean NLL].
            ["dpo_steps"] = state.DpoStatistics.Count == 0 ? null
                : new JsonArray([.. state.DpoStatistics.Select(r => (JsonNode?)new JsonArray([.. r.Select(v => (JsonNode?)JsonValue.Create(Math.Round(v, 4)))]))]),
            ["resumed_from_step"] = r.ResumedFromStep,
            ["train_seconds"] = Math.Round(state.TrainSeconds, 1),
            ["torch_threads"] = torch.get_num_threads(),
        };
        File.WriteAllText(Path.Combine(outDir, RecordFile), rec.ToJsonString(new JsonSerializerOptions
        {
            WriteIndented = true,
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // keep "·" readable; the file is not HTML
        }));
    }

    private static void DisposeAll(Dictionary<string, Tensor>? tensors) => TrainingLoop.DisposeAll(tensors);
}
