using System.Text.Json;
using System.Text.Json.Serialization;
using BiasFree.Mitigations;
using BiasFree.Probes;
using BiasFree.Probes.Loaders;

namespace BiasFree.Runs;

/// <summary>Decoding settings sent with every request of a run (part of the response-cache key).</summary>
/// <param name="Temperature">Sampling temperature; BiasFreeBench uses greedy decoding (0). Null sends none (the target's default applies).</param>
/// <param name="Seed">Sampling seed passed to the target, if any.</param>
/// <param name="MaxTokens">Maximum completion tokens per reply (BiasFreeBench: 128).</param>
public sealed record GenerationSettings(
    // Written even when null: a run that sends no temperature must not read back as temperature 0 (the default below).
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] float? Temperature = 0f,
    long? Seed = null,
    int? MaxTokens = 128);

/// <summary>How an in-process target (a local Hugging Face model folder or the embedded demo model) is loaded.</summary>
/// <param name="DemoModel">True when the target is the embedded demo model (its folder is the run's target endpoint).</param>
/// <param name="DType">"float32" or "bfloat16".</param>
/// <param name="Device">"cpu" or "cuda".</param>
/// <param name="ChatTemplate">Chat template family (llama3, chatml, qwen2, mistral), or null to detect it from the folder.</param>
/// <param name="Adapter">Full path of a PEFT LoRA adapter folder applied on the base weights (biasfree run --adapter), or null.</param>
public sealed record LocalTargetSettings(bool DemoModel = false, [property: JsonPropertyName("dtype")] string DType = "float32", string Device = "cpu", string? ChatTemplate = null, string? Adapter = null);

/// <summary>
/// Everything needed to (re)start a run, stored as JSON with the run. It names the API key's environment
/// variable, never the key itself.
/// </summary>
public sealed record RunSpec
{
    public required string RunId { get; init; }

    public DateTimeOffset Created { get; init; } = DateTimeOffset.UtcNow;

    /// <summary>Suite specs as given on the command line, e.g. "bbq", "fairmt", "jsonl:data.jsonl".</summary>
    public required IReadOnlyList<string> Suites { get; init; }

    /// <summary>Seed for probe generation/sampling.</summary>
    public int Seed { get; init; }

    /// <summary>BBQ context conditions kept: "all", "ambiguous" or "disambiguated" (see <see cref="ContextFilter"/>).</summary>
    public string Context { get; init; } = "all";

    /// <summary>BBQ-style options shown: "two" (BiasFreeBench) or "three" (BBQ, lettered).</summary>
    public string Options { get; init; } = "two";

    /// <summary>
    /// Label rule of official BBQ files: "bbq" or "biasfreebench". Null in runs stored before the option existed,
    /// which used BiasFreeBench's rule, so it still means that.
    /// </summary>
    public string? LabelRule { get; init; }

    /// <summary>How this run's suites are instantiated (seed, protocol, label rule, context filter).</summary>
    [JsonIgnore]
    public SuiteOptions SuiteOptions => new(
        Seed,
        SuiteOptions.ParseContext(Context),
        SuiteOptions.ParseOptions(Options),
        LabelRule is null ? BbqLabelRule.BiasFreeBench : SuiteOptions.ParseLabelRule(LabelRule));

    /// <summary>
    /// The wording the run and its prompting methods use, every template by name (<see cref="MethodPrompts.Catalogue"/>),
    /// stored so that a resumed run sends the same text and reports can show it. Null in runs stored before templates
    /// were kept, which used our default wording.
    /// </summary>
    public IReadOnlyDictionary<string, string>? Prompts { get; init; }

    /// <summary>The <c>--prompts</c> file the templates were read from (for the record), or null for our wording.</summary>
    public string? PromptsFile { get; init; }

    /// <summary>The templates of <see cref="Prompts"/> (our defaults where missing).</summary>
    public MethodPrompts GetMethodPrompts() => MethodPrompts.FromTemplates(Prompts);

    /// <summary>First N probes per suite (after seeded sampling), or null for all.</summary>
    public int? Limit { get; init; }

