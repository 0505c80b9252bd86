using System.Diagnostics;
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

/// <summary>
/// The step loop of the gradient trainers (<see cref="DebiasTrainer"/>'s SFT, DPO and Task Vector, and
/// <see cref="DiffPoTrainer"/>), kept in one place because its resume guarantee depends on every detail being the same:
/// a run killed at any point and started again ends with the same weights as an uninterrupted one. That holds because
/// the split and batch order are seeded (<see cref="Plan"/>), the dropout generator is reseeded from the step number, the
/// learning rate is a function of the step (<see cref="DebiasTrainer.LearningRateAt"/>), and the checkpoint holds the
/// trainable weights, AdamW's moments, the best validated weights and every figure recorded so far.
/// </summary>
internal static class TrainingLoop
{
    /// <summary>Resumable progress of a training loop: what a checkpoint stores besides the tensors.</summary>
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

    /// <summary>What one optimiser step computed (its gradients are left on the parameters).</summary>
    /// <param name="Loss">The step's loss, averaged over its micro-batches.</param>
    /// <param name="Tokens">Tokens the step's forward passes read (for tokens/s).</param>
    /// <param name="Detail">The method's own figures for the progress line and the record; null keeps the previous step's.</param>
    /// <param name="DpoStatistics">A DPO row for <see cref="RunState.DpoStatistics"/>, or null.</param>
    internal readonly record struct StepResult(double Loss, long Tokens, string? Detail, double[]? DpoStatistics = null);

    /// <summary>Where the loop ended: its state (the best weights already restored), the step it resumed from, and the last step's detail.</summary>
    internal sealed record Outcome(RunState State, int ResumedFrom, string? LastDetail)
    {
        /// <summary>The trainer's result: first loss, final loss (the mean of the last tenth of the steps), best step and validation loss.</summary>
        public TrainingResult Result(string outDir, string? adapterDir, StepPlan plan, TimeSpan elapsed)
        {
            var losses = State.Losses;
            int tail = Math.Max(1, losses.Count / 10);
            return new TrainingResult(outDir, adapterDir, State.Step, ResumedFrom, State.BestStep, losses.FirstOrDefault(double.NaN),
                losses.Count == 0 ? double.NaN : losses.Skip(losses.Count - tail).Average(), State.BestValidationLoss,
                plan.Train.Count, plan.Validation.Count, elapsed);
        }
    }

    /// <summary>The seeded split and batch order of a training run.</summary>
    /// <param name="Validation">Indices of the validation examples, ascending.</param>
    /// <param name="Train">Indices of the training examples, ascending.</param>
    /// <param name="Steps">Per optimiser step, its micro-batches of example indices.</param>
    internal sealed record StepPlan(IReadOnlyList<int> Validation, IReadOnlyList<int> Train, IReadOnlyList<IReadOnlyList<int[]>> Steps);

    /// <summary>
    /// Loads the base model in float32 with its tokenizer and chat template (the ones <c>run --target</c> uses, so training
    /// sees the prompts inference will) and the end-of-turn token every response is trained to end with: the template's
    /// EOS text, else the model's first eos_token_id.
    /// </summary>
    internal static CausalLM LoadBase(string baseFolder, string? chatTemplate, out HfTokenizer tokenizer, out ChatTemplate template, out int endOfTurn)
    {
        tokenizer = HfTokenizer.FromFolder(baseFolder);
        template = ChatTemplate.For(tokenizer, chatTemplate);
        var model = CausalLM.Load(baseFolder, ScalarType.Float32);
        try
        {
            endOfTurn = (template.EosToken is { } eosText ? tokenizer.TokenToId(eosText) : null) ?? model.EosTokenIds.FirstOrDefault(-1);
            if (endOfTurn < 0) throw new InvalidDataException($"{baseFolder}: no end-of-turn token (template {template.Name}) and no eos_token_id");
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Puts LoRA adapters on <paramref name="model"/> (seeded initialisation, B = 0 so it starts as the base) whose dropout
    /// draws from <paramref name="dropoutGenerator"/> (reseeded per step by <see cref="Run"/>); returns the adapters'
    /// settings and the parameters to train.
    /// </summary>
    internal static (LoraOptions Lora, List<(string Name, Parameter Parameter)> Trainable) ApplyLora(CausalLM model, TrainingOptions o, torch.Generator dropoutGenerator)
    {
        var lora = new LoraOptions { Rank = o.LoraRank, Alpha = o.LoraAlpha, Dropout = o.LoraDropout, TargetModules = o.LoraTargets, Seed = o.Seed };
        LoraAdapter.Apply(model, lora);
        LoraAdapter.UseDropoutGenerator(model, dropoutGenerator);
        return (lora, [.. model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter))]);
    }

