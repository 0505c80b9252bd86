using System.Globalization;
using BiasFree.Adaptive;
using BiasFree.Methods;
using BiasFree.Mitigations;
using BiasFree.Judges;
using BiasFree.Judges.Defences;
using BiasFree.Probes;
using BiasFree.Runs;
using BiasFree.Targets;
using Microsoft.Extensions.AI;

namespace BiasFree.Evaluations;

/// <summary>Decoding and scheduling settings of an evaluation.</summary>
public sealed record EvaluationSettings
{
    /// <summary>Sampling temperature; null uses the target's default (<see cref="EvaluationTarget.DefaultTemperature"/>).</summary>
    public float? Temperature { get; init; }

    /// <summary>Maximum completion tokens per reply (BiasFreeBench: 128).</summary>
    public int MaxTokens { get; init; } = 128;

    /// <summary>Requests in flight.</summary>
    public int Concurrency { get; init; } = 32;

    /// <summary>When true the response cache is not read (every request reaches the target); replies are still cached.</summary>
    public bool NoCache { get; init; }
}

/// <summary>
/// One evaluation: suites × target × methods, judged, in the spirit of Inspect's <c>Task(dataset, solver, scorer)</c>.
/// The run spec stored with the results is derived from these objects (<see cref="Spec"/>), never written by hand,
/// and <see cref="FromSpec"/> rebuilds the same objects from a stored spec to resume the run.
/// </summary>
/// <example>
/// <code>
/// var evaluation = new Evaluation(["bbq"], EvaluationTarget.OpenAICompatible(options))
/// {
///     Methods = ["none", "self-awareness", "cot"],
///     Limit = 100,
/// };
/// await using var store = await RunStore.OpenDirectoryAsync("runs");
/// var outcome = await evaluation.RunAsync(store);
/// var report = await RunReport.BuildAsync(store, evaluation.RunId);
/// </code>
/// </example>
public sealed class Evaluation
{
    private readonly IReadOnlyList<string> _methods = [MethodRegistry.Prompting.Names[0]];
    private readonly string _runId = NewRunId();
    private ProbeSource? _probes;

    /// <summary>An evaluation of <paramref name="target"/> on <paramref name="suites"/> with the vanilla prompt and the rule judge.</summary>
    /// <param name="suites">Suite specs as <see cref="SuiteRegistry.Resolve(string, SuiteOptions)"/> takes them: <c>bbq</c>, <c>fairmt</c>, <c>FORMAT:PATH</c>.</param>
    /// <param name="target">The model under test.</param>
    public Evaluation(IReadOnlyList<string> suites, EvaluationTarget target)
    {
        ArgumentNullException.ThrowIfNull(suites);
        ArgumentNullException.ThrowIfNull(target);
        if (suites.Count == 0)
        {
            throw new ArgumentException("no suite: give bbq, fairmt or FORMAT:PATH.", nameof(suites));
        }
        Suites = suites;
        Target = target;
    }

    /// <summary>Suite specs (see the constructor).</summary>
    public IReadOnlyList<string> Suites { get; }

    /// <summary>The model under test.</summary>
    public EvaluationTarget Target { get; }

    /// <summary>Method names of <see cref="MethodRegistry"/> (combined with <c>+</c> allowed); default <c>none</c>. Duplicates are dropped.</summary>
    public IReadOnlyList<string> Methods
    {
        get => _methods;
        init
        {
            ArgumentNullException.ThrowIfNull(value);
            _methods = value.Count == 0 ? [MethodRegistry.Prompting.Names[0]] : value;
        }
    }

    /// <summary>Where method names are looked up (default: the prompting methods).</summary>
    public MethodRegistry MethodRegistry { get; init; } = MethodRegistry.Prompting;

    /// <summary>
    /// The wording of the prompting methods (default: ours; <see cref="MethodPrompts.Load"/> reads a user's file). It is
    /// stored in the run spec, so a resumed run uses the same wording. With the default <see cref="MethodRegistry"/> the
    /// methods are worded by it; a registry given in code carries its own wording (<see cref="MethodRegistry.PromptingWith"/>).
    /// </summary>
    public MethodPrompts Prompts { get; init; } = MethodPrompts.Default;

