using System.CommandLine;
using System.Globalization;
using System.Net.Sockets;
using BiasFree.Engine.Chat;
using BiasFree.Engine.DemoModel;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Tokenization;
using BiasFree.Judges;
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
        int Bootstrap = Scoring.Bootstrap.DefaultResamples, string Baseline = RunReport.Baseline, int? KvCacheMb = null, string? Prompts = null);

    public static Command Build()
    {
        var suite = new Option<string[]>("--suite", "-s") { Description = $"Suite(s), repeatable or comma list: {string.Join(", ", SuiteRegistry.ValidSpecs)}.", DefaultValueFactory = _ => ["bbq"] };
        var target = new Option<string?>("--target") { Description = $"Base URL of an OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1), or a local Hugging Face model folder run in-process. Default: the embedded demo model (models/demo, or ${DemoModel.PathEnvironmentVariable})." };
        var model = new Option<string?>("--model", "-m") { Description = "Model name at the target (default for a model folder: its name)." };
        var apiKeyEnv = new Option<string>("--api-key-env") { Description = "Environment variable holding the API key (the key is never stored).", DefaultValueFactory = _ => "OPENAI_API_KEY" };
        var method = new Option<string[]>("--method") { Description = $"Mitigation method(s), comma list: {string.Join(", ", PromptingMitigations.Names)}.", DefaultValueFactory = _ => ["none"] };
        var judge = new Option<string>("--judge") { Description = "rule (multiple-choice answer extraction) or the base URL of an OpenAI-compatible LLM judge.", DefaultValueFactory = _ => "rule" };
        var judgeModel = new Option<string?>("--judge-model") { Description = "Model name of the LLM judge." };
        var judgeApiKeyEnv = new Option<string?>("--judge-api-key-env") { Description = "Environment variable holding the judge's API key (default: --api-key-env)." };
        var judgeVotes = new Option<int>("--judge-votes") { Description = "LLM judge votes per multiple-choice answer (majority).", DefaultValueFactory = _ => 3 };
        var concurrency = new Option<int?>("--concurrency", "-j") { Description = "Requests in flight (default 32)." };
        var timeout = new Option<double?>("--timeout") { Description = "Seconds per request attempt (default 120)." };
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

        var cmd = new Command("run", "Run probe suites against a target and judge the answers.")
        {
            suite, target, model, apiKeyEnv, method, judge, judgeModel, judgeApiKeyEnv, judgeVotes, concurrency, timeout, retries, temperature, seed, maxTokens,
            limit, runsDir, runId, resume, dtype, device, chatTemplate, noCache, context, optionsShown, labelRule, bootstrap, baseline, kvCacheMb, prompts,
        };
        // Options that define what a run is; a resumed run keeps its stored values for all of them.
        Option[] runSettings = [suite, target, model, apiKeyEnv, method, judge, judgeModel, judgeApiKeyEnv, judgeVotes, temperature, seed, maxTokens, limit, runId, dtype, device, chatTemplate, noCache, context, optionsShown, labelRule, prompts];
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(() => ExecuteAsync(new Options(
            BiasFreeCli.SplitList(pr.GetValue(suite)), pr.GetValue(target), pr.GetValue(model), pr.GetValue(apiKeyEnv)!,
            BiasFreeCli.SplitList(pr.GetValue(method)), pr.GetValue(judge)!, pr.GetValue(judgeModel), pr.GetValue(judgeApiKeyEnv), pr.GetValue(judgeVotes),
            pr.GetValue(concurrency), pr.GetValue(timeout), pr.GetValue(retries), pr.GetValue(temperature), pr.GetValue(seed),
            pr.GetValue(maxTokens), pr.GetValue(limit), pr.GetValue(runsDir)!, pr.GetValue(runId), pr.GetValue(resume),
            pr.GetValue(dtype), pr.GetValue(device), pr.GetValue(chatTemplate), pr.GetValue(noCache),
            [.. runSettings.Where(o => pr.GetResult(o) is { Implicit: false }).Select(o => o.Name)],
            pr.GetValue(context)!, pr.GetValue(optionsShown)!, pr.GetValue(labelRule)!, pr.GetValue(bootstrap), pr.GetValue(baseline)!, pr.GetValue(kvCacheMb), pr.GetValue(prompts)), ct)));
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
        RunSpec spec;
        RunStore? store = null;
        try
        {
            if (o.Resume is { } resumeId)
            {
                if (o.ExplicitRunSettings.Count > 0)
                {
                    throw new UserErrorException($"--resume continues a run with its stored settings; drop {string.Join(", ", o.ExplicitRunSettings)} (only --concurrency, --timeout and --retries can change).");
                }
                const string neverStarted = "A run is recorded only once its suites have loaded and its target has answered, so a run stopped before that never started and has nothing to resume: start it again with the same options.";
                if (!File.Exists(Path.Combine(o.RunsDir, RunStore.FileName)))
                {
                    throw new UserErrorException($"no run '{resumeId}' to resume: there is no run store at {Path.GetFullPath(Path.Combine(o.RunsDir, RunStore.FileName))} (is --runs-dir right?). {neverStarted}");
                }
                store = await OpenExistingStoreAsync(o.RunsDir, ct).ConfigureAwait(false);
                var stored = await store.GetRunAsync(resumeId, ct).ConfigureAwait(false)
                    ?? throw new UserErrorException($"no run '{resumeId}' to resume in {store.DatabasePath}: either the id is wrong (`biasfree runs` lists them) or the run never started. {neverStarted}");
                spec = stored with
                {
                    Concurrency = o.Concurrency ?? stored.Concurrency,
                    TimeoutSeconds = o.Timeout ?? stored.TimeoutSeconds,
                    Retries = o.Retries ?? stored.Retries,
                };
            }
            else
            {
                spec = NewSpec(o);
                if (o.RunId is not null && File.Exists(Path.Combine(o.RunsDir, RunStore.FileName)))
                {
                    store = await RunStore.OpenDirectoryAsync(o.RunsDir, ct).ConfigureAwait(false);
                    if (await store.GetRunAsync(spec.RunId, ct).ConfigureAwait(false) is not null)
                    {
                        throw new UserErrorException($"run '{spec.RunId}' already exists; continue it with --resume {spec.RunId}.");
                    }
                }
            }

            // Everything that can be wrong with the options is checked before a new run is recorded.
            ReportSettingsOptions.For(spec, o.Bootstrap, o.Baseline);
            var probes = LoadProbes(spec);
            using var judges = BuildJudges(spec, probes);
            IChatClient target;
            if (IsLocalFolder(spec.TargetEndpoint))
            {
                if (o.KvCacheMb is < 1)
                {
                    throw new UserErrorException("--kv-cache-mb must be at least 1.");
                }
                target = LoadLocal(spec.TargetEndpoint!, spec.Model, spec.Local ?? new LocalTargetSettings(), o.KvCacheMb);
                spec = spec with { TargetKey = LocalTargetKey(spec) };
            }
            else
            {
                var targetOptions = TargetOptions(spec);
                target = OpenAICompatibleTarget.Create(targetOptions);
                spec = spec with { TargetKey = TargetDescriptor.For(targetOptions).CacheKey };
                await CheckReachableAsync("target", targetOptions.Endpoint, ct).ConfigureAwait(false);
                WarnIfApiKeyMissing(spec.ApiKeyEnvironmentVariable);
            }
            using var ownedTarget = target;
            if (judges.Endpoint is { } je)
            {
                await CheckReachableAsync("judge", je, ct).ConfigureAwait(false);
                WarnIfApiKeyMissing(spec.JudgeApiKeyEnvironmentVariable ?? spec.ApiKeyEnvironmentVariable);
            }

            store ??= await RunStore.OpenDirectoryAsync(o.RunsDir, ct).ConfigureAwait(false);
            return await RunAsync(o, spec, store, probes, target, judges, ct).ConfigureAwait(false);
        }
        finally
        {
            if (store is not null)
            {
                await store.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static async Task<int> RunAsync(Options o, RunSpec spec, RunStore store, IReadOnlyList<Probe> probes, IChatClient target, JudgeSet judges, CancellationToken ct)
    {
        if (o.Resume is null)
        {
            try
            {
                await store.CreateRunAsync(spec, ct).ConfigureAwait(false);
            }
            catch (InvalidOperationException)
            {
                throw new UserErrorException($"run '{spec.RunId}' already exists; continue it with --resume {spec.RunId}.");
            }
        }
        var total = spec.Methods.Count * probes.Count;
        await store.SetExpectedRowsAsync(spec.RunId, total, ct).ConfigureAwait(false);

        Console.Out.WriteLine($"Run {spec.RunId}: {probes.Count.ToString(CultureInfo.InvariantCulture)} probes × {spec.Methods.Count.ToString(CultureInfo.InvariantCulture)} method(s) against {spec.Model} ({spec.TargetEndpoint}); store {store.DatabasePath}");
        var runner = new EvaluationRunner(store, target, judges.For);
        RunOutcome outcome;
        try
        {
            // In-process targets add the engine's batch occupancy, tokens/s, queue wait and cache use to the progress line.
            var engine = target.GetService<EngineChatClient>();
            outcome = await ProgressView.RunAsync(total, (progress, token) => runner.RunAsync(spec, probes, progress, token), ct,
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

    private static RunSpec NewSpec(Options o)
    {
        var demo = o.Target is null;
        var target = o.Target ?? FindDemoModel();
        var model = o.Model;
        if (demo)
        {
            model ??= DemoModel.ModelId;
        }
        else if (!IsHttpUrl(target))
        {
            if (!Directory.Exists(target))
            {
                throw new UserErrorException($"'{target}' is not an http(s) URL such as http://127.0.0.1:8000/v1, nor a model folder.");
            }
            target = Path.GetFullPath(target);
            model ??= new DirectoryInfo(target).Name;
        }
        if (string.IsNullOrWhiteSpace(model))
        {
            throw new UserErrorException("--model NAME is required with --target URL.");
        }
        RejectCredentialsInUrl("--target", target);
        if (!string.Equals(o.Judge, "rule", StringComparison.OrdinalIgnoreCase))
        {
            RejectCredentialsInUrl("--judge", o.Judge);
        }
        if (o.Suites.Count == 0)
        {
            throw new UserErrorException("no suite: pass --suite bbq, fairmt or FORMAT:PATH.");
        }
        var methods = new List<string>();
        foreach (var m in o.Methods.Count == 0 ? ["none"] : o.Methods)
        {
            if (!PromptingMitigations.Names.Contains(m, StringComparer.OrdinalIgnoreCase))
            {
                throw new UserErrorException($"unknown method '{m}'; available: {string.Join(", ", PromptingMitigations.Names)}.");
            }
            var name = PromptingMitigations.Normalize(m);
            if (!methods.Contains(name, StringComparer.Ordinal))
            {
                methods.Add(name);
            }
        }
        if (o.Concurrency is < 1 or > 1024)
        {
            throw new UserErrorException("--concurrency must be between 1 and 1024.");
        }
        if (o.Limit is < 1)
        {
            throw new UserErrorException("--limit must be at least 1.");
        }
        if (o.MaxTokens < 1)
        {
            throw new UserErrorException("--max-tokens must be at least 1.");
        }
        if (o.Timeout is <= 0)
        {
            throw new UserErrorException("--timeout must be positive.");
        }
        if (o.Temperature is < 0 or > 100 || o.Temperature is float t && !float.IsFinite(t))
        {
            throw new UserErrorException("--temperature must be between 0 and 100.");
        }
        var local = IsLocalFolder(target);
        LocalTargetSettings? localSettings = null;
        if (local)
        {
            localSettings = new LocalTargetSettings(demo, NormalizeDType(o.DType), NormalizeDevice(o.Device), NormalizeTemplate(o.ChatTemplate));
        }
        else if (o.DType is not null || o.Device is not null || o.ChatTemplate is not null)
        {
            throw new UserErrorException("--dtype, --device and --chat-template apply only to a local model folder or the demo model, not to a server URL.");
        }
        // The effective temperature is stored (and keys the cache): a server's default when unset (none sent),
        // greedy for a model folder, and sampling at the demo model's trained temperature for the demo model.
        var temperature = o.Temperature ?? (demo ? DemoModel.DefaultTemperature : local ? 0f : null);
        if (o.Retries is < 0)
        {
            throw new UserErrorException("--retries must not be negative.");
        }
        if (o.RunId is { } id && (id.Length is 0 or > 100 || id.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))))
        {
            throw new UserErrorException("--run-id may contain only letters, digits, '-', '_' and '.' (at most 100).");
        }
        // The templates are stored in full with the run, so a resume sends the same wording even if ours changes.
        var methodPrompts = o.Prompts is { } promptsFile ? MethodPrompts.Load(promptsFile) : MethodPrompts.Default;
        return new RunSpec
        {
            Prompts = methodPrompts.Templates,
            PromptsFile = o.Prompts is null ? null : Path.GetFullPath(o.Prompts),
            RunId = o.RunId ?? $"{DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}-{Guid.NewGuid().ToString("N")[..4]}",
            Suites = o.Suites,
            Seed = o.Seed,
            Context = SuiteOptions.Name(SuiteOptions.ParseContext(o.Context)),
            Options = SuiteOptions.Name(SuiteOptions.ParseOptions(o.OptionsShown)),
            LabelRule = SuiteOptions.Name(SuiteOptions.ParseLabelRule(o.LabelRule)),
            Limit = o.Limit,
            TargetEndpoint = target,
            Model = model,
            ApiKeyEnvironmentVariable = o.ApiKeyEnv,
            Methods = methods,
            Judge = o.Judge,
            JudgeModel = o.JudgeModel,
            JudgeApiKeyEnvironmentVariable = o.JudgeApiKeyEnv,
            JudgeVotes = o.JudgeVotes,
            Generation = new GenerationSettings(temperature, o.Seed, o.MaxTokens),
            Local = localSettings,
            NoCache = o.NoCache,
            Concurrency = o.Concurrency ?? 32,
            TimeoutSeconds = o.Timeout ?? 120,
            Retries = o.Retries ?? 3,
        };
    }

    private static OpenAICompatibleTargetOptions TargetOptions(RunSpec spec) => TargetOptions(spec.TargetEndpoint!, spec.Model, spec.ApiKeyEnvironmentVariable, spec);

    private static OpenAICompatibleTargetOptions TargetOptions(string endpoint, string model, string? apiKeyEnv, RunSpec spec)
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
            Timeout = TimeSpan.FromSeconds(spec.TimeoutSeconds),
            MaxRetries = spec.Retries,
            BaseDelay = TimeSpan.FromSeconds(1),
        };
    }

    /// <summary>Run specs are stored: a URL must not carry credentials (user info or a query string).</summary>
    private static void RejectCredentialsInUrl(string option, string text)
    {
        if (Uri.TryCreate(text, UriKind.Absolute, out var uri) && IsHttpUrl(text) && (uri.UserInfo.Length > 0 || uri.Query.Length > 0))
        {
            throw new UserErrorException($"{option} must not contain user info or a query string (runs are stored); put the key in the environment variable named by --api-key-env.");
        }
    }

    private static bool IsHttpUrl(string? text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps);

    /// <summary>A target that is a local Hugging Face model folder, run in-process by the engine.</summary>
    private static bool IsLocalFolder(string? target) => target is not null && !IsHttpUrl(target);

    /// <summary>The demo model's folder, or a user error saying where it was looked for and what to do.</summary>
    private static string FindDemoModel()
    {
        const string what = "train one with `biasfree demo-model train` or pass --target URL --model NAME (or --target MODEL_FOLDER)";
        var env = Environment.GetEnvironmentVariable(DemoModel.PathEnvironmentVariable);
        var path = DemoModel.Find();
        if (path is not null && DemoModel.Exists(path))
        {
            return path;
        }
        if (!string.IsNullOrWhiteSpace(env))
        {
            throw new UserErrorException($"no --target and no demo model at {path} (from ${DemoModel.PathEnvironmentVariable}; it needs config.json, model.safetensors and tokenizer.json): {what}.");
        }
        if (path is not null)
        {
            throw new UserErrorException($"no --target and the demo model at {path} is incomplete (it needs config.json, model.safetensors and tokenizer.json): {what}.");
        }
        throw new UserErrorException($"no --target and no demo model found (looked for {DemoModel.RelativePath} with a config.json in {AppContext.BaseDirectory}, {Directory.GetCurrentDirectory()} and their parent folders; ${DemoModel.PathEnvironmentVariable} is not set): {what}.");
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

    /// <summary>Cache identity of an in-process target: folder and model name, plus the load settings that change replies.</summary>
    private static string LocalTargetKey(RunSpec spec)
    {
        var key = $"local|{spec.TargetEndpoint}|{spec.Model}";
        if (spec.Local is { } l)
        {
            // Defaults keep the key of runs made before these settings existed.
            key += (l.DType == "float32" ? "" : $"|dtype={l.DType}") + (l.Device == "cpu" ? "" : $"|device={l.Device}") +
                (l.ChatTemplate is null ? "" : $"|template={l.ChatTemplate}") + (l.DemoModel ? "|demo" : "");
        }
        return key;
    }

    private static IChatClient LoadLocal(string folder, string model, LocalTargetSettings settings, int? kvCacheMb)
    {
        if (settings.DemoModel ? !DemoModel.Exists(folder) : !LocalModel.IsModelFolder(folder))
        {
            throw new UserErrorException(settings.DemoModel
                ? $"no demo model at {folder} (it needs config.json, model.safetensors and tokenizer.json); train one with `biasfree demo-model train`."
                : $"'{folder}' is not a model folder (it needs config.json and tokenizer.json).");
        }
        var options = new LocalModelOptions
        {
            ModelId = model,
            DType = settings.DType,
            Device = settings.Device,
            ChatTemplate = settings.ChatTemplate,
            KvCacheBytes = (kvCacheMb ?? ContinuousBatchOptions.DefaultKvCacheBytes >> 20) * (1L << 20),
        };
        if (settings.DemoModel)
        {
            options = options with { DefaultTemperature = DemoModel.DefaultTemperature, DefaultMaxOutputTokens = DemoModel.DefaultMaxOutputTokens };
        }
        try
        {
            return new PerRequestSeedChatClient(LocalModel.Load(folder, options));
        }
        catch (ChatTemplateException ex)
        {
            throw new UserErrorException($"cannot choose a chat template for {folder}: {ex.Message}", ex);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new UserErrorException($"cannot load the model folder {folder}: {ex.Message}", ex);
        }
    }

    /// <summary>Loads every suite; with a limit, keeps the first N of a seeded shuffle, in the suite's order.</summary>
    internal static IReadOnlyList<Probe> LoadProbes(RunSpec spec)
    {
        var all = new List<Probe>();
        var seen = new HashSet<(string, string)>();
        foreach (var s in spec.Suites)
        {
            var suite = SuiteRegistry.Resolve(s, spec.SuiteOptions);
            var probes = suite.Load();
            if (suite is IReportsSkippedRows { SkippedRows.Count: > 0 and var skipped })
            {
                Console.Error.WriteLine($"note: {s}: {skipped} rows cannot be labelled and are left out; 'biasfree suites show {s}' lists them.");
            }
            if (spec.Limit is int n && n < probes.Count)
            {
                var rng = new Random(spec.Seed);
                var order = Enumerable.Range(0, probes.Count).ToArray();
                rng.Shuffle(order);
                probes = [.. order.Take(n).Order().Select(i => probes[i])];
            }
            foreach (var p in probes)
            {
                if (!seen.Add((p.Suite, p.Id)))
                {
                    throw new UserErrorException($"probe '{p.Id}' of suite '{p.Suite}' appears twice (is a suite given twice?).");
                }
                all.Add(p);
            }
        }
        if (all.Count == 0)
        {
            throw new UserErrorException("the suites contain no probes.");
        }
        return all;
    }

    private sealed class JudgeSet(IJudge? multipleChoice, IJudge? multiTurn, Uri? endpoint, IChatClient? client) : IDisposable
    {
        public Uri? Endpoint => endpoint;

        public IJudge For(Probe p) => p.Scenario == Scenario.MultipleChoice
            ? multipleChoice ?? throw new InvalidOperationException("no multiple-choice judge")
            : multiTurn ?? throw new InvalidOperationException("no dialogue judge");

        public void Dispose() => client?.Dispose();
    }

    private static JudgeSet BuildJudges(RunSpec spec, IReadOnlyList<Probe> probes)
    {
        var needsDialogue = probes.Any(p => p.Scenario == Scenario.MultiTurn);
        if (string.Equals(spec.Judge, "rule", StringComparison.OrdinalIgnoreCase))
        {
            if (needsDialogue)
            {
                // Offline default for dialogues: the demo model's judge family (docs/judges.md has its measured agreement and flip rate).
                var path = DemoModel.Find();
                if (path is null || !DemoModel.Exists(path))
                {
                    throw new UserErrorException("multi-turn probes need a dialogue judge and no demo model was found: pass --judge URL --judge-model NAME.");
                }
                var (dialogue, demoClient) = DemoJudge.CreateWithClient(path);
                Console.Error.WriteLine($"note: dialogues are judged offline by {dialogue.Name} (the demo model; reliable only on demo-style replies, see docs/judges.md); pass --judge URL --judge-model NAME for an LLM judge.");
                return new JudgeSet(new RuleBasedAnswerExtractor(), dialogue, null, demoClient);
            }
            return new JudgeSet(new RuleBasedAnswerExtractor(), null, null, null);
        }
        if (string.IsNullOrWhiteSpace(spec.JudgeModel))
        {
            throw new UserErrorException("--judge-model NAME is required with --judge URL.");
        }
        if (spec.JudgeVotes is < 1 or > 15)
        {
            throw new UserErrorException("--judge-votes must be between 1 and 15.");
        }
        var options = TargetOptions(spec.Judge, spec.JudgeModel, spec.JudgeApiKeyEnvironmentVariable ?? spec.ApiKeyEnvironmentVariable, spec);
        var client = OpenAICompatibleTarget.Create(options);
        return new JudgeSet(new LlmMultipleChoiceJudge(client, spec.JudgeVotes), new LlmDialogueJudge(client), options.Endpoint, client);
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