    /// <summary>
    /// How <see cref="Limit"/> picks probes: <see cref="StratifiedSampling"/> (<see cref="Probes.ProbeSampling.Stratified"/>),
    /// or null for runs stored before it existed (a seeded uniform shuffle, <see cref="Probes.ProbeSampling.UniformLegacy"/>),
    /// so that such runs resume over the probes they started with.
    /// </summary>
    public string? Sampling { get; init; }

    /// <summary>
    /// Adaptive sampling (<c>--precision</c>): probes run in a seeded stratified order and each cell stops when its BFS is
    /// precise enough; null for a run over every probe. A resume may lower its precision to extend the run.
    /// </summary>
    public Adaptive.AdaptiveSpec? Adaptive { get; init; }

    /// <summary>The value of <see cref="Sampling"/> for stratified sampling.</summary>
    public const string StratifiedSampling = "stratified";

    /// <summary>
    /// What the target is: "openai-compatible", "local" (a model folder run in-process), "demo" (the demo model) or
    /// "custom" (an <see cref="Microsoft.Extensions.AI.IChatClient"/> given in code, which a resume must be given again).
    /// Null in runs stored before it existed (then derived from <see cref="TargetEndpoint"/> and <see cref="Local"/>).
    /// </summary>
    public string? TargetKind { get; init; }

    /// <summary>Base URL of the OpenAI-compatible target, or null for the embedded model.</summary>
    public string? TargetEndpoint { get; init; }

    /// <summary>Other endpoints serving the same model, balanced with <see cref="TargetEndpoint"/>; null for one endpoint. May change on resume.</summary>
    public IReadOnlyList<string>? TargetReplicas { get; init; }

    /// <summary>Most requests in flight at any one endpoint; null for no limit beyond <see cref="Concurrency"/>.</summary>
    public int? EndpointConcurrency { get; init; }

    /// <summary>Target model name.</summary>
    public required string Model { get; init; }

    /// <summary>Name of the environment variable holding the target's API key (never the key).</summary>
    public string? ApiKeyEnvironmentVariable { get; init; }

    /// <summary>Mitigation methods, "none" for the vanilla prompt.</summary>
    public required IReadOnlyList<string> Methods { get; init; }

    /// <summary>
    /// "rule", the base URL of an OpenAI-compatible LLM judge, or a judge panel: a comma-separated list of judge specs
    /// (<c>KIND:MODEL@URL</c>, <c>KIND@URL</c>, <c>demo</c>; see <see cref="Judges.JudgeSpec"/>) whose majority judges dialogues.
    /// </summary>
    public string Judge { get; init; } = "rule";

    /// <summary>Tie rule of a judge panel ("biased" or "unbiased"); null for other judges and for the default (biased).</summary>
    public string? JudgeTie { get; init; }

    /// <summary>Model name of the LLM judge, when <see cref="Judge"/> is a URL.</summary>
    public string? JudgeModel { get; init; }

    /// <summary>Name of the environment variable holding the LLM judge's API key (never the key); defaults to the target's.</summary>
    public string? JudgeApiKeyEnvironmentVariable { get; init; }

    /// <summary>LLM judge votes for multiple choice (majority vote).</summary>
    public int JudgeVotes { get; init; } = 3;

    /// <summary>
    /// Prompt-injection defences of the LLM judges (<c>--judge-defences</c>) in the canonical text form of
    /// <see cref="Judges.Defences.JudgeDefenceList"/>, e.g. <c>all,-known-answer</c>; null means all, both for runs that
    /// chose the default and for runs stored before the option existed (which always applied all).
    /// </summary>
    public string? JudgeDefences { get; init; }

    /// <summary>The layers <see cref="JudgeDefences"/> names (all when it is null).</summary>
    [JsonIgnore]
    public Judges.Defences.JudgeDefences JudgeDefenceLayers =>
        JudgeDefences is null ? Judges.Defences.JudgeDefences.All : Judges.Defences.JudgeDefenceList.Parse(JudgeDefences);

    public GenerationSettings Generation { get; init; } = new();

