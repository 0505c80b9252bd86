using System.CommandLine;
using System.Globalization;
using System.Net.Sockets;
using BiasFree.Adaptive;
using BiasFree.Engine.Chat;
using BiasFree.Engine.Decoding;
using BiasFree.Engine.Decoding.Ivo;
using BiasFree.Engine.DemoModel;
using BiasFree.Engine.Evaluations;
using BiasFree.Engine.Generation;
using BiasFree.Evaluations;
using BiasFree.Methods;
using BiasFree.Engine.Tokenization;
using BiasFree.Judges;
using BiasFree.Judges.Defences;
using BiasFree.Mitigations;
using BiasFree.Probes;
using BiasFree.Reports;
using BiasFree.Runs;
using BiasFree.Scoring;
using BiasFree.Targets;
using Microsoft.Extensions.AI;

namespace BiasFree.Cli.Commands;

/// <summary><c>biasfree run</c>: run suites against a target with one or more methods, or resume a run.</summary>
internal static class RunCommand
{
    public static Option<string> RunsDirOption() =>
        new("--runs-dir") { Description = "Folder of the run store (biasfree.db).", DefaultValueFactory = _ => "runs" };

    private sealed record Options(
        IReadOnlyList<string> Suites, string? Target, string? Model, string ApiKeyEnv, IReadOnlyList<string> Methods, string Judge,
        string? JudgeModel, string? JudgeApiKeyEnv, int JudgeVotes, int? Concurrency, double? Timeout, int? Retries, float? Temperature, int Seed, int MaxTokens,
        int? Limit, string RunsDir, string? RunId, string? Resume, string? DType, string? Device, string? ChatTemplate, bool NoCache,
        IReadOnlyList<string> ExplicitRunSettings, string Context = "all", string OptionsShown = "two", string LabelRule = "bbq",
        int Bootstrap = Scoring.Bootstrap.DefaultResamples, string Baseline = RunReport.Baseline, int? KvCacheMb = null, string? Prompts = null, string? Adapter = null,
        string? DraftPersona = null, string? JudgePersona = null, int? DraftTokens = null, string? PersonaSchedule = null, string Tie = "biased", string JudgeDefences = "all")
    {
        /// <summary>--precision (adaptive sampling's target half-width) and --precision-scope.</summary>
        public (double? Precision, string Scope) Adaptive { get; init; } = (null, AdaptiveSpec.CategoryScope);

        /// <summary>--target given more than once: the other endpoints serving the same model.</summary>
        public IReadOnlyList<string> Replicas { get; init; } = [];

        /// <summary>--endpoint-concurrency: most requests in flight per endpoint.</summary>
        public int? EndpointConcurrency { get; init; }

        /// <summary>--engine-workers: model workers of an in-process model (null: chosen by the engine).</summary>
        public int? EngineWorkers { get; init; }

        /// <summary>--max-tokens-field: auto, max_tokens or max_completion_tokens.</summary>
        public string MaxTokensField { get; init; } = "auto";

        /// <summary>--steering, --reward-model, --reward-ref, --beta, --filter-keep, --filter-children, --segment-tokens, --filter-margin, --filter-likelihood-weight.</summary>
        public (string? Steering, string? RewardModel, string? RewardRef, double Beta, int Keep, int Children, int Segment, double Margin, double LikelihoodWeight) WhiteBox { get; init; } = (null, null, null, 1.0, 4, 4, 12, 0, 0);

        /// <summary>--aligner, --diffpo-window, --diffpo-max-iter, --diffpo-reserve.</summary>
        public (string? Aligner, int? Window, int? MaxIterations, int? Reserve) DiffPo { get; init; }
        /// <summary>--value-model, --ivo-beta, --ivo-candidates, --ivo-block-tokens, --ivo-beams, --ivo-blocks.</summary>
        public (string? ValueModel, double? Beta, int? Candidates, int? BlockTokens, int? Beams, int? Blocks) Ivo { get; init; }
    }