    /// <summary>The file <see cref="Prompts"/> came from, recorded for reports; null for our wording or code.</summary>
    public string? PromptsFile { get; init; }

    /// <summary>Personas and settings of the decoding-time methods (persona-judge and its baselines), stored with the run; null when none runs.</summary>
    public PersonaJudgeSpec? PersonaJudge { get; init; }

    /// <summary>DiffPO's aligner and settings, stored with the run; null when <c>diffpo</c> does not run.</summary>
    public DiffPoSpec? DiffPo { get; init; }
    /// <summary>
    /// Artefacts of the white-box methods (FairSteer folder and its hash, BiasFilter's reward models and settings), stored
    /// with the run so a resume rebuilds the same methods and their replies are cached under the artefacts' hashes.
    /// </summary>
    public WhiteBoxSpec? WhiteBox { get; init; }

    /// <summary>Value model and settings of the IVO methods, stored with the run; null when none runs.</summary>
    public IvoSpec? Ivo { get; init; }

    /// <summary>The judges (default: the rule-based multiple-choice judge).</summary>
    public EvaluationJudges Judges { get; init; } = EvaluationJudges.Rule();

    /// <summary>
    /// How suites are instantiated: seed, BBQ context filter, options shown, label rule (default
    /// <see cref="SuiteOptions.Default"/>). Its seed is <see cref="Seed"/>.
    /// </summary>
    public SuiteOptions SuiteOptions { get; init; } = SuiteOptions.Default;

    /// <summary>Seed of probe generation, limit sampling and generation: a shortcut for <see cref="SuiteOptions"/>' seed.</summary>
    public int Seed
    {
        get => SuiteOptions.Seed;
        init => SuiteOptions = SuiteOptions with { Seed = value };
    }

    /// <summary>At most this many probes per suite, chosen by <see cref="ProbeSampling.Stratified"/>; null for all.</summary>
    public int? Limit { get; init; }

    /// <summary>How the limit samples (<see cref="RunSpec.Sampling"/>); only resumed runs stored before stratified sampling set null.</summary>
    public string? Sampling { get; init; } = RunSpec.StratifiedSampling;

    /// <summary>
    /// Adaptive sampling: the target half-width of each cell's 95 % BFS interval (0.02 = ±2 points), or null to run every
    /// probe. Probes then run in <see cref="ProbeSampling.StratifiedOrder"/> and each cell stops once
    /// <see cref="PrecisionRule.IsPrecise"/> holds or its probes run out. Resuming with a lower value extends the run
    /// without asking any probe twice. See docs/adaptive-sampling.md.
    /// </summary>
    public double? Precision { get; init; }

    /// <summary>What a cell of adaptive sampling is: <see cref="AdaptiveSpec.CategoryScope"/> (default) or <see cref="AdaptiveSpec.MethodScope"/>.</summary>
    public string PrecisionScope { get; init; } = AdaptiveSpec.CategoryScope;

    /// <summary>Decoding and scheduling settings.</summary>
    public EvaluationSettings Settings { get; init; } = new();

    /// <summary>Id of the run in the store (default: a time stamp plus a random suffix).</summary>
    public string RunId
    {
        get => _runId;
        init
        {
            ValidateRunId(value);
            _runId = value;
        }
    }

    /// <summary>When the run was created (kept from the stored spec on resume).</summary>
    public DateTimeOffset Created { get; init; } = DateTimeOffset.UtcNow;

    /// <summary>What a run of this evaluation should know before it starts, e.g. that replies are not cached.</summary>
    public IReadOnlyList<string> Warnings => Target.CacheIdentity is null
        ? [$"target {Target.Model} ({Target.Kind}) has no cache identity, so its replies are not cached (give EvaluationTarget.Custom a cacheIdentity that changes with the model to cache them)."]
        : [];

