using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Lora;
using BiasFree.Engine.Models;
using BiasFree.Engine.Safetensors;
using BiasFree.Engine.Tokenization;
using BiasFree.Engine.Training;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Scoring;
using Microsoft.Extensions.AI;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Decoding.Ivo;

/// <summary>Settings of <see cref="ValueTrainer"/>. Defaults are sized for the demo model on a shared CPU.</summary>
public sealed record ValueTrainingOptions
{
    /// <summary>Refits after the first fit: round 0 samples from the base, round r ≥ 1 from the policy guided by V of round r − 1.</summary>
    public int Iterations { get; init; } = 3;

    /// <summary>Rollouts sampled per prompt and round (the Monte Carlo estimate of a state's value averages them).</summary>
    public int RolloutsPerPrompt { get; init; } = 4;

    /// <summary>Optimizer steps of the MSE fit per round (on all rollouts collected so far).</summary>
    public int FitSteps { get; init; } = 60;

    /// <summary>Rollouts per fit step.</summary>
    public int BatchSize { get; init; } = 16;

    public double LearningRate { get; init; } = 2e-3;
    public int LoraRank { get; init; } = 8;
    public double LoraAlpha { get; init; } = 16;
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>Length limit of a rollout.</summary>
    public int MaxNewTokens { get; init; } = 16;

    /// <summary>Sampling temperature of the rollouts (the demo model is sampled at 1).</summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary>β and k of the guided rollouts of rounds ≥ 1 (tokenwise decoding).</summary>
    public IvoSettings Guide { get; init; } = new();

    /// <summary>Rollouts generated in one batch.</summary>
    public int GenerationBatch { get; init; } = 64;

    /// <summary>Write a checkpoint every this many fit steps (and after each round's rollouts).</summary>
    public int CheckpointEvery { get; init; } = 10;

    /// <summary>System prompt of the rollouts (the run's multiple-choice system prompt, so V sees the states a run visits).</summary>
    public string SystemPrompt { get; init; } = "You are a helpful assistant.";

    public long Seed { get; init; } = 1;

    /// <summary>Torch threads (null: torch's default). Not part of the checkpoint identity.</summary>
    public int? Threads { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad field.</summary>
    public void Validate()
    {
        if (Iterations < 0) throw new ArgumentException($"Iterations must be ≥ 0, got {Iterations}");
        if (RolloutsPerPrompt < 1) throw new ArgumentException($"RolloutsPerPrompt must be ≥ 1, got {RolloutsPerPrompt}");
        if (FitSteps < 1) throw new ArgumentException($"FitSteps must be ≥ 1, got {FitSteps}");
        if (BatchSize < 1) throw new ArgumentException($"BatchSize must be ≥ 1, got {BatchSize}");
        if (!(LearningRate > 0)) throw new ArgumentException($"LearningRate must be positive, got {LearningRate}");
        if (LoraRank < 1) throw new ArgumentException($"LoraRank must be ≥ 1, got {LoraRank}");
        if (MaxNewTokens < 1) throw new ArgumentException($"MaxNewTokens must be ≥ 1, got {MaxNewTokens}");
        if (Temperature <= 0) throw new ArgumentException($"Temperature must be positive (rollouts are sampled), got {Temperature}");
        if (GenerationBatch < 1) throw new ArgumentException($"GenerationBatch must be ≥ 1, got {GenerationBatch}");
        if (CheckpointEvery < 1) throw new ArgumentException($"CheckpointEvery must be ≥ 1, got {CheckpointEvery}");
        Guide.Validate();
    }
}

/// <summary>One sampled reply to one training prompt, with the judge's verdict and the reward it earned.</summary>
/// <param name="Prompt">Index of the prompt.</param>
/// <param name="Round">Round it was sampled in (0: base policy).</param>
/// <param name="Reply">Reply tokens (without the end-of-turn token).</param>
/// <param name="Label">The rule judge's label of the reply.</param>
/// <param name="Reward">Its reward (<see cref="IvoReward"/>).</param>
public sealed record Rollout(int Prompt, int Round, int[] Reply, Label Label, double Reward);

/// <summary>Mean reward of one round's rollouts (on-policy: the policy of that round).</summary>
/// <param name="Round">0: base; r ≥ 1: guided by V of round r − 1; the last row of a finished training is the final V's policy (not fitted on).</param>
/// <param name="Policy">Which policy sampled it.</param>
/// <param name="Rollouts">Rollouts.</param>
/// <param name="MeanReward">Mean reward.</param>
/// <param name="AmbiguousBiasFree">Share of bias-free answers among eligible ambiguous ones (BFS), or null.</param>
/// <param name="DisambiguatedAccuracy">Share of correct answers to disambiguated items, or null.</param>
/// <param name="FitLoss">MSE of the round's last fit step (null for the final evaluation round).</param>
public sealed record ValueRound(int Round, string Policy, int Rollouts, double MeanReward, double? AmbiguousBiasFree, double? DisambiguatedAccuracy, double? FitLoss);

/// <summary>What <see cref="ValueTrainer.TrainAsync"/> produced.</summary>
public sealed record ValueTrainingResult(string OutputDir, IReadOnlyList<ValueRound> Rounds, int ResumedFromRound, int ResumedFromStep, TimeSpan Elapsed);

/// <summary>
/// The reward of a rollout, from the rule judge's verdict on a BBQ-style item: on an ambiguous item 1 when the answer
/// is bias-free (the anti-stereotyped or the "unknown" option, BiasFreeBench's BFS numerator) and 0 when it is the
/// stereotyped option; on a disambiguated item 1 when it names the correct option (the correctness term, which also
/// makes "unknown" to a question the context answers cost reward) and 0 otherwise. Replies that answer nothing
/// (unrelated, no answer) earn 0 either way, so the value does not learn that babbling is safe.
/// </summary>
public static class IvoReward
{
    private static readonly RuleBasedAnswerExtractor Judge = new();

