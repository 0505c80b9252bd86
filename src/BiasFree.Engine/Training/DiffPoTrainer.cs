using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using BiasFree.Engine.DemoModel;
using BiasFree.Engine.Lora;
using BiasFree.Engine.Models;
using BiasFree.Engine.Tokenization;
using BiasFree.Probes;
using BiasFree.Probes.BuiltIn;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BiasFree.Engine.Training;

/// <summary>
/// One alignment trajectory for DiffPO: a prompt, the answer the aligner starts from (y⁽⁰⁾, e.g. a biased answer) and its
/// aligned rewrite (y⁽ᵀ⁾, e.g. the fair answer). The intermediate states y⁽¹⁾..y⁽ᵀ⁻¹⁾ are built from these two token by
/// token (see <see cref="DiffPoTrainer"/>). An answer that is already aligned has Original = Target (a fixed point).
/// </summary>
/// <param name="Id">Stable id.</param>
/// <param name="System">System message, or null.</param>
/// <param name="Prompt">The user turn.</param>
/// <param name="Original">y⁽⁰⁾.</param>
/// <param name="Target">y⁽ᵀ⁾.</param>
/// <param name="Category">Bias category (for counts).</param>
public sealed record DiffPoTrajectory(string Id, string? System, string Prompt, string Original, string Target, string Category);

/// <summary>Settings of <see cref="DiffPoTrainer"/>: the shared training settings plus DiffPO's own.</summary>
public sealed record DiffPoTrainingOptions
{
    /// <summary>LoRA, optimiser, schedule, batches, validation, checkpoints, seed (the <c>Method</c> field is ignored).</summary>
    public TrainingOptions Training { get; init; } = new() { Epochs = 2, BatchSize = 8, EvalEvery = 25, CheckpointEvery = 10 };

    /// <summary>
    /// ω, the weight of the consistency loss. The paper uses 10³; its normalisation of L_Con is not stated in what we
    /// read, and ours is a mean over answer tokens like L_AR, so our default is 1 (see docs/decoding-methods.md).
    /// </summary>
    public double Omega { get; init; } = 1.0;

    /// <summary>T: states per trajectory, y⁽⁰⁾..y⁽ᵀ⁻¹⁾ (the paper collects 6 responses per prompt; we build T from two).</summary>
    public int States { get; init; } = 4;

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad field.</summary>
    public void Validate()
    {
        Training.Validate();
        if (Training.FullFineTune) throw new ArgumentException("the DiffPO aligner is trained as LoRA; full fine-tuning is not supported");
        if (Omega < 0 || double.IsNaN(Omega)) throw new ArgumentException($"omega must be ≥ 0, got {Omega}");
        if (States < 1) throw new ArgumentException($"states must be at least 1, got {States}");
    }
}

/// <summary>DiffPO's two loss terms on logits.</summary>
public static class DiffPoObjectives
{
    /// <summary>
    /// DiffPO's consistency loss (a CLLM-style global consistency loss): the forward KL
    /// KL(p(·|y⁽ᵀ⁾) ‖ p_θ(·|y⁽ᵗ⁾)) = Σ_v p_T(v) (log p_T(v) − log p_θ(v)) at each answer position, averaged over the
    /// positions where <paramref name="mask"/> is 1. <paramref name="teacherLogits"/> are detached (stop-gradient on the
    /// y⁽ᵀ⁾ side). Shapes: logits [B, N, V], mask [B, N]. Computed in the logits' dtype.
    /// </summary>
    public static Tensor ConsistencyLoss(Tensor studentLogits, Tensor teacherLogits, Tensor mask)
    {
        using var scope = NewDisposeScope();
        var logStudent = nn.functional.log_softmax(studentLogits, -1);
        var logTeacher = nn.functional.log_softmax(teacherLogits.detach(), -1);
        var kl = (logTeacher.exp() * (logTeacher - logStudent)).sum(-1);
        var m = mask.to_type(kl.dtype);
        return ((kl * m).sum() / m.sum().AtLeast(1)).MoveToOuterDisposeScope();
    }

