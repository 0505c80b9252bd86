using System.CommandLine;
using System.Globalization;
using BiasFree.Engine.DemoModel;
using BiasFree.Engine.Training;
using Spectre.Console;

namespace BiasFree.Cli.Commands;

/// <summary>
/// <c>biasfree train</c>: training-based debiasing (SFT, DPO, Task Vector) of a local model folder, and
/// <c>biasfree train-data</c>: the training data as LLaMA-Factory files. Both are thin shells over BiasFree.Engine.Training.
/// </summary>
internal static class TrainCommand
{
    public static Command Build()
    {
        var d = new TrainingOptions();
        var method = new Option<string>("--method") { Description = "Training method: sft, dpo, task-vector or safe-rlhf (simplified; see docs/training.md).", Required = true };
        method.AcceptOnlyFromAmong("sft", "dpo", "task-vector", "safe-rlhf");
        var baseModel = new Option<string?>("--base") { Description = $"Base model: a Hugging Face model folder, or 'demo' (default) for the embedded demo model (models/demo or ${DemoModel.PathEnvironmentVariable})." };
        var data = DataOption();
        var outDir = new Option<string>("--out", "-o") { Description = "Output folder: the merged model (for run --target), adapter/ (PEFT, for run --adapter) and training.json. Re-running the same command after a crash resumes from its checkpoint.", Required = true };
        var (count, balance, seed) = DataShapingOptions();
        var epochs = new Option<int>("--epochs") { Description = "Passes over the training split.", DefaultValueFactory = _ => d.Epochs };
        var steps = new Option<int?>("--steps") { Description = "Optimizer steps (overrides --epochs)." };
        var lr = new Option<double>("--learning-rate", "--lr") { Description = "Peak AdamW learning rate (cosine schedule with warm-up).", DefaultValueFactory = _ => d.LearningRate };
        var batch = new Option<int>("--batch-size") { Description = "Examples per micro-batch.", DefaultValueFactory = _ => d.BatchSize };
        var accum = new Option<int>("--grad-accum") { Description = "Micro-batches per optimizer step.", DefaultValueFactory = _ => d.GradientAccumulation };
        var warmup = new Option<double>("--warmup-ratio") { Description = "Share of steps with linear warm-up.", DefaultValueFactory = _ => d.WarmupRatio };
        var rank = new Option<int>("--lora-rank") { Description = "LoRA rank r.", DefaultValueFactory = _ => d.LoraRank };
        var alpha = new Option<double>("--lora-alpha") { Description = "LoRA alpha (update scaled by alpha/r).", DefaultValueFactory = _ => d.LoraAlpha };
        var dropout = new Option<double>("--lora-dropout") { Description = "LoRA dropout.", DefaultValueFactory = _ => d.LoraDropout };
        var targets = new Option<string>("--lora-targets") { Description = "Comma list of projections to adapt (default: all linear layers).", DefaultValueFactory = _ => string.Join(",", d.LoraTargets) };
        var full = new Option<bool>("--full") { Description = "Task Vector: fine-tune every weight instead of LoRA (as the paper does; no adapter folder)." };
        var beta = new Option<double>("--beta") { Description = "DPO beta.", DefaultValueFactory = _ => d.Beta };
        var ftx = PreferenceFtxOption(d);
        var lambda = new Option<double>("--lambda") { Description = "Task Vector lambda: theta_base - lambda * tau (the paper's code: 0.5).", DefaultValueFactory = _ => d.TaskVectorLambda };
        var valShare = new Option<double>("--val-share") { Description = "Validation share for best-checkpoint selection (0 = keep the last weights).", DefaultValueFactory = _ => d.ValidationShare };
        var evalEvery = new Option<int>("--eval-every") { Description = "Validate every N steps.", DefaultValueFactory = _ => d.EvalEvery };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Write a resumable checkpoint every N steps.", DefaultValueFactory = _ => d.CheckpointEvery };
        var maxLength = new Option<int>("--max-length") { Description = "Longest example in tokens.", DefaultValueFactory = _ => d.MaxLength };
        var chatTemplate = new Option<string?>("--chat-template") { Description = "Chat template of the base (default: detected, as run does)." };
        var threads = new Option<int?>("--threads") { Description = "Torch threads (default: torch's choice)." };
        var rlDefaults = new SafeRlhfOptions();
        var costLimit = CostLimitOption(rlDefaults);
        var rlIterations = new Option<int>("--rl-iterations") { Description = "Safe-RLHF: policy iterations.", DefaultValueFactory = _ => rlDefaults.Iterations };
        var scoreSteps = new Option<int>("--score-model-steps") { Description = "Safe-RLHF: optimizer steps for each of the reward and cost models.", DefaultValueFactory = _ => rlDefaults.ScoreModelSteps };
        var rlPrompts = new Option<int>("--rl-prompts") { Description = "Safe-RLHF: prompts per policy iteration.", DefaultValueFactory = _ => rlDefaults.PromptsPerIteration };
        var rlSamples = new Option<int>("--rl-samples") { Description = "Safe-RLHF: replies sampled per prompt.", DefaultValueFactory = _ => rlDefaults.SamplesPerPrompt };
        var rlMaxTokens = new Option<int>("--rl-max-tokens") { Description = "Safe-RLHF: longest sampled reply in tokens.", DefaultValueFactory = _ => rlDefaults.MaxNewTokens };

        var cmd = new Command("train", "Debias a local model by training (SFT, DPO, Task Vector or Safe-RLHF-style, on LoRA), writing a model folder and a PEFT adapter.")
        {
            method, baseModel, data, outDir, count, balance, seed, epochs, steps, lr, batch, accum, warmup, rank, alpha, dropout, targets, full, beta,
            ftx, lambda, valShare, evalEvery, checkpointEvery, maxLength, chatTemplate, threads, costLimit, rlIterations, scoreSteps, rlPrompts, rlSamples, rlMaxTokens,
        };
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(() =>
        {
            var options = d with
            {
                Method = TrainingOptions.ParseMethod(pr.GetValue(method)!),
                Epochs = pr.GetValue(epochs),
                MaxSteps = pr.GetValue(steps),
                LearningRate = pr.GetValue(lr),
                BatchSize = pr.GetValue(batch),
                GradientAccumulation = pr.GetValue(accum),
                WarmupRatio = pr.GetValue(warmup),
                LoraRank = pr.GetValue(rank),
                LoraAlpha = pr.GetValue(alpha),
                LoraDropout = pr.GetValue(dropout),
                LoraTargets = BiasFreeCli.SplitList([pr.GetValue(targets)!]),
                FullFineTune = pr.GetValue(full),
                Beta = pr.GetValue(beta),
                PreferenceFtx = pr.GetValue(ftx),
                TaskVectorLambda = pr.GetValue(lambda),
                ValidationShare = pr.GetValue(valShare),
                EvalEvery = pr.GetValue(evalEvery),
                CheckpointEvery = pr.GetValue(checkpointEvery),
                MaxLength = pr.GetValue(maxLength),
                Seed = pr.GetValue(seed),
                ChatTemplate = pr.GetValue(chatTemplate),
                Threads = pr.GetValue(threads),
                SafeRlhf = rlDefaults with
                {
                    CostLimit = pr.GetValue(costLimit), Iterations = pr.GetValue(rlIterations), ScoreModelSteps = pr.GetValue(scoreSteps),
                    PromptsPerIteration = pr.GetValue(rlPrompts), SamplesPerPrompt = pr.GetValue(rlSamples), MaxNewTokens = pr.GetValue(rlMaxTokens),
                },
            };
            return TrainAsync(ResolveBase(pr.GetValue(baseModel)), pr.GetValue(data)!, pr.GetValue(count), pr.GetValue(balance),
                Path.GetFullPath(pr.GetValue(outDir)!), options, ct);
        }));
        return cmd;
    }

    /// <summary><c>biasfree train-data</c>: writes the training data in a LLaMA-Factory shape.</summary>
    public static Command BuildData()
    {
        var data = DataOption();
        var (count, balance, seed) = DataShapingOptions();
        var shape = new Option<string>("--shape") { Description = "sft: Alpaca {instruction,input,output=r_w}; dpo: {prompt,chosen,rejected}; task-vector: Alpaca with output=r_l.", DefaultValueFactory = _ => "dpo" };
        shape.AcceptOnlyFromAmong("sft", "dpo", "task-vector");
        var outFile = new Option<string>("--out", "-o") { Description = "JSON file to write.", Required = true };
        var cmd = new Command("train-data", "Write training data (generated, StereoSet or a LLaMA-Factory file) as a LLaMA-Factory JSON file, with per-bias-type counts.")
        {
            data, count, balance, seed, shape, outFile,
        };
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(() =>
        {
            var pairs = LoadData(pr.GetValue(data)!, pr.GetValue(count), pr.GetValue(balance), pr.GetValue(seed));
            var s = pr.GetValue(shape) switch
            {
                "sft" => PreferenceData.ExportShape.Sft,
                "task-vector" => PreferenceData.ExportShape.TaskVector,
                _ => PreferenceData.ExportShape.Dpo,
            };
            var path = Path.GetFullPath(pr.GetValue(outFile)!);
            PreferenceData.Export(path, pairs, s);
            Console.Out.WriteLine($"Wrote {pairs.Count.ToString(CultureInfo.InvariantCulture)} records to {path}");
            WriteCounts(pairs);
            return Task.FromResult(ExitCodes.Ok);
        }));
        return cmd;
    }

    /// <summary>
    /// <c>biasfree train-compare</c>: trains every method × data arm from one base, measures the base and each result on
    /// held-out BBQ-style probes, prints the table and, with --markdown, rewrites the marked block of that file.
    /// </summary>
    public static Command BuildCompare()
    {
        var d = new TrainingOptions();
        var baseModel = new Option<string?>("--base") { Description = "Base model folder, or 'demo' (default)." };
        var methods = new Option<string>("--methods") { Description = "Comma list of methods.", DefaultValueFactory = _ => "sft,dpo,task-vector" };
        var data = new Option<string>("--data") { Description = "Comma list of data specs (each method is trained on each).", DefaultValueFactory = _ => "generated" };
        var (count, balance, seed) = DataShapingOptions();
        var work = new Option<string>("--work") { Description = "Folder for the trained models (finished ones are reused, interrupted ones resume).", DefaultValueFactory = _ => Path.Combine("runs", "train-compare") };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the training split.", DefaultValueFactory = _ => d.Epochs };
        var steps = new Option<int?>("--steps") { Description = "Optimizer steps per arm (overrides --epochs)." };
        var lr = new Option<double>("--learning-rate", "--lr") { Description = "Peak learning rate.", DefaultValueFactory = _ => d.LearningRate };
        var rank = new Option<int>("--lora-rank") { Description = "LoRA rank.", DefaultValueFactory = _ => d.LoraRank };
        var lambda = new Option<double>("--lambda") { Description = "Task Vector lambda.", DefaultValueFactory = _ => d.TaskVectorLambda };
        var beta = new Option<double>("--beta") { Description = "DPO beta.", DefaultValueFactory = _ => d.Beta };
        var ftx = PreferenceFtxOption(d);
        var costLimit = CostLimitOption(new SafeRlhfOptions());
        var evalCount = new Option<int>("--eval-count") { Description = "Held-out ambiguous probes per model (and as many disambiguated).", DefaultValueFactory = _ => 300 };
        var evalSeed = new Option<int>("--eval-seed") { Description = "Sampling seed of the evaluation.", DefaultValueFactory = _ => 1 };
        var continuationData = new Option<string?>("--continuation-data") { Description = "Held-out StereoSet-style items to measure the stereotyped-continuation rate on (any --data spec; chosen = anti-stereotyped, rejected = stereotyped). Default: the demo corpus's continuation items." };
        var markdown = new Option<string?>("--markdown") { Description = $"Markdown file whose block between {MarkdownStart} and {MarkdownEnd} is replaced by the table." };
        var threads = new Option<int?>("--threads") { Description = "Torch threads." };
        var cmd = new Command("train-compare", "Train several methods from one base and compare them with the base on held-out probes (ambiguous BFS, disambiguated accuracy, over-refusal, 95% CIs).")
        {
            baseModel, methods, data, count, balance, seed, work, epochs, steps, lr, rank, lambda, beta, ftx, costLimit, evalCount, evalSeed, continuationData, markdown, threads,
        };
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(async () =>
        {
            var baseFolder = ResolveBase(pr.GetValue(baseModel));
            var options = d with
            {
                Epochs = pr.GetValue(epochs), MaxSteps = pr.GetValue(steps), LearningRate = pr.GetValue(lr), LoraRank = pr.GetValue(rank), LoraAlpha = 2.0 * pr.GetValue(rank),
                TaskVectorLambda = pr.GetValue(lambda), Beta = pr.GetValue(beta), PreferenceFtx = pr.GetValue(ftx), Seed = pr.GetValue(seed), Threads = pr.GetValue(threads),
                SafeRlhf = new SafeRlhfOptions { CostLimit = pr.GetValue(costLimit) },
            };
            var arms = (from spec in BiasFreeCli.SplitList([pr.GetValue(data)!])
                        from m in BiasFreeCli.SplitList([pr.GetValue(methods)!])
                        select new ComparisonArm(options with { Method = TrainingOptions.ParseMethod(m) }, spec, pr.GetValue(count), pr.GetValue(balance))).ToList();
            var evaluation = new DebiasEvaluationOptions
            {
                Count = pr.GetValue(evalCount),
                SamplingSeed = pr.GetValue(evalSeed),
                Continuations = pr.GetValue(continuationData) is { } cd
                    ? [.. PreferenceData.Load(cd).Where(p => p.Rejected is not null).Select(p => (p.Prompt, p.Rejected!, p.Chosen))]
                    : DemoContinuations(),
            };
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var last = TimeSpan.FromDays(-1);
            var rows = await TrainingComparison.RunAsync(baseFolder, arms, Path.GetFullPath(pr.GetValue(work)!), evaluation,
                new SyncLog(m => Console.Out.WriteLine(m)),
                new SyncProgress(p =>
                {
                    if (clock.Elapsed - last >= TimeSpan.FromSeconds(5) || p.Step == p.TotalSteps)
                    {
                        last = clock.Elapsed;
                        Console.Out.WriteLine("progress " + Describe(p));
                    }
                }), ct).ConfigureAwait(false);
            var table = TrainingComparison.ToMarkdown(rows);
            Console.Out.WriteLine(table);
            if (pr.GetValue(markdown) is { } file)
            {
                var command = "biasfree " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1));
                ReplaceBlock(file, table, command);
                Console.Out.WriteLine($"Updated {file}");
            }
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    internal const string MarkdownStart = "<!-- training-results:start -->";
    internal const string MarkdownEnd = "<!-- training-results:end -->";

    private static void ReplaceBlock(string file, string table, string command)
    {
        var text = File.Exists(file) ? File.ReadAllText(file) : "";
        int start = text.IndexOf(MarkdownStart, StringComparison.Ordinal), end = text.IndexOf(MarkdownEnd, StringComparison.Ordinal);
        var block = $"{MarkdownStart}\nGenerated {DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture)} UTC by:\n\n```bash\n{command}\n```\n\n{table}{MarkdownEnd}";
        text = start >= 0 && end > start ? text[..start] + block + text[(end + MarkdownEnd.Length)..] : text + "\n" + block + "\n";
        File.WriteAllText(file, text);
    }

    /// <summary>The demo corpus's StereoSet-style items, measured as a held-out family (the generated training data uses other wording).</summary>
    private static IReadOnlyList<(string Prompt, string Stereotype, string AntiStereotype)> DemoContinuations() =>
        [.. DemoCorpus.ContinuationItems.Select(c => (c.Prompt, c.Stereotype, c.AntiStereotype))];

    private sealed class SyncLog(Action<string> write) : IProgress<string>
    {
        private readonly Lock _gate = new();

        public void Report(string value)
        {
            lock (_gate)
            {
                write(value);
            }
        }
    }

    private static Option<double> PreferenceFtxOption(TrainingOptions d) => new("--pref-ftx")
    {
        Description = "DPO: weight of the SFT term on the chosen reply added to the DPO loss (LLaMA-Factory's pref_ftx; 0 = plain DPO as in the paper).",
        DefaultValueFactory = _ => d.PreferenceFtx,
    };

    private static Option<double> CostLimitOption(SafeRlhfOptions d) => new("--cost-limit")
    {
        Description = "Safe-RLHF: cost limit d of the constraint E[cost] <= d (lambda rises while the sampled replies' mean cost is above it; safe-rlhf's default 0).",
        DefaultValueFactory = _ => d.CostLimit,
    };

    private static Option<string> DataOption() => new("--data")
    {
        Description = "Training data: generated (our StereoSet-style templates; also generated:continuation), generated:bbq, generated:bbq-symmetric (reward pairs in which neither name wins without the context, docs/white-box.md), generated:bbq-category-bias (a deliberately biased SFT corpus, docs/white-box.md), stereoset:PATH (dev.json, intersentence) or llamafactory:PATH (Alpaca or prompt/chosen/rejected JSON).",
        DefaultValueFactory = _ => "generated",
    };

    private static (Option<int?> Count, Option<bool> Balance, Option<int> Seed) DataShapingOptions() =>
    (
        new Option<int?>("--count") { Description = "Generated data: how many items to draw (default: every distinct item once; 600 for generated:bbq)." },
        new Option<bool>("--balance") { Description = "Resample to equal counts per bias type (the paper's balanced data), seeded." },
        new Option<int>("--seed") { Description = "Seed of data generation, balancing, split, batch order and initialisation.", DefaultValueFactory = _ => 0 }
    );

    private static IReadOnlyList<PreferencePair> LoadData(string spec, int? count, bool balance, int seed)
    {
        if (count is < 1) throw new UserErrorException("--count must be at least 1.");
        var pairs = PreferenceData.Load(spec, count, seed);
        return balance ? PreferenceData.Balance(pairs, seed) : pairs;
    }

    private static void WriteCounts(IReadOnlyList<PreferencePair> pairs) =>
        Console.Out.WriteLine("Per bias type: " + string.Join(", ", PreferenceData.CountByCategory(pairs).Select(c => $"{c.Category} {c.Count.ToString(CultureInfo.InvariantCulture)}")));

    internal static string ResolveBase(string? baseModel)
    {
        if (baseModel is null or "demo")
        {
            var path = DemoModel.Find();
            if (path is null || !DemoModel.Exists(path))
                throw new UserErrorException($"no demo model found (models/demo or ${DemoModel.PathEnvironmentVariable}); pass --base MODEL_FOLDER.");
            return path;
        }
        return Path.GetFullPath(baseModel);
    }

    private static async Task<int> TrainAsync(string baseFolder, string dataSpec, int? count, bool balance, string outDir, TrainingOptions options, CancellationToken ct)
    {
        var pairs = LoadData(dataSpec, count, balance, options.Seed);
        Console.Out.WriteLine($"Training {TrainingOptions.Name(options.Method)} on {pairs.Count.ToString(CultureInfo.InvariantCulture)} examples from {dataSpec}{(balance ? " (balanced)" : "")}; base {baseFolder}; output {outDir}");
        WriteCounts(pairs);
        TrainingResult result;
        try
        {
            if (ProgressView.Interactive)
            {
                result = await AnsiConsole.Progress()
                    .AutoClear(false)
                    .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new SpinnerColumn())
                    .StartAsync(async ctx =>
                    {
                        var task = ctx.AddTask("loading", maxValue: 1);
                        var progress = new SyncProgress(p =>
                        {
                            if (p.TotalSteps > 0) task.MaxValue = p.TotalSteps;
                            task.Value = p.Step;
                            task.Description = Markup.Escape(Describe(p));
                        });
                        return await DebiasTrainer.TrainAsync(baseFolder, pairs, outDir, options, progress, ct, Describe(dataSpec, count, balance)).ConfigureAwait(false);
                    }).ConfigureAwait(false);
            }
            else
            {
                var last = TimeSpan.FromDays(-1);
                string lastPhase = "";
                var progress = new SyncProgress(p =>
                {
                    if (p.Phase != lastPhase || p.Elapsed - last >= TimeSpan.FromSeconds(2) || p.Step == p.TotalSteps)
                    {
                        lastPhase = p.Phase;
                        last = p.Elapsed;
                        Console.Out.WriteLine("progress " + Describe(p));
                    }
                });
                result = await DebiasTrainer.TrainAsync(baseFolder, pairs, outDir, options, progress, ct, Describe(dataSpec, count, balance)).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("Interrupted. The last checkpoint is kept; run the same command again to resume.");
            return ExitCodes.Interrupted;
        }
        WriteSummary(result);
        Console.Out.WriteLine($"Model folder: {result.OutputDir}  (biasfree run --target {result.OutputDir})");
        if (result.AdapterDir is { } a)
            Console.Out.WriteLine($"PEFT adapter: {a}  (biasfree run --target {baseFolder} --adapter {a})");
        return ExitCodes.Ok;
    }

    private static string Describe(string spec, int? count, bool balance) =>
        spec + (count is { } c ? $" --count {c.ToString(CultureInfo.InvariantCulture)}" : "") + (balance ? " --balance" : "");

    internal static string Describe(TrainingProgress p)
    {
        if (p.Phase != "train")
            return p.TotalSteps > 0 && p.Step > 0
                ? FormattableString.Invariant($"{p.Phase} step {p.Step}/{p.TotalSteps} · {p.Elapsed:hh\\:mm\\:ss}")
                : FormattableString.Invariant($"{p.Phase} · {p.Elapsed:hh\\:mm\\:ss}");
        var eta = p.Eta is { } e ? e.ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture) : "?";
        var val = p.ValidationLoss is { } v ? FormattableString.Invariant($" · val {v:0.0000}") : "";
        var detail = p.Detail is { } x ? " · " + x : "";
        return FormattableString.Invariant($"step {p.Step}/{p.TotalSteps} · loss {p.Loss:0.0000}{val}{detail} · {p.TokensPerSecond:0} tok/s · ETA {eta}");
    }

    /// <summary>Reports on the caller's thread (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
    internal sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        private readonly Lock _gate = new();

        public void Report(TrainingProgress value)
        {
            lock (_gate)
            {
                report(value);
            }
        }
    }

    /// <summary>The lines every training command prints when it ends: the step it resumed from (if any), then steps,
    /// time, first and final loss and the kept step. Shared by <c>train</c> and <c>diffpo train</c>.</summary>
    internal static void WriteSummary(TrainingResult result)
    {
        if (result.ResumedFromStep > 0)
            Console.Out.WriteLine($"Resumed from step {result.ResumedFromStep.ToString(CultureInfo.InvariantCulture)}.");
        Console.Out.WriteLine(FormattableString.Invariant(
            $"Trained {result.Steps} steps in {result.Elapsed:hh\\:mm\\:ss}: loss {result.FirstLoss:0.0000} → {result.FinalLoss:0.0000}; kept step {result.BestStep}{(result.BestValidationLoss is { } v ? $" (validation loss {v:0.0000})" : "")}."));
    }
}