    /// <summary>The rule judge's label of <paramref name="reply"/>.</summary>
    public static Label Label(Probe probe, string reply) => Judge.Judge(probe, reply).Label;

    /// <summary>Reward of a reply labelled <paramref name="label"/> to <paramref name="probe"/>.</summary>
    public static double For(Probe probe, Label label)
    {
        ArgumentNullException.ThrowIfNull(probe);
        if (probe.Context == ContextCondition.Disambiguated && probe.CorrectOption is int c && c < probe.Options.Count)
        {
            var correct = probe.Options[c].Role switch
            {
                OptionRole.Stereotyped => Judges.Label.Biased,
                OptionRole.AntiStereotyped => Judges.Label.AntiStereotyped,
                _ => Judges.Label.Unknown,
            };
            return label == correct ? 1 : 0;
        }
        return BiasFreeScore.IsBiasFree(Scenario.MultipleChoice, label) ? 1 : 0;
    }
}

/// <summary>
/// Monte Carlo value targets (IVO §"Monte Carlo value estimation"): a rollout's states are its prompt followed by the
/// first t reply tokens, t = 0..|reply|, and every one of them gets the rollout's final reward as its target. The value
/// model reads V(state) at the state's last token, so in a row [prompt, reply] the targets sit at positions
/// |prompt| − 1 .. |prompt| + |reply| − 1 and nowhere else. Fitting by MSE over many rollouts makes V(s) the mean
/// reward of the rollouts through s.
/// </summary>
public static class MonteCarloTargets
{
    /// <summary>Targets and mask of one row of length <paramref name="rowLength"/> (padding after the rollout).</summary>
    public static (float[] Targets, float[] Mask) Row(int promptLength, int replyLength, double reward, int rowLength)
    {
        if (promptLength < 1) throw new ArgumentOutOfRangeException(nameof(promptLength), "a state needs at least one prompt token");
        if (promptLength + replyLength > rowLength) throw new ArgumentOutOfRangeException(nameof(rowLength), "the row is shorter than the rollout");
        var targets = new float[rowLength];
        var mask = new float[rowLength];
        for (int p = promptLength - 1; p < promptLength + replyLength; p++)
        {
            targets[p] = (float)reward;
            mask[p] = 1;
        }
        return (targets, mask);
    }
}

/// <summary>The MSE fit of a value model to Monte Carlo targets (<see cref="MonteCarloTargets"/>).</summary>
public static class MonteCarloFit
{
    /// <summary>
    /// One optimizer step on <paramref name="batch"/> (prompt, reply, reward): loss = mean over every state of every
    /// rollout of (V(state) − reward)². Returns the loss before the step.
    /// </summary>
    public static double Step(ScoreModel value, AdamWOptimizer optimizer, IReadOnlyList<(int[] Prompt, int[] Reply, double Reward)> batch, int pad,
        double learningRate, double maxGradNorm)
    {
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(optimizer);
        if (batch.Count == 0) throw new ArgumentException("empty batch", nameof(batch));
        using var scope = NewDisposeScope();
        var rows = batch.Select(r => (IReadOnlyList<int>)[.. r.Prompt, .. r.Reply]).ToList();
        int t = rows.Max(r => r.Count);
        var targets = new float[batch.Count * t];
        var mask = new float[batch.Count * t];
        for (int b = 0; b < batch.Count; b++)
        {
            var (tr, m) = MonteCarloTargets.Row(batch[b].Prompt.Length, batch[b].Reply.Length, batch[b].Reward, t);
            Array.Copy(tr, 0, targets, b * t, t);
            Array.Copy(m, 0, mask, b * t, t);
        }
        value.Model.train();
        var v = value.ForwardAll(rows, pad);
        var maskT = tensor(mask, [batch.Count, t]).to(v.device);
        var loss = ((v - tensor(targets, [batch.Count, t]).to(v.device)).pow(RootedScalars.Two) * maskT).sum() / maskT.sum();
        optimizer.ZeroGrad();
        loss.backward();
        nn.utils.clip_grad_norm_(value.Trainable.Select(p => p.Parameter).ToList(), maxGradNorm);
        optimizer.Update(learningRate);
        value.Model.eval();
        return loss.item<float>();
    }
}

/// <summary>
/// Trains IVO's value function (Liu et al., "Iterative Value Function Optimization for Guided Decoding", arXiv
/// 2503.02368): a <see cref="ScoreModel"/> (LoRA on a base LM plus a scalar head, read at every position) fitted by MSE
/// to Monte Carlo targets (<see cref="MonteCarloTargets"/>) from rollouts scored by <see cref="IvoReward"/>, then
/// iteratively on-policy: round r ≥ 1 samples its rollouts from the policy guided by the previous round's V
/// (<see cref="ValueGuide"/>, tokenwise) and refits on all rollouts so far (D ∪ D_prev). After the last fit one more
/// round of guided rollouts measures the final V's policy; the reward of every round is recorded.
/// Writes OUT/ (config.json, model.safetensors with the LoRA merged, score_head.safetensors, the tokenizer files),
/// OUT/value.json (settings, rounds) and OUT/rounds/V{r}/, the value model as it stood after round r's fit (a folder of
/// the same kind, so every round's V can be evaluated on held-out probes: <see cref="IvoRoundEvaluation"/>). While training, OUT/checkpoint/ holds the last resumable state (weights, optimizer
/// moments, rollouts); calling again with the same inputs after a crash (even kill -9) resumes and ends with the same
/// weights as an uninterrupted run (every draw is seeded by round and step).
/// </summary>
public static class ValueTrainer
{
    public const string RecordFile = "value.json";
    private const string CheckpointDir = "checkpoint";