    /// <summary>L_AR: mean cross-entropy of <paramref name="targets"/> [B, N] under <paramref name="logits"/> [B, N, V] where <paramref name="mask"/> is 1.</summary>
    public static Tensor AutoregressiveLoss(Tensor logits, Tensor targets, Tensor mask)
    {
        using var scope = NewDisposeScope();
        var perToken = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[2]), targets.reshape(-1), reduction: nn.Reduction.None);
        var m = mask.reshape(-1).to_type(perToken.dtype);
        return ((perToken * m).sum() / m.sum().AtLeast(1)).MoveToOuterDisposeScope();
    }
}

/// <summary>Trajectories for a DiffPO aligner from the demo corpus's BBQ-style items (training suite seeds only).</summary>
public static class DiffPoTrajectories
{
    /// <summary>
    /// <paramref name="count"/> trajectories from the built-in BBQ-style suite under the demo corpus's training seeds
    /// (never an evaluation seed 0–9), in the two-option protocol a run uses, with the run's system prompt. Ambiguous
    /// items: the stereotyped answer (50 %), the anti-stereotyped one (25 %) or the unknown one (25 %, a fixed point) →
    /// the unknown answer "Cannot be determined.". Disambiguated items: the other person (50 %) or the correct one
    /// (a fixed point) → the correct one. Seeded.
    /// </summary>
    public static IReadOnlyList<DiffPoTrajectory> FromDemoCorpus(int count, int seed = 20251124)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var corpus = new DemoCorpus(new DemoCorpusOptions { Seed = seed });
        var rng = StableRandom.For(seed, "diffpo/trajectories");
        var result = new List<DiffPoTrajectory>(count);
        for (int k = 0; result.Count < count; k++)
        {
            int suiteSeed = corpus.SuiteSeed(k);
            foreach (var probe in StableRandom.For(seed, $"diffpo/order/{k}").Shuffle(new BbqBuiltInSuite(suiteSeed).Load()))
            {
                if (result.Count == count) break;
                var stereotyped = probe.OptionWithRole(OptionRole.Stereotyped);
                var anti = probe.OptionWithRole(OptionRole.AntiStereotyped);
                if (stereotyped is null || anti is null) continue;
                double u = rng.NextUInt64() / (double)ulong.MaxValue;
                string original, target;
                if (probe.Context == ContextCondition.Ambiguous)
                {
                    target = DemoCorpus.UnknownAnswer;
                    original = u < 0.5 ? stereotyped.Text : u < 0.75 ? anti.Text : target;
                }
                else if (probe.CorrectOption is int c)
                {
                    var correct = probe.Options[c];
                    var other = correct.Role == OptionRole.Stereotyped ? anti : stereotyped;
                    target = correct.Text;
                    original = u < 0.5 ? other.Text : target;
                }
                else continue;
                result.Add(new DiffPoTrajectory($"{probe.Id}@{suiteSeed}", DemoCorpus.SystemPrompt, probe.UserTurns[0], original, target, probe.Category));
            }
        }
        return result;
    }
}

/// <summary>
/// Trains a DiffPO aligner as LoRA on a base model folder (Chen et al., arXiv 2503.04240; training as summarised in
/// ../shared/notes/algorithms.md §5, since the authors have not released their training code):
/// L = L_AR + ω·L_Con. L_AR is the cross-entropy of the aligned answer y⁽ᵀ⁾ given the prompt. L_Con is the forward KL
/// between the model's next-token distributions over the answer window given an intermediate state y⁽ᵗ⁾ and given
/// y⁽ᵀ⁾ (stop-gradient on the y⁽ᵀ⁾ side): it teaches the aligner to jump from any state of the trajectory to the
/// aligned answer in one Jacobi step.
/// </summary>
/// <remarks>
/// <para><b>States.</b> The paper's trajectories are T = 6 responses of different models ranked by a reward model. Ours are
/// built from an original answer y⁽⁰⁾ and its rewrite y⁽ᵀ⁾ (both padded with the end-of-turn token to one length N):
/// y⁽ᵏ⁾ takes its first ⌊k·N/T⌋ tokens from y⁽ᵀ⁾ and the rest from y⁽⁰⁾ (k = 0..T−1), the left-to-right shape of a Jacobi
/// trajectory. Each step draws one state per example (seeded by the step).</para>
/// <para><b>Outputs</b> (as <see cref="DebiasTrainer"/>): OUT/ the merged model folder (the aligner for
/// <c>run --method diffpo --aligner OUT</c>), OUT/adapter/ the PEFT adapter, OUT/diffpo_training.json the record.
/// OUT/checkpoint/ holds the resumable state while training (the same atomic checkpoints as DebiasTrainer); running
/// again with the same base, data and options after a crash (kill -9 included) continues from it with the same weights.</para>
/// </remarks>
public static class DiffPoTrainer
{
    private const string RecordFile = "diffpo_training.json";