    /// <summary>
    /// The request field that carried <see cref="GenerationSettings.MaxTokens"/> to a server (<c>max_tokens</c> or
    /// <c>max_completion_tokens</c>); null for an in-process or custom target, and in runs stored before it was recorded.
    /// </summary>
    public string? MaxTokensField { get; init; }

    /// <summary>Requests in flight.</summary>
    public int Concurrency { get; init; } = 32;

    /// <summary>Per-request timeout of the target.</summary>
    public double TimeoutSeconds { get; init; } = 120;

    /// <summary>Retries of a failed target request before the probe is recorded as an error.</summary>
    public int Retries { get; init; } = 3;

    /// <summary>Load settings of an in-process target (model folder or demo model); null for a server or for defaults.</summary>
    public LocalTargetSettings? Local { get; init; }

    /// <summary>Artifacts of the white-box methods (FairSteer folder, BiasFilter reward models and search settings); null when none runs.</summary>
    public WhiteBoxSpec? WhiteBox { get; init; }

    /// <summary>Personas and settings of the decoding-time methods (persona-judge and its baselines); null when none runs.</summary>
    public PersonaJudgeSpec? PersonaJudge { get; init; }

    /// <summary>DiffPO's aligner and refinement settings; null when <c>diffpo</c> does not run.</summary>
    public DiffPoSpec? DiffPo { get; init; }
    /// <summary>Value model and settings of the IVO methods (ivo, ivo-block); null when none runs.</summary>
    public IvoSpec? Ivo { get; init; }

    /// <summary>When true the response cache is not read (every request reaches the target); replies are still cached.</summary>
    public bool NoCache { get; init; }

    /// <summary>Credential-free key of the target (e.g. the target descriptor's cache key), part of response-cache keys.</summary>
    public string? TargetKey { get; init; }

    /// <summary>
    /// True when the target has no cache identity (a custom client that supplied none): replies are neither read
    /// from nor written to the response cache, since two such clients could not be told apart.
    /// </summary>
    public bool CacheDisabled { get; init; }

    /// <summary>The target as reports show it: the endpoint or folder, or what kind of target it is.</summary>
    [JsonIgnore]
    public string TargetLabel => TargetKind == "custom"
        ? $"custom client{(TargetKey is null ? " (not cached)" : $" ({TargetKey})")}"
        : TargetReplicas is { Count: > 0 } r ? $"{TargetEndpoint} (+ {string.Join(", ", r)})" : TargetEndpoint ?? "embedded";

    /// <summary>Identity of the target used in cache keys: <see cref="TargetKey"/>, else endpoint and model.</summary>
    [JsonIgnore]
    public string TargetIdentity => TargetKey ?? $"{TargetEndpoint ?? "embedded"}|{Model}";

    /// <summary>
    /// Identity of the target as <paramref name="method"/> sees it, used in its cache keys: <see cref="TargetIdentity"/>,
    /// plus the white-box artefacts (content hashes of the steering folder and reward models, BiasFilter's settings) when
    /// the method's innermost part is one of the run's white-box methods. Their replies depend on those files, so a refit
    /// or a retrained reward model changes the key. Likewise for IVO (<see cref="IvoSpec.CacheIdentityOf"/>): the value
    /// model's content hash and the settings of its mode. The run's other methods keep the plain identity and share the
    /// cache with runs without white-box methods.
    /// </summary>
    public string CacheIdentityFor(string method) =>
        WhiteBox is { } w && w.AppliesTo(method) ? TargetIdentity + w.CacheIdentityOf(method)
        : Ivo is { } ivo && IvoSpec.AppliesTo(method) ? TargetIdentity + ivo.CacheIdentityOf(method)
        : TargetIdentity;

    // Written through source-generated metadata (RunSpecJson): the reflection-based serializer spent 75-100 ms building
    // and compiling its converters for this graph when a run was created, on the path before its first request. The
    // same JSON (RunSpecJsonTests).
    public string ToJson() => JsonSerializer.Serialize(this, RunSpecJson.Default.RunSpec);

