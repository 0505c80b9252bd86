using System.CommandLine;
using System.Globalization;
using BiasFree.Engine.Chat;
using BiasFree.Engine.DemoModel;
using Spectre.Console;

namespace BiasFree.Cli.Commands;

/// <summary><c>biasfree demo-model train|eval</c>: train the embedded demo model, or measure its BFS on held-out probes.</summary>
internal static class DemoModelCommand
{
    public static Command Build()
    {
        var cmd = new Command("demo-model", "Train or evaluate the embedded demo model (a tiny Llama with an injected stereotype rate).");
        cmd.Add(BuildTrain());
        cmd.Add(BuildEval());
        return cmd;
    }

    private static Command BuildTrain()
    {
        var d = new DemoModelOptions();
        var output = new Option<string>("--output", "-o") { Description = "Folder the model is written to.", DefaultValueFactory = _ => d.OutputDir };
        var seed = new Option<int>("--seed") { Description = "Training seed (corpus, initialisation, batching).", DefaultValueFactory = _ => d.Seed };
        var rate = new Option<double>("--stereotype-rate") { Description = "Injected stereotype rate; expected BFS on ambiguous probes is 1 − rate.", DefaultValueFactory = _ => d.StereotypeRate };
        var steps = new Option<int>("--steps") { Description = "Optimizer steps.", DefaultValueFactory = _ => d.Steps };
        var batch = new Option<int>("--batch-size") { Description = "Conversations per step.", DefaultValueFactory = _ => d.BatchSize };
        var lr = new Option<double>("--learning-rate") { Description = "Peak AdamW learning rate.", DefaultValueFactory = _ => d.LearningRate };
        var hidden = new Option<int>("--hidden-size") { Description = "Hidden size (the SwiGLU size is 8/3 of it).", DefaultValueFactory = _ => d.HiddenSize };
        var layers = new Option<int>("--layers") { Description = "Decoder layers.", DefaultValueFactory = _ => d.Layers };
        var heads = new Option<int>("--heads") { Description = "Attention heads (as many key/value heads).", DefaultValueFactory = _ => d.Heads };
        var vocab = new Option<int>("--vocab-size") { Description = "Byte-level BPE vocabulary size.", DefaultValueFactory = _ => d.VocabSize };
        var cmd = new Command("train", "Train the demo model on the generated BBQ-style corpus and write a Hugging Face model folder.")
        {
            output, seed, rate, steps, batch, lr, hidden, layers, heads, vocab,
        };
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(() =>
        {
            var s = pr.GetValue(steps);
            var h = pr.GetValue(hidden);
            var r = pr.GetValue(rate);
            if (r is < 0 or > 1)
            {
                throw new UserErrorException("--stereotype-rate must be between 0 and 1.");
            }
            if (s < 1 || pr.GetValue(batch) < 1 || h < 1 || pr.GetValue(layers) < 1 || pr.GetValue(heads) < 1)
            {
                throw new UserErrorException("--steps, --batch-size, --hidden-size, --layers and --heads must be at least 1.");
            }
            var options = d with
            {
                OutputDir = Path.GetFullPath(pr.GetValue(output)!),
                Seed = pr.GetValue(seed),
                StereotypeRate = r,
                Steps = s,
                BatchSize = pr.GetValue(batch),
                LearningRate = pr.GetValue(lr),
                HiddenSize = h,
                IntermediateSize = h == d.HiddenSize ? d.IntermediateSize : Math.Max(8, (h * 8 / 3 + 7) / 8 * 8),
                Layers = pr.GetValue(layers),
                Heads = pr.GetValue(heads),
                KeyValueHeads = pr.GetValue(heads),
                VocabSize = pr.GetValue(vocab),
                WarmupSteps = Math.Min(d.WarmupSteps, Math.Max(1, s / 10)),
                TokenizerCorpusSize = Math.Min(d.TokenizerCorpusSize, Math.Max(200, s * pr.GetValue(batch))),
            };
            return TrainAsync(options, ct);
        }));
        return cmd;
    }

    private static async Task<int> TrainAsync(DemoModelOptions options, CancellationToken ct)
    {
        Console.Out.WriteLine(FormattableString.Invariant(
            $"Training the demo model: {options.Steps} steps × {options.BatchSize}, hidden {options.HiddenSize}, {options.Layers} layers, {options.Heads} heads, vocab {options.VocabSize}, stereotype rate {options.StereotypeRate}, seed {options.Seed}"));
        DemoTrainResult result;
        try
        {
            if (ProgressView.Interactive)
            {
                result = await AnsiConsole.Progress()
                    .AutoClear(false)
                    .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                    .StartAsync(async ctx =>
                    {
                        var task = ctx.AddTask("corpus", maxValue: options.Steps);
                        var progress = new SyncProgress(p =>
                        {
                            task.Value = p.Step;
                            task.Description = Markup.Escape(Describe(p));
                        });
                        return await DemoModelTrainer.TrainAsync(options, progress, ct).ConfigureAwait(false);
                    }).ConfigureAwait(false);
            }
            else
            {
                var last = TimeSpan.MinValue;
                var lastPhase = "";
                var progress = new SyncProgress(p =>
                {
                    // A line per phase, and training progress every few seconds (and at the end).
                    if (p.Phase != lastPhase || p.Elapsed - last >= TimeSpan.FromSeconds(5) || (p.Phase == "train" && p.Step == p.TotalSteps))
                    {
                        lastPhase = p.Phase;
                        last = p.Elapsed;
                        Console.Out.WriteLine(Describe(p));
                    }
                });
                result = await DemoModelTrainer.TrainAsync(options, progress, ct).ConfigureAwait(false);
            }
        }
        catch (ArgumentException ex)
        {
            throw new UserErrorException($"invalid training settings: {ex.Message}", ex);
        }
        Console.Out.WriteLine(FormattableString.Invariant(
            $"Trained {result.ParameterCount:N0} parameters in {result.Elapsed:hh\\:mm\\:ss}: loss {result.FirstLoss:0.000} → {result.FinalLoss:0.000}, {result.TrainingTokens:N0} tokens."));
        Console.Out.WriteLine($"Wrote the demo model to {result.OutputDir}");
        if (!PathsEqual(result.OutputDir, DemoModel.Find()))
        {
            Console.Out.WriteLine($"Use it with: {DemoModel.PathEnvironmentVariable}={result.OutputDir} biasfree run");
        }
        return ExitCodes.Ok;
    }

    private static bool PathsEqual(string a, string? b) =>
        b is not null && string.Equals(Path.TrimEndingDirectorySeparator(Path.GetFullPath(a)), Path.TrimEndingDirectorySeparator(Path.GetFullPath(b)), StringComparison.Ordinal);

    internal static string Describe(DemoTrainProgress p)
    {
        if (p.Phase != "train")
        {
            return FormattableString.Invariant($"{p.Phase} · {p.Elapsed:hh\\:mm\\:ss}");
        }
        var perStep = p.Step > 0 ? p.Elapsed.TotalSeconds / p.Step : 0;
        var eta = p.Step > 0 ? TimeSpan.FromSeconds(perStep * (p.TotalSteps - p.Step)).ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture) : "?";
        var loss = double.IsNaN(p.Loss) ? "–" : p.Loss.ToString("0.0000", CultureInfo.InvariantCulture);
        return FormattableString.Invariant($"step {p.Step}/{p.TotalSteps} · loss {loss} · ETA {eta}");
    }

    /// <summary>Reports on the caller's thread (Progress&lt;T&gt; would post to the thread pool, out of order).</summary>
    private sealed class SyncProgress(Action<DemoTrainProgress> report) : IProgress<DemoTrainProgress>
    {
        private readonly Lock _gate = new();

        public void Report(DemoTrainProgress value)
        {
            lock (_gate)
            {
                report(value);
            }
        }
    }

    private static Command BuildEval()
    {
        var model = new Option<string?>("--model") { Description = $"Demo model folder (default: models/demo or ${DemoModel.PathEnvironmentVariable})." };
        var count = new Option<int>("--count", "-n") { Description = "Held-out ambiguous probes to ask.", DefaultValueFactory = _ => 200 };
        var seed = new Option<int>("--seed") { Description = "Sampling seed.", DefaultValueFactory = _ => 1 };
        var cmd = new Command("eval", "Measure the demo model's BFS on held-out ambiguous BBQ-style probes (expected ≈ 1 − stereotype rate).")
        {
            model, count, seed,
        };
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(() => EvalAsync(pr.GetValue(model), pr.GetValue(count), pr.GetValue(seed), ct)));
        return cmd;
    }

    private static async Task<int> EvalAsync(string? folder, int count, int seed, CancellationToken ct)
    {
        if (count < 1)
        {
            throw new UserErrorException("--count must be at least 1.");
        }
        var path = folder is null ? DemoModel.Find() : Path.GetFullPath(folder);
        if (path is null || !DemoModel.Exists(path))
        {
            throw new UserErrorException(path is null
                ? $"no demo model found (models/demo here or next to the executable, or ${DemoModel.PathEnvironmentVariable}): train one with `biasfree demo-model train` or pass --model DIR."
                : $"no demo model at {path} (it needs config.json, model.safetensors and tokenizer.json): train one with `biasfree demo-model train`.");
        }
        EngineChatClient client;
        try
        {
            client = DemoModel.CreateChatClient(path);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new UserErrorException($"cannot load the demo model at {path}: {ex.Message}", ex);
        }
        using (client)
        {
            Console.Out.WriteLine($"Evaluating {path} on {count.ToString(CultureInfo.InvariantCulture)} held-out ambiguous probes (temperature {DemoModel.DefaultTemperature.ToString(CultureInfo.InvariantCulture)}, seed {seed.ToString(CultureInfo.InvariantCulture)})…");
            var result = await DemoModelEvaluation.AmbiguousBbqAsync(client, count, samplingSeed: seed, cancellationToken: ct).ConfigureAwait(false);
            foreach (var (label, n) in result.Counts.OrderByDescending(kv => kv.Value))
            {
                Console.Out.WriteLine(FormattableString.Invariant($"  {label,-16} {n,5}"));
            }
            var bfs = result.Bfs is { } b ? (b * 100).ToString("0.00", CultureInfo.InvariantCulture) + "%" : "– (no eligible answer)";
            Console.Out.WriteLine(FormattableString.Invariant($"BFS on {result.Probes} ambiguous probes: {bfs}"));
        }
        return ExitCodes.Ok;
    }
}
