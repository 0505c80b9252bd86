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

    /// <summary>Resumable progress of a training loop (shared with <see cref="DiffPoTrainer"/>).</summary>
    internal sealed class RunState
    {
        public int Step;
        public int BestStep;
        public double? BestValidationLoss;
        public List<double> Losses = [];
        public List<double> ValidationLosses = [];
        /// <summary>DPO per step: reward margin, reward accuracy, chosen reward, rejected reward, chosen token-mean NLL.</summary>
        public List<double[]> DpoStatistics = [];
        public double TrainSeconds;
    }

    private static TrainingResult Train(string baseFolder, IReadOnlyList<PreferencePair> data, string outDir, TrainingOptions o,
        IProgress<TrainingProgress>? progress, string? dataDescription, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        if (o.Threads is int threads) torch.set_num_threads(threads);
        if (File.Exists(Path.Combine(outDir, RecordFile)) && !TrainingCheckpoint.Exists(outDir))
            throw new ArgumentException($"{outDir} already holds a finished training ({RecordFile}); remove it or choose another output folder");
        void Report(string phase, int step, int total, double loss = double.NaN, double tps = 0, TimeSpan? eta = null, double? val = null, string? detail = null) =>
            progress?.Report(new TrainingProgress(phase, step, total, loss, tps, clock.Elapsed, eta, val, detail));

        // 1. Base model, tokenizer and chat template (the ones `run --target` uses, so training sees the prompts inference will).
        Report("load", 0, 0);
        var tokenizer = HfTokenizer.FromFolder(baseFolder);
        var template = ChatTemplate.For(tokenizer, o.ChatTemplate);
        using var model = CausalLM.Load(baseFolder, ScalarType.Float32);
        int endOfTurn = (template.EosToken is { } eosText ? tokenizer.TokenToId(eosText) : null)
                        ?? model.EosTokenIds.FirstOrDefault(-1);
        if (endOfTurn < 0) throw new InvalidDataException($"{baseFolder}: no end-of-turn token (template {template.Name}) and no eos_token_id");
        int pad = model.Config.PadTokenId ?? endOfTurn;

        // 2. Encode, split (seeded) into train / validation.
        Report("encode", 0, 0);
        var encoded = data.Select(p => Encode(tokenizer, template, p, endOfTurn, o.MaxLength, o.Method)).ToList();
        var order = StableRandom.For(o.Seed, "train/split").Shuffle(Enumerable.Range(0, data.Count).ToList());
        int nVal = o.ValidationShare > 0 ? Math.Clamp((int)Math.Round(data.Count * o.ValidationShare), 1, data.Count - 1) : 0;
        var valIdx = order.Take(nVal).Order().ToList();
        var trainIdx = order.Skip(nVal).Order().ToList();
        var microBatches = new List<List<int>>();
        int stepsPerEpoch = (int)Math.Ceiling(trainIdx.Count / (double)(o.BatchSize * o.GradientAccumulation));
        int totalSteps = o.MaxSteps ?? stepsPerEpoch * o.Epochs;
        int epochsNeeded = (int)Math.Ceiling(totalSteps / (double)stepsPerEpoch);
        var steps = new List<List<List<int>>>();
        for (int e = 0; e < epochsNeeded; e++)
        {
            var shuffled = StableRandom.For(o.Seed, $"train/epoch/{e}").Shuffle(trainIdx);
            var batches = shuffled.Chunk(o.BatchSize).Select(c => c.ToList()).ToList();
            steps.AddRange(batches.Chunk(o.GradientAccumulation).Select(c => c.ToList()));
        }
        steps = steps.Take(totalSteps).ToList();

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
            lora = new LoraOptions { Rank = o.LoraRank, Alpha = o.LoraAlpha, Dropout = o.LoraDropout, TargetModules = o.LoraTargets, Seed = o.Seed };
            LoraAdapter.Apply(model, lora);
            LoraAdapter.UseDropoutGenerator(model, dropoutGenerator);
            trainable = [.. model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter))];
        }

        // 4. DPO's reference: log π_ref(y|x) of every example under the frozen base (the adapters are still zero here).
        double[]? refChosen = null, refRejected = null;
        if (o.Method == TrainingMethod.Dpo)
        {
            Report("reference", 0, totalSteps);
            (refChosen, refRejected) = ReferenceLogProbs(model, encoded, pad, o.BatchSize);
        }

        // 5. Resume or start.
        string fingerprint = Fingerprint(baseFolder, data, o);
        using var optimizer = new AdamWOptimizer(trainable) { WeightDecay = o.WeightDecay };
        var state = new RunState();
        Dictionary<string, Tensor>? best = null;
        int resumedFrom = 0;
        if (LoadCheckpoint(outDir, fingerprint, trainable, optimizer) is { } restored)
        {
            (state, best) = restored;
            resumedFrom = state.Step;
        }

        // 6. Train.
        model.train();
        long tokensThisProcess = 0;
        double trainSecondsThisProcess = 0;
        string? detail = null;
        while (state.Step < totalSteps)
        {
            ct.ThrowIfCancellationRequested();
            var stepClock = Stopwatch.StartNew();
            int step = state.Step;
            // Dropout draws from the trainer's own generator; reseeding it per step makes a resumed run draw what the
            // uninterrupted one would have.
            dropoutGenerator.manual_seed(o.Seed * 1_000_003L + step);
            double lr = LearningRateAt(step, totalSteps, o);
            optimizer.ZeroGrad();
            double stepLoss = 0;
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
                    tokensThisProcess += tokens;
                    var logps = Objectives.SequenceLogProbs(model, ids, mask);
                    int n = mb.Count;
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
                    tokensThisProcess += tokens;
                    loss = model.NextTokenLoss(ids, mask);
                }
                (loss / steps[step].Count).backward();
                stepLoss += loss.item<float>() / steps[step].Count;
            }
            nn.utils.clip_grad_norm_(trainable.Select(t => t.Parameter).ToList(), o.MaxGradNorm);
            optimizer.Update(lr);
            state.Step++;
            state.Losses.Add(stepLoss);
            if (dpoStats.Count > 0)
            {
                // Chosen/rejected rewards show the failure DPO's margin hides: both falling while the margin grows.
                double[] st = [dpoStats.Average(d => d.RewardMargin), dpoStats.Average(d => d.RewardAccuracy), dpoStats.Average(d => d.ChosenReward),
                    dpoStats.Average(d => d.RejectedReward), dpoStats.Average(d => d.ChosenNll)];
                state.DpoStatistics.Add(st);
                detail = FormattableString.Invariant($"margin {st[0]:0.000} · reward acc {st[1]:0.00} · chosen {st[2]:+0.000;-0.000} · rejected {st[3]:+0.000;-0.000} · chosen NLL {st[4]:0.000}");
            }

            double? val = null;
            if (nVal > 0 && (state.Step % o.EvalEvery == 0 || state.Step == totalSteps))
            {
                model.eval();
                val = ValidationLoss(model, encoded, valIdx, pad, o, refChosen, refRejected);
                model.train();
                KeepIfBest(state, val.Value, trainable, ref best);
            }
            stepClock.Stop();
            trainSecondsThisProcess += stepClock.Elapsed.TotalSeconds;
            state.TrainSeconds += stepClock.Elapsed.TotalSeconds;
            if (state.Step % o.CheckpointEvery == 0 && state.Step < totalSteps)
                SaveCheckpoint(outDir, fingerprint, state, trainable, optimizer, best);
            double perStep = trainSecondsThisProcess / (state.Step - resumedFrom);
            double? lastVal = state.ValidationLosses.Count > 0 ? state.ValidationLosses[^1] : null;
            Report("train", state.Step, totalSteps, stepLoss, tokensThisProcess / Math.Max(1e-9, trainSecondsThisProcess),
                TimeSpan.FromSeconds(perStep * (totalSteps - state.Step)), val ?? lastVal, detail);
        }
        model.eval();

        // 7. Keep the best validated weights (HF's load_best_model_at_end), then apply the method's final transform.
        RestoreBest(state, trainable, best);
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

        // 8. Outputs: merged folder (+ the base's tokenizer and generation files), PEFT adapter, record; then drop the checkpoint.
        string? adapterDir = null;
        Directory.CreateDirectory(outDir);
        model.Save(outDir);
        CopyTokenizerFiles(baseFolder, outDir);
        if (lora is not null)
        {
            adapterDir = Path.Combine(outDir, "adapter");
            LoraAdapter.Save(model, adapterDir, lora, baseFolder);
        }
        int tail = Math.Max(1, state.Losses.Count / 10);
        var result = new TrainingResult(outDir, adapterDir, state.Step, resumedFrom, state.BestStep, state.Losses.FirstOrDefault(double.NaN),
            state.Losses.Count == 0 ? double.NaN : state.Losses.Skip(state.Losses.Count - tail).Average(), state.BestValidationLoss,
            trainIdx.Count, valIdx.Count, clock.Elapsed);
        WriteRecord(outDir, baseFolder, data, o, result, state, dataDescription, detail);
        DisposeAll(best);
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

    /// <summary>Records a validation loss and, when it is the lowest so far, snapshots the trained parameters as the best.</summary>
    internal static void KeepIfBest(RunState state, double validationLoss, IReadOnlyList<(string Name, Parameter Parameter)> trainable,
        ref Dictionary<string, Tensor>? best)
    {
        state.ValidationLosses.Add(validationLoss);
        if (!(state.BestValidationLoss is null || validationLoss < state.BestValidationLoss.Value)) return;
        state.BestValidationLoss = validationLoss;
        state.BestStep = state.Step;
        DisposeAll(best);
        best = trainable.ToDictionary(t => t.Name, t => t.Parameter.detach().clone().DetachFromDisposeScope(), StringComparer.Ordinal);
    }

    /// <summary>Puts the best validated weights back (HF's load_best_model_at_end); without validation the last step is the best.</summary>
    internal static void RestoreBest(RunState state, IReadOnlyList<(string Name, Parameter Parameter)> trainable, Dictionary<string, Tensor>? best)
    {
        if (best is null)
        {
            state.BestStep = state.Step;
            return;
        }
        using var _ = no_grad();
        foreach (var (name, p) in trainable) p.copy_(best[name]);
    }

    /// <summary>Copies the base folder's tokenizer and generation files that exist into a trained model's folder.</summary>
    internal static void CopyTokenizerFiles(string baseFolder, string outDir)
    {
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "vocab.json", "merges.txt" })
        {
            var src = Path.Combine(baseFolder, f);
            if (File.Exists(src)) File.Copy(src, Path.Combine(outDir, f), overwrite: true);
        }
    }

    private static string Fingerprint(string baseFolder, IReadOnlyList<PreferencePair> data, TrainingOptions o) =>
        TrainingCheckpoint.Fingerprint(baseFolder, data, o with { Threads = null });

    /// <summary>Writes an SFT/DPO (and DiffPO) checkpoint through <see cref="TrainingCheckpoint.Save"/>, which swaps it in atomically.</summary>
    internal static void SaveCheckpoint(string outDir, string fingerprint, RunState state, IReadOnlyList<(string Name, Parameter Parameter)> trainable,
        AdamWOptimizer optimizer, Dictionary<string, Tensor>? best)
    {
        var json = new JsonObject
        {
            ["step"] = state.Step,
            ["optimizer_step"] = optimizer.Step,
            ["best_step"] = state.BestStep,
            ["best_validation_loss"] = state.BestValidationLoss,
            ["train_seconds"] = state.TrainSeconds,
            ["losses"] = TrainingCheckpoint.Exact(state.Losses),
            ["validation_losses"] = TrainingCheckpoint.Exact(state.ValidationLosses),
            ["dpo_statistics"] = new JsonArray([.. state.DpoStatistics.Select(r => (JsonNode?)TrainingCheckpoint.Exact(r))]),
        };
        TrainingCheckpoint.Save(outDir, fingerprint, json, dir =>
        {
            TrainingCheckpoint.SaveParameters(Path.Combine(dir, "trainable.safetensors"), trainable);
            SafetensorsWriter.Save(Path.Combine(dir, "optimizer.safetensors"), optimizer.State());
            if (best is not null) SafetensorsWriter.Save(Path.Combine(dir, "best.safetensors"), best);
        });
    }

    internal static (RunState State, Dictionary<string, Tensor>? Best)? LoadCheckpoint(string outDir, string fingerprint,
        IReadOnlyList<(string Name, Parameter Parameter)> trainable, AdamWOptimizer optimizer)
    {
        if (TrainingCheckpoint.Open(outDir, fingerprint) is not var (dir, json)) return null;
        var state = new RunState
        {
            Step = json["step"]!.GetValue<int>(),
            BestStep = json["best_step"]!.GetValue<int>(),
            BestValidationLoss = json["best_validation_loss"]?.GetValue<double>(),
            TrainSeconds = json["train_seconds"]!.GetValue<double>(),
            Losses = [.. json["losses"]!.AsArray().Select(TrainingCheckpoint.ParseExact)],
            ValidationLosses = [.. json["validation_losses"]!.AsArray().Select(TrainingCheckpoint.ParseExact)],
            DpoStatistics = [.. (json["dpo_statistics"]?.AsArray() ?? []).Select(r => r!.AsArray().Select(TrainingCheckpoint.ParseExact).ToArray())],
        };
        TrainingCheckpoint.LoadParameters(Path.Combine(dir, "trainable.safetensors"), trainable);
        using (var file = SafetensorsFile.Open(Path.Combine(dir, "optimizer.safetensors")))
            optimizer.Restore(name => file.Read(name, ScalarType.Float32), json["optimizer_step"]!.GetValue<long>());
        Dictionary<string, Tensor>? best = null;
        var bestPath = Path.Combine(dir, "best.safetensors");
        if (File.Exists(bestPath))
        {
            using var file = SafetensorsFile.Open(bestPath);
            best = trainable.ToDictionary(t => t.Name, t => file.Read(t.Name, t.Parameter.dtype).DetachFromDisposeScope(), StringComparer.Ordinal);
        }
        return (state, best);
    }

    private static void WriteRecord(string outDir, string baseFolder, IReadOnlyList<PreferencePair> data, TrainingOptions o, TrainingResult r,
        RunState state, string? dataDescription, string? lastDetail)
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

    internal static void DisposeAll(Dictionary<string, Tensor>? tensors)
    {
        if (tensors is null) return;
        foreach (var t in tensors.Values) t.Dispose();
        tensors.Clear();
    }
}