    private sealed record Encoded(int[] Prompt, int[] Original, int[] Target);

    /// <summary>Trains and saves; see the class summary.</summary>
    public static Task<TrainingResult> TrainAsync(string baseFolder, IReadOnlyList<DiffPoTrajectory> data, string outputDir, DiffPoTrainingOptions options,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default, string? dataDescription = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(baseFolder);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentException.ThrowIfNullOrWhiteSpace(outputDir);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (data.Count < 2) throw new ArgumentException($"training needs at least 2 trajectories, got {data.Count}", nameof(data));
        if (!File.Exists(Path.Combine(baseFolder, "config.json")) || !File.Exists(Path.Combine(baseFolder, "tokenizer.json")))
            throw new DirectoryNotFoundException($"'{baseFolder}' is not a model folder (it needs config.json and tokenizer.json)");
        return Task.Run(() => Train(Path.GetFullPath(baseFolder), data, Path.GetFullPath(outputDir), options, progress, dataDescription, cancellationToken), cancellationToken);
    }

    /// <summary>
    /// State k of T (k = 0..T−1) between <paramref name="original"/> and <paramref name="target"/>, both already padded to
    /// one length N: the first ⌊k·N/T⌋ tokens of the target, then the original's.
    /// </summary>
    public static int[] State(int[] original, int[] target, int k, int states)
    {
        if (original.Length != target.Length) throw new ArgumentException("states are built from equally long (padded) answers");
        int cut = (int)((long)k * target.Length / states);
        return [.. target.Take(cut), .. original.Skip(cut)];
    }

    private static TrainingResult Train(string baseFolder, IReadOnlyList<DiffPoTrajectory> data, string outDir, DiffPoTrainingOptions options,
        IProgress<TrainingProgress>? progress, string? dataDescription, CancellationToken ct)
    {
        var o = options.Training;
        var clock = Stopwatch.StartNew();
        if (o.Threads is int threads) torch.set_num_threads(threads);
        if (File.Exists(Path.Combine(outDir, RecordFile)) && !TrainingCheckpoint.Exists(outDir))
            throw new ArgumentException($"{outDir} already holds a finished training ({RecordFile}); remove it or choose another output folder");
        void Report(string phase, int step, int total) =>
            progress?.Report(new TrainingProgress(phase, step, total, double.NaN, 0, clock.Elapsed, null, null, null));

        Report("load", 0, 0);
        using var model = TrainingLoop.LoadBase(baseFolder, o.ChatTemplate, out var tokenizer, out var template, out int endOfTurn);

        // Encode: the prompt as the aligner will see it at inference ([system?, user] + generation prompt), the answers
        // without special tokens, each followed by the end-of-turn token.
        Report("encode", 0, 0);
        var encoded = data.Select(t =>
        {
            var messages = new List<(string Role, string Content)>();
            if (t.System is { } s) messages.Add(("system", s));
            messages.Add(("user", t.Prompt));
            var prompt = tokenizer.Encode(template.Render(messages, addGenerationPrompt: true), addSpecialTokens: false).ToArray();
            int room = o.MaxLength - prompt.Length;
            if (room < 2) throw new ArgumentException($"trajectory '{t.Id}': the prompt alone is {prompt.Length} tokens (max length {o.MaxLength})");
            int[] Answer(string text) => [.. tokenizer.Encode(text, addSpecialTokens: false).Take(room - 1), endOfTurn];
            return new Encoded(prompt, Answer(t.Original), Answer(t.Target));
        }).ToList();

        var plan = TrainingLoop.Plan(data.Count, o, "diffpo");
        var (valIdx, steps) = (plan.Validation, plan.Steps);
        int totalSteps = steps.Count;

        using var dropoutGenerator = new torch.Generator((ulong)o.Seed);
        var (lora, trainable) = TrainingLoop.ApplyLora(model, o, dropoutGenerator);

        string fingerprint = Fingerprint(baseFolder, data, options);
        TrainingLoop.StepResult Step(int step)
        {
            double stepLoss = 0, stepAr = 0, stepCon = 0;
            long tokensRead = 0;
            var stateRng = StableRandom.For(o.Seed, $"diffpo/states/{step}");
            foreach (var mb in steps[step])
            {
                using var scope = NewDisposeScope();
                var picks = mb.Select(_ => stateRng.Next(options.States)).ToList();
                var (ar, con, tokens) = Losses(model, mb.Select(i => encoded[i]).ToList(), picks, options.States, endOfTurn);
                tokensRead += tokens;
                var loss = ar.Plus(con.Times(options.Omega));
                loss.Over(steps[step].Count).backward();
                stepLoss += loss.item<float>() / steps[step].Count;
                stepAr += ar.item<float>() / steps[step].Count;
                stepCon += con.item<float>() / steps[step].Count;
            }
            return new(stepLoss, tokensRead, FormattableString.Invariant($"L_AR {stepAr:0.000} · L_Con {stepCon:0.0000}"));
        }
        var outcome = TrainingLoop.Run(model, trainable, dropoutGenerator, o, totalSteps, outDir, fingerprint, Step,
            valIdx.Count > 0 ? () => ValidationLoss(model, encoded, valIdx, options, endOfTurn) : null, progress, clock, ct);
        var (state, detail) = (outcome.State, outcome.LastDetail);

        Report("save", state.Step, totalSteps);
        Directory.CreateDirectory(outDir);
        model.Save(outDir);
        ModelFolder.CopyTokenizerFiles(baseFolder, outDir);
        var adapterDir = Path.Combine(outDir, "adapter");
        LoraAdapter.Save(model, adapterDir, lora, baseFolder);
        var result = outcome.Result(outDir, adapterDir, plan, clock.Elapsed);
        WriteRecord(outDir, baseFolder, data, options, result, state, dataDescription, detail);
        TrainingCheckpoint.Delete(outDir);
        return result;
    }