    /// <summary>The run spec stored with the results, derived from this evaluation.</summary>
    public RunSpec Spec
    {
        get
        {
            var methods = new List<string>();
            foreach (var m in Methods)
            {
                var name = MethodRegistry.Normalize(m);
                if (!methods.Contains(name, StringComparer.Ordinal))
                {
                    methods.Add(name);
                }
            }
            if (Limit is < 1)
            {
                throw new ArgumentOutOfRangeException(nameof(Limit), Limit, "limit must be at least 1.");
            }
            if (Settings.MaxTokens < 1)
            {
                throw new ArgumentOutOfRangeException(nameof(Settings), Settings.MaxTokens, "max tokens must be at least 1.");
            }
            if (Settings.Concurrency is < 1 or > 1024)
            {
                throw new ArgumentOutOfRangeException(nameof(Settings), Settings.Concurrency, "concurrency must be between 1 and 1024.");
            }
            var adaptive = Precision is double h ? new AdaptiveSpec(h, PrecisionScope) : null;
            adaptive?.Validate();
            var temperature = Settings.Temperature ?? Target.DefaultTemperature;
            if (temperature is < 0 or > 100 || temperature is float t && !float.IsFinite(t))
            {
                throw new ArgumentOutOfRangeException(nameof(Settings), temperature, "temperature must be between 0 and 100.");
            }
            return new RunSpec
            {
                RunId = RunId,
                Created = Created,
                Suites = Suites,
                Seed = Seed,
                Context = SuiteOptions.Name(SuiteOptions.Context),
                Options = SuiteOptions.Name(SuiteOptions.Options),
                LabelRule = SuiteOptions.Name(SuiteOptions.LabelRule),
                Limit = Limit,
                Sampling = Limit is null ? null : Sampling,
                Adaptive = adaptive,
                TargetKind = Target.Kind,
                TargetEndpoint = Target.Endpoint,
                Model = Target.Model,
                ApiKeyEnvironmentVariable = Target.ApiKeyEnvironmentVariable,
                Methods = methods,
                Prompts = Prompts.Templates,
                PromptsFile = PromptsFile,
                Judge = Judges.Name,
                JudgeModel = Judges.Model,
                JudgeApiKeyEnvironmentVariable = Judges.ApiKeyEnvironmentVariable,
                JudgeVotes = Judges.Votes,
                JudgeTie = Judges.IsPanel && Judges.TieRule == TieRule.Unbiased ? "unbiased" : null,
                // Null for all, so a default run's spec reads as before the option existed.
                JudgeDefences = Judges.Defences == JudgeDefences.All ? null : JudgeDefenceList.Format(Judges.Defences),
                Generation = new GenerationSettings(temperature, Seed, Settings.MaxTokens),
                MaxTokensField = Target.MaxTokensField,
                TargetReplicas = Target.Replicas,
                EndpointConcurrency = Target.EndpointConcurrency,
                Concurrency = Settings.Concurrency,
                TimeoutSeconds = Target.TimeoutSeconds,
                Retries = Target.Retries,
                Local = Target.Local,
                NoCache = Settings.NoCache,
                PersonaJudge = PersonaJudge,
                DiffPo = DiffPo,
                WhiteBox = WhiteBox,
                Ivo = Ivo,
                TargetKey = Target.CacheIdentity,
                CacheDisabled = Target.CacheIdentity is null,
            };
        }
    }

    /// <summary>The probes this evaluation runs (every suite, limited and sampled as the spec says).</summary>
    /// <param name="skippedRows">Told (suite spec, count) for each file suite that left rows out because they cannot be labelled.</param>
    public IReadOnlyList<Probe> LoadProbes(Action<string, int>? skippedRows = null) => LoadProbes(Spec, skippedRows);

    /// <summary>
    /// The probes of a run spec: each suite loaded with the spec's seed; with a limit, the suite's
    /// <see cref="ProbeSampling.Stratified"/> sample (or the legacy uniform sample for runs stored before it).
    /// Throws <see cref="ArgumentException"/> when a probe appears twice or no probe is left.
    /// </summary>
    /// <param name="spec">The run spec.</param>
    /// <param name="skippedRows">Told (suite spec, count) for each file suite that left rows out because they cannot be labelled (<see cref="IReportsSkippedRows"/>).</param>
    public static IReadOnlyList<Probe> LoadProbes(RunSpec spec, Action<string, int>? skippedRows = null) => [.. ProbeSource.Open(spec, skippedRows)];

