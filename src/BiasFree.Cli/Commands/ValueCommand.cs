using System.CommandLine;
using System.Globalization;
using BiasFree.Engine.Decoding.Ivo;
using BiasFree.Engine.DemoModel;
using BiasFree.Engine.Training;
using BiasFree.Probes;
using BiasFree.Runs;
using Spectre.Console;

namespace BiasFree.Cli.Commands;

/// <summary><c>biasfree value train</c>: IVO's value model (a thin shell over <see cref="ValueTrainer"/>).</summary>
internal static class ValueCommand
{
    /// <summary>Default suite seed of the training prompts: outside the demo model's evaluation seeds (0–9) and steer fit's 11.</summary>
    public const int DefaultSuiteSeed = 13;

    public static Command Build()
    {
        var cmd = new Command("value", "IVO (iterative value function optimization): train the value model for `run --method ivo|ivo-block --value-model DIR`.");
        cmd.Add(BuildTrain());
        cmd.Add(BuildEval());
        return cmd;
    }

    private static Command BuildTrain()
    {
        var d = new ValueTrainingOptions();
        var model = new Option<string?>("--model") { Description = "The model IVO will guide (rollouts are sampled from it): a Hugging Face model folder. Default: the demo model." };
        var valueBase = new Option<string?>("--value-base") { Description = "Base of the value model (LoRA + a scalar head on it; same tokenizer). Default: --model." };
        var output = new Option<string>("--out", "-o") { Description = "Folder of the value model (rerun the same command to resume after a crash).", Required = true };
        var suite = new Option<string>("--suite") { Description = "BBQ-style suite of the training prompts (bbq, or bbq-jsonl:PATH / bbq-json:PATH).", DefaultValueFactory = _ => "bbq" };
        var suiteSeed = new Option<int>("--suite-seed") { Description = "Seed of the suite instance the prompts come from; keep it apart from the seeds you evaluate with.", DefaultValueFactory = _ => DefaultSuiteSeed };
        var prompts = new Option<int>("--prompts") { Description = "Training prompts (a seeded sample of the suite, both context conditions).", DefaultValueFactory = _ => 96 };
        var rollouts = new Option<int>("--rollouts") { Description = "Rollouts per prompt and round (Monte Carlo samples).", DefaultValueFactory = _ => d.RolloutsPerPrompt };
        var iterations = new Option<int>("--iterations") { Description = "On-policy refits after the first fit (rollouts from the value-guided policy, refit on all).", DefaultValueFactory = _ => d.Iterations };
        var fitSteps = new Option<int>("--fit-steps") { Description = "MSE steps per round.", DefaultValueFactory = _ => d.FitSteps };
        var batch = new Option<int>("--batch-size") { Description = "Rollouts per fit step.", DefaultValueFactory = _ => d.BatchSize };
        var lr = new Option<double>("--learning-rate") { Description = "AdamW learning rate of the LoRA matrices and the head.", DefaultValueFactory = _ => d.LearningRate };
        var rank = new Option<int>("--lora-rank") { Description = "LoRA rank of the value model.", DefaultValueFactory = _ => d.LoraRank };
        var beta = new Option<double>("--beta") { Description = "β of the guided rollouts (tokenwise IVO).", DefaultValueFactory = _ => d.Guide.Beta };
        var candidates = new Option<int>("--candidates") { Description = "k: top-k candidates scored per step in the guided rollouts.", DefaultValueFactory = _ => d.Guide.Candidates };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Length limit of a rollout.", DefaultValueFactory = _ => d.MaxNewTokens };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Checkpoint every N fit steps (and after each round's rollouts).", DefaultValueFactory = _ => d.CheckpointEvery };
        var seed = new Option<long>("--seed") { Description = "Seed of the prompt sample, the rollouts, the fit batches and the LoRA init.", DefaultValueFactory = _ => d.Seed };
        var threads = new Option<int?>("--threads") { Description = "Torch CPU threads (default: torch's)." };
        var cmd = new Command("train", "Sample rollouts, score them with the rule judge (bias-free / correct), fit V by MSE to Monte Carlo targets, and refit on-policy; save the value model.")
        {
            model, valueBase, output, suite, suiteSeed, prompts, rollouts, iterations, fitSteps, batch, lr, rank, beta, candidates, maxTokens, checkpointEvery, seed, threads,
        };
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(async () =>
        {
            string folder = pr.GetValue(model) ?? DemoModel.Find() ?? throw new UserErrorException("no demo model found; pass --model FOLDER.");
            int count = pr.GetValue(prompts);
            if (count < 1) throw new UserErrorException("--prompts must be at least 1.");
            int sSeed = pr.GetValue(suiteSeed);
            string suiteSpec = pr.GetValue(suite)!;
            var all = SuiteRegistry.Resolve(suiteSpec, new SuiteOptions(Seed: sSeed)).Load()
                .Where(p => p.Scenario == Scenario.MultipleChoice && p.UserTurns.Count > 0).ToList();
            if (all.Count == 0) throw new UserErrorException($"--suite {suiteSpec}: no multiple-choice items.");
            var items = StableRandom.For(sSeed, "ivo-value/order").Shuffle(all).Take(count).ToList();
            var options = d with
            {
                RolloutsPerPrompt = pr.GetValue(rollouts),
                Iterations = pr.GetValue(iterations),
                FitSteps = pr.GetValue(fitSteps),
                BatchSize = pr.GetValue(batch),
                LearningRate = pr.GetValue(lr),
                LoraRank = pr.GetValue(rank),
                LoraAlpha = 2.0 * pr.GetValue(rank),
                MaxNewTokens = pr.GetValue(maxTokens),
                CheckpointEvery = pr.GetValue(checkpointEvery),
                Guide = d.Guide with { Beta = pr.GetValue(beta), Candidates = pr.GetValue(candidates) },
                Seed = pr.GetValue(seed),
                Threads = pr.GetValue(threads),
                SystemPrompt = EvaluationRunner.MultipleChoiceSystemPrompt,
            };
            Console.Out.WriteLine(FormattableString.Invariant(
                $"Training an IVO value model for {new DirectoryInfo(folder).Name}: {items.Count} prompts from {suiteSpec} (suite seed {sSeed}), {options.RolloutsPerPrompt} rollouts each, {options.Iterations} on-policy refit(s)"));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var last = TimeSpan.FromDays(-1);
            var progress = new SyncProgress(p =>
            {
                if (p.Phase == "resume")
                {
                    Console.Out.WriteLine($"Resumed from checkpoint: {p.Detail}");
                    return;
                }
                if (clock.Elapsed - last >= TimeSpan.FromSeconds(5) || p.Step == p.TotalSteps)
                {
                    last = clock.Elapsed;
                    Console.Out.WriteLine("progress " + Describe(p));
                }
            });
            var result = await ValueTrainer.TrainAsync(folder, items, pr.GetValue(output)!, options, pr.GetValue(valueBase), progress, ct).ConfigureAwait(false);
            var table = new Table().AddColumns("round", "policy", "rollouts", "mean reward", "ambiguous bias-free", "disamb. correct", "fit MSE");
            static string F(double? v) => v is { } x ? x.ToString("0.000", CultureInfo.InvariantCulture) : "-";
            foreach (var r in result.Rounds)
                table.AddRow(r.Round.ToString(CultureInfo.InvariantCulture), Markup.Escape(r.Policy), r.Rollouts.ToString(CultureInfo.InvariantCulture),
                    F(r.MeanReward), F(r.AmbiguousBiasFree), F(r.DisambiguatedAccuracy), F(r.FitLoss));
            AnsiConsole.Write(table);
            Console.Out.WriteLine($"Saved to {result.OutputDir} (config.json, model.safetensors, {ScoreModel.HeadFile}, {ValueTrainer.RecordFile}); {result.Elapsed.TotalSeconds:0} s.");
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    private static Command BuildEval()
    {
        var d = new IvoRoundEvaluationOptions();
        var valueModel = new Option<string>("--value-model") { Description = "Folder written by `value train` (its rounds/V{r} folders are evaluated).", Required = true };
        var model = new Option<string?>("--model") { Description = "The model IVO guides (the one the value model was trained for). Default: the demo model." };
        var suite = new Option<string>("--suite") { Description = "BBQ-style suite of the held-out probes.", DefaultValueFactory = _ => "bbq" };
        var seed = new Option<int>("--seed") { Description = "Suite seed of the held-out probes (keep it apart from the training's --suite-seed) and of the sampling.", DefaultValueFactory = _ => 7 };
        var limit = new Option<int>("--limit") { Description = "Held-out probes (the stratified sample `run --seed S --limit N` takes).", DefaultValueFactory = _ => 400 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Length limit of an answer.", DefaultValueFactory = _ => d.MaxNewTokens };
        var beta = new Option<double?>("--beta") { Description = "β of the guided decoding (default: the training's)." };
        var candidates = new Option<int?>("--candidates") { Description = "k of the guided decoding (default: the training's)." };
        var threads = new Option<int?>("--threads") { Description = "Torch CPU threads (default: torch's)." };
        var cmd = new Command("eval", "IVO's reward per iteration on held-out probes: the base policy and the policy guided by each round's value model, with 95% intervals.")
        {
            valueModel, model, suite, seed, limit, maxTokens, beta, candidates, threads,
        };
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(async () =>
        {
            string folder = pr.GetValue(model) ?? DemoModel.Find() ?? throw new UserErrorException("no demo model found; pass --model FOLDER.");
            string valueDir = pr.GetValue(valueModel)!;
            var rounds = ValueTrainer.RoundModels(valueDir);
            if (rounds.Count == 0)
                throw new UserErrorException($"{valueDir} holds no round models ({ValueTrainer.RoundsDir}/V0, ...): train it with this version of `value train`.");
            int n = pr.GetValue(limit);
            if (n < 1) throw new UserErrorException("--limit must be at least 1.");
            int sSeed = pr.GetValue(seed);
            var guide = TrainedGuide(valueDir) ?? d.Guide;
            var options = d with
            {
                Guide = guide with { Beta = pr.GetValue(beta) ?? guide.Beta, Candidates = pr.GetValue(candidates) ?? guide.Candidates },
                MaxNewTokens = pr.GetValue(maxTokens),
                Seed = sSeed,
                Threads = pr.GetValue(threads),
                SystemPrompt = EvaluationRunner.MultipleChoiceSystemPrompt,
            };
            string suiteSpec = pr.GetValue(suite)!;
            var probes = ProbeSampling.Stratified(SuiteRegistry.Resolve(suiteSpec, new SuiteOptions(Seed: sSeed)).Load()
                .Where(p => p.Scenario == Scenario.MultipleChoice && p.UserTurns.Count > 0).ToList(), n, sSeed);
            Console.Out.WriteLine(FormattableString.Invariant(
                $"IVO per round on {probes.Count} held-out probes of {suiteSpec} (suite seed {sSeed}; {probes.Count(p => p.Context == ContextCondition.Disambiguated)} disambiguated), tokenwise β {options.Guide.Beta}, k {options.Guide.Candidates}, temperature {options.Temperature}, at most {options.MaxNewTokens} tokens, rule judge"));
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var last = TimeSpan.Zero;
            var rows = await Task.Run(() => IvoRoundEvaluation.Evaluate(folder, rounds, probes, options, (row, done, total) =>
            {
                if (clock.Elapsed - last < TimeSpan.FromSeconds(10) && done < total) return;
                last = clock.Elapsed;
                Console.Out.WriteLine(FormattableString.Invariant($"progress {row} {done}/{total} · {clock.Elapsed:hh\\:mm\\:ss}"));
            }, ct), ct).ConfigureAwait(false);
            Console.Out.WriteLine("| policy | mean reward | ambiguous BFS % | disamb. accuracy % | disamb. unknown % | not eligible % | tokens per answer |");
            Console.Out.WriteLine("|---|---|---|---|---|---|---|");
            foreach (var r in rows)
                Console.Out.WriteLine(FormattableString.Invariant(
                    $"| {r.Policy} | {r.MeanReward:0.000} {Interval(r.RewardInterval, 1, "0.000")} | {Percent(r.Scores.BfsAmbiguous)} | {Percent(r.Scores.AccuracyDisambiguated)} | {Percent(r.Scores.UnknownDisambiguated)} | {100.0 * r.Scores.Ineligible / r.Scores.Responses:0.00} | {r.TokensPerAnswer:0.00} |"));
            Console.Out.WriteLine(FormattableString.Invariant($"Mean reward: IvoReward per probe, 95% percentile bootstrap over probes; proportions: the report's intervals. {clock.Elapsed.TotalSeconds:0} s."));
            return ExitCodes.Ok;
        }));
        return cmd;
    }

    /// <summary>β and k the value model was trained with (its value.json), so the evaluation decodes as the training's guided rounds did.</summary>
    internal static IvoSettings? TrainedGuide(string valueDir)
    {
        var file = Path.Combine(valueDir, ValueTrainer.RecordFile);
        if (!File.Exists(file)) return null;
        var guide = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(file))?["settings"]?["Guide"];
        return guide is null ? null : InitialisedJson.Read(guide.ToJsonString(), CliJson.Default.IvoSettings, new IvoSettings());
    }

    private static string Percent(BiasFree.Scoring.Proportion? p) =>
        p?.Value is { } v ? FormattableString.Invariant($"{100 * v:0.00} {Interval(p.Interval, 100, "0.00")}") : "–";

    private static string Interval(BiasFree.Scoring.ConfidenceInterval? ci, double scale, string format) =>
        ci is null ? "" : "[" + (scale * ci.Low).ToString(format, CultureInfo.InvariantCulture) + ", " + (scale * ci.High).ToString(format, CultureInfo.InvariantCulture) + "]";

    private static string Describe(TrainingProgress p) => p.Loss is double l && !double.IsNaN(l)
        ? FormattableString.Invariant($"{p.Phase} step {p.Step}/{p.TotalSteps} · MSE {l:0.0000}{(p.Detail is { } x ? " · " + x : "")} · {p.Elapsed:hh\\:mm\\:ss}")
        : FormattableString.Invariant($"{p.Phase} {p.Step}/{p.TotalSteps} · {p.Elapsed:hh\\:mm\\:ss}");

    /// <summary>Reports on the caller's thread, in order.</summary>
    private sealed class SyncProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        private readonly Lock _gate = new();

        public void Report(TrainingProgress value)
        {
            lock (_gate) report(value);
        }
    }
}