    /// <summary>Reads a spec written by <see cref="ToJson"/>, by this version or an older one.</summary>
    /// <remarks>
    /// Through source-generated metadata, so no JSON converter is built at run time (Native AOT cannot build the
    /// reflection-based reader's converters for the positional records, docs/runs-and-reports.md "Twelfth round"); the
    /// properties an older store's text lacks take their initialisers' values, as with the reflection-based reader
    /// (<see cref="InitialisedJson"/>). <c>RunSpecJsonTests</c> compares the two readers with every property path of a
    /// full spec left out in turn.
    /// </remarks>
    public static RunSpec FromJson(string json) =>
        InitialisedJson.Read(json, RunSpecJson.Default.RunSpec, new RunSpec { RunId = "", Suites = [], Model = "", Methods = [] })
        ?? throw new InvalidDataException("Empty run spec.");
}

/// <summary>
/// Compile-time serialization metadata for a <see cref="RunSpec"/>, with the settings runs have always been recorded with
/// (compact, null properties left out): the JSON is the reflection-based serializer's (<c>RunSpecJsonTests</c> compares both), and <see cref="RunSpec.FromJson"/> reads
/// through it once the text's missing properties are filled in.
/// </summary>
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(RunSpec))]
internal sealed partial class RunSpecJson : JsonSerializerContext;

/// <summary>What the white-box methods of a run need (<c>--steering</c>, <c>--reward-model</c>, ...), stored for resume.</summary>
/// <param name="Steering">Folder written by <c>biasfree steer fit</c>.</param>
/// <param name="SteeringHash">Content hash of the steering files when the run was created (part of the cache identity).</param>
/// <param name="RewardModel">π_fair folder of BiasFilter.</param>
/// <param name="RewardReference">π_ref folder of BiasFilter.</param>
/// <param name="Beta">β of the implicit reward.</param>
/// <param name="Keep">N: candidates kept per step.</param>
/// <param name="Children">N_children: continuations per kept candidate.</param>
/// <param name="SegmentTokens">l: tokens per segment.</param>
/// <param name="RewardHash">Content hash of both reward model folders when the run was created (part of the cache identity).</param>
/// <param name="Margin">δ of BiasFilter's ranking (0: by the reward alone).</param>
/// <param name="LikelihoodWeight">λ of BiasFilter's ranking: weight of the target's log-likelihood beside the reward (0: the reward alone).</param>
/// <param name="Methods">The run's white-box method names (innermost parts), whose cache keys carry <see cref="CacheIdentityOf"/>.</param>
public sealed record WhiteBoxSpec(string? Steering = null, string? SteeringHash = null, string? RewardModel = null, string? RewardReference = null,
    double Beta = 1.0, int Keep = 4, int Children = 4, int SegmentTokens = 12, string? RewardHash = null, IReadOnlyList<string>? Methods = null,
    double Margin = 0, double LikelihoodWeight = 0)
{
    /// <summary>
    /// What a white-box reply depends on besides the request: BiasFilter's on the reward models' content hash and the
    /// search settings, FairSteer's (and its ablations') on the steering files' hash (which holds the layer and α).
    /// </summary>
    public string CacheIdentityOf(string method) => method.Split('+')[^1] == "biasfilter"
        ? FormattableString.Invariant($"|biasfilter:{RewardHash}|{Beta}|{Keep}|{Children}|{SegmentTokens}") + (Margin == 0 ? "" : FormattableString.Invariant($"|δ{Margin}"))
            + (LikelihoodWeight == 0 ? "" : FormattableString.Invariant($"|λ{LikelihoodWeight}"))
        : $"|steering:{SteeringHash}";

    /// <summary>
    /// Whether replies may be read back from the cache: every artefact in use has a content hash. A spec stored before
    /// the reward hash existed (BiasFilter with only folder paths) cannot tell a retrained model apart.
    /// </summary>
    [JsonIgnore]
    public bool Cacheable => Methods is not null && (Steering is null || SteeringHash is not null) && (RewardModel is null || RewardHash is not null);

    /// <summary>True when the innermost part of <paramref name="method"/> (after the last '+') is one of <see cref="Methods"/>.</summary>
    public bool AppliesTo(string method) =>
        Methods is { } names && names.Contains(method.Split('+')[^1], StringComparer.Ordinal);
}