    /// <summary>
    /// The probes this evaluation runs, validated and counted but not held: enumerating reads the suites again
    /// (see <see cref="ProbeSource"/>). Same probes, same order as <see cref="LoadProbes(Action{string, int}?)"/>.
    /// <see cref="StartAsync"/> runs the source opened last here instead of opening its own, so checking the probes
    /// before a run (as <c>biasfree run</c> does) does not read and validate a large suite file twice.
    /// </summary>
    /// <param name="skippedRows">Told (suite spec, count) for each file suite that left rows out because they cannot be labelled.</param>
    public ProbeSource OpenProbes(Action<string, int>? skippedRows = null) => _probes = ProbeSource.Open(Spec, skippedRows);

    /// <summary>
    /// Rebuilds the evaluation of a stored run. <paramref name="target"/> rebuilds its target (default:
    /// <see cref="EvaluationTarget.FromSpec"/>, servers only; in-process models: <c>LocalTargets.FromSpec</c>);
    /// judges and methods given in code must be given again.
    /// </summary>
    public static Evaluation FromSpec(RunSpec spec, Func<RunSpec, EvaluationTarget>? target = null, EvaluationJudges? judges = null, MethodRegistry? methods = null) =>
        new(spec.Suites, (target ?? EvaluationTarget.FromSpec)(spec))
        {
            RunId = spec.RunId,
            Created = spec.Created,
            SuiteOptions = spec.SuiteOptions,
            Limit = spec.Limit,
            Sampling = spec.Sampling,
            Precision = spec.Adaptive?.Precision,
            PrecisionScope = spec.Adaptive?.Scope ?? AdaptiveSpec.CategoryScope,
            Methods = spec.Methods,
            MethodRegistry = methods ?? MethodRegistry.Prompting,
            Prompts = spec.GetMethodPrompts(),
            PromptsFile = spec.PromptsFile,
            PersonaJudge = spec.PersonaJudge,
            DiffPo = spec.DiffPo,
            WhiteBox = spec.WhiteBox,
            Ivo = spec.Ivo,
            Judges = judges ?? EvaluationJudges.FromSpec(spec),
            Settings = new EvaluationSettings
            {
                Temperature = spec.Generation.Temperature,
                MaxTokens = spec.Generation.MaxTokens ?? 128,
                Concurrency = spec.Concurrency,
                NoCache = spec.NoCache,
            },
        };

