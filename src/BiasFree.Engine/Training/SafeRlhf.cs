using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Lora;
using BiasFree.Engine.Models;
using BiasFree.Engine.Safetensors;
using BiasFree.Engine.Tokenization;
using BiasFree.Probes;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BiasFree.Engine.Training;

/// <summary>Settings of <see cref="SafeRlhf"/> (the shared LoRA and seed settings come from <see cref="TrainingOptions"/>).</summary>
public sealed record SafeRlhfOptions
{
    /// <summary>Optimizer steps for each of the reward and cost models.</summary>
    public int ScoreModelSteps { get; init; } = 60;
    public double ScoreModelLearningRate { get; init; } = 2e-3;
    /// <summary>Policy updates (each on freshly sampled replies).</summary>
    public int Iterations { get; init; } = 30;
    public int PromptsPerIteration { get; init; } = 8;
    /// <summary>Replies sampled per prompt; their mean shaped reward is the baseline (in place of a critic).</summary>
    public int SamplesPerPrompt { get; init; } = 4;
    public int MaxNewTokens { get; init; } = 16;
    public double ActorLearningRate { get; init; } = 1e-3;
    /// <summary>β of the KL penalty against the frozen base (safe-rlhf's default 0.01 is for long replies; a short-reply toy needs more).</summary>
    public double KlCoefficient { get; init; } = 0.05;
    /// <summary>Cost limit d of the constraint E[C] ≤ d (safe-rlhf default 0).</summary>
    public double CostLimit { get; init; }
    public double LambdaInit { get; init; } = 1.0;
    public double LambdaLearningRate { get; init; } = 0.1;
    public double LambdaMax { get; init; } = 5.0;
}

/// <summary>
/// A Safe-RLHF-style method (after Dai et al. 2024, "Safe RLHF: Safe Reinforcement Learning from Human Feedback"), small
/// enough for the engine on a CPU. It keeps the paper's structure (a reward model for helpfulness, a cost model for
/// harm — here bias — and a Lagrangian policy update that trades the two with a learned λ against a cost limit d) and
/// simplifies the rest:
/// <list type="number">
/// <item>Score models are the base model with LoRA adapters plus a scalar head on the last token's final-layer hidden state
/// (RMS-normalised), not separate full models; no initial SFT phase (BiasFreeBench skips it too).</item>
/// <item>Reward data: disambiguated pairs (correct ≻ wrong answer) and fluency pairs (a reply ≻ the same words shuffled),
/// Bradley–Terry loss −log σ(R(y_w) − R(y_l)). The paper uses human helpfulness preferences (PKU-SafeRLHF).</item>
/// <item>Cost data: pairs whose rejected reply is the stereotyped one (the verdict our rule judge gives it): Dai et al.'s
/// Eq. 6, −log σ(C(y_unsafe) − C(y_safe)) − log σ(C(y_unsafe)) − log σ(−C(y_safe)).</item>
/// <item>Policy update: one policy-gradient step per batch of fresh samples with a group-mean baseline instead of PPO with a
/// learned critic and GAE. With one step per batch the PPO ratio is 1, so its clip never binds; there is no PTX loss.</item>
/// <item>Rewards are per sequence: r = (R − λ·C) / (1 + λ) − β·(log π(y|x) − log π_ref(y|x)) (the KL term is the
/// sequence-level sample estimate, not per token).</item>
/// <item>λ is kept in log space and moved by λ_lr · (mean batch cost − d), capped at λ_max (safe-rlhf updates from a window
/// of episode costs).</item>
/// </list>
/// Like the other methods it is resumable after a crash (even kill -9): a checkpoint is written after each score model
/// and every <see cref="TrainingOptions.CheckpointEvery"/> policy iterations (score models, policy adapters, AdamW
/// moments, log λ, history), and running the same training again continues from it to the same weights as an
/// uninterrupted run with the same seed and thread count (sampling is seeded per iteration; the prompt draws are replayed).
/// </summary>
public static class SafeRlhf
{
    public static Task<TrainingResult> TrainAsync(string baseFolder, IReadOnlyList<PreferencePair> data, string outputDir, TrainingOptions options,
        SafeRlhfOptions? rl = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        options.Validate();
        rl ??= options.SafeRlhf ?? new SafeRlhfOptions();
        if (data.Any(p => p.Rejected is null)) throw new ArgumentException("Safe-RLHF needs preference pairs (prompt, chosen, rejected)", nameof(data));
        if (File.Exists(Path.Combine(outputDir, "training.json")) && !TrainingCheckpoint.Exists(Path.GetFullPath(outputDir)))
            throw new ArgumentException($"{outputDir} already holds a finished training; choose another output folder");
        return Task.Run(() => Train(Path.GetFullPath(baseFolder), data, Path.GetFullPath(outputDir), options, rl, progress, cancellationToken), cancellationToken);
    }

