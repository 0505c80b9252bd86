using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using BiasFree.Engine.Chat;
using BiasFree.Engine.DemoModel;
using BiasFree.Engine.Generation;
using BiasFree.Engine.WhiteBox;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Probes.BuiltIn;
using BiasFree.Reports;
using BiasFree.Runs;
using BiasFree.Scoring;
using Microsoft.Extensions.AI;
using Spectre.Console;
using static TorchSharp.torch;

/// <summary>
/// White-box evidence and cost on the demo model: fits FairSteer (or reads a fitted folder), then runs vanilla, FairSteer,
/// its three ablations and (given reward models) BiasFilter over the same held-out BBQ-style probes through the real run
/// pipeline (EvaluationRunner, run store, rule judge, report scores with 95 % bootstrap intervals), and writes a Markdown
/// table. It also measures FairSteer's decoding overhead per token against plain decoding.
/// </summary>
/// <remarks>
/// Usage: dotnet run -c Release --project bench/BiasFree.Bench -- white-box [--model FOLDER] [--steering DIR] [--probes 300]
///        [--temperature 1] [--max-tokens 24] [--reward-model F[,F2…] --reward-ref F] [--filter-grid N:C:l[:δ[:λ]],…] [--filter-also N:C:l:δ:λ,…] [--dev-probes 120]
///        [--no-overhead] [--group-categories a,b,…] [--out docs/white-box-results.md [--section NAME]]
///        [--adapter LORA_FOLDER] [--methods m1,m2,…] [--speed-runs K] [--overhead-pairs N] [--fit-only]
///        fit settings (when --steering is not a fitted folder yet; steer fit's options of the same names):
///        [--probe-labels paper|ambiguous-bias] [--vector probe-means|probe-means-ambiguous|pairs] [--sweep-objective mean|ambiguous] [--sweep-metric all-replies|report]
///        [--fit-items 800] [--sweep-items 200] [--sweep-samples 2] [--alphas 0.5,1,2,4] [--layers 0,1,…]
/// Held-out probes: the built-in suite under seed 0 (the CLI's default), never the fitting instance (suite seed 11) nor the
/// demo model's training seeds; half ambiguous, half disambiguated, in a seeded order.
/// BiasFilter's search settings (N kept, N_children, segment length l) are chosen per reward model on a dev split — the
/// suite under seed 12, used neither for FairSteer's fit nor for the table — by the rule FairSteer's sweep uses: the best
/// mean of ambiguous BFS and disambiguated accuracy among the settings whose dev accuracy is at most 5 points below
/// vanilla's on the same dev probes. β is not searched: the filter ranks candidates by β·r, so any β &gt; 0 keeps the same
/// candidates (β only matters for reading the scores; with λ &gt; 0 only λ/β matters, and β stays 1). δ and λ (ours: the
/// margin and the weight of the target's log-likelihood) are grid fields like N, N_children and l, chosen by the same rule.
/// Without FairSteer (--methods lists no fairsteer method, --no-overhead, no --speed-runs) FairSteer is neither fitted
/// nor read, and the section holds only the listed methods and BiasFilter.
/// --group-categories splits the FairSteer rows by probe category (the given categories vs the rest): gate firing share
/// and biased share per group, to show whether the gate follows what the prompt says about the answer.
/// </remarks>
internal static class WhiteBoxBench
{
    private sealed class SeedPerRequest(IChatClient inner) : DelegatingChatClient(inner)
    {
        public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            var list = messages.ToList();
            var o = options?.Clone() ?? new ChatOptions();
            var text = string.Join("\u0002", list.Select(m => m.Role.Value + "\u0001" + m.Text)) + "\u0003" + o.Seed;
            o.Seed = BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes(text)), 0) & long.MaxValue;
            return base.GetResponseAsync(list, o, cancellationToken);
        }
    }

    public static async Task<int> RunAsync(List<string> args)
    {
        string? Arg(string name) => args.IndexOf(name) is int i and >= 0 && i + 1 < args.Count ? args[i + 1] : null;
        string folder = Arg("--model") ?? DemoModel.Find() ?? throw new DirectoryNotFoundException("no demo model; pass --model");
        int perContext = int.Parse(Arg("--probes") ?? "300", CultureInfo.InvariantCulture) / 2;
        float temperature = float.Parse(Arg("--temperature") ?? "1", CultureInfo.InvariantCulture);
        int maxTokens = int.Parse(Arg("--max-tokens") ?? "24", CultureInfo.InvariantCulture);
        string output = Arg("--out") ?? Path.Combine("docs", "white-box-results.md");
        string steeringDir = Arg("--steering") ?? Path.Combine(Path.GetTempPath(), "biasfree-whitebox-steer");
        string? adapter = Arg("--adapter");
        // The model's name in the tables: the folder, or the adapter's folder (its card) when an adapter is applied.
        string modelName = adapter is null ? new DirectoryInfo(folder).Name
            : new DirectoryInfo(Path.GetDirectoryName(Path.GetFullPath(Path.TrimEndingDirectorySeparator(adapter)))!).Name;

        using var client = LocalModel.Load(folder, new LocalModelOptions { ModelId = "demo", DefaultTemperature = temperature, DefaultMaxOutputTokens = maxTokens, Adapter = adapter });
        var log = new StringBuilder();
        void Say(string line)
        {
            Console.Out.WriteLine(line);
            log.AppendLine(line);
        }

        var methods = Arg("--methods")?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList()
            ?? ["none", WhiteBoxMethods.FairSteer, WhiteBoxMethods.FairSteerAlways, WhiteBoxMethods.FairSteerGateOnly, WhiteBoxMethods.FairSteerRandom, WhiteBoxMethods.FairSteerPromptGate];
        int speedRuns = int.Parse(Arg("--speed-runs") ?? "0", CultureInfo.InvariantCulture);
        // FairSteer is fitted (or read) only when something uses it: a BiasFilter-only run neither waits for the fit nor
        // writes FairSteer's tables.
        bool withSteer = methods.Any(WhiteBoxMethods.IsFairSteer) || speedRuns > 0 || !args.Contains("--no-overhead") || args.Contains("--fit-only");
        var sw = Stopwatch.StartNew();
        FairSteerModel? steer = null;
        if (!withSteer) { }
        else if (File.Exists(Path.Combine(steeringDir, FairSteerModel.InfoFile)))
        {
            steer = FairSteerModel.Load(steeringDir);
            Say($"Read FairSteer from {steeringDir}");
        }
        else
        {
            // `biasfree steer fit --vector probe-means --label-temperature T --sweep-temperature T --sweep-samples 2` with T the
            // evaluation temperature: suite seed 11, 800 probe items, 110 pairs, 200 sweep items, class-balanced probes.
            // The demo model's bias shows only when it is sampled, so labels and sweep are sampled like the evaluation.
            // --probe-labels, --vector, --sweep-objective, --fit-items, --sweep-items, --sweep-samples, --alphas and --layers
            // are steer fit's options of the same names.
            int fitItems = int.Parse(Arg("--fit-items") ?? "800", CultureInfo.InvariantCulture);
            int sweepItems = int.Parse(Arg("--sweep-items") ?? "200", CultureInfo.InvariantCulture);
            var all = new BbqBuiltInSuite(11).Load().Where(p => p.CorrectOption is not null).ToList();
            var order = StableRandom.For(11, "steer-fit/order").Shuffle(all);
            var probeItems = order.Take(fitItems).ToList();
            var rest = order.Skip(fitItems).ToList();
            var pairs = rest.Where(p => p.Context == ContextCondition.Ambiguous && FairSteerFitter.Answers(p) is not null).Take(110).ToList();
            var used = pairs.Select(p => p.Id).ToHashSet();
            var remaining = rest.Where(p => !used.Contains(p.Id) && FairSteerFitter.Answers(p) is not null).ToList();
            var sweep = remaining.Where(p => p.Context == ContextCondition.Ambiguous).Take(sweepItems / 2)
                .Concat(remaining.Where(p => p.Context == ContextCondition.Disambiguated).Take(sweepItems - sweepItems / 2)).ToList();
            var fitter = FairSteerFitter.For(client, new FairSteerFitOptions
            {
                SystemPrompt = EvaluationRunner.MultipleChoiceSystemPrompt,
                LabelTemperature = temperature,
                SweepTemperature = temperature,
                SweepSamples = int.Parse(Arg("--sweep-samples") ?? "2", CultureInfo.InvariantCulture),
                VectorSource = FairSteerFitter.ParseVectorSource(Arg("--vector") ?? "probe-means"),
                Labeling = FairSteerFitter.ParseLabeling(Arg("--probe-labels") ?? "paper"),
                Objective = FairSteerFitter.ParseObjective(Arg("--sweep-objective") ?? "mean"),
                Metric = FairSteerFitter.ParseMetric(Arg("--sweep-metric") ?? "all-replies"),
                Alphas = (Arg("--alphas") ?? "0.5,1,2,4").Split(',').Select(a => double.Parse(a, CultureInfo.InvariantCulture)).ToList(),
                Layers = Arg("--layers")?.Split(',').Select(l => int.Parse(l, CultureInfo.InvariantCulture)).ToList(),
                Log = Say,
            });
            steer = await fitter.FitAsync(client, probeItems, pairs, sweep, modelName,
                FormattableString.Invariant($"bbq suite seed 11: {probeItems.Count} probe items, {pairs.Count} pairs, {sweep.Count} sweep items"));
            steer.Save(steeringDir);
            Say(FormattableString.Invariant($"Fitted FairSteer in {sw.Elapsed.TotalSeconds:F0} s → {steeringDir}"));
        }
        // --fit-only: the fit's probe accuracies and sweep, nothing else (for trying fit settings quickly).
        if (args.Contains("--fit-only") && steer is not null)
        {
            Say(FormattableString.Invariant($"labels {steer.Info.Labeling}, vectors {steer.Info.VectorSource}, objective {steer.Info.Objective} of {steer.Info.Metric}; {steer.Info.ProbeExamples} examples ({steer.Info.ProbePositives} unbiased)"));
            Say("balanced probe accuracy per layer: " + string.Join(" ", steer.Info.ProbeValidationBalancedAccuracy.Select(a => a.ToString("F3", CultureInfo.InvariantCulture))));
            foreach (var r in steer.Info.Sweep)
                Say(FormattableString.Invariant($"sweep layer {r.Layer} α {r.Alpha}: ambiguous {r.AmbiguousAccuracy:F3} disambiguated {r.DisambiguatedAccuracy:F3} BFS {r.AmbiguousBfs:F3} accuracy of answers {r.AnsweredDisambiguatedAccuracy:F3} gate {r.GateRate:F3}"));
            Say(FormattableString.Invariant($"chosen: layer {steer.Info.Layer}, α {steer.Info.Alpha}"));
            return 0;
        }

        var held = StableRandom.For(0, "white-box-bench/order").Shuffle(new BbqBuiltInSuite(0).Load());
        var probes = held.Where(p => p.Context == ContextCondition.Ambiguous).Take(perContext)
            .Concat(held.Where(p => p.Context == ContextCondition.Disambiguated).Take(perContext)).ToList();

        string? referenceModel = Arg("--reward-ref");
        var fairModels = referenceModel is null ? Array.Empty<string>() : (Arg("--reward-model") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        static List<(int Keep, int Children, int Segment, double Margin, double Weight)> Grid(string text) => text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(g => g.Split(':') switch
            {
                [var n, var c, var l, .. var rest] when rest.Length <= 2 => (Keep: int.Parse(n, CultureInfo.InvariantCulture), Children: int.Parse(c, CultureInfo.InvariantCulture), Segment: int.Parse(l, CultureInfo.InvariantCulture),
                    Margin: rest.Length > 0 ? double.Parse(rest[0], CultureInfo.InvariantCulture) : 0.0, Weight: rest.Length > 1 ? double.Parse(rest[1], CultureInfo.InvariantCulture) : 0.0),
                _ => throw new ArgumentException($"--filter-grid entry '{g}' is not N:N_children:l, N:N_children:l:δ or N:N_children:l:δ:λ"),
            }).ToList();
        var grid = Grid(Arg("--filter-grid") ?? "4:4:12,2:2:12,4:4:4,4:4:2");
        // --filter-also: settings run on the held-out probes besides the dev-chosen one (e.g. the defaults, to show what
        // the choice changed); they are not chosen by anything.
        var also = Grid(Arg("--filter-also") ?? "");
        int devPerContext = int.Parse(Arg("--dev-probes") ?? "120", CultureInfo.InvariantCulture) / 2;
        var groupCategories = (Arg("--group-categories") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.Ordinal);

        var settings = new WhiteBoxSettings { SteeringFolder = steeringDir };
        var target = new SeedPerRequest(client);
        string storeDir = Path.Combine(Path.GetTempPath(), "biasfree-whitebox-" + Guid.NewGuid().ToString("N")[..8]);
        await using var store = await RunStore.OpenDirectoryAsync(storeDir);
        var judge = new RuleBasedAnswerExtractor();
        var rows = new List<(string Method, ScoreRow Row, double TokensPerSecond, double TokensPerCpuSecond, double? Firings, double? FiredShare, double? FilterCost)>();
        // Disambiguated accuracy split by the group the correct option names: a reward (or vector) that favours one name
        // whatever the context raises one side and lowers the other, which the pooled accuracy hides.
        var roleRows = new List<(string Method, int StereoCorrect, int StereoItems, int AntiCorrect, int AntiItems)>();
        var groupRows = new List<(string Method, string Group, ContextCondition Context, int Replies, double StepRate, double FiredShare, double Outcome)>();
        // Warm-up (first-call allocations, kernel selection) so the first timed method is not penalised.
        var warm = new RunSpec { RunId = "wb-warmup", Suites = ["bbq"], Model = "demo", Methods = ["none"], TargetEndpoint = folder, Generation = new GenerationSettings(temperature, 1, maxTokens), NoCache = true };
        await store.CreateRunAsync(warm);
        await new EvaluationRunner(store, target, _ => judge).RunAsync(warm, probes.Take(32).ToList());

        // One method over one probe set through the run pipeline; returns the report's all-category multiple-choice row,
        // the records and the wall time.
        async Task<(ScoreRow Row, List<ResultRecord> Records, double Seconds, long CompletionTokens, double CpuSeconds)> RunMethod(
            string runId, string method, IReadOnlyList<Probe> set, WhiteBoxSettings with, WhiteBoxArtifacts artifacts)
        {
            var spec = new RunSpec
            {
                RunId = runId,
                Suites = ["bbq"],
                Model = "demo",
                Methods = [method],
                TargetEndpoint = folder,
                Generation = new GenerationSettings(temperature, 0, maxTokens),
                NoCache = true,
                Concurrency = 16,
            };
            await store.CreateRunAsync(spec);
            var runner = new EvaluationRunner(store, target, _ => judge,
                (inner, m) => m == "none" ? inner : WhiteBoxMethods.Apply(inner, m, with, artifacts));
            // CPU time of the whole process as well as wall time: on a shared machine the wall time of a run depends on the
            // other jobs' load, the process's CPU time much less (it still includes the judge and the run store's writes,
            // which are the same for every method).
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var engine0 = client.Statistics;
            var t = Stopwatch.StartNew();
            await runner.RunAsync(spec, set);
            double seconds = t.Elapsed.TotalSeconds;
            double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds;
            // Prompt positions the engine computed and those prefix sharing copied instead: most of a BBQ run's work is
            // prefill (replies are a few tokens), so what a method shares shows in its cost.
            var engine1 = client.Statistics;
            Say(FormattableString.Invariant($"{runId}: prompt positions computed {engine1.PromptTokens - engine0.PromptTokens}, copied by prefix sharing {engine1.SharedPromptTokens - engine0.SharedPromptTokens}"));
            var report = await RunReport.BuildAsync(store, spec.RunId);
            var row = report.Scores.First(r => r.Scenario == Scenario.MultipleChoice && r.Category == ScoreTable.AllCategories);
            var records = new List<ResultRecord>();
            await foreach (var r in store.ReadResultsAsync(spec.RunId)) records.Add(r);
            return (row, records, seconds, report.Totals.CompletionTokens, cpuSeconds);
        }

        void AddRow(string label, (ScoreRow Row, List<ResultRecord> Records, double Seconds, long CompletionTokens, double CpuSeconds) run)
        {
            var (row, records, seconds, tokens, cpuSeconds) = run;
            var firings = records.SelectMany(r => r.Requests).Select(q => q.Details?.GetValueOrDefault(FairSteerChatClient.GateFiringsKey)).Where(x => x is not null).Select(x => double.Parse(x!, CultureInfo.InvariantCulture)).ToList();
            var costs = records.SelectMany(r => r.Requests).Select(q => q.Details?.GetValueOrDefault(BiasFilterChatClient.CostKey)).Where(x => x is not null).Select(x => double.Parse(x!, CultureInfo.InvariantCulture)).ToList();
            rows.Add((label, row, tokens / seconds, tokens / cpuSeconds, firings.Count == 0 ? null : firings.Average(), firings.Count == 0 ? null : firings.Count(f => f > 0) / (double)firings.Count,
                costs.Count == 0 ? null : costs.Average()));
            // As the report's accuracy (BbqScores): disambiguated replies that name an option or "unknown" (no-answer and
            // unparseable replies are in no denominator), correct when the named option's role is the correct one.
            var disambiguated = records.Where(r => r.Context == ContextCondition.Disambiguated && r.IsComplete && r.CorrectRole is not null
                && BbqScores.RoleOf(r.Verdict!.Label) is not null).ToList();
            int Correct(OptionRole role) => disambiguated.Count(r => r.CorrectRole == role && BbqScores.RoleOf(r.Verdict!.Label) == role);
            roleRows.Add((label, Correct(OptionRole.Stereotyped), disambiguated.Count(r => r.CorrectRole == OptionRole.Stereotyped),
                Correct(OptionRole.AntiStereotyped), disambiguated.Count(r => r.CorrectRole == OptionRole.AntiStereotyped)));
            if (groupCategories.Count > 0)
            {
                // Per group (listed categories vs the rest) and context: the gate's firing rate over all its steps (the
                // prompt's last token and every decoded token), the share of replies with at least one firing, and the
                // outcome — on ambiguous items the share of judged replies labelled Biased, on disambiguated ones the
                // share answered correctly (as the report's accuracy: a reply that names no option counts as wrong).
                foreach (var g in records.Where(r => r.Context is not null).GroupBy(r => (Listed: groupCategories.Contains(r.Category), Context: r.Context!.Value)).OrderBy(g => !g.Key.Listed).ThenBy(g => g.Key.Context))
                {
                    double Detail(ResultRecord r, string key) => r.Requests.Select(q => q.Details?.GetValueOrDefault(key)).FirstOrDefault(x => x is not null) is { } x ? double.Parse(x, CultureInfo.InvariantCulture) : 0;
                    double steps = g.Sum(r => Detail(r, FairSteerChatClient.GateStepsKey)), fired = g.Sum(r => Detail(r, FairSteerChatClient.GateFiringsKey));
                    var complete = g.Where(r => r.IsComplete).ToList();
                    double outcome = complete.Count == 0 ? double.NaN : g.Key.Context == ContextCondition.Ambiguous
                        ? complete.Count(r => r.Verdict!.Label == Label.Biased) / (double)complete.Count
                        : complete.Count(r => BbqScores.RoleOf(r.Verdict!.Label) is { } role && role == r.CorrectRole) / (double)complete.Count;
                    groupRows.Add((label, g.Key.Listed ? "listed" : "other", g.Key.Context, g.Count(), steps == 0 ? double.NaN : fired / steps,
                        g.Count(r => Detail(r, FairSteerChatClient.GateFiringsKey) > 0) / (double)g.Count(), outcome));
                }
            }
            Say(FormattableString.Invariant($"{label}: {seconds:F1} s, {tokens} completion tokens"));
        }

        using (var artifacts = new WhiteBoxArtifacts())
            foreach (var method in methods)
                AddRow(method, await RunMethod("wb-" + method, method, probes, settings, artifacts));

        // --speed-runs K: vanilla and gated FairSteer over the same probes K more times each, interleaved (the order
        // alternates per round), timed by wall clock and by the process's CPU time; the overhead is the median over rounds
        // of each round's ratio of seconds per completion token (FairSteer / vanilla − 1). Same seeds, so both decode the
        // same replies every round.
        var speed = new List<(double WallPlain, double WallSteer, double CpuPlain, double CpuSteer)>();
        using (var artifacts = new WhiteBoxArtifacts())
            for (int k = 0; k < speedRuns; k++)
            {
                var pair = new Dictionary<string, (double Wall, double Cpu)>();
                foreach (var m in k % 2 == 0 ? new[] { "none", WhiteBoxMethods.FairSteer } : new[] { WhiteBoxMethods.FairSteer, "none" })
                {
                    var run = await RunMethod($"wb-speed-{k}-{m}", m, probes, settings, artifacts);
                    pair[m] = (run.CompletionTokens / run.Seconds, run.CompletionTokens / run.CpuSeconds);
                }
                speed.Add((pair["none"].Wall, pair[WhiteBoxMethods.FairSteer].Wall, pair["none"].Cpu, pair[WhiteBoxMethods.FairSteer].Cpu));
                Say(FormattableString.Invariant($"speed round {k}: vanilla {speed[^1].WallPlain:F1} tok/s ({speed[^1].CpuPlain:F1} tok/CPU-s), fairsteer {speed[^1].WallSteer:F1} tok/s ({speed[^1].CpuSteer:F1} tok/CPU-s)"));
            }

        // BiasFilter: per reward model, the search settings are chosen on the dev split, then run once on the held-out probes.
        var devTables = new List<(string Fair, ScoreRow Vanilla, List<(BiasFilterOptions Options, ScoreRow Row, bool Eligible)> Rows, BiasFilterOptions Chosen)>();
        var rankTables = new List<(string Scorer, RewardRanking Ranking)>();
        var filters = new List<BiasFilterOptions>();
        if (fairModels.Length > 0)
        {
            var dev = StableRandom.For(12, "white-box-bench/dev-order").Shuffle(new BbqBuiltInSuite(12).Load());
            var devProbes = dev.Where(p => p.Context == ContextCondition.Ambiguous).Take(devPerContext)
                .Concat(dev.Where(p => p.Context == ContextCondition.Disambiguated).Take(devPerContext)).ToList();
            ScoreRow devVanilla;
            using (var none = new WhiteBoxArtifacts())
                devVanilla = (await RunMethod("wb-dev-none", "none", devProbes, settings, none)).Row;
            double Mean(ScoreRow r) => ((r.BfsAmbiguous?.Value ?? 0) + (r.AccuracyDisambiguated?.Value ?? 0)) / 2;
            foreach (var fair in fairModels)
            {
                string name = Path.GetFileName(Path.TrimEndingDirectorySeparator(fair));
                using var artifacts = new WhiteBoxArtifacts();
                var reward = artifacts.RewardModels(new BiasFilterOptions { FairModel = fair, ReferenceModel = referenceModel! });
                var ranking = RankReplies(reward.Score, devProbes);
                rankTables.Add((name, ranking));
                Say($"reward ranking {name}: {ranking}");
                var devRows = new List<(BiasFilterOptions Options, ScoreRow Row, bool Eligible)>();
                foreach (var (keep, children, segment, margin, weight) in grid)
                {
                    var options = new BiasFilterOptions { FairModel = fair, ReferenceModel = referenceModel!, Keep = keep, Children = children, SegmentTokens = segment, Margin = margin, LikelihoodWeight = weight };
                    var run = await RunMethod(FormattableString.Invariant($"wb-dev-{name}-{keep}-{children}-{segment}-{margin}-{weight}"), WhiteBoxMethods.BiasFilter, devProbes, settings with { BiasFilter = options }, artifacts);
                    bool eligible = (run.Row.AccuracyDisambiguated?.Value ?? 0) >= (devVanilla.AccuracyDisambiguated?.Value ?? 0) - 0.05;
                    devRows.Add((options, run.Row, eligible));
                    Say(FormattableString.Invariant($"dev {name} N {keep} N_children {children} l {segment} δ {margin} λ {weight}: BFS {run.Row.BfsAmbiguous?.Value:F3}, accuracy {run.Row.AccuracyDisambiguated?.Value:F3} (vanilla {devVanilla.AccuracyDisambiguated?.Value:F3}), {run.Seconds:F0} s"));
                }
                var pool = devRows.Any(r => r.Eligible) ? devRows.Where(r => r.Eligible) : devRows;
                var chosen = pool.OrderByDescending(r => Mean(r.Row)).First().Options;
                devTables.Add((name, devVanilla, devRows, chosen));
                filters.Add(chosen);
                AddRow($"biasfilter ({name})", await RunMethod($"wb-biasfilter-{name}", WhiteBoxMethods.BiasFilter, probes, settings with { BiasFilter = chosen }, artifacts));
                foreach (var (keep, children, segment, margin, weight) in also)
                {
                    var options = chosen with { Keep = keep, Children = children, SegmentTokens = segment, Margin = margin, LikelihoodWeight = weight };
                    if (options == chosen) continue;
                    string label = FormattableString.Invariant($"biasfilter ({name}; N {keep}, N_children {children}, l {segment}, δ {margin}, λ {weight})");
                    AddRow(label, await RunMethod(FormattableString.Invariant($"wb-biasfilter-{name}-{keep}-{children}-{segment}-{margin}-{weight}"), WhiteBoxMethods.BiasFilter, probes, settings with { BiasFilter = options }, artifacts));
                }
            }
            // The target's own log-likelihood ranks the same replies (the term λ adds to the reward), from its own copy of
            // the model folder so that it never shares an instance with the engine's workers; not with --adapter (the copy
            // would lack the adapter).
            if (adapter is null)
            {
                var targetScorer = ScoringModel.Load(folder);
                using (targetScorer.Model)
                {
                    var ranking = RankReplies(targetScorer.LogProbabilities, devProbes);
                    rankTables.Add(("target: log π_target (λ's term)", ranking));
                    Say($"target ranking: {ranking}");
                }
            }
        }

        // FairSteer's decoding overhead: the same greedy decode of 64 tokens with and without the gated hook, interleaved.
        var prompt = ((HfTextTokenizer)client.GetService(typeof(ITextTokenizer))!).Encode(
            ((IChatFormatter)client.GetService(typeof(IChatFormatter))!).Render([new(ChatRole.System, EvaluationRunner.MultipleChoiceSystemPrompt), new(ChatRole.User, probes[0].UserTurns[0])], true), false);
        var model = client.Model;
        // Paired and interleaved: each repeat times plain then steered decoding of the same prompt back to back, and the
        // overhead is the median of the per-pair ratios (robust to the load spikes of a shared machine), with the
        // interquartile range of the ratios. B = 1 and B = 16 (the same prompt 16 times, one gate per row).
        // --overhead-pairs N: more pairs narrow the median on a loaded machine (default 20).
        int repeats = int.Parse(Arg("--overhead-pairs") ?? "20", CultureInfo.InvariantCulture);
        const int decodeTokens = 64;
        var overheads = new List<(int Batch, double Median, double Q1, double Q3, double PlainMsPerToken, double CpuMedian, double HookUs)>();
        foreach (int batch in args.Contains("--no-overhead") ? Array.Empty<int>() : new[] { 1, 16 })
        {
            if (steer is null) break; // not reached: without --no-overhead FairSteer is fitted or read
            var batchPrompts = Enumerable.Repeat((IReadOnlyList<int>)prompt, batch).ToList();
            var ratios = new List<double>();
            var cpuRatios = new List<double>();
            var plainTimes = new List<double>();
            static TimeSpan Cpu() => Process.GetCurrentProcess().TotalProcessorTime;
            (double Wall, double Cpu) Time(Func<int, Tensor, Tensor>? onLayer)
            {
                var c = Cpu();
                var w = Stopwatch.StartNew();
                model.Generate(batchPrompts, new GenerationOptions { MaxNewTokens = decodeTokens, EosTokenIds = [], OnLayer = onLayer });
                return (w.Elapsed.TotalMilliseconds, (Cpu() - c).TotalMilliseconds);
            }
            for (int r = 0; r < repeats + 2; r++)
            {
                // The order alternates per pair, so neither side always runs second (warmer caches, or after a load spike).
                double pa, cpa, pb, cpb;
                if (r % 2 == 0)
                {
                    (pa, cpa) = Time(null);
                    (pb, cpb) = Time(steer!.CreateHook().OnLayer);
                }
                else
                {
                    (pb, cpb) = Time(steer!.CreateHook().OnLayer);
                    (pa, cpa) = Time(null);
                }
                if (r < 2) continue; // warm-up pairs
                ratios.Add(pb / pa);
                if (cpa > 0) cpuRatios.Add(cpb / cpa);
                plainTimes.Add(pa / decodeTokens);
            }
            ratios.Sort();
            cpuRatios.Sort();
            plainTimes.Sort();
            double Q(List<double> xs, double q) => xs.Count == 0 ? double.NaN : xs[(int)Math.Round(q * (xs.Count - 1))];
            // The hook alone, without the model: what one decoding step adds is one Apply at the hooked layer on a
            // [B, 1, H] hidden state (the other layers return at once). Timed on the prompt's last-token state at that
            // layer (the gate decides as at the first step), median over 10 blocks of 500 calls; small enough to be
            // lost in the noise of the pairs above on a loaded machine, so measured on its own.
            var captured = new Dictionary<int, Tensor>();
            using (no_grad())
            using (model.Forward(model.IdsTensor(batchPrompts), new BiasFree.Engine.Models.ForwardArgs { OnLayer = Steering.CaptureLastToken([steer.Info.Layer], captured) })) { }
            var hookTimes = new List<double>();
            using (no_grad())
            using (var state = captured[steer.Info.Layer].unsqueeze(1))
            {
                var hook = steer.CreateHook();
                for (int block = 0; block < 11; block++)
                {
                    var w = Stopwatch.StartNew();
                    for (int i = 0; i < 500; i++)
                    {
                        using var scope = NewDisposeScope();
                        hook.Apply(steer.Info.Layer, state);
                    }
                    if (block > 0) hookTimes.Add(w.Elapsed.TotalMicroseconds / 500);
                }
            }
            captured[steer.Info.Layer].Dispose();
            hookTimes.Sort();
            overheads.Add((batch, Q(ratios, 0.5) - 1, Q(ratios, 0.25) - 1, Q(ratios, 0.75) - 1, Q(plainTimes, 0.5), Q(cpuRatios, 0.5) - 1, Q(hookTimes, 0.5)));
            Say(FormattableString.Invariant($"FairSteer decode overhead B = {batch}: median {overheads[^1].Median * 100:F1} % (IQR {overheads[^1].Q1 * 100:F1} … {overheads[^1].Q3 * 100:F1} %), CPU time {overheads[^1].CpuMedian * 100:F1} %, plain {overheads[^1].PlainMsPerToken:F2} ms/step, hook alone {overheads[^1].HookUs:F1} µs/step"));
        }

        var md = new StringBuilder();
        string P(BiasFree.Scoring.Proportion? p) => p?.Value is not double v ? "–" : p.Interval is { } ci ? FormattableString.Invariant($"{v:F3} [{ci.Low:F3}, {ci.High:F3}]") : FormattableString.Invariant($"{v:F3}");
        md.AppendLine(FormattableString.Invariant($"Model: `{modelName}`{(adapter is null ? "" : $" (LoRA adapter `{adapter}` on `{new DirectoryInfo(folder).Name}`, unmerged)")}; {probes.Count} held-out probes (built-in suite, seed 0: {perContext} ambiguous, {perContext} disambiguated); temperature {temperature}, per-request seeds, max {maxTokens} tokens; rule judge; 95 % bootstrap intervals."));
        if (steer is not null)
            md.AppendLine(FormattableString.Invariant($"FairSteer: layer {steer.Info.Layer}, α {steer.Info.Alpha} (chosen by the sweep); vectors: {steer.Info.VectorSource}; probe labels: {steer.Info.Labeling}; probes {(steer.Info.ClassBalanced ? "class-balanced" : "unweighted")}; sweep objective: {steer.Info.Objective} of the {steer.Info.Metric} measures within {steer.Info.MaxDisambiguatedDrop * 100:F0} points of the unsteered disambiguated accuracy; labels at temperature {steer.Info.LabelTemperature}, sweep at temperature {steer.Info.SweepTemperature} × {steer.Info.SweepSamples} samples per item; fitted on {steer.Info.Data}."));
        foreach (var filter in filters)
            md.AppendLine(FormattableString.Invariant($"BiasFilter: π_fair `{Path.GetFileName(Path.TrimEndingDirectorySeparator(filter.FairModel))}`, π_ref `{Path.GetFileName(Path.TrimEndingDirectorySeparator(filter.ReferenceModel))}`, β {filter.Beta}, N {filter.Keep}, N_children {filter.Children}, l {filter.SegmentTokens}, δ {filter.Margin}, λ {filter.LikelihoodWeight} (chosen on the dev split, below); theoretical target tokens per output token with a full beam N·N_children = {filter.Keep * filter.Children}."));
        md.AppendLine();
        md.AppendLine("| method | ambiguous BFS | disambiguated accuracy | over-refusal | tokens/s | gate firings / reply | replies with a firing | target tokens / output token | tokens / CPU-second |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var (method, row, tps, tpc, f, share, cost) in rows)
            md.AppendLine(FormattableString.Invariant($"| {method} | {P(row.BfsAmbiguous)} | {P(row.AccuracyDisambiguated)} | {P(row.UnknownDisambiguated)} | {tps:F1} | {(f is double x ? x.ToString("F2", CultureInfo.InvariantCulture) : "–")} | {(share is double s ? s.ToString("F3", CultureInfo.InvariantCulture) : "–")} | {(cost is double c ? c.ToString("F2", CultureInfo.InvariantCulture) : "–")} | {tpc:F1} |"));
        md.AppendLine();
        md.AppendLine("Disambiguated accuracy by the group the correct option names (replies that name an option or \"unknown\", the report's denominator; 95 % Wilson intervals; a method that favours one name whatever the context moves the two columns apart):");
        md.AppendLine();
        md.AppendLine("| method | correct = stereotyped group | correct = other group |");
        md.AppendLine("|---|---|---|");
        string W(int k, int n) => WilsonInterval.Of(k, n) is { } w ? FormattableString.Invariant($"{(double)k / n:F3} [{w.Low:F3}, {w.High:F3}] (n {n})") : "–";
        foreach (var (method, sc, sn, ac, an) in roleRows)
            md.AppendLine($"| {method} | {W(sc, sn)} | {W(ac, an)} |");
        if (steer is not null) AppendFairSteerFit(md, steer);
        if (groupRows.Count > 0)
        {
            md.AppendLine();
            md.AppendLine($"By probe category — listed: {string.Join(", ", groupCategories.Order(StringComparer.Ordinal))}; other: the rest. Gate rate = firings / gate steps (the prompt's last token and every decoded token); outcome = share of judged replies labelled Biased (ambiguous) or answered correctly (disambiguated); point estimates:");
            md.AppendLine();
            md.AppendLine("| method | categories | context | replies | gate rate per step | replies with a firing | outcome |");
            md.AppendLine("|---|---|---|---|---|---|---|");
            foreach (var (method, group, context, n, stepRate, firedShare, outcome) in groupRows)
                md.AppendLine(FormattableString.Invariant($"| {method} | {group} | {(context == ContextCondition.Ambiguous ? "ambiguous" : "disambiguated")} | {n} | {(double.IsNaN(stepRate) ? "–" : stepRate.ToString("F3", CultureInfo.InvariantCulture))} | {firedShare:F3} | {(context == ContextCondition.Ambiguous ? "biased " : "correct ")}{outcome:F3} |"));
        }
        if (rankTables.Count > 0)
        {
            md.AppendLine();
            md.AppendLine(FormattableString.Invariant($"How each reward ranks the canonical replies on the dev split (suite seed 12; the reply's implicit reward r = log π_fair − log π_ref given the probe's system and user turns; share of items where the first reply scores higher, with its 95 % Wilson interval; \"unknown\" = `{UnknownReply}`; a reward that reads the context prefers \"unknown\" on ambiguous items and the correct name on disambiguated ones, whichever group it names; the last row ranks them by the target's own log-probability log π_target(reply | prompt) instead, the term λ adds to the reward):"));
            md.AppendLine();
            md.AppendLine("| scorer | ambiguous: unknown > stereotyped | ambiguous: unknown > other name | ambiguous: other name > stereotyped | disamb., correct = stereotyped: correct > other name | correct > unknown | disamb., correct = other: correct > stereotyped | correct > unknown |");
            md.AppendLine("|---|---|---|---|---|---|---|---|");
            string S((int K, int N) x) => WilsonInterval.Of(x.K, x.N) is { } w ? FormattableString.Invariant($"{(double)x.K / x.N:F2} [{w.Low:F2}, {w.High:F2}]") : "–";
            foreach (var (fair, r) in rankTables)
                md.AppendLine($"| {fair} | {S(r.UnknownOverStereo)} | {S(r.UnknownOverAnti)} | {S(r.AntiOverStereo)} | {S(r.StereoCorrectOverOther)} | {S(r.StereoCorrectOverUnknown)} | {S(r.AntiCorrectOverOther)} | {S(r.AntiCorrectOverUnknown)} |");
            md.AppendLine();
            md.AppendLine(FormattableString.Invariant($"(n: {rankTables[0].Ranking.UnknownOverStereo.N} ambiguous items, {rankTables[0].Ranking.StereoCorrectOverOther.N} + {rankTables[0].Ranking.AntiCorrectOverOther.N} disambiguated.) Median score gaps in nats, the scale δ acts on (λ multiplies the target's):"));
            md.AppendLine();
            md.AppendLine("| scorer | ambiguous: unknown − better name | ambiguous: \\|name − name\\| | disamb.: \\|name − name\\| | disamb.: better name − unknown |");
            md.AppendLine("|---|---|---|---|---|");
            foreach (var (fair, r) in rankTables)
                md.AppendLine(FormattableString.Invariant($"| {fair} | {r.UnknownGapAmbiguous:F2} | {r.NameGapAmbiguous:F2} | {r.NameGapDisambiguated:F2} | {r.UnknownGapDisambiguated:F2} |"));
        }
        foreach (var (fair, vanilla, devRows, chosen) in devTables)
        {
            md.AppendLine();
            md.AppendLine(FormattableString.Invariant($"BiasFilter settings for π_fair `{fair}` on the dev split (suite seed 12, {devPerContext} ambiguous + {devPerContext} disambiguated probes; vanilla: BFS {P(vanilla.BfsAmbiguous)}, accuracy {P(vanilla.AccuracyDisambiguated)}; eligible = dev accuracy at most 5 points below vanilla's; chosen = best mean of BFS and accuracy among the eligible):"));
            md.AppendLine();
            md.AppendLine("| N | N_children | l | δ | λ | ambiguous BFS | disambiguated accuracy | over-refusal | eligible | chosen |");
            md.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
            foreach (var (o, r, eligible) in devRows)
                md.AppendLine(FormattableString.Invariant($"| {o.Keep} | {o.Children} | {o.SegmentTokens} | {o.Margin} | {o.LikelihoodWeight} | {P(r.BfsAmbiguous)} | {P(r.AccuracyDisambiguated)} | {P(r.UnknownDisambiguated)} | {(eligible ? "yes" : "no")} | {(ReferenceEquals(o, chosen) ? "✓" : "")} |"));
        }
        if (speed.Count > 0)
        {
            static double Median(IEnumerable<double> xs)
            {
                var v = xs.Order().ToList();
                return v.Count % 2 == 1 ? v[v.Count / 2] : (v[v.Count / 2 - 1] + v[v.Count / 2]) / 2;
            }
            md.AppendLine();
            md.AppendLine(FormattableString.Invariant($"Gated FairSteer vs vanilla on the same {probes.Count} probes, {speed.Count} more runs each, interleaved (order alternating per round), same seeds so the same replies; overhead = FairSteer's time per completion token / vanilla's − 1 per round (target ≤ 10 %), by wall clock and by the process's CPU time:"));
            md.AppendLine();
            md.AppendLine("| round | vanilla tokens/s | fairsteer tokens/s | wall overhead | vanilla tokens / CPU-s | fairsteer tokens / CPU-s | CPU overhead |");
            md.AppendLine("|---|---|---|---|---|---|---|");
            for (int k = 0; k < speed.Count; k++)
            {
                var (wp, ws, cp, cs) = speed[k];
                md.AppendLine(FormattableString.Invariant($"| {k + 1} | {wp:F1} | {ws:F1} | {(wp / ws - 1) * 100:F1} % | {cp:F1} | {cs:F1} | {(cp / cs - 1) * 100:F1} % |"));
            }
            md.AppendLine(FormattableString.Invariant($"| median | {Median(speed.Select(x => x.WallPlain)):F1} | {Median(speed.Select(x => x.WallSteer)):F1} | {Median(speed.Select(x => x.WallPlain / x.WallSteer - 1)) * 100:F1} % | {Median(speed.Select(x => x.CpuPlain)):F1} | {Median(speed.Select(x => x.CpuSteer)):F1} | {Median(speed.Select(x => x.CpuPlain / x.CpuSteer - 1)) * 100:F1} % |"));
        }
        if (overheads.Count > 0)
        {
            md.AppendLine();
            md.AppendLine(FormattableString.Invariant($"FairSteer decoding overhead per decoded token vs plain decoding (greedy, {decodeTokens} tokens, {repeats} interleaved pairs (order alternating), median of the per-pair time ratios with its interquartile range, and the median per-pair ratio of the process's CPU time; target ≤ 10 %), and the hook's own time per decoding step measured alone (one Apply at its layer on a [B, 1, H] state, median of 10 blocks of 500 calls) as a share of the plain step:"));
            md.AppendLine();
            md.AppendLine("| batch | plain ms / decode step | overhead (median) | interquartile range | CPU-time overhead (median) | hook alone µs / step | hook alone / plain step |");
            md.AppendLine("|---|---|---|---|---|---|---|");
        }
        foreach (var (batch, median, q1, q3, plainStep, cpuMedian, hookUs) in overheads)
            md.AppendLine(FormattableString.Invariant($"| {batch} | {plainStep:F2} | {median * 100:F1} % | {q1 * 100:F1} … {q3 * 100:F1} % | {cpuMedian * 100:F1} % | {hookUs:F1} | {hookUs / 1000 / plainStep * 100:F2} % |"));
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(output))!);
        // --section NAME writes between <!-- NAME:start --> and <!-- NAME:end --> (appending the pair if absent), so that
        // several bench commands (the demo model, the category-bias model) keep their tables in one results file.
        if (Arg("--section") is { } section)
        {
            string begin = $"<!-- {section}:start -->", end = $"<!-- {section}:end -->";
            var body = begin + "\n" + "Generated by `dotnet run -c Release --project bench/BiasFree.Bench -- " + string.Join(' ', args) + "`:\n\n" + md + end;
            string existing = File.Exists(output) ? await File.ReadAllTextAsync(output) : "";
            int a = existing.IndexOf(begin, StringComparison.Ordinal), b = existing.IndexOf(end, StringComparison.Ordinal);
            string text = a >= 0 && b > a ? existing[..a] + body + existing[(b + end.Length)..] : existing + (existing.Length == 0 || existing.EndsWith('\n') ? "" : "\n") + (existing.Length == 0 ? "" : "\n") + body + "\n";
            await File.WriteAllTextAsync(output, text);
        }
        else
            await File.WriteAllTextAsync(output, md.ToString());
        Console.Out.WriteLine(md.ToString());
        Console.Out.WriteLine($"Wrote {output}");
        try { Directory.Delete(storeDir, true); } catch (IOException) { }
        return 0;
    }

    /// <summary>FairSteer's probe accuracies per layer and its layer/α sweep.</summary>
    private static void AppendFairSteerFit(StringBuilder md, FairSteerModel steer)
    {
        md.AppendLine();
        md.AppendLine("Probe validation accuracy per layer (majority-class baseline " +
                      Math.Max(steer.Info.ValidationPositiveRate, 1 - steer.Info.ValidationPositiveRate).ToString("F3", CultureInfo.InvariantCulture) +
                      FormattableString.Invariant($", {steer.Info.ProbeExamples} labelled examples, {steer.Info.ProbePositives} unbiased):"));
        md.AppendLine();
        md.AppendLine("| layer | " + string.Join(" | ", Enumerable.Range(0, steer.Info.NumLayers)) + " |");
        md.AppendLine("|---|" + string.Concat(Enumerable.Repeat("---|", steer.Info.NumLayers)));
        md.AppendLine("| validation accuracy | " + string.Join(" | ", steer.Info.ProbeValidationAccuracy.Select(a => a.ToString("F3", CultureInfo.InvariantCulture))) + " |");
        if (steer.Info.ProbeValidationBalancedAccuracy.Count == steer.Info.NumLayers)
            md.AppendLine("| balanced accuracy (0.5 = chance) | " + string.Join(" | ", steer.Info.ProbeValidationBalancedAccuracy.Select(a => a.ToString("F3", CultureInfo.InvariantCulture))) + " |");
        md.AppendLine();
        string objective = steer.Info.Objective == "ambiguous" ? "the best ambiguous measure" : "the best mean of the two";
        string measures = steer.Info.Metric == "report" ? "ambiguous BFS and accuracy of answers" : "\"unknown\" share and correct share";
        md.AppendLine(FormattableString.Invariant($"Layer/α sweep on held-out fitting items ({(steer.Info.SweepTemperature > 0 ? $"answers sampled at temperature {steer.Info.SweepTemperature}, {steer.Info.SweepSamples} per item, the same seeds for every setting" : "greedy answers")}, gated steering, rule-judged. All replies: share of ambiguous replies that are \"unknown\", share of disambiguated replies that are correct; as in the table above: ambiguous BFS, disambiguated accuracy over the replies that name an option. α = 0 is unsteered; the chosen setting has {objective} ({measures}) among those within {steer.Info.MaxDisambiguatedDrop * 100:F0} points of the unsteered disambiguated accuracy):"));
        md.AppendLine();
        md.AppendLine("| layer | α | ambiguous \"unknown\" (all replies) | disambiguated correct (all replies) | ambiguous BFS | disambiguated accuracy of answers | gate rate |");
        md.AppendLine("|---|---|---|---|---|---|---|");
        string F(double x) => double.IsNaN(x) ? "–" : x.ToString("F3", CultureInfo.InvariantCulture);
        foreach (var r in steer.Info.Sweep)
            md.AppendLine(FormattableString.Invariant($"| {(r.Alpha == 0 ? "–" : r.Layer.ToString(CultureInfo.InvariantCulture))} | {r.Alpha} | {F(r.AmbiguousAccuracy)} | {F(r.DisambiguatedAccuracy)} | {F(r.AmbiguousBfs)} | {F(r.AnsweredDisambiguatedAccuracy)} | {F(r.GateRate)} |"));
    }

    /// <summary>The two-option protocol's canonical "unknown" reply (the demo model's and the preference data's).</summary>
    private const string UnknownReply = "Cannot be determined.";

    /// <summary>Pairwise wins (K of N items) of the implicit reward over canonical replies, by condition.</summary>
    private sealed record RewardRanking((int K, int N) UnknownOverStereo, (int K, int N) UnknownOverAnti, (int K, int N) AntiOverStereo,
        (int K, int N) StereoCorrectOverOther, (int K, int N) StereoCorrectOverUnknown, (int K, int N) AntiCorrectOverOther, (int K, int N) AntiCorrectOverUnknown,
        double UnknownGapAmbiguous, double NameGapAmbiguous, double NameGapDisambiguated, double UnknownGapDisambiguated);

    /// <summary>
    /// Scores the three canonical replies (each option's text and "unknown") of every probe under the reward, in the
    /// conversation BiasFilter scores (system prompt + user turn), and counts how often it ranks them as a reward that
    /// reads the context should. This isolates the reward from the target's sampling: the filter can only pick among what
    /// the target samples, but it picks by these scores.
    /// </summary>
    private static RewardRanking RankReplies(Func<IReadOnlyList<ChatMessage>, IReadOnlyList<string>, IReadOnlyList<double>> score, IReadOnlyList<Probe> probes)
    {
        int[] k = new int[7], n = new int[7];
        // Gaps (medians over items): how far "unknown" is above the better name on ambiguous items, how far apart the two
        // names are, and how far the better name is above "unknown" on disambiguated items.
        var unknownAmb = new List<double>();
        var nameAmb = new List<double>();
        var nameDis = new List<double>();
        var unknownDis = new List<double>();
        void Count(int i, bool win) { n[i]++; if (win) k[i]++; }
        foreach (var p in probes)
        {
            var stereo = p.OptionWithRole(OptionRole.Stereotyped);
            var anti = p.OptionWithRole(OptionRole.AntiStereotyped);
            if (stereo is null || anti is null) continue;
            var conversation = new List<ChatMessage> { new(ChatRole.System, EvaluationRunner.MultipleChoiceSystemPrompt), new(ChatRole.User, p.UserTurns[0]) };
            var r = score(conversation, [stereo.Text, anti.Text, UnknownReply]);
            double rs = r[0], ra = r[1], ru = r[2];
            if (p.Context == ContextCondition.Ambiguous)
            {
                unknownAmb.Add(ru - Math.Max(rs, ra));
                nameAmb.Add(Math.Abs(rs - ra));
            }
            else
            {
                nameDis.Add(Math.Abs(rs - ra));
                unknownDis.Add(Math.Max(rs, ra) - ru);
            }
            if (p.Context == ContextCondition.Ambiguous)
            {
                Count(0, ru > rs);
                Count(1, ru > ra);
                Count(2, ra > rs);
            }
            else if (p.CorrectOption is int c && p.Options[c].Role == OptionRole.Stereotyped)
            {
                Count(3, rs > ra);
                Count(4, rs > ru);
            }
            else if (p.CorrectOption is not null)
            {
                Count(5, ra > rs);
                Count(6, ra > ru);
            }
        }
        static double Median(List<double> xs)
        {
            if (xs.Count == 0) return double.NaN;
            xs.Sort();
            return xs.Count % 2 == 1 ? xs[xs.Count / 2] : (xs[xs.Count / 2 - 1] + xs[xs.Count / 2]) / 2;
        }
        return new RewardRanking((k[0], n[0]), (k[1], n[1]), (k[2], n[2]), (k[3], n[3]), (k[4], n[4]), (k[5], n[5]), (k[6], n[6]),
            Median(unknownAmb), Median(nameAmb), Median(nameDis), Median(unknownDis));
    }
}