    /// <summary>
    /// Splits <paramref name="count"/> examples into train and validation (a seeded shuffle, <see cref="TrainingOptions.ValidationShare"/>
    /// of them held out, at least one of each when validating) and lays out the steps: each epoch shuffles the training
    /// examples again (seeded by the epoch), cuts them into micro-batches of <see cref="TrainingOptions.BatchSize"/> and
    /// groups <see cref="TrainingOptions.GradientAccumulation"/> of those into a step; <see cref="TrainingOptions.MaxSteps"/>
    /// (or the epochs) bound the steps. <paramref name="streams"/> names the seeded streams ("train" → train/split,
    /// train/epoch/E), so each trainer keeps the order it always had.
    /// </summary>
    internal static StepPlan Plan(int count, TrainingOptions o, string streams)
    {
        var order = StableRandom.For(o.Seed, $"{streams}/split").Shuffle(Enumerable.Range(0, count).ToList());
        int nVal = o.ValidationShare > 0 ? Math.Clamp((int)Math.Round(count * o.ValidationShare), 1, count - 1) : 0;
        var valIdx = order.Take(nVal).Order().ToList();
        var trainIdx = order.Skip(nVal).Order().ToList();
        int stepsPerEpoch = (int)Math.Ceiling(trainIdx.Count / (double)(o.BatchSize * o.GradientAccumulation));
        int totalSteps = o.MaxSteps ?? stepsPerEpoch * o.Epochs;
        var steps = new List<IReadOnlyList<int[]>>();
        for (int e = 0; steps.Count < totalSteps; e++)
        {
            var shuffled = StableRandom.For(o.Seed, $"{streams}/epoch/{e}").Shuffle(trainIdx);
            steps.AddRange(shuffled.Chunk(o.BatchSize).Chunk(o.GradientAccumulation).Select(c => (IReadOnlyList<int[]>)c.ToList()));
        }
        return new StepPlan(valIdx, trainIdx, steps.Take(totalSteps).ToList());
    }

    /// <summary>
    /// Runs <paramref name="totalSteps"/> optimiser steps from the checkpoint in <paramref name="outDir"/> (or from the start):
    /// per step it reseeds dropout, zeroes the gradients, lets <paramref name="step"/> run the forward and backward passes,
    /// clips, updates with the scheduled learning rate, validates every <see cref="TrainingOptions.EvalEvery"/> steps (and at
    /// the last) when <paramref name="validationLoss"/> is given, keeping the best weights, checkpoints every
    /// <see cref="TrainingOptions.CheckpointEvery"/> steps and reports progress. At the end the model is in eval mode with
    /// the best validated weights (the last step's without validation).
    /// </summary>
    internal static Outcome Run(CausalLM model, IReadOnlyList<(string Name, Parameter Parameter)> trainable, torch.Generator dropoutGenerator,
        TrainingOptions o, int totalSteps, string outDir, string fingerprint, Func<int, StepResult> step, Func<double>? validationLoss,
        IProgress<TrainingProgress>? progress, Stopwatch clock, CancellationToken ct)
    {
        using var optimizer = new AdamWOptimizer(trainable) { WeightDecay = o.WeightDecay };
        var state = new RunState();
        Dictionary<string, Tensor>? best = null;
        int resumedFrom = 0;
        if (LoadCheckpoint(outDir, fingerprint, trainable, optimizer) is { } restored)
        {
            (state, best) = restored;
            resumedFrom = state.Step;
        }

        model.train();
        long tokensThisProcess = 0;
        double trainSecondsThisProcess = 0;
        string? detail = null;
        while (state.Step < totalSteps)
        {
            ct.ThrowIfCancellationRequested();
            var stepClock = Stopwatch.StartNew();
            int index = state.Step;
            // Dropout draws from the trainer's own generator; reseeding it per step makes a resumed run draw what the
            // uninterrupted one would have.
            dropoutGenerator.manual_seed(o.Seed * 1_000_003L + index);
            double lr = DebiasTrainer.LearningRateAt(index, totalSteps, o);
            optimizer.ZeroGrad();
            var result = step(index);
            tokensThisProcess += result.Tokens;
            nn.utils.clip_grad_norm_(trainable.Select(t => t.Parameter).ToList(), o.MaxGradNorm);
            optimizer.Update(lr);
            state.Step++;
            state.Losses.Add(result.Loss);
            if (result.DpoStatistics is { } row) state.DpoStatistics.Add(row);
            detail = result.Detail ?? detail;

            double? val = null;
            if (validationLoss is not null && (state.Step % o.EvalEvery == 0 || state.Step == totalSteps))
            {
                model.eval();
                val = validationLoss();
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
            progress?.Report(new TrainingProgress("train", state.Step, totalSteps, result.Loss, tokensThisProcess / Math.Max(1e-9, trainSecondsThisProcess),
                clock.Elapsed, TimeSpan.FromSeconds(perStep * (totalSteps - state.Step)), val ?? lastVal, detail));
        }
        model.eval();

        // Keep the best validated weights (HF's load_best_model_at_end).
        RestoreBest(state, trainable, best);
        DisposeAll(best);
        return new Outcome(state, resumedFrom, detail);
    }

    /// <summary>Records a validation loss and, when it is the lowest so far, snapshots the trained parameters as the best.</summary>
    private static void KeepIfBest(RunState state, double validationLoss, IReadOnlyList<(string Name, Parameter Parameter)> trainable,
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
    private static void RestoreBest(RunState state, IReadOnlyList<(string Name, Parameter Parameter)> trainable, Dictionary<string, Tensor>? best)
    {
        if (best is null)
        {
            state.BestStep = state.Step;
            return;
        }
        using var _ = no_grad();
        foreach (var (name, p) in trainable) p.copy_(best[name]);
    }

    /// <summary>Writes a checkpoint through <see cref="TrainingCheckpoint.Save"/>, which swaps it in atomically.</summary>
    private static void SaveCheckpoint(string outDir, string fingerprint, RunState state, IReadOnlyList<(string Name, Parameter Parameter)> trainable,
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

    private static (RunState State, Dictionary<string, Tensor>? Best)? LoadCheckpoint(string outDir, string fingerprint,
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

    /// <summary>Disposes and forgets a set of tensors (a weight snapshot).</summary>
    internal static void DisposeAll(Dictionary<string, Tensor>? tensors)
    {
        if (tensors is null) return;
        foreach (var t in tensors.Values) t.Dispose();
        tensors.Clear();
    }
}