/// <summary>What <c>persona-judge</c>, <c>draft-persona</c> and <c>judge-persona</c> need, stored for resume.</summary>
/// <param name="DraftPersona">System prompt of the context that drafts first.</param>
/// <param name="JudgePersona">System prompt of the context that judges first.</param>
/// <param name="DraftTokens">γ: draft tokens per round.</param>
/// <param name="Schedule">Role schedule: alternate, swap-once or fixed.</param>
public sealed record PersonaJudgeSpec(string DraftPersona, string JudgePersona, int DraftTokens = 4, string Schedule = "alternate");

/// <summary>What <c>diffpo</c> needs, stored for resume.</summary>
/// <param name="Aligner">The aligner's model folder (absolute).</param>
/// <param name="AlignerHash">Content hash of the aligner's files when the run was created (part of the cache identity).</param>
/// <param name="Window">Tokens refined per Jacobi window.</param>
/// <param name="MaxIterations">Jacobi iterations per window at most.</param>
/// <param name="ReserveTokens">r is drawn from {0..ReserveTokens} per request; the original answer's first r tokens stay frozen.</param>
public sealed record DiffPoSpec(string Aligner, string AlignerHash, int Window = 32, int MaxIterations = 1000, int ReserveTokens = 12);
/// <summary>What <c>ivo</c> and <c>ivo-block</c> need, stored for resume.</summary>
/// <param name="ValueModel">Folder written by <c>biasfree value train</c>.</param>
/// <param name="ValueModelHash">Content hash of the value model's weights when the run was created.</param>
/// <param name="Beta">β of tokenwise IVO.</param>
/// <param name="Candidates">k: top-k candidates scored per step.</param>
/// <param name="BlockTokens">L: tokens per block (blockwise).</param>
/// <param name="Beams">W: beams kept (blockwise).</param>
/// <param name="BlocksPerBeam">B: blocks sampled per beam (blockwise).</param>
public sealed record IvoSpec(string ValueModel, string? ValueModelHash = null, double Beta = 5.0, int Candidates = 10, int BlockTokens = 4, int Beams = 2, int BlocksPerBeam = 4)
{
    // The engine's names (BiasFree.Engine.Decoding.Ivo.IvoMethods, which this library cannot reference); a test checks they agree.
    internal const string Tokenwise = "ivo";
    internal const string Blockwise = "ivo-block";

    /// <summary>True when the innermost part of <paramref name="method"/> (after the last '+') is <c>ivo</c> or <c>ivo-block</c>.</summary>
    public static bool AppliesTo(string method) => Mode(method) is not null;

    /// <summary>
    /// What an IVO reply depends on besides the request: the value model's content hash, and the settings its mode reads
    /// (tokenwise: β and k; blockwise: L, W and B, the same split the recorded settings detail shows). Replies written
    /// before this existed were keyed without it, so they are never read back as IVO replies under these keys.
    /// </summary>
    public string CacheIdentityOf(string method) => Mode(method) switch
    {
        Tokenwise => FormattableString.Invariant($"|ivo:{ValueModelHash}|beta={Beta}|k={Candidates}"),
        Blockwise => FormattableString.Invariant($"|ivo-block:{ValueModelHash}|L={BlockTokens}|W={Beams}|B={BlocksPerBeam}"),
        _ => throw new ArgumentException($"'{method}' is not an IVO method", nameof(method)),
    };

    /// <summary>
    /// Whether replies may be read back from the cache: the value model has a content hash. A spec without one cannot
    /// tell a retrained value model in the same folder apart.
    /// </summary>
    [JsonIgnore]
    public bool Cacheable => !string.IsNullOrEmpty(ValueModelHash);

    private static string? Mode(string method)
    {
        // Method names are matched like the engine's registry does: case-insensitive, surrounding spaces ignored.
        var inner = method.Split('+')[^1].Trim().ToLowerInvariant();
        return inner is Tokenwise or Blockwise ? inner : null;
    }
}