    public static Command Build()
    {
        var suite = new Option<string[]>("--suite", "-s") { Description = $"Suite(s), repeatable or comma list: {string.Join(", ", SuiteRegistry.ValidSpecs)}.", DefaultValueFactory = _ => ["bbq"] };
        var target = new Option<string[]>("--target") { Description = $"Base URL of an OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1), or a local Hugging Face model folder run in-process. Repeat it for replicas of one model (--target URL1 --target URL2): requests go to the endpoint with the fewest outstanding, a failing one is drained and retried later, and replies are cached as the first URL's. Default: the embedded demo model (models/demo, or ${DemoModel.PathEnvironmentVariable})." };
        var endpointConcurrency = new Option<int?>("--endpoint-concurrency") { Description = "With several --target URLs: most requests in flight at each (default: no limit beyond --concurrency)." };
        var model = new Option<string?>("--model", "-m") { Description = "Model name at the target (default for a model folder: its name)." };
        var apiKeyEnv = new Option<string>("--api-key-env") { Description = "Environment variable holding the API key (the key is never stored).", DefaultValueFactory = _ => "OPENAI_API_KEY" };
        var method = new Option<string[]>("--method") { Description = $"Mitigation method(s), comma list: {string.Join(", ", WhiteBoxRunOptions.MethodNames.Concat(DecodingMethods.Names).Concat(IvoMethods.Names).Append(DiffPoMethods.Name))}; combine with + (e.g. self-awareness+cot, cot+fairsteer).", DefaultValueFactory = _ => ["none"] };
        var judge = new Option<string>("--judge")
        {
            Description = "rule (multiple-choice answer extraction; dialogues by the offline demo judge), the base URL of an OpenAI-compatible LLM judge, " +
                          "or a judge panel for dialogues: comma-separated KIND:MODEL@URL, KIND@URL or demo[:PATH] (KIND llm, biasguard, llama-guard, moderation), " +
                          "combined by majority vote (every vote is stored and reported; multiple choice stays rule-based).",
            DefaultValueFactory = _ => "rule",
        };
        var tie = new Option<string>("--tie") { Description = "Judge panel: the verdict on an even split of votes, biased or unbiased.", DefaultValueFactory = _ => "biased" };
        tie.AcceptOnlyFromAmong("biased", "unbiased");
        var judgeModel = new Option<string?>("--judge-model") { Description = "Model name of the LLM judge." };
        var judgeApiKeyEnv = new Option<string?>("--judge-api-key-env") { Description = "Environment variable holding the judge's API key (default: --api-key-env)." };
        var judgeVotes = new Option<int>("--judge-votes") { Description = "LLM judge votes per multiple-choice answer (majority).", DefaultValueFactory = _ => 3 };
        var judgeDefences = JudgeCommand.JudgeDefencesOption();
        var concurrency = new Option<int?>("--concurrency", "-j") { Description = "Requests in flight (default 32)." };
        var timeout = new Option<double?>("--timeout") { Description = "Seconds per request attempt (default 120)." };
        var engineWorkers = new Option<int?>("--engine-workers") { Description = "Model workers of an in-process model, each with its own copy of the model and its own batch (default: one per core, at most 8, for a model of up to 16M parameters on the CPU; otherwise 1). Replies do not depend on it." };
        var kvCacheMb = new Option<int?>("--kv-cache-mb") { Description = $"KV-cache memory bound of an in-process model in MB (default {ContinuousBatchOptions.DefaultKvCacheBytes >> 20}); requests that do not fit wait." };
        var retries = new Option<int?>("--retries") { Description = "Retries of a failed request (default 3)." };
        var temperature = new Option<float?>("--temperature") { Description = $"Sampling temperature. Default: none sent to a server (its default applies); 0 for a model folder; {DemoModel.DefaultTemperature.ToString(CultureInfo.InvariantCulture)} (sampled, seeded by --seed) for the demo model." };
        var seed = new Option<int>("--seed") { Description = "Seed for probe sampling and generation.", DefaultValueFactory = _ => 0 };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Max completion tokens per reply.", DefaultValueFactory = _ => 128 };
        var limit = new Option<int?>("--limit", "-n") { Description = "Only the first N probes of each suite (after seeded sampling)." };
        var runsDir = RunsDirOption();
        var runId = new Option<string?>("--run-id") { Description = "Id for the new run (default: time stamp)." };
        var resume = new Option<string?>("--resume") { Description = "Continue the run with this id (its stored settings are used)." };
        var dtype = new Option<string?>("--dtype") { Description = "Weights dtype of a model folder or the demo model: float32 (default) or bfloat16." };
        var device = new Option<string?>("--device") { Description = "Device of a model folder or the demo model: cpu (default) or cuda." };
        var chatTemplate = new Option<string?>("--chat-template") { Description = $"Chat template of a model folder or the demo model: {string.Join("|", ChatTemplate.KnownNames)} (default: detected from tokenizer_config.json)." };
        var noCache = new Option<bool>("--no-cache") { Description = "Don't answer from the response cache: every request reaches the target (replies are still cached)." };
        var context = new Option<string>("--context") { Description = "BBQ contexts to run: all, ambiguous (BiasFreeBench's BFS) or disambiguated.", DefaultValueFactory = _ => "all" };
        context.AcceptOnlyFromAmong("all", "ambiguous", "disambiguated");
        var optionsShown = new Option<string>("--options") { Description = "BBQ-style options shown: two (BiasFreeBench's forced choice) or three (BBQ's lettered options, unknown included).", DefaultValueFactory = _ => "two" };
        optionsShown.AcceptOnlyFromAmong("two", "three");
        var labelRule = new Option<string>("--label-rule") { Description = "Target group of official BBQ items: bbq (stereotyped_groups in every category) or biasfreebench (its shipped labels: the older person in Age).", DefaultValueFactory = _ => "bbq" };
        labelRule.AcceptOnlyFromAmong("bbq", "biasfreebench");
        var bootstrap = ReportSettingsOptions.Bootstrap();
        var baseline = ReportSettingsOptions.Baseline();
        var prompts = new Option<string?>("--prompts") { Description = "JSON file of the prompting methods' templates (system prompts, instructions, reflection and rewrite prompts); templates it leaves out keep our wording. `biasfree prompts` prints ours to start from." };
        var precision = new Option<double?>("--precision") { Description = "Adaptive sampling: run probes in a seeded stratified order and stop each cell once its BFS 95% interval is within ± this proportion (0.02 = ±2 points), or its probes run out. With --resume, a lower value extends the run without repeating a probe. See docs/adaptive-sampling.md." };
        var precisionScope = new Option<string>("--precision-scope") { Description = "What --precision applies to: category (each method × category, default) or method (each method's overall BFS; far fewer probes).", DefaultValueFactory = _ => AdaptiveSpec.CategoryScope };
        precisionScope.AcceptOnlyFromAmong(AdaptiveSpec.CategoryScope, AdaptiveSpec.MethodScope);
        var maxTokensField = new Option<string>("--max-tokens-field") { Description = "Request field of --max-tokens for a server: auto (max_completion_tokens for api.openai.com and Azure OpenAI, max_tokens for any other server), max_tokens or max_completion_tokens.", DefaultValueFactory = _ => "auto" };
        maxTokensField.AcceptOnlyFromAmong("auto", MaxTokensParameters.MaxTokensField, MaxTokensParameters.MaxCompletionTokensField);
        var adapter = new Option<string?>("--adapter") { Description = "PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors, e.g. OUT/adapter of biasfree train) applied unmerged on a local model folder or the demo model." };

        var cmd = new Command("run", "Run probe suites against a target and judge the answers.")
        {
            suite, target, model, apiKeyEnv, method, judge, tie, judgeModel, judgeApiKeyEnv, judgeVotes, judgeDefences, concurrency, timeout, retries, temperature, seed, maxTokens,
            limit, runsDir, runId, resume, dtype, device, chatTemplate, noCache, context, optionsShown, labelRule, bootstrap, baseline, kvCacheMb, prompts, adapter,
            precision, precisionScope, maxTokensField, endpointConcurrency, engineWorkers,
        };
        foreach (var option in WhiteBoxRunOptions.All)
        {
            cmd.Add(option);
        }
        // Options that define what a run is; a resumed run keeps its stored values for all of them.
        var decoding = new DecodingRunOptions();
        foreach (var option in decoding.All)
        {
            cmd.Options.Add(option);
        }
        var ivo = new IvoRunOptions();
        foreach (var option in ivo.All)
        {
            cmd.Options.Add(option);
        }
        foreach (var option in DiffPoRunOptions.All)
        {
            cmd.Options.Add(option);
        }
        Option[] runSettings = [suite, target, model, apiKeyEnv, method, judge, tie, judgeModel, judgeApiKeyEnv, judgeVotes, judgeDefences, temperature, seed, maxTokens, limit, runId, dtype, device, chatTemplate, noCache, context, optionsShown, labelRule, prompts, adapter, precisionScope, maxTokensField, .. WhiteBoxRunOptions.All, .. decoding.All, .. ivo.All, .. DiffPoRunOptions.All];
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(() => ExecuteAsync(new Options(
            BiasFreeCli.SplitList(pr.GetValue(suite)), pr.GetValue(target) is { Length: > 0 } targets ? targets[0] : null, pr.GetValue(model), pr.GetValue(apiKeyEnv)!,
            BiasFreeCli.SplitList(pr.GetValue(method)), pr.GetValue(judge)!, pr.GetValue(judgeModel), pr.GetValue(judgeApiKeyEnv), pr.GetValue(judgeVotes),
            pr.GetValue(concurrency), pr.GetValue(timeout), pr.GetValue(retries), pr.GetValue(temperature), pr.GetValue(seed),
            pr.GetValue(maxTokens), pr.GetValue(limit), pr.GetValue(runsDir)!, pr.GetValue(runId), pr.GetValue(resume),
            pr.GetValue(dtype), pr.GetValue(device), pr.GetValue(chatTemplate), pr.GetValue(noCache),
            [.. runSettings.Where(o => pr.GetResult(o) is { Implicit: false }).Select(o => o.Name)],
            pr.GetValue(context)!, pr.GetValue(optionsShown)!, pr.GetValue(labelRule)!, pr.GetValue(bootstrap), pr.GetValue(baseline)!, pr.GetValue(kvCacheMb), pr.GetValue(prompts), pr.GetValue(adapter),
            pr.GetValue(decoding.DraftPersona), pr.GetValue(decoding.JudgePersona), pr.GetValue(decoding.DraftTokens), pr.GetValue(decoding.Schedule), pr.GetValue(tie)!, pr.GetValue(judgeDefences)!)
        {
            WhiteBox = (pr.GetValue(WhiteBoxRunOptions.Steering), pr.GetValue(WhiteBoxRunOptions.RewardModel), pr.GetValue(WhiteBoxRunOptions.RewardReference),
                pr.GetValue(WhiteBoxRunOptions.Beta), pr.GetValue(WhiteBoxRunOptions.Keep), pr.GetValue(WhiteBoxRunOptions.Children), pr.GetValue(WhiteBoxRunOptions.Segment), pr.GetValue(WhiteBoxRunOptions.Margin),
                pr.GetValue(WhiteBoxRunOptions.LikelihoodWeight)),
            DiffPo = (pr.GetValue(DiffPoRunOptions.Aligner), pr.GetValue(DiffPoRunOptions.Window), pr.GetValue(DiffPoRunOptions.MaxIterations), pr.GetValue(DiffPoRunOptions.Reserve)),
            Ivo = (pr.GetValue(ivo.ValueModel), pr.GetValue(ivo.Beta), pr.GetValue(ivo.Candidates), pr.GetValue(ivo.BlockTokens), pr.GetValue(ivo.Beams), pr.GetValue(ivo.Blocks)),
            Adaptive = (pr.GetValue(precision), pr.GetValue(precisionScope)!),
            MaxTokensField = pr.GetValue(maxTokensField)!,
            Replicas = pr.GetValue(target) is { Length: > 1 } all ? all[1..] : [],
            EndpointConcurrency = pr.GetValue(endpointConcurrency),
            EngineWorkers = pr.GetValue(engineWorkers),
        }, ct)));
        return cmd;
    }

    internal static async Task<RunStore> OpenExistingStoreAsync(string runsDir, CancellationToken ct)
    {
        var path = Path.Combine(runsDir, RunStore.FileName);
        if (!File.Exists(path))
        {
            throw new UserErrorException($"no run store at {Path.GetFullPath(path)} (use --runs-dir).");
        }
        return await RunStore.OpenAsync(path, ct).ConfigureAwait(false);
    }

    private static async Task<int> ExecuteAsync(Options o, CancellationToken ct)
    {
        Evaluation evaluation;
        PersonaJudgeStrategy personaJudge;
        DiffPoStrategy? diffPo = null;
        RunStore? store = null;
        try
        {
            if (o.Resume is { } resumeId)
            {
                if (o.ExplicitRunSettings.Count > 0)
                {
                    throw new UserErrorException($"--resume continues a run with its stored settings; drop {string.Join(", ", o.ExplicitRunSettings)} (only --concurrency, --timeout, --retries and an adaptive run's --precision can change).");
                }
                const string neverStarted = "A run is recorded only once its suites have loaded and its target has answered, so a run stopped before that never started and has nothing to resume: start it again with the same options.";
                if (!File.Exists(Path.Combine(o.RunsDir, RunStore.FileName)))
                {
                    throw new UserErrorException($"no run '{resumeId}' to resume: there is no run store at {Path.GetFullPath(Path.Combine(o.RunsDir, RunStore.FileName))} (is --runs-dir right?). {neverStarted}");
                }
                store = await OpenExistingStoreAsync(o.RunsDir, ct).ConfigureAwait(false);
                var stored = await store.GetRunAsync(resumeId, ct).ConfigureAwait(false)
                    ?? throw new UserErrorException($"no run '{resumeId}' to resume in {store.DatabasePath}: either the id is wrong (`biasfree runs` lists them) or the run never started. {neverStarted}");
                CheckScheduling(o);
                if (o.Adaptive.Precision is not null && stored.Adaptive is null)
                {
                    throw new UserErrorException($"run '{resumeId}' runs every probe, so --precision cannot apply to it; start a new run with --precision.");
                }
                CheckPrecision(o);
                // The same objects as the first session, rebuilt from the stored spec; only scheduling (and an adaptive run's precision) may change.
                personaJudge = new PersonaJudgeStrategy(DecodingRunOptions.ToOptions(stored.PersonaJudge));
                diffPo = stored.DiffPo is { } diffPoSpec ? DiffPoRunOptions.Load(diffPoSpec, resumed: true) : null;
                var registry = IvoMethods.Register(DecodingMethods.Register(WhiteBoxRunOptions.Registry(stored.GetMethodPrompts(), stored.WhiteBox), personaJudge),
                    IvoRunOptions.ToOptions(stored.Ivo));
                if (diffPo is not null) DiffPoMethods.Register(registry, diffPo);
                evaluation = Evaluation.FromSpec(stored with
                {
                    Concurrency = o.Concurrency ?? stored.Concurrency,
                    TimeoutSeconds = o.Timeout ?? stored.TimeoutSeconds,
                    Retries = o.Retries ?? stored.Retries,
                    Adaptive = o.Adaptive.Precision is { } h ? stored.Adaptive! with { Precision = h } : stored.Adaptive,
                }, s =>
                {
                    var t = s.PersonaJudge is null ? LocalTargets.FromSpec(s, KvCacheBytes(o), EngineWorkers(o)) : DecodingMethods.WithDecoding(LocalTargets.FromSpec(s, KvCacheBytes(o), EngineWorkers(o)), personaJudge.Options);
                    return diffPo is null ? t : DiffPoMethods.WithAligner(t, diffPo);
                },
                    string.Equals(stored.Judge, EvaluationJudges.RuleName, StringComparison.OrdinalIgnoreCase) ? DemoJudge.RuleWithOfflineDialogueJudge()
                    : EvaluationJudges.IsPanelSpec(stored.Judge) ? Panel(stored.Judge, EvaluationJudges.PanelOptions(stored with
                    {
                        TimeoutSeconds = o.Timeout ?? stored.TimeoutSeconds,
                        Retries = o.Retries ?? stored.Retries,
                    }, DemoJudge.Create))
                    : null,
                    methods: registry);
            }
            else
            {
                (evaluation, personaJudge, diffPo) = NewEvaluation(o);
                if (o.RunId is not null && File.Exists(Path.Combine(o.RunsDir, RunStore.FileName)))
                {
                    store = await RunStore.OpenDirectoryAsync(o.RunsDir, ct).ConfigureAwait(false);
                    if (await store.GetRunAsync(evaluation.RunId, ct).ConfigureAwait(false) is not null)
                    {
                        throw new UserErrorException($"run '{evaluation.RunId}' already exists; continue it with --resume {evaluation.RunId}.");
                    }
                }
            }

            using var judges = evaluation.Judges;
            // Everything that can be wrong with the options is checked before a new run is recorded.
            ReportSettingsOptions.For(evaluation.Spec, o.Bootstrap, o.Baseline);
            var probes = evaluation.OpenProbes((suite, skipped) =>
                Console.Error.WriteLine($"note: {suite}: {skipped} rows cannot be labelled and are left out; 'biasfree suites show {suite}' lists them."));
            judges.EnsureCovers(probes);
            if (judges.Dialogue is DemoJudge.OnDemand offline && probes.Scenarios.Contains(Scenario.MultiTurn))
            {
                Console.Error.WriteLine($"note: dialogues are judged offline by {offline.Name} (the demo model; reliable only on demo-style replies, see docs/judges.md); pass --judge URL --judge-model NAME for an LLM judge.");
            }
            if (evaluation.Target.ServerEndpoint is { } te)
            {
                await CheckReachableAsync("target", te, ct).ConfigureAwait(false);
                WarnIfApiKeyMissing(evaluation.Spec.ApiKeyEnvironmentVariable);
            }
            if (judges.ServerEndpoint is { } je)
            {
                await CheckReachableAsync("judge", je, ct).ConfigureAwait(false);
                WarnIfApiKeyMissing(evaluation.Spec.JudgeApiKeyEnvironmentVariable ?? evaluation.Spec.ApiKeyEnvironmentVariable);
            }

            store ??= await RunStore.OpenDirectoryAsync(o.RunsDir, ct).ConfigureAwait(false);
            return await RunAsync(o, evaluation, personaJudge, diffPo, store, ct).ConfigureAwait(false);
        }
        finally
        {
            diffPo?.Dispose();
            if (store is not null)
            {
                await store.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static async Task<int> RunAsync(Options o, Evaluation evaluation, PersonaJudgeStrategy personaJudge, DiffPoStrategy? diffPo, RunStore store, CancellationToken ct)
    {
        EvaluationSession session;
        try
        {
            session = await evaluation.StartAsync(store, ct).ConfigureAwait(false);
        }
        catch (InvalidOperationException) when (o.Resume is null)
        {
            throw new UserErrorException($"run '{evaluation.RunId}' already exists; continue it with --resume {evaluation.RunId}.");
        }
        using var _ = session;
        var spec = session.Spec;
        foreach (var w in session.Warnings)
        {
            Console.Error.WriteLine($"warning: {w}");
        }

        Console.Out.WriteLine($"Run {spec.RunId}: {session.Probes.Count.ToString(CultureInfo.InvariantCulture)} probes × {spec.Methods.Count.ToString(CultureInfo.InvariantCulture)} method(s) against {spec.Model} ({spec.TargetEndpoint}); store {store.DatabasePath}");
        if (spec.Adaptive is { } adaptive)
        {
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Adaptive sampling: each {adaptive.Scope} cell stops once its BFS 95% interval is within ±{adaptive.Precision * 100:0.##} points; the count above is the most it can use."));
        }
        RunOutcome outcome;
        try
        {
            // In-process targets add the engine's batch occupancy, tokens/s, queue wait and cache use to the progress line.
            var engine = session.Target.GetService<EngineChatClient>();
            outcome = await ProgressView.RunAsync(session.Total, (progress, token) => session.RunAsync(progress, token), ct,
                engine is null ? null : () => engine.Statistics.Describe()).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine($"Interrupted. Finished probes are saved; continue with: biasfree run --resume {spec.RunId} --runs-dir {o.RunsDir}");
            return ExitCodes.Interrupted;
        }
        catch (RunStoppedException ex)
        {
            Console.Error.WriteLine($"error: {ex.Message} Once fixed, continue with: biasfree run --resume {spec.RunId} --runs-dir {o.RunsDir}");
            return ExitCodes.UserError;
        }

        if (personaJudge.Statistics is { Replies: > 0 } pj)
        {
            // Counted by the decoder over the replies decoded in this invocation (cached replies are not decoded again).
            var c = pj.Totals;
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"persona-judge ({spec.PersonaJudge?.Schedule ?? "alternate"}, γ {spec.PersonaJudge?.DraftTokens ?? 4}): {pj.Replies} replies decoded, {c.Accepted}/{c.Drafted} draft tokens accepted ({c.AcceptanceRate:P1}), {c.TokensPerJudgePass:0.00} tokens per judge pass, {c.TokensPerForwardPass:0.00} per forward pass, {c.Tokens} tokens in {pj.Seconds:0.0} s"));
        }
        if (diffPo?.Statistics is { Replies: > 0 } dp)
        {
            // Counted by the aligner over the answers refined in this invocation (cached refinements are not refined again).
            Console.Out.WriteLine(DiffPoMethods.Describe(dp));
        }
        var reportOptions = ReportSettingsOptions.For(spec, o.Bootstrap, o.Baseline);
        var report = await RunReport.BuildAsync(store, spec.RunId, reportOptions, CancellationToken.None).ConfigureAwait(false);
        SummaryView.Write(report);
        Console.Out.WriteLine($"Run id: {spec.RunId}");
        if (!outcome.IsComplete)
        {
            Console.Error.WriteLine($"{(outcome.Errors + outcome.JudgeErrors).ToString(CultureInfo.InvariantCulture)} probe(s) failed ({outcome.Errors.ToString(CultureInfo.InvariantCulture)} target, {outcome.JudgeErrors.ToString(CultureInfo.InvariantCulture)} judge errors); they are recorded and retried by: biasfree run --resume {spec.RunId} --runs-dir {o.RunsDir}");
            return ExitCodes.Incomplete;
        }
        return ExitCodes.Ok;
    }

    private static long? KvCacheBytes(Options o) => o.KvCacheMb is int mb
        ? (mb < 1 ? throw new UserErrorException("--kv-cache-mb must be at least 1.") : mb * (1L << 20))
        : null;

    private static int? EngineWorkers(Options o) => o.EngineWorkers is < 1 ? throw new UserErrorException("--engine-workers must be at least 1.") : o.EngineWorkers;

    private static void CheckPrecision(Options o)
    {
        if (o.Adaptive.Precision is { } h && !(h >= AdaptiveSpec.MinimumPrecision && h < 0.5))
        {
            throw new UserErrorException("--precision must be at least 0.001 and below 0.5 (the half-width of each cell's BFS interval as a proportion, e.g. 0.02 for ±2 points).");
        }
    }

    private static void CheckScheduling(Options o)
    {
        if (o.Concurrency is < 1 or > 1024)
        {
            throw new UserErrorException("--concurrency must be between 1 and 1024.");
        }
        if (o.Timeout is <= 0)
        {
            throw new UserErrorException("--timeout must be positive.");
        }
        if (o.Retries is < 0)
        {
            throw new UserErrorException("--retries must not be negative.");
        }
    }

    /// <summary>The evaluation the options describe; option mistakes are reported with the option's name.</summary>
    private static (Evaluation Evaluation, PersonaJudgeStrategy PersonaJudge, DiffPoStrategy? DiffPo) NewEvaluation(Options o)
    {
        var demo = o.Target is null;
        var local = demo || !EvaluationTarget.IsHttpUrl(o.Target);
        if (!demo && local && !Directory.Exists(o.Target))
        {
            throw new UserErrorException($"'{o.Target}' is not an http(s) URL such as http://127.0.0.1:8000/v1, nor a model folder.");
        }
        if (!local && string.IsNullOrWhiteSpace(o.Model))
        {
            throw new UserErrorException("--model NAME is required with --target URL.");
        }
        if (!local)
        {
            RejectCredentialsInUrl("--target", o.Target!);
        }
        foreach (var replica in o.Replicas)
        {
            if (local || !EvaluationTarget.IsHttpUrl(replica))
            {
                throw new UserErrorException($"--target given more than once names replicas of one server model: every one must be an http(s) URL ('{replica}' is not, or the first is a folder).");
            }
            RejectCredentialsInUrl("--target", replica);
        }
        if (o.EndpointConcurrency is < 1)
        {
            throw new UserErrorException("--endpoint-concurrency must be at least 1.");
        }
        var panel = EvaluationJudges.IsPanelSpec(o.Judge);
        var llmJudge = !panel && !string.Equals(o.Judge, EvaluationJudges.RuleName, StringComparison.OrdinalIgnoreCase);
        var defences = JudgeCommand.ParseDefences(o.JudgeDefences);
        if (!panel && !llmJudge && defences != JudgeDefences.All)
        {
            throw new UserErrorException("--judge-defences applies to LLM judges (--judge URL or a judge panel); the rule judge has no prompt-injection defences to choose.");
        }
        if (llmJudge)
        {
            RejectCredentialsInUrl("--judge", o.Judge);
        }
        if (o.Suites.Count == 0)
        {
            throw new UserErrorException("no suite: pass --suite bbq, fairmt or FORMAT:PATH.");
        }
        var prompts = o.Prompts is { } promptsPath ? MethodPrompts.Load(promptsPath) : MethodPrompts.Default;
        var methods = o.Methods.Count == 0 ? ["none"] : o.Methods;
        var decodingParts = methods.SelectMany(m => m.Split(MethodRegistry.CombineSeparator, StringSplitOptions.TrimEntries)).Where(DecodingMethods.IsDecodingMethod).ToList();
        var personaJudgeSpec = DecodingRunOptions.ToSpec(decodingParts, o.DraftPersona, o.JudgePersona, o.DraftTokens, o.PersonaSchedule);
        if (personaJudgeSpec is not null && !local)
        {
            throw new UserErrorException($"--method {decodingParts[0]} decodes with an in-process model's token distributions: use a model folder or the demo model, not a server URL.");
        }
        var personaJudge = new PersonaJudgeStrategy(DecodingRunOptions.ToOptions(personaJudgeSpec));
        var ivoSpec = IvoRunOptions.ToSpec(methods, o.Ivo.ValueModel, o.Ivo.Beta, o.Ivo.Candidates, o.Ivo.BlockTokens, o.Ivo.Beams, o.Ivo.Blocks);
        if (ivoSpec is not null && !local)
        {
            throw new UserErrorException("--method ivo / ivo-block guides an in-process model's logits: use a model folder or the demo model, not a server URL.");
        }
        // Checks names, and that a white-box part comes last (innermost) in a combination; combinations with a
        // decoding-time method are checked by the registry below.
        var diffPoSpec = DiffPoRunOptions.ToSpec(methods, o.DiffPo.Aligner, o.DiffPo.Window, o.DiffPo.MaxIterations, o.DiffPo.Reserve);
        var canonical = methods.Select(m => m.Split(MethodRegistry.CombineSeparator, StringSplitOptions.TrimEntries).Any(p => DecodingMethods.IsDecodingMethod(p) || IvoMethods.IsIvo(p) || DiffPoMethods.IsDiffPo(p))
            ? m : WhiteBoxRunOptions.Normalize(m)).ToList();
        if (!local && canonical.Any(m => BiasFree.Engine.WhiteBox.WhiteBoxMethods.IsWhiteBox(m.Split(WhiteBoxRunOptions.Combine)[^1])))
        {
            throw new UserErrorException("the white-box methods (fairsteer..., biasfilter) need an in-process model: --target MODEL_FOLDER or the demo model, not a server URL.");
        }
        var whiteBox = WhiteBoxRunOptions.SpecFor(canonical, o.WhiteBox.Steering, o.WhiteBox.RewardModel, o.WhiteBox.RewardRef, o.WhiteBox.Beta, o.WhiteBox.Keep, o.WhiteBox.Children, o.WhiteBox.Segment, o.WhiteBox.Margin, o.WhiteBox.LikelihoodWeight);
        var registry = IvoMethods.Register(DecodingMethods.Register(WhiteBoxRunOptions.Registry(prompts, whiteBox), personaJudge), IvoRunOptions.ToOptions(ivoSpec));
        var diffPo = diffPoSpec is null ? null : DiffPoRunOptions.Load(diffPoSpec, resumed: false);
        if (diffPo is not null) DiffPoMethods.Register(registry, diffPo);
        foreach (var m in methods)
        {
            if (!registry.IsKnown(m))
            {
                throw new UserErrorException($"unknown method '{m}'; available: {string.Join(", ", registry.Names)} (combine with '+', e.g. self-awareness+cot).");
            }
        }
        CheckScheduling(o);
        CheckPrecision(o);
        if (o.Limit is < 1)
        {
            throw new UserErrorException("--limit must be at least 1.");
        }
        if (o.MaxTokens < 1)
        {
            throw new UserErrorException("--max-tokens must be at least 1.");
        }
        if (o.Temperature is < 0 or > 100 || o.Temperature is float t && !float.IsFinite(t))
        {
            throw new UserErrorException("--temperature must be between 0 and 100.");
        }
        if (!local && (o.DType is not null || o.Device is not null || o.ChatTemplate is not null || o.Adapter is not null))
        {
            throw new UserErrorException("--dtype, --device, --chat-template and --adapter apply only to a local model folder or the demo model, not to a server URL.");
        }
        if (o.RunId is { } id && (id.Length is 0 or > 100 || id.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))))
        {
            throw new UserErrorException("--run-id may contain only letters, digits, '-', '_' and '.' (at most 100).");
        }

        EvaluationTarget target;
        if (local)
        {
            var settings = new LocalTargetSettings(demo, NormalizeDType(o.DType), NormalizeDevice(o.Device), NormalizeTemplate(o.ChatTemplate), NormalizeAdapter(o.Adapter));
            target = demo ? LocalTargets.Demo(settings, FindDemoModel(), o.Model, KvCacheBytes(o), EngineWorkers(o)) : LocalTargets.ModelFolder(o.Target!, o.Model, settings, KvCacheBytes(o), EngineWorkers(o));
            if (personaJudgeSpec is not null)
            {
                target = DecodingMethods.WithDecoding(target, personaJudge.Options);
            }
        }
        else
        {
            target = EvaluationTarget.OpenAICompatible(ServerOptions(o.Target!, o.Model!, o.ApiKeyEnv, o) with
            {
                AdditionalEndpoints = [.. o.Replicas.Select(r => new Uri(r))],
                EndpointConcurrency = o.EndpointConcurrency,
            });
        }
        if (diffPo is not null)
        {
            // The aligner runs in-process over any target: refinements pass the run's recording and cache on their way.
            target = DiffPoMethods.WithAligner(target, diffPo);
        }
        EvaluationJudges judges;
        if (panel)
        {
            judges = Panel(o.Judge, new JudgeFactoryOptions
            {
                DefaultModel = o.JudgeModel,
                ApiKeyEnvironmentVariable = o.JudgeApiKeyEnv ?? o.ApiKeyEnv,
                Timeout = TimeSpan.FromSeconds(o.Timeout ?? 120),
                Retries = o.Retries ?? 3,
                TieRule = o.Tie == "unbiased" ? TieRule.Unbiased : TieRule.Biased,
                Defences = defences,
                Demo = DemoJudge.Create,
            });
        }
        else if (!llmJudge)
        {
            judges = DemoJudge.RuleWithOfflineDialogueJudge();
        }
        else
        {
            if (string.IsNullOrWhiteSpace(o.JudgeModel))
            {
                throw new UserErrorException("--judge-model NAME is required with --judge URL.");
            }
            if (o.JudgeVotes is < 1 or > 15)
            {
                throw new UserErrorException("--judge-votes must be between 1 and 15.");
            }
            judges = EvaluationJudges.Llm(ServerOptions(o.Judge, o.JudgeModel, o.JudgeApiKeyEnv ?? o.ApiKeyEnv, o), o.JudgeVotes, defences);
        }
        return (new Evaluation(o.Suites, target)
        {
            RunId = o.RunId ?? Evaluation.NewRunId(),
            SuiteOptions = new SuiteOptions(o.Seed, SuiteOptions.ParseContext(o.Context), SuiteOptions.ParseOptions(o.OptionsShown), SuiteOptions.ParseLabelRule(o.LabelRule)),
            // The templates are stored in full with the run, so a resume sends the same wording even if ours changes.
            Prompts = prompts,
            PersonaJudge = personaJudgeSpec,
            DiffPo = diffPoSpec,
            WhiteBox = whiteBox,
            Ivo = ivoSpec,
            PromptsFile = o.Prompts is null ? null : Path.GetFullPath(o.Prompts),
            Limit = o.Limit,
            Precision = o.Adaptive.Precision,
            PrecisionScope = o.Adaptive.Scope,
            Methods = methods,
            MethodRegistry = registry,
            Judges = judges,
            Settings = new EvaluationSettings
            {
                Temperature = o.Temperature,
                MaxTokens = o.MaxTokens,
                Concurrency = o.Concurrency ?? 32,
                // White-box replies are cached under keys that include the content hashes of their artefacts
                // (RunSpec.CacheIdentityFor), so a refit or a retrained reward model never reuses old replies. IVO's keys
                // carry the value model's hash and its settings the same way; without a hash they are never read back.
                NoCache = o.NoCache || (whiteBox is not null && !whiteBox.Cacheable) || (ivoSpec is not null && !ivoSpec.Cacheable),
            },
        }, personaJudge, diffPo);
    }

    /// <summary>A judge panel from its --judge text; mistakes in it are reported as option errors.</summary>
    private static EvaluationJudges Panel(string judge, JudgeFactoryOptions options)
    {
        try
        {
            // demo:PATH judges are recorded absolute and pinned to their content hash (a resume from elsewhere finds them).
            return EvaluationJudges.Panel(JudgeSpec.ParseList(DemoJudge.Pin(judge)), options);
        }
        catch (ArgumentException ex)
        {
            throw new UserErrorException($"--judge: {ex.Message}", ex);
        }
    }

    private static OpenAICompatibleTargetOptions ServerOptions(string endpoint, string model, string? apiKeyEnv, Options o)
    {
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            throw new UserErrorException($"'{endpoint}' is not an http(s) URL such as http://127.0.0.1:8000/v1.");
        }
        return new OpenAICompatibleTargetOptions
        {
            Endpoint = uri,
            Model = model,
            ApiKeyEnvironmentVariable = apiKeyEnv,
            Timeout = TimeSpan.FromSeconds(o.Timeout ?? 120),
            MaxRetries = o.Retries ?? 3,
            BaseDelay = TimeSpan.FromSeconds(1),
            MaxTokensParameter = MaxTokensParameters.Parse(o.MaxTokensField),
            // --concurrency above 256 would otherwise queue for connections (one request per HTTP/1.1 connection).
            MaxConnectionsPerServer = Math.Clamp(o.Concurrency ?? 32, 256, OpenAICompatibleTargetOptions.MaxConnectionsLimit),
        };
    }

    /// <summary>Run specs are stored: a URL must not carry credentials (user info or a query string).</summary>
    private static void RejectCredentialsInUrl(string option, string text)
    {
        if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && EvaluationTarget.IsHttpUrl(text) && (uri.UserInfo.Length > 0 || uri.Query.Length > 0))
        {
            throw new UserErrorException($"{option} must not contain user info or a query string (runs are stored); put the key in the environment variable named by --api-key-env.");
        }
    }

    /// <summary>The demo model's folder, or a user error saying where it was looked for and what to do.</summary>
    private static string FindDemoModel()
    {
        try
        {
            return DemoModel.Locate();
        }
        catch (DirectoryNotFoundException ex)
        {
            throw new UserErrorException($"no --target and {ex.Message} Or pass --target URL --model NAME (or --target MODEL_FOLDER).", ex);
        }
    }

    private static string NormalizeDType(string? dtype)
    {
        if (dtype is null)
        {
            return "float32";
        }
        return LocalModel.ParseDType(dtype) == TorchSharp.torch.ScalarType.BFloat16 ? "bfloat16" : "float32";
    }

    private static string NormalizeDevice(string? device) => device?.Trim().ToLowerInvariant() switch
    {
        null or "cpu" => "cpu",
        "cuda" => "cuda",
        _ => throw new UserErrorException($"unsupported --device '{device}': use cpu or cuda."),
    };

    private static string? NormalizeTemplate(string? name)
    {
        if (name is null)
        {
            return null;
        }
        var n = name.Trim().ToLowerInvariant();
        return ChatTemplate.KnownNames.Contains(n, StringComparer.Ordinal)
            ? n
            : throw new UserErrorException($"unknown --chat-template '{name}': use {string.Join(", ", ChatTemplate.KnownNames)}.");
    }

    private static string? NormalizeAdapter(string? adapter)
    {
        if (adapter is null)
        {
            return null;
        }
        var full = Path.GetFullPath(adapter);
        if (!File.Exists(Path.Combine(full, "adapter_config.json")) || !File.Exists(Path.Combine(full, "adapter_model.safetensors")))
        {
            throw new UserErrorException($"--adapter {adapter}: not a PEFT adapter folder (it needs adapter_config.json and adapter_model.safetensors).");
        }
        return full;
    }

    private static readonly HashSet<string> WarnedKeyVariables = new(StringComparer.Ordinal);

    /// <summary>One stderr warning per variable: a missing key is fine for a local server but explains a later 401.</summary>
    private static void WarnIfApiKeyMissing(string? variable)
    {
        if (string.IsNullOrWhiteSpace(variable) || !string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(variable)))
        {
            return;
        }
        lock (WarnedKeyVariables)
        {
            if (WarnedKeyVariables.Add(variable))
            {
                Console.Error.WriteLine($"warning: environment variable {variable} (--api-key-env) is not set; requests are sent without an API key (fine for a local server).");
            }
        }
    }

    /// <summary>Fails fast with a clear message when nothing listens at the endpoint (no request is sent).</summary>
    private static async Task CheckReachableAsync(string what, Uri endpoint, CancellationToken ct)
    {
        using var tcp = new TcpClient();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(TimeSpan.FromSeconds(10));
        try
        {
            await tcp.ConnectAsync(endpoint.Host, endpoint.Port, cts.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            var why = ex is SocketException se ? se.Message : "timed out";
            throw new UserErrorException($"cannot reach the {what} at {endpoint}: {why}.");
        }
    }
}