    /// <summary>
    /// Loads the probes (or takes those <see cref="OpenProbes"/> opened: the settings that choose them cannot change after
    /// construction), checks the judges cover them, opens the target and creates the run in <paramref name="store"/> (or
    /// continues it when it exists with the same settings). Dispose the session to release the target.
    /// </summary>
    public async Task<EvaluationSession> StartAsync(RunStore store, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var spec = Spec;
        if (!spec.NoCache)
        {
            // Overlaps reading the cache's keys with the start-up below (the suites' validation pass, the run's record).
            store.BeginLoadingCachedKeys();
        }
        // A JSONL suite this build checked before in this store (same bytes) is not read twice before the run reads it.
        var check = _probes is null ? await SuiteCheck.FindAsync(spec, store, cancellationToken).ConfigureAwait(false) : null;
        var source = _probes ?? ProbeSource.Open(spec, null, check);
        if (check is { Recorded: null })
        {
            await store.RecordSuiteCheckAsync(check.Key, source.Count, source.Scenarios, cancellationToken).ConfigureAwait(false);
        }
        Judges.EnsureCovers(source);
        var warnings = new List<string>(Warnings);

        var stored = await store.GetRunAsync(spec.RunId, cancellationToken).ConfigureAwait(false);
        if (stored is not null)
        {
            var differences = Differences(stored, spec);
            if (differences.Count > 0)
            {
                throw new ArgumentException($"run '{spec.RunId}' exists with other settings ({string.Join("; ", differences)}); rebuild it with Evaluation.FromSpec or choose another run id.");
            }
            if (stored.TargetKey != spec.TargetKey)
            {
                warnings.Add($"the target's cache identity differs from the one run '{spec.RunId}' started with (stored by an older version, or the model changed): its completed rows are kept, other replies are not taken from the old cache entries.");
            }
            // The stored spec stays the record; only the identity and scheduling of this session are current, and an
            // adaptive run's precision, which a resume may change to extend (or merely finish) the run.
            var adaptive = stored.Adaptive is { } a && spec.Adaptive is { } now && now.Precision != a.Precision ? a with { Precision = now.Precision } : stored.Adaptive;
            spec = stored with
            {
                TargetKey = spec.TargetKey, Concurrency = spec.Concurrency, TimeoutSeconds = spec.TimeoutSeconds, Retries = spec.Retries, Adaptive = adaptive,
                TargetReplicas = spec.TargetReplicas, EndpointConcurrency = spec.EndpointConcurrency,
            };
            if (!ReferenceEquals(adaptive, stored.Adaptive))
            {
                await store.UpdateRunSpecAsync(stored with { Adaptive = adaptive }, cancellationToken).ConfigureAwait(false);
            }
        }
        // The run streams its probes from the suites. An adaptive run's scheduler orders the whole suite
        // (ProbeSampling.StratifiedOrder) and releases it batch by batch out of that order: it keeps each probe's place
        // and reads a batch again when it releases it (AdaptiveScheduler), so it does not hold the probes either.
        IReadOnlyCollection<Probe> probes = source;
        if (stored is null && spec.Adaptive is { } fresh)
        {
            spec = spec with { Adaptive = fresh with { Pool = AdaptiveSpec.PoolOf(source.Scanned()) } };
        }

        var client = Target.Open();
        try
        {
            var temperature = spec.Generation.Temperature;
            IChatClient run = Target.SeedPerRequest && temperature is not 0f ? new PerRequestSeedChatClient(client) : client;
            if (stored is null)
            {
                await store.CreateRunAsync(spec, cancellationToken).ConfigureAwait(false);
            }
            // An adaptive run's size is known only when it stops; reports show its cells' use instead.
            if (spec.Adaptive is null)
            {
                await store.SetExpectedRowsAsync(spec.RunId, spec.Methods.Count * probes.Count, cancellationToken).ConfigureAwait(false);
            }
            return new EvaluationSession(store, spec, probes, run, Target.OwnsClient ? client : null, Judges,
                ReferenceEquals(MethodRegistry, MethodRegistry.Prompting) ? MethodRegistry.PromptingWith(Prompts) : MethodRegistry,
                stored is not null, warnings);
        }
        catch
        {
            if (Target.OwnsClient)
            {
                client.Dispose();
            }
            throw;
        }
    }