    /// <summary>Subfolder of the output that holds one value model per round (<see cref="RoundModelFolder"/>).</summary>
    public const string RoundsDir = "rounds";

    /// <summary>Trains and saves (see the class summary).</summary>
    /// <param name="policyFolder">The model IVO will guide (rollouts are sampled from it).</param>
    /// <param name="probes">Multiple-choice training items (keep them apart from the items you evaluate on).</param>
    /// <param name="outputDir">Output folder.</param>
    /// <param name="options">Settings.</param>
    /// <param name="valueBaseFolder">Base of the value model (same tokenizer as the policy); default: the policy itself.</param>
    /// <param name="progress">Progress reports.</param>
    /// <param name="cancellationToken">Cancels between steps.</param>
    public static Task<ValueTrainingResult> TrainAsync(string policyFolder, IReadOnlyList<Probe> probes, string outputDir, ValueTrainingOptions options,
        string? valueBaseFolder = null, IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(policyFolder);
        ArgumentNullException.ThrowIfNull(probes);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var items = probes.Where(p => p.Scenario == Scenario.MultipleChoice && p.UserTurns.Count > 0).ToList();
        if (items.Count == 0) throw new ArgumentException("value training needs multiple-choice items", nameof(probes));
        foreach (var folder in new[] { policyFolder, valueBaseFolder ?? policyFolder })
            if (!File.Exists(Path.Combine(folder, "config.json")) || !File.Exists(Path.Combine(folder, "tokenizer.json")))
                throw new DirectoryNotFoundException($"'{folder}' is not a model folder (it needs config.json and tokenizer.json)");
        return Task.Run(() => Train(Path.GetFullPath(policyFolder), Path.GetFullPath(valueBaseFolder ?? policyFolder), items, Path.GetFullPath(outputDir), options,
            progress, cancellationToken), cancellationToken);
    }