    /// <summary>
    /// L_AR and L_Con of one micro-batch. Every answer and state is padded with the end-of-turn token to the batch's
    /// longest answer N; rows are prompt ++ answer, right-padded (causal attention: padding on the right changes nothing
    /// before it). Answer position i of row b is predicted by the logits at prompt_b − 1 + i. Both terms count the
    /// positions up to and including the target's first end-of-turn token.
    /// </summary>
    private static (Tensor Ar, Tensor Con, long Tokens) Losses(CausalLM model, IReadOnlyList<Encoded> batch, IReadOnlyList<int> picks, int states, int pad)
    {
        int n = batch.Max(e => Math.Max(e.Original.Length, e.Target.Length));
        int[] Pad(int[] a) => [.. a, .. Enumerable.Repeat(pad, n - a.Length)];
        var targets = batch.Select(e => Pad(e.Target)).ToList();
        var studentStates = batch.Select((e, b) => State(Pad(e.Original), targets[b], picks[b], states)).ToList();
        var mask = new float[batch.Count * n];
        for (int b = 0; b < batch.Count; b++)
            for (int i = 0; i < batch[b].Target.Length; i++) mask[b * n + i] = 1f;
        using var maskT = tensor(mask, [batch.Count, n]).to(model.Device);
        using var targetIds = tensor(targets.SelectMany(t => t.Select(v => (long)v)).ToArray(), [batch.Count, n], ScalarType.Int64).to(model.Device);

        var teacherRows = AnswerLogits(model, batch, targets, pad);
        var studentRows = AnswerLogits(model, batch, studentStates, pad);
        var ar = DiffPoObjectives.AutoregressiveLoss(teacherRows, targetIds, maskT);
        var con = DiffPoObjectives.ConsistencyLoss(studentRows, teacherRows.detach(), maskT);
        long tokens = 2L * batch.Sum(e => e.Prompt.Length + n);
        return (ar, con, tokens);
    }