    /// <summary>Runs (or continues) the evaluation into <paramref name="store"/>.</summary>
    public async Task<RunOutcome> RunAsync(RunStore store, IProgress<RunProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        using var session = await StartAsync(store, cancellationToken).ConfigureAwait(false);
        return await session.RunAsync(progress, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The settings in which two specs of one run differ (scheduling, creation time and cache identity aside).</summary>
    public static IReadOnlyList<string> Differences(RunSpec stored, RunSpec current)
    {
        ArgumentNullException.ThrowIfNull(stored);
        ArgumentNullException.ThrowIfNull(current);
        var d = new List<string>();
        void Check(string name, object? a, object? b)
        {
            if (!Equals(a, b))
            {
                d.Add(string.Create(CultureInfo.InvariantCulture, $"{name}: stored {a ?? "none"}, now {b ?? "none"}"));
            }
        }
        Check("suites", string.Join(",", stored.Suites), string.Join(",", current.Suites));
        Check("seed", stored.Seed, current.Seed);
        Check("context", stored.SuiteOptions.Context, current.SuiteOptions.Context);
        Check("options", stored.SuiteOptions.Options, current.SuiteOptions.Options);
        Check("label rule", stored.SuiteOptions.LabelRule, current.SuiteOptions.LabelRule);
        Check("limit", stored.Limit, current.Limit);
        Check("sampling", stored.Sampling, current.Sampling);
        // The precision itself may change on resume (that is how an adaptive run is extended); whether the run is
        // adaptive and what its cells are may not.
        Check("precision scope", stored.Adaptive?.Scope ?? "none (every probe)", current.Adaptive?.Scope ?? "none (every probe)");
        Check("target", stored.TargetEndpoint, current.TargetEndpoint);
        Check("target kind", EvaluationTarget.KindOf(stored), EvaluationTarget.KindOf(current));
        Check("model", stored.Model, current.Model);
        Check("methods", string.Join(",", stored.Methods), string.Join(",", current.Methods));
        var changed = MethodPromptsDifference(stored.GetMethodPrompts(), current.GetMethodPrompts());
        if (changed.Count > 0)
        {
            d.Add($"method prompts: templates {string.Join(", ", changed)} differ");
        }
        Check("judge", stored.Judge, current.Judge);
        Check("judge model", stored.JudgeModel, current.JudgeModel);
        Check("judge votes", stored.JudgeVotes, current.JudgeVotes);
        Check("judge tie rule", stored.JudgeTie ?? "biased", current.JudgeTie ?? "biased");
        Check("judge defences", JudgeDefenceList.Format(stored.JudgeDefenceLayers), JudgeDefenceList.Format(current.JudgeDefenceLayers));
        Check("generation", stored.Generation, current.Generation);
        if (stored.MaxTokensField is not null)
        {
            Check("max-tokens field", stored.MaxTokensField, current.MaxTokensField);
        }
        Check("local", stored.Local ?? new LocalTargetSettings(), current.Local ?? new LocalTargetSettings());
        Check("no cache", stored.NoCache, current.NoCache);
        Check("cache disabled", stored.CacheDisabled, current.CacheDisabled);
        return d;
    }

    private static List<string> MethodPromptsDifference(MethodPrompts a, MethodPrompts b) =>
        [.. a.Templates.Keys.Union(b.Templates.Keys).Order(StringComparer.Ordinal)
            .Where(k => !string.Equals(a.Templates.GetValueOrDefault(k), b.Templates.GetValueOrDefault(k), StringComparison.Ordinal))];

    /// <summary>A new run id: UTC time stamp and 4 random hex digits.</summary>
    public static string NewRunId() =>
        $"{DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}-{Guid.NewGuid().ToString("N")[..4]}";

    /// <summary>Throws unless <paramref name="id"/> has 1 to 100 letters, digits, '-', '_' or '.'.</summary>
    public static void ValidateRunId(string id)
    {
        if (id is null || id.Length is 0 or > 100 || id.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')))
        {
            throw new ArgumentException("a run id may contain only letters, digits, '-', '_' and '.' (at most 100).", nameof(id));
        }
    }
}

/// <summary>A started <see cref="Evaluation"/>: the run exists in the store and the target is open.</summary>
public sealed class EvaluationSession : IDisposable
{
    private readonly RunStore _store;
    private readonly IChatClient _target;
    private readonly IDisposable? _owned;
    private readonly EvaluationJudges _judges;
    private readonly MethodRegistry _methods;

    internal EvaluationSession(RunStore store, RunSpec spec, IReadOnlyCollection<Probe> probes, IChatClient target, IDisposable? owned,
        EvaluationJudges judges, MethodRegistry methods, bool resumed, IReadOnlyList<string> warnings)
    {
        _store = store;
        Spec = spec;
        Probes = probes;
        _target = target;
        _owned = owned;
        _judges = judges;
        _methods = methods;
        Resumed = resumed;
        Warnings = warnings;
    }

    /// <summary>The spec of the run as stored, with this session's cache identity and scheduling.</summary>
    public RunSpec Spec { get; }

    /// <summary>The probes run under every method (a <see cref="ProbeSource"/>, read from the suites as the run goes).</summary>
    public IReadOnlyCollection<Probe> Probes { get; }

    /// <summary>The open target as the run calls it (ask it for services, e.g. an engine's batch statistics).</summary>
    public IChatClient Target => _target;

    /// <summary>All (method, probe) rows of the run.</summary>
    public int Total => Spec.Methods.Count * Probes.Count;

    /// <summary>True when the run existed before this session.</summary>
    public bool Resumed { get; }

    /// <summary>What the caller should tell the user (see <see cref="Evaluation.Warnings"/>).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Runs every (method, probe) row not complete yet.</summary>
    public Task<RunOutcome> RunAsync(IProgress<RunProgress>? progress = null, CancellationToken cancellationToken = default) =>
        new EvaluationRunner(_store, _target, _judges.For, _methods.Apply).RunAsync(Spec, Probes, progress, cancellationToken);

    /// <summary>Releases the target if the evaluation opened it (the judges belong to the evaluation).</summary>
    public void Dispose() => _owned?.Dispose();
}
