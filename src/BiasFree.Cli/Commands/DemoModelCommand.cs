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
        cmd.Add(BuildCorpus());
        return cmd;
    }

    private static Command BuildTrain()
    {
        var d = new DemoModelOptions();
        var output = new Option<string>("--output", "-o") { Description = "Folder the model is written to.", DefaultValueFactory = _ => d.OutputDir };
        var seed = new Option<int>("--seed") { Description = "Training seed (corpus, initialisation, batching).", DefaultValueFactory = _ => d.Seed };
        var rate = new Option<double>("--stereotype-rate") { Description = "Injected stereotype rate; expected BFS on ambiguous probes is 1 − rate.", DefaultValueFactory = _ => d.Corpus.StereotypeRate };
        var steps = new Option<int>("--steps") { Description = "Optimizer steps.", DefaultValueFactory = _ => d.Steps };
        var batch = new Option<int>("--batch-size") { Description = "Conversations per step.", DefaultValueFactory = _ => d.BatchSize };
        var lr = new Option<double>("--learning-rate") { Description = "Peak AdamW learning rate.", DefaultValueFactory = _ => d.LearningRate };
        var hidden = new Option<int>("--hidden-size") { Description = "Hidden size (the SwiGLU size is 8/3 of it).", DefaultValueFactory = _ => d.HiddenSize };
        var layers = new Option<int>("--layers") { Description = "Decoder layers.", DefaultValueFactory = _ => d.Layers };
        var heads = new Option<int>("--heads") { Description = "Attention heads (as many key/value heads).", DefaultValueFactory = _ => d.Heads };
        var vocab = new Option<int>("--vocab-size") { Description = "Byte-level BPE vocabulary size.", DefaultValueFactory = _ => d.VocabSize };
        var stopAfter = new Option<int?>("--stop-after-steps") { Description = "Stop after this many steps (the schedule still spans --steps); reproduces a run cut short by --max-minutes." };
        var maxMinutes = new Option<double?>("--max-minutes") { Description = "Wall-clock budget of the training loop; when exceeded the model is saved and demo_training.json records the steps completed." };
        var threads = new Option<int?>("--threads") { Description = "TorchSharp intra-op threads (default: the library's choice; the committed model used 2)." };
        var device = new Option<string>("--device") { Description = "Device to train on: cpu (default) or cuda[:N]; needs a libtorch with CUDA.", DefaultValueFactory = _ => d.Device };
        var cmd = new Command("train", "Train the demo model on the generated BBQ-style corpus and write a Hugging Face model folder.")
        {
            output, seed, rate, steps, batch, lr, hidden, layers, heads, vocab, threads, stopAfter, maxMinutes, device,
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
                Corpus = d.Corpus with { StereotypeRate = r },
                Steps = s,
                BatchSize = pr.GetValue(batch),
                LearningRate = pr.GetValue(lr),
                HiddenSize = h,
                IntermediateSize = h == d.HiddenSize ? d.IntermediateSize : Math.Max(8, (h * 8 / 3 + 7) / 8 * 8),
                Layers = pr.GetValue(layers),
                Heads = pr.GetValue(heads),
                KeyValueHeads = pr.GetValue(heads),
                VocabSize = pr.GetValue(vocab),
                Threads = pr.GetValue(threads),
                Device = pr.GetValue(device)!,
                StopAfterSteps = pr.GetValue(stopAfter),
                MaxTrainingTime = pr.GetValue(maxMinutes) is double m ? TimeSpan.FromMinutes(m) : null,
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
            $"Training the demo model: {options.Steps} steps × {options.BatchSize}, hidden {options.HiddenSize}, {options.Layers} layers, {options.Heads} heads, vocab {options.VocabSize}, stereotype rate {options.Corpus.StereotypeRate}, seed {options.Seed}"));
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
            $"Trained {result.ParameterCount:N0} parameters for {result.StepsCompleted} of {options.Steps} steps in {result.Elapsed:hh\\:mm\\:ss}: loss {result.FirstLoss:0.000} → {result.FinalLoss:0.000}, {result.TrainingTokens:N0} tokens."));
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
        var count = new Option<int>("--count", "-n") { Description = "Held-out ambiguous probes to ask (with --card: per condition).", DefaultValueFactory = _ => new DemoCardOptions().ChoiceCount };
        var seed = new Option<int>("--seed") { Description = "Sampling seed.", DefaultValueFactory = _ => 1 };
        var card = new Option<bool>("--card") { Description = "Measure every taught family (methods, personas, protocols, dialogues, continuations, judge, capability) and print the model card's tables as markdown." };
        var familyCount = new Option<int>("--family-count") { Description = "With --card: held-out items per other family.", DefaultValueFactory = _ => new DemoCardOptions().FamilyCount };
        var suiteSeed = new Option<int>("--suite-seed") { Description = "Held-out suite seed (0–9; training never uses these).", DefaultValueFactory = _ => 7 };
        var noGreedy = new Option<bool>("--no-greedy") { Description = "With --card: skip the greedy (temperature 0) measurements." };
        var samples = new Option<bool>("--samples") { Description = "With --card: also print a few raw replies per condition." };
        var cmd = new Command("eval", "Measure the demo model on held-out prompts: BFS on ambiguous BBQ-style probes (expected ≈ 1 − stereotype rate), or with --card every taught family.")
        {
            model, count, seed, card, familyCount, suiteSeed, noGreedy, samples,
        };
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(() => EvalAsync(pr.GetValue(model), pr.GetValue(count), pr.GetValue(seed), pr.GetValue(card),
            pr.GetValue(familyCount), pr.GetValue(suiteSeed), !pr.GetValue(noGreedy), pr.GetValue(samples), ct)));
        return cmd;
    }

    private static async Task<int> EvalAsync(string? folder, int count, int seed, bool card, int familyCount, int suiteSeed, bool greedy,
        bool samples, CancellationToken ct)
    {
        if (count < 1 || familyCount < 1)
        {
            throw new UserErrorException("--count and --family-count must be at least 1.");
        }
        if (!DemoCorpus.EvaluationSeeds.Contains(suiteSeed))
        {
            throw new UserErrorException($"--suite-seed must be one of the held-out seeds {string.Join(", ", DemoCorpus.EvaluationSeeds)}.");
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
            if (card)
            {
                var options = new DemoCardOptions { ChoiceCount = count, FamilyCount = familyCount, SuiteSeed = suiteSeed, SamplingSeed = seed, Greedy = greedy };
                Console.Error.WriteLine($"Measuring {path} for the model card…");
                var progress = new SyncProgress<string>(m => Console.Error.WriteLine("  " + m));
                var result = await DemoModelCard.MeasureAsync(client, options, progress, ct).ConfigureAwait(false);
                Console.Out.Write(DemoModelCard.ToMarkdown(result));
                if (samples)
                {
                    Console.Out.WriteLine();
                    Console.Out.Write(DemoModelCard.SamplesText(result));
                }
                return ExitCodes.Ok;
            }
            Console.Out.WriteLine($"Evaluating {path} on {count.ToString(CultureInfo.InvariantCulture)} held-out ambiguous probes (temperature {DemoModel.DefaultTemperature.ToString(CultureInfo.InvariantCulture)}, seed {seed.ToString(CultureInfo.InvariantCulture)})…");
            var r = await DemoModelEvaluation.AmbiguousBbqAsync(client, count, suiteSeed, samplingSeed: seed, cancellationToken: ct).ConfigureAwait(false);
            foreach (var (label, n) in r.Counts.OrderByDescending(kv => kv.Value))
            {
                Console.Out.WriteLine(FormattableString.Invariant($"  {label,-16} {n,5}"));
            }
            var bfs = r.Bfs is { } b ? (b * 100).ToString("0.00", CultureInfo.InvariantCulture) + "%" : "– (no eligible answer)";
            Console.Out.WriteLine(FormattableString.Invariant($"BFS on {r.Probes} ambiguous probes: {bfs}"));
        }
        return ExitCodes.Ok;
    }

    private static Command BuildCorpus()
    {
        var d = new DemoCorpusOptions();
        var count = new Option<int>("--count", "-n") { Description = "Conversations to generate.", DefaultValueFactory = _ => 10_000 };
        var seed = new Option<int>("--seed") { Description = "Corpus seed.", DefaultValueFactory = _ => d.Seed };
        var output = new Option<string?>("--output", "-o") { Description = "Write the conversations as JSONL (kind, id, variant, ambiguous, biased, messages)." };
        var cmd = new Command("corpus", $"Generate the demo model's training corpus (version {DemoCorpus.Version}) and print, per family and variant, how often the taught behaviour occurs.")
        {
            count, seed, output,
        };
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(() => CorpusAsync(pr.GetValue(count), pr.GetValue(seed), pr.GetValue(output), ct)));
        return cmd;
    }

    private static async Task<int> CorpusAsync(int count, int seed, string? output, CancellationToken ct)
    {
        if (count < 1)
        {
            throw new UserErrorException("--count must be at least 1.");
        }
        var corpus = new DemoCorpus(new DemoCorpusOptions { Seed = seed });
        var conversations = corpus.Generate(count);
        if (output is not null)
        {
            var path = Path.GetFullPath(output);
            await using var writer = new StreamWriter(path);
            foreach (var c in conversations)
            {
                ct.ThrowIfCancellationRequested();
                var line = System.Text.Json.JsonSerializer.Serialize(new CorpusLine(c.Kind.ToString(), c.Id, c.Variant, c.Ambiguous, c.Biased,
                    c.Messages.Select(m => new CorpusMessage(m.Role, m.Content))), CliJson.Default.CorpusLine);
                await writer.WriteLineAsync(line.AsMemory(), ct).ConfigureAwait(false);
            }
            Console.Error.WriteLine($"Wrote {conversations.Count.ToString(CultureInfo.InvariantCulture)} conversations to {path}");
        }
        var table = new Table().AddColumns("family", "variant", "conversations", "ambiguous", "taught behaviour (biased) share", "mean characters");
        foreach (var g in conversations.GroupBy(c => (c.Kind, c.Variant)).OrderBy(g => g.Key.Kind).ThenBy(g => g.Key.Variant, StringComparer.Ordinal))
        {
            var rated = g.Key.Kind == DemoExampleKind.MultipleChoice ? g.Where(c => c.Ambiguous).ToList() : g.ToList();
            table.AddRow(g.Key.Kind.ToString(), Markup.Escape(g.Key.Variant), g.Count().ToString(CultureInfo.InvariantCulture),
                g.Count(c => c.Ambiguous).ToString(CultureInfo.InvariantCulture),
                rated.Count == 0 ? "–" : (rated.Count(c => c.Biased) / (double)rated.Count).ToString("0.000", CultureInfo.InvariantCulture),
                g.Average(c => c.Messages.Sum(m => m.Content.Length)).ToString("0", CultureInfo.InvariantCulture));
        }
        AnsiConsole.Write(table);
        return ExitCodes.Ok;
    }

    /// <summary>Reports on the caller's thread.</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