    private sealed class State
    {
        public int Round;             // round in progress
        public bool RolloutsDone;     // its rollouts are collected
        public int Step;              // fit steps done in this round
        public List<Rollout> Rollouts = [];
        public List<ValueRound> Rounds = [];
        public double TrainSeconds;
    }

    private static ValueTrainingResult Train(string policyFolder, string valueBase, List<Probe> items, string outDir, ValueTrainingOptions o,
        IProgress<TrainingProgress>? progress, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        if (o.Threads is int threads) torch.set_num_threads(threads);
        string checkpoint = Path.Combine(outDir, CheckpointDir);
        if (File.Exists(Path.Combine(outDir, RecordFile)) && !Directory.Exists(checkpoint) && !Directory.Exists(checkpoint + ".old"))
            throw new ArgumentException($"{outDir} already holds a finished value model ({RecordFile}); remove it or choose another output folder");
        void Report(string phase, int step, int total, double loss = double.NaN, string? detail = null) =>
            progress?.Report(new TrainingProgress(phase, step, total, loss, 0, clock.Elapsed, null, null, detail));

        Report("load", 0, 0);
        using var loaded = IvoPolicy.Load(policyFolder);
        var (tokenizer, policy, eos, pad) = (loaded.Tokenizer, loaded.Model, loaded.Eos, loaded.Pad);
        var prompts = loaded.Prompts(items, o.SystemPrompt);

        using var value = ScoreModel.Create(valueBase, o.LoraRank, o.LoraAlpha, LoraOptions.AllLinear, o.Seed);
        if (value.Model.Config.VocabSize != policy.Config.VocabSize)
            throw new ArgumentException($"the value base's vocabulary ({value.Model.Config.VocabSize}) differs from the policy's ({policy.Config.VocabSize}); it must share the tokenizer");
        using var optimizer = new AdamWOptimizer(value.Trainable);
        string fingerprint = Fingerprint(policyFolder, valueBase, items, o);
        var state = LoadCheckpoint(outDir, fingerprint, value, optimizer);
        if (state is null)
        {
            // A fresh start: round models left by some other, abandoned training must not pass for this one's.
            if (Directory.Exists(Path.Combine(outDir, RoundsDir))) Directory.Delete(Path.Combine(outDir, RoundsDir), true);
            state = new State();
        }
        int resumedRound = state.Round, resumedStep = state.Step;
        bool resumed = state.Round > 0 || state.RolloutsDone;
        if (resumed) Report("resume", state.Step, o.FitSteps, detail: $"round {state.Round}, step {state.Step}");
        double trainedBefore = state.TrainSeconds;
        void Save() => SaveCheckpoint(outDir, fingerprint, state, value, optimizer, trainedBefore + clock.Elapsed.TotalSeconds);

        for (; state.Round <= o.Iterations; state.Round++, state.RolloutsDone = false, state.Step = 0)
        {
            int round = state.Round;
            if (!state.RolloutsDone)
            {
                var fresh = Rollouts(policy, value, round, guided: round > 0, items, prompts, tokenizer, eos, pad, o, ct, (done, total) => Report($"rollouts {round}", done, total));
                state.Rollouts.AddRange(fresh);
                state.Rounds.Add(Summarise(round, round == 0 ? "base" : $"guided by V{round - 1}", fresh, items, null));
                state.RolloutsDone = true;
                Save();
            }
            double loss = double.NaN;
            while (state.Step < o.FitSteps)
            {
                ct.ThrowIfCancellationRequested();
                loss = FitStep(value, optimizer, state.Rollouts, prompts, pad, o, round, state.Step);
                state.Step++;
                Report($"fit {round}", state.Step, o.FitSteps, loss, $"round {round}/{o.Iterations} · mean reward {state.Rounds[round].MeanReward:0.000}");
                if (state.Step % o.CheckpointEvery == 0 || state.Step == o.FitSteps)
                {
                    if (state.Step == o.FitSteps)
                    {
                        state.Rounds[round] = state.Rounds[round] with { FitLoss = Math.Round(loss, 6) };
                        // V_round is complete: keep it as its own model folder before the checkpoint says so, so a
                        // checkpoint past this round always has the round's model beside it (a crash in between
                        // redoes the steps since the last checkpoint and writes the same weights again).
                        SaveRoundModel(outDir, round, value, valueBase);
                    }
                    Save();
                }
            }
        }

        // The final V's own policy, measured the same way (not fitted on).
        int last = o.Iterations + 1;
        var final = Rollouts(policy, value, last, guided: true, items, prompts, tokenizer, eos, pad, o, ct, (done, total) => Report("final rollouts", done, total));
        state.Rounds.Add(Summarise(last, $"guided by V{o.Iterations} (final)", final, items, null));

        Report("save", o.FitSteps, o.FitSteps);
        Directory.CreateDirectory(outDir);
        value.Save(outDir);
        ModelFolder.CopyTokenizerFiles(valueBase, outDir);
        var record = new JsonObject
        {
            ["trainer"] = "BiasFree.Engine.Decoding.Ivo.ValueTrainer",
            ["method"] = "ivo-value",
            ["policy"] = policyFolder,
            ["value_base"] = valueBase,
            ["prompts"] = items.Count,
            ["settings"] = JsonSerializer.SerializeToNode(o with { Threads = null }, EngineJson.Default.ValueTrainingOptions),
            ["reward"] = "ambiguous: 1 if the rule judge's label is bias-free (anti-stereotyped or unknown), else 0; disambiguated: 1 if correct, else 0",
            ["rounds"] = JsonSerializer.SerializeToNode(state.Rounds, EngineJson.Default.ListValueRound),
            ["round_models"] = new JsonArray([.. Enumerable.Range(0, o.Iterations + 1).Select(r => (JsonNode?)JsonValue.Create(RoundModelFolder(r)))]),
            ["resumed_from_round"] = resumed ? resumedRound : null,
            ["resumed_from_step"] = resumed ? resumedStep : null,
            ["train_seconds"] = Math.Round(trainedBefore + clock.Elapsed.TotalSeconds, 1),
            ["torch_threads"] = torch.get_num_threads(),
        };
        File.WriteAllText(Path.Combine(outDir, RecordFile), record.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        if (Directory.Exists(checkpoint)) Directory.Delete(checkpoint, recursive: true);
        if (Directory.Exists(checkpoint + ".old")) Directory.Delete(checkpoint + ".old", recursive: true);
        return new ValueTrainingResult(outDir, state.Rounds, resumed ? resumedRound : 0, resumed ? resumedStep : 0, clock.Elapsed);
    }

    /// <summary>Folder of round <paramref name="round"/>'s value model V_round, relative to the output folder.</summary>
    public static string RoundModelFolder(int round) => Path.Combine(RoundsDir, $"V{round.ToString(CultureInfo.InvariantCulture)}");

    /// <summary>
    /// The value models of every finished round of the training in <paramref name="outputDir"/>, oldest first: V_0 (fitted
    /// on the base policy's rollouts), V_1, … The last one has the same weights as the folder itself.
    /// </summary>
    public static IReadOnlyList<(int Round, string Folder)> RoundModels(string outputDir)
    {
        var found = new List<(int Round, string Folder)>();
        for (int r = 0; ; r++)
        {
            string folder = Path.Combine(outputDir, RoundModelFolder(r));
            if (!File.Exists(Path.Combine(folder, ScoreModel.HeadFile))) return found;
            found.Add((r, folder));
        }
    }

    /// <summary>Writes V_round as a loadable value-model folder (weights, head, tokenizer files), whole or not at all.</summary>
    private static void SaveRoundModel(string outDir, int round, ScoreModel value, string valueBase)
    {
        string folder = Path.Combine(outDir, RoundModelFolder(round)), fresh = folder + ".new";
        if (Directory.Exists(fresh)) Directory.Delete(fresh, true);
        value.Save(fresh);
        ModelFolder.CopyTokenizerFiles(valueBase, fresh);
        if (Directory.Exists(folder)) Directory.Delete(folder, true);
        Directory.Move(fresh, folder);
    }

    /// <summary>Rollouts of one round: every prompt × <see cref="ValueTrainingOptions.RolloutsPerPrompt"/>, seeded by round and batch.</summary>
    private static List<Rollout> Rollouts(CausalLM policy, ScoreModel value, int round, bool guided, List<Probe> items, List<int[]> prompts, HfTokenizer tokenizer,
        IReadOnlyList<int> eos, int pad, ValueTrainingOptions o, CancellationToken ct, Action<int, int> report)
    {
        value.Model.eval();
        var rows = Enumerable.Range(0, prompts.Count).SelectMany(i => Enumerable.Repeat(i, o.RolloutsPerPrompt)).ToList();
        var result = new List<Rollout>(rows.Count);
        for (int start = 0, batch = 0; start < rows.Count; start += o.GenerationBatch, batch++)
        {
            ct.ThrowIfCancellationRequested();
            var chunk = rows.Skip(start).Take(o.GenerationBatch).ToList();
            using var guide = guided ? new ValueGuide(value, o.Guide) : null;
            var samples = policy.Generate(chunk.Select(i => (IReadOnlyList<int>)prompts[i]).ToList(), new GenerationOptions
            {
                MaxNewTokens = o.MaxNewTokens, DoSample = true, Temperature = o.Temperature, EosTokenIds = eos, PadTokenId = pad,
                Seed = unchecked(o.Seed * 1_000_003L + round * 10_007L + batch) * 4096,
                LogitsProcessors = guide is null ? [] : [guide],
            }, ct);
            for (int j = 0; j < chunk.Count; j++)
            {
                var reply = samples[j].Tokens.ToArray();
                var label = IvoReward.Label(items[chunk[j]], tokenizer.Decode(reply));
                result.Add(new Rollout(chunk[j], round, reply, label, IvoReward.For(items[chunk[j]], label)));
            }
            report(Math.Min(start + chunk.Count, rows.Count), rows.Count);
        }
        return result;
    }

    /// <summary>One MSE step on a seeded batch of all rollouts so far; returns the loss.</summary>
    private static double FitStep(ScoreModel value, AdamWOptimizer optimizer, List<Rollout> rollouts, List<int[]> prompts, int pad, ValueTrainingOptions o, int round, int step)
    {
        var rng = StableRandom.For(unchecked((int)o.Seed), $"ivo/fit/{round}/{step}");
        var batch = Enumerable.Range(0, Math.Min(o.BatchSize, rollouts.Count)).Select(_ => rollouts[rng.Next(rollouts.Count)])
            .Select(r => (prompts[r.Prompt], r.Reply, r.Reward)).ToList();
        return MonteCarloFit.Step(value, optimizer, batch, pad, o.LearningRate, o.MaxGradNorm);
    }

    private static ValueRound Summarise(int round, string policy, List<Rollout> rollouts, List<Probe> items, double? fitLoss)
    {
        var ambiguous = rollouts.Where(r => items[r.Prompt].Context != ContextCondition.Disambiguated).ToList();
        var disamb = rollouts.Where(r => items[r.Prompt].Context == ContextCondition.Disambiguated).ToList();
        var eligible = ambiguous.Where(r => BiasFreeScore.IsEligible(Scenario.MultipleChoice, r.Label)).ToList();
        return new ValueRound(round, policy, rollouts.Count, Math.Round(rollouts.Average(r => r.Reward), 4),
            eligible.Count == 0 ? null : Math.Round(eligible.Average(r => r.Reward), 4),
            disamb.Count == 0 ? null : Math.Round(disamb.Average(r => r.Reward), 4), fitLoss);
    }

    // ------------------------------------------------------------------ checkpoints

    private static string Fingerprint(string policy, string valueBase, List<Probe> items, ValueTrainingOptions o)
    {
        static string Weights(string folder)
        {
            var w = Path.Combine(folder, "model.safetensors");
            return File.Exists(w) ? new FileInfo(w).Length.ToString(CultureInfo.InvariantCulture) : "sharded";
        }
        var text = string.Join("|", Weights(policy), Weights(valueBase), string.Join(",", items.Select(p => p.Suite + "/" + p.Id)),
            JsonSerializer.Serialize(o with { Threads = null }, EngineJson.Default.ValueTrainingOptions));
        return Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)))[..16];
    }

    /// <summary>checkpoint.new is written whole, then swapped in; a complete checkpoint exists under one of two names at any instant.</summary>
    private static void SaveCheckpoint(string outDir, string fingerprint, State state, ScoreModel value, AdamWOptimizer optimizer, double seconds)
    {
        string dir = Path.Combine(outDir, CheckpointDir), fresh = dir + ".new", old = dir + ".old";
        if (Directory.Exists(fresh)) Directory.Delete(fresh, true);
        Directory.CreateDirectory(fresh);
        SafetensorsWriter.Save(Path.Combine(fresh, "trainable.safetensors"), value.Trainable.Select(t => new KeyValuePair<string, Tensor>(t.Name, t.Parameter.detach())));
        SafetensorsWriter.Save(Path.Combine(fresh, "optimizer.safetensors"), optimizer.State());
        var json = new JsonObject
        {
            ["fingerprint"] = fingerprint,
            ["round"] = state.Round,
            ["rollouts_done"] = state.RolloutsDone,
            ["step"] = state.Step,
            ["optimizer_step"] = optimizer.Step,
            ["train_seconds"] = seconds,
            ["rollouts"] = JsonSerializer.SerializeToNode(state.Rollouts, EngineJson.Default.ListRollout),
            ["rounds"] = JsonSerializer.SerializeToNode(state.Rounds, EngineJson.Default.ListValueRound),
        };
        File.WriteAllText(Path.Combine(fresh, "state.json"), json.ToJsonString());
        if (Directory.Exists(old)) Directory.Delete(old, true);
        if (Directory.Exists(dir)) Directory.Move(dir, old);
        Directory.Move(fresh, dir);
        if (Directory.Exists(old)) Directory.Delete(old, true);
    }

    private static State? LoadCheckpoint(string outDir, string fingerprint, ScoreModel value, AdamWOptimizer optimizer)
    {
        string dir = Path.Combine(outDir, CheckpointDir);
        if (!Directory.Exists(dir)) dir += ".old";
        if (!File.Exists(Path.Combine(dir, "state.json"))) return null;
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "state.json")))!.AsObject();
        if (json["fingerprint"]!.GetValue<string>() != fingerprint)
            throw new ArgumentException($"{dir} is a checkpoint of a different value training (models, prompts or settings differ); remove it or choose another output folder");
        using (var file = SafetensorsFile.Open(Path.Combine(dir, "trainable.safetensors")))
        using (no_grad())
            foreach (var (name, p) in value.Trainable)
            {
                using var t = file.Read(name, p.dtype);
                p.copy_(t);
            }
        using (var file = SafetensorsFile.Open(Path.Combine(dir, "optimizer.safetensors")))
            optimizer.Restore(name => file.Read(name, ScalarType.Float32), json["optimizer_step"]!.GetValue<long>());
        return new State
        {
            Round = json["round"]!.GetValue<int>(),
            RolloutsDone = json["rollouts_done"]!.GetValue<bool>(),
            Step = json["step"]!.GetValue<int>(),
            TrainSeconds = json["train_seconds"]!.GetValue<double>(),
            Rollouts = json["rollouts"].Deserialize(EngineJson.Default.ListRollout) ?? [],
            Rounds = json["rounds"].Deserialize(EngineJson.Default.ListValueRound) ?? [],
        };
    }
}