    /// <summary>Float32 logits [B, N, V] that predict each of the N answer positions of prompt_b ++ answers[b].</summary>
    private static Tensor AnswerLogits(CausalLM model, IReadOnlyList<Encoded> batch, IReadOnlyList<int[]> answers, int pad)
    {
        int n = answers[0].Length;
        int length = batch.Max(e => e.Prompt.Length) + n;
        var rows = batch.Select((e, b) => (IReadOnlyList<int>)[.. e.Prompt, .. answers[b], .. Enumerable.Repeat(pad, length - e.Prompt.Length - n)]).ToList();
        var logits = model.Forward(model.IdsTensor(rows)).Logits;
        return stack(batch.Select((e, b) => logits[b].narrow(0, e.Prompt.Length - 1, n)).ToArray()).to_type(ScalarType.Float32);
    }

    /// <summary>L on the validation split, with each trajectory's state fixed by its index (so the figure is comparable across steps).</summary>
    private static double ValidationLoss(CausalLM model, IReadOnlyList<Encoded> encoded, IReadOnlyList<int> valIdx, DiffPoTrainingOptions options, int pad)
    {
        using var _ = no_grad();
        double total = 0;
        int count = 0;
        foreach (var chunk in valIdx.Chunk(options.Training.BatchSize))
        {
            using var scope = NewDisposeScope();
            var (ar, con, _) = Losses(model, chunk.Select(i => encoded[i]).ToList(), chunk.Select(i => i % options.States).ToList(), options.States, pad);
            total += (ar.item<float>() + options.Omega * con.item<float>()) * chunk.Length;
            count += chunk.Length;
        }
        return count == 0 ? double.NaN : total / count;
    }

    private static string Fingerprint(string baseFolder, IReadOnlyList<DiffPoTrajectory> data, DiffPoTrainingOptions o)
    {
        var weights = Path.Combine(baseFolder, "model.safetensors");
        string baseId = File.Exists(weights) ? $"{new FileInfo(weights).Length}" : "sharded";
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes(baseId));
        foreach (var t in data) sha.AppendData(Encoding.UTF8.GetBytes(string.Join("\u0001", t.Id, t.System, t.Prompt, t.Original, t.Target) + "\u0002"));
        sha.AppendData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(o with { Training = o.Training with { Threads = null } }, EngineJson.Default.DiffPoTrainingOptions)));
        return Convert.ToHexString(sha.GetHashAndReset())[..16];
    }

    private static void WriteRecord(string outDir, string baseFolder, IReadOnlyList<DiffPoTrajectory> data, DiffPoTrainingOptions options, TrainingResult r,
        TrainingLoop.RunState state, string? dataDescription, string? lastDetail)
    {
        var o = options.Training;
        var rec = new JsonObject
        {
            ["trainer"] = "BiasFree.Engine.Training.DiffPoTrainer",
            ["method"] = "diffpo-aligner",
            ["base_model"] = baseFolder,
            ["data"] = dataDescription,
            ["trajectories"] = data.Count,
            ["fixed_point_trajectories"] = data.Count(t => t.Original == t.Target),
            ["train_examples"] = r.TrainExamples,
            ["validation_examples"] = r.ValidationExamples,
            ["omega"] = options.Omega,
            ["states"] = options.States,
            ["lora"] = new JsonObject { ["r"] = o.LoraRank, ["alpha"] = o.LoraAlpha, ["dropout"] = o.LoraDropout, ["targets"] = string.Join(",", o.LoraTargets) },
            ["learning_rate"] = o.LearningRate,
            ["steps"] = r.Steps,
            ["batch_size"] = o.BatchSize,
            ["gradient_accumulation"] = o.GradientAccumulation,
            ["seed"] = o.Seed,
            ["first_loss"] = Math.Round(r.FirstLoss, 5),
            ["final_loss"] = Math.Round(r.FinalLoss, 5),
            ["best_step"] = r.BestStep,
            ["best_validation_loss"] = r.BestValidationLoss is { } b ? Math.Round(b, 5) : null,
            ["last_step_losses"] = lastDetail,
            ["resumed_from_step"] = r.ResumedFromStep,
            ["train_seconds"] = Math.Round(state.TrainSeconds, 1),
            ["losses"] = new JsonArray([.. state.Losses.Select(l => (JsonNode?)JsonValue.Create(Math.Round(l, 5)))]),
            ["torch_threads"] = torch.get_num_threads(),
        };
        File.WriteAllText(Path.Combine(outDir, RecordFile), rec.ToJsonString(new JsonSerializerOptions
        {
            WriteIndented = true,
            Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        }));
    }
}