    private static TrainingResult Train(string baseFolder, IReadOnlyList<PreferencePair> data, string outDir, TrainingOptions o, SafeRlhfOptions rl,
        IProgress<TrainingProgress>? progress, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        if (o.Threads is int threads) torch.set_num_threads(threads);
        torch.manual_seed(o.Seed);
        void Report(string phase, int step, int total, double loss = double.NaN, string? detail = null) =>
            progress?.Report(new TrainingProgress(phase, step, total, loss, 0, clock.Elapsed, null, null, detail));
        var tokenizer = HfTokenizer.FromFolder(baseFolder);
        var template = ChatTemplate.For(tokenizer, o.ChatTemplate);
        using var policy = CausalLM.Load(baseFolder);
        using var reference = CausalLM.Load(baseFolder);
        int endOfTurn = (template.EosToken is { } e ? tokenizer.TokenToId(e) : null) ?? policy.EosTokenIds.First();
        int pad = policy.Config.PadTokenId ?? endOfTurn;
        var encoded = data.Select(p => DebiasTrainer.Encode(tokenizer, template, p, endOfTurn, o.MaxLength)).ToList();

        // 1. Reward (helpfulness) and cost (bias) models.
        var rng = StableRandom.For(o.Seed, "safe-rlhf/data");
        var helpful = new List<(int[] Prompt, int[] Better, int[] Worse)>();
        var costly = new List<(int[] Prompt, int[] Unsafe, int[] Safe)>();
        for (int i = 0; i < data.Count; i++)
        {
            if (data[i].Chosen != TemplatePreferenceData.UnknownAnswer && !data[i].Prompt.StartsWith("Continue the sentence", StringComparison.Ordinal)
                && data[i].System is not null)
                helpful.Add((encoded[i].Prompt, encoded[i].Chosen, encoded[i].Rejected!)); // disambiguated: correct ≻ wrong
            var words = data[i].Chosen.Split(' ');
            if (words.Length > 1)
            {
                var shuffled = string.Join(' ', rng.Shuffle(words));
                if (shuffled != data[i].Chosen)
                    helpful.Add((encoded[i].Prompt, encoded[i].Chosen, [.. tokenizer.Encode(shuffled, false), endOfTurn])); // fluent ≻ word salad
            }
            if (data[i].RejectedIsStereotyped) costly.Add((encoded[i].Prompt, encoded[i].Rejected!, encoded[i].Chosen));
        }
        if (costly.Count == 0) throw new ArgumentException("no pair has a stereotyped rejected reply to train the cost model on");
        using var rewardModel = ScoreModel.Create(baseFolder, o.LoraRank, o.LoraAlpha, o.LoraTargets, o.Seed + 1);
        using var costModel = ScoreModel.Create(baseFolder, o.LoraRank, o.LoraAlpha, o.LoraTargets, o.Seed + 1);
        var lora = new LoraOptions { Rank = o.LoraRank, Alpha = o.LoraAlpha, Dropout = 0, TargetModules = o.LoraTargets, Seed = o.Seed };
        LoraAdapter.Apply(policy, lora);
        var trainable = policy.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();
        using var optimizer = new AdamWOptimizer(trainable);
        var prompts = encoded.Select(x => x.Prompt).DistinctBy(p => string.Join(',', p)).ToList();

        // Resume: what the last checkpoint holds (score models once fitted, then the policy every few iterations).
        string fingerprint = TrainingCheckpoint.Fingerprint(baseFolder, data, o with { Threads = null, SafeRlhf = rl });
        double? rewardLoss = null, costLoss = null;
        double logLambda = Math.Log(rl.LambdaInit), trainSeconds = 0;
        var history = new JsonArray();
        var losses = new List<double>();
        int start = 0;
        if (TrainingCheckpoint.Open(outDir, fingerprint) is var (dir, json))
        {
            if (json["reward_loss"] is { } rlNode)
            {
                rewardModel.LoadTrainable(Path.Combine(dir, "reward.safetensors"));
                rewardLoss = TrainingCheckpoint.ParseExact(rlNode);
            }
            if (json["cost_loss"] is { } clNode)
            {
                costModel.LoadTrainable(Path.Combine(dir, "cost.safetensors"));
                costLoss = TrainingCheckpoint.ParseExact(clNode);
            }
            start = json["iteration"]!.GetValue<int>();
            if (start > 0)
            {
                TrainingCheckpoint.LoadParameters(Path.Combine(dir, "policy.safetensors"), trainable);
                using var file = SafetensorsFile.Open(Path.Combine(dir, "optimizer.safetensors"));
                optimizer.Restore(name => file.Read(name, ScalarType.Float32), json["optimizer_step"]!.GetValue<long>());
                logLambda = TrainingCheckpoint.ParseExact(json["log_lambda"]);
                losses = [.. json["losses"]!.AsArray().Select(TrainingCheckpoint.ParseExact)];
                history = JsonNode.Parse(json["history"]!.ToJsonString())!.AsArray();
            }
            trainSeconds = json["train_seconds"]!.GetValue<double>();
        }
        int resumedFrom = start;
        var processClock = Stopwatch.StartNew();
        void Checkpoint(int iteration) => TrainingCheckpoint.Save(outDir, fingerprint, new JsonObject
        {
            ["reward_loss"] = rewardLoss is { } r ? TrainingCheckpoint.Exact(r) : null,
            ["cost_loss"] = costLoss is { } c ? TrainingCheckpoint.Exact(c) : null,
            ["iteration"] = iteration,
            ["optimizer_step"] = optimizer.Step,
            ["log_lambda"] = TrainingCheckpoint.Exact(logLambda),
            ["losses"] = TrainingCheckpoint.Exact(losses),
            ["history"] = JsonNode.Parse(history.ToJsonString()),
            ["train_seconds"] = trainSeconds + processClock.Elapsed.TotalSeconds,
        }, d =>
        {
            if (rewardLoss is not null) rewardModel.SaveTrainable(Path.Combine(d, "reward.safetensors"));
            if (costLoss is not null) costModel.SaveTrainable(Path.Combine(d, "cost.safetensors"));
            if (iteration > 0)
            {
                TrainingCheckpoint.SaveParameters(Path.Combine(d, "policy.safetensors"), trainable);
                SafetensorsWriter.Save(Path.Combine(d, "optimizer.safetensors"), optimizer.State());
            }
        });

        if (rewardLoss is null)
        {
            rewardLoss = rewardModel.FitPreferences(helpful, pad, rl.ScoreModelSteps, rl.ScoreModelLearningRate, o.BatchSize, o.MaxGradNorm,
                StableRandom.For(o.Seed, "safe-rlhf/reward"), sign: false, s => Report("reward-model", s, rl.ScoreModelSteps), ct);
            Checkpoint(0);
        }
        if (costLoss is null)
        {
            costLoss = costModel.FitPreferences(costly, pad, rl.ScoreModelSteps, rl.ScoreModelLearningRate, o.BatchSize, o.MaxGradNorm,
                StableRandom.For(o.Seed, "safe-rlhf/cost"), sign: true, s => Report("cost-model", s, rl.ScoreModelSteps), ct);
            Checkpoint(0);
        }

        // 2. Policy: LoRA on the base, Lagrangian policy-gradient updates. The prompt draws of the iterations done before
        // a resume are replayed so the stream continues where it was.
        for (int skip = 0; skip < start * rl.PromptsPerIteration; skip++) rng.Next(prompts.Count);
        for (int it = start; it < rl.Iterations; it++)
        {
            ct.ThrowIfCancellationRequested();
            double lambda = Math.Min(Math.Exp(logLambda), rl.LambdaMax);
            var batchPrompts = Enumerable.Range(0, rl.PromptsPerIteration).Select(_ => prompts[rng.Next(prompts.Count)]).ToList();
            var rows = batchPrompts.SelectMany(p => Enumerable.Repeat(p, rl.SamplesPerPrompt)).ToList();
            policy.eval();
            var samples = policy.Generate(rows.Select(r => (IReadOnlyList<int>)r).ToList(), new GenerationOptions
            {
                MaxNewTokens = rl.MaxNewTokens, DoSample = true, Temperature = 1.0, Seed = o.Seed * 1_000_003L + it,
                EosTokenIds = [endOfTurn, .. policy.EosTokenIds], PadTokenId = pad,
            }, ct);
            var replies = samples.Select(s => s.Tokens.Count == 0 ? new[] { endOfTurn } : s.Tokens.ToArray()).ToList();
            var pairs = rows.Zip(replies).Select(x => (x.First, x.Second)).ToList();
            double[] reward = rewardModel.Score(pairs, pad), cost = costModel.Score(pairs, pad);
            double[] refLogp = SequenceLogProbs(reference, pairs, pad, grad: false).data<float>().Select(v => (double)v).ToArray();

            policy.train();
            optimizer.ZeroGrad();
            using var scope = NewDisposeScope();
            var logp = SequenceLogProbs(policy, pairs, pad, grad: true);
            var logpValues = logp.detach().data<float>().ToArray();
            var shaped = new double[pairs.Count];
            for (int i = 0; i < pairs.Count; i++)
                shaped[i] = (reward[i] - lambda * cost[i]) / (1 + lambda) - rl.KlCoefficient * (logpValues[i] - refLogp[i]);
            var advantage = new float[pairs.Count];
            for (int g = 0; g < batchPrompts.Count; g++)
            {
                double mean = Enumerable.Range(g * rl.SamplesPerPrompt, rl.SamplesPerPrompt).Average(i => shaped[i]);
                for (int k = 0; k < rl.SamplesPerPrompt; k++) advantage[g * rl.SamplesPerPrompt + k] = (float)(shaped[g * rl.SamplesPerPrompt + k] - mean);
            }
            var loss = -(tensor(advantage) * logp).mean();
            loss.backward();
            nn.utils.clip_grad_norm_(trainable.Select(t => t.parameter).ToList(), o.MaxGradNorm);
            optimizer.Update(rl.ActorLearningRate);
            losses.Add(loss.item<float>());

            // λ ← λ · exp(λ_lr · (E[C] − d)): raise the price of cost while the constraint is violated.
            double meanCost = cost.Average();
            logLambda += rl.LambdaLearningRate * (meanCost - rl.CostLimit);
            string detail = FormattableString.Invariant($"reward {reward.Average():0.000} · cost {meanCost:0.000} · λ {lambda:0.000}");
            history.Add((JsonNode)new JsonObject { ["iteration"] = it + 1, ["reward"] = reward.Average(), ["cost"] = meanCost, ["lambda"] = lambda, ["kl"] = Enumerable.Range(0, pairs.Count).Average(i => logpValues[i] - refLogp[i]) });
            Report("train", it + 1, rl.Iterations, losses[^1], detail);
            if ((it + 1) % o.CheckpointEvery == 0 && it + 1 < rl.Iterations) Checkpoint(it + 1);
        }
        policy.eval();
        trainSeconds += processClock.Elapsed.TotalSeconds;

        // 3. Outputs, as the other methods.
        Report("save", rl.Iterations, rl.Iterations);
        Directory.CreateDirectory(outDir);
        policy.Save(outDir);
        ModelFolder.CopyTokenizerFiles(baseFolder, outDir);
        var adapterDir = Path.Combine(outDir, "adapter");
        LoraAdapter.Save(policy, adapterDir, lora, baseFolder);
        var result = new TrainingResult(outDir, adapterDir, rl.Iterations, resumedFrom, rl.Iterations, losses.FirstOrDefault(double.NaN),
            losses.Count == 0 ? double.NaN : losses.Skip(losses.Count - Math.Max(1, losses.Count / 10)).Average(), null, data.Count, 0, clock.Elapsed);
        var rec = new JsonObject
        {
            ["trainer"] = "BiasFree.Engine.Training.SafeRlhf",
            ["method"] = "safe-rlhf",
            ["base_model"] = baseFolder,
            ["examples"] = data.Count,
            ["reward_pairs"] = helpful.Count,
            ["cost_pairs"] = costly.Count,
            ["reward_model_final_loss"] = Math.Round(rewardLoss.Value, 5),
            ["cost_model_final_loss"] = Math.Round(costLoss.Value, 5),
            ["settings"] = JsonSerializer.SerializeToNode(rl, EngineJson.Default.SafeRlhfOptions),
            ["lora"] = new JsonObject { ["r"] = o.LoraRank, ["alpha"] = o.LoraAlpha, ["targets"] = string.Join(",", o.LoraTargets) },
            ["seed"] = o.Seed,
            ["steps"] = rl.Iterations,
            ["iterations"] = history,
            ["resumed_from_iteration"] = resumedFrom,
            ["train_seconds"] = Math.Round(trainSeconds, 1),
        };
        File.WriteAllText(Path.Combine(outDir, "training.json"), rec.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        TrainingCheckpoint.Delete(outDir);
        return result;
    }

    private static Tensor SequenceLogProbs(CausalLM model, IReadOnlyList<(int[] Prompt, int[] Reply)> rows, int pad, bool grad)
    {
        using var scope = NewDisposeScope();
        using var mode = grad ? null : no_grad();
        int t = rows.Max(r => r.Prompt.Length + r.Reply.Length);
        var ids = new long[rows.Count * t];
        var mask = new float[rows.Count * t];
        for (int b = 0; b < rows.Count; b++)
        {
            var row = rows[b].Prompt.Concat(rows[b].Reply).ToArray();
            for (int i = 0; i < t; i++)
            {
                ids[b * t + i] = i < row.Length ? row[i] : pad;
                mask[b * t + i] = i >= rows[b].Prompt.Length && i < row.Length ? 1 : 0;
            }
        }
        return Objectives.SequenceLogProbs(model, tensor(ids, [rows.Count, t]), tensor(mask, [rows.Count, t])).MoveToOuterDisposeScope();
    }
}
