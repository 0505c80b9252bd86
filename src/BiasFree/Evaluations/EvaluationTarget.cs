using BiasFree.Runs;
using BiasFree.Targets;
using Microsoft.Extensions.AI;

namespace BiasFree.Evaluations;

/// <summary>
/// The model under test, with everything a run records about it: the label reports show, where it lives, how it is
/// loaded, and the identity its cached replies are filed under. Make one with <see cref="OpenAICompatible"/>,
/// <see cref="Custom"/>, or (in-process models) <c>BiasFree.Engine.Evaluations.LocalTargets</c>.
/// </summary>
public sealed class EvaluationTarget
{
    /// <summary><see cref="Kind"/> of a server speaking the OpenAI chat API.</summary>
    public const string OpenAICompatibleKind = TargetDescriptor.OpenAICompatibleKind;

    /// <summary><see cref="Kind"/> of a Hugging Face model folder run in-process.</summary>
    public const string LocalKind = "local";

    /// <summary><see cref="Kind"/> of the embedded demo model.</summary>
    public const string DemoKind = "demo";

    /// <summary><see cref="Kind"/> of an <see cref="IChatClient"/> given in code.</summary>
    public const string CustomKind = "custom";

    private readonly Func<IChatClient> _open;

    /// <summary>A target; prefer the factory methods, which fill in the identity and defaults.</summary>
    /// <param name="kind">One of the <c>*Kind</c> constants (or your own).</param>
    /// <param name="model">Model name, as reports show it.</param>
    /// <param name="open">Opens the client; called once per run session.</param>
    /// <param name="ownsClient">True when the run should dispose the client <paramref name="open"/> returns.</param>
    public EvaluationTarget(string kind, string model, Func<IChatClient> open, bool ownsClient)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(kind);
        ArgumentException.ThrowIfNullOrWhiteSpace(model);
        ArgumentNullException.ThrowIfNull(open);
        Kind = kind;
        Model = model;
        _open = open;
        OwnsClient = ownsClient;
    }

    /// <summary>What the target is (see the <c>*Kind</c> constants).</summary>
    public string Kind { get; }

    /// <summary>Model name, as reports show it.</summary>
    public string Model { get; }

    /// <summary>Whether a run disposes the client it opened.</summary>
    public bool OwnsClient { get; }

    /// <summary>Server URL or model folder; null for a custom client.</summary>
    public string? Endpoint { get; init; }

    /// <summary>Server endpoint to check for reachability before a run, if any.</summary>
    public Uri? ServerEndpoint { get; init; }

    /// <summary>Environment variable holding the server's API key (the key itself is never stored).</summary>
    public string? ApiKeyEnvironmentVariable { get; init; }

    /// <summary>Load settings of an in-process model.</summary>
    public LocalTargetSettings? Local { get; init; }

    /// <summary>
    /// Credential-free identity under which the target's replies are cached, e.g. endpoint + model, or a local
    /// model's content hash + load settings. Null: replies are not cached at all (two clients could share entries).
    /// </summary>
    public string? CacheIdentity { get; init; }

    /// <summary>Most requests in flight at any one endpoint, for the run record (null: no limit).</summary>
    public int? EndpointConcurrency { get; init; }

    /// <summary>Other endpoints serving the same model (<see cref="OpenAICompatibleTargetOptions.AdditionalEndpoints"/>), for the run record.</summary>
    public IReadOnlyList<string>? Replicas { get; init; }

    /// <summary>The request field that carries the token limit (<c>max_tokens</c> or <c>max_completion_tokens</c>); null for an in-process or custom client.</summary>
    public string? MaxTokensField { get; init; }

    /// <summary>Temperature used when the evaluation sets none (null: none is sent, the target's default applies).</summary>
    public float? DefaultTemperature { get; init; }

    /// <summary>
    /// Put a <see cref="PerRequestSeedChatClient"/> over the target when it samples (temperature above 0): an
    /// in-process sampler seeded with the run's one seed would draw the same numbers for every probe.
    /// </summary>
    public bool SeedPerRequest { get; init; }

    /// <summary>Per-request timeout the target was made with, for the run record.</summary>
    public double TimeoutSeconds { get; init; } = 120;

    /// <summary>Retries the target was made with, for the run record.</summary>
    public int Retries { get; init; } = 3;

    /// <summary>Opens the client (loads the model, creates the HTTP client).</summary>
    public IChatClient Open() => _open();

    /// <summary>
    /// This target with <paramref name="wrap"/> put over every client it opens and <paramref name="identity"/> added to
    /// its cache identity (a wrapper changes the replies, so cached replies of the plain target must not answer for it).
    /// Every other setting is kept, so the run record (endpoint, replicas, token-limit field, timeout, retries) is the
    /// plain target's.
    /// </summary>
    /// <param name="wrap">Puts the wrapper over an opened client.</param>
    /// <param name="identity">What the wrapper adds to the cache identity, e.g. <c>diffpo=HASH</c>.</param>
    public EvaluationTarget Wrap(Func<IChatClient, IChatClient> wrap, string identity)
    {
        ArgumentNullException.ThrowIfNull(wrap);
        ArgumentException.ThrowIfNullOrWhiteSpace(identity);
        return new EvaluationTarget(Kind, Model, () => wrap(Open()), OwnsClient)
        {
            Endpoint = Endpoint,
            ServerEndpoint = ServerEndpoint,
            ApiKeyEnvironmentVariable = ApiKeyEnvironmentVariable,
            Local = Local,
            CacheIdentity = CacheIdentity is null ? null : $"{CacheIdentity}|{identity}",
            EndpointConcurrency = EndpointConcurrency,
            Replicas = Replicas,
            MaxTokensField = MaxTokensField,
            DefaultTemperature = DefaultTemperature,
            SeedPerRequest = SeedPerRequest,
            TimeoutSeconds = TimeoutSeconds,
            Retries = Retries,
        };
    }

    /// <summary>A server speaking the OpenAI chat API; cached under its endpoint and model (<see cref="TargetDescriptor.CacheKey"/>).</summary>
    public static EvaluationTarget OpenAICompatible(OpenAICompatibleTargetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.Endpoint.UserInfo.Length > 0 || options.Endpoint.Query.Length > 0)
        {
            throw new ArgumentException($"target URL must not contain user info or a query string (runs are stored); put the key in the environment variable named by {nameof(options.ApiKeyEnvironmentVariable)}.", nameof(options));
        }
        return new EvaluationTarget(OpenAICompatibleKind, options.Model, () => OpenAICompatibleTarget.Create(options), ownsClient: true)
        {
            Endpoint = options.Endpoint.ToString(),
            ServerEndpoint = options.Endpoint,
            ApiKeyEnvironmentVariable = options.ApiKeyEnvironmentVariable,
            CacheIdentity = TargetDescriptor.For(options).CacheKey,
            TimeoutSeconds = options.Timeout.TotalSeconds,
            Retries = options.MaxRetries,
            MaxTokensField = options.MaxTokensField,
            Replicas = options.AdditionalEndpoints.Count == 0 ? null : [.. options.AdditionalEndpoints.Select(e => e.ToString())],
            EndpointConcurrency = options.AdditionalEndpoints.Count == 0 ? null : options.EndpointConcurrency,
        };
    }

    /// <summary>
    /// Any <see cref="IChatClient"/> (not disposed by the run). Its replies are cached only when you give a
    /// <paramref name="cacheIdentity"/> that changes whenever the replies could (model, weights, settings): the
    /// model name alone cannot tell two clients apart. Without one, caching is off and
    /// <see cref="Evaluation.Warnings"/> says so.
    /// </summary>
    /// <param name="client">The target.</param>
    /// <param name="model">Model name for reports.</param>
    /// <param name="cacheIdentity">Identity of the client's replies, or null for no caching.</param>
    /// <param name="seedPerRequest">Derive a seed per request (see <see cref="SeedPerRequest"/>); on by default, since a custom client may sample in-process.</param>
    /// <param name="defaultTemperature">Temperature sent when the evaluation sets none (null: none sent).</param>
    public static EvaluationTarget Custom(IChatClient client, string model, string? cacheIdentity = null, bool seedPerRequest = true, float? defaultTemperature = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        return new EvaluationTarget(CustomKind, model, () => client, ownsClient: false)
        {
            CacheIdentity = string.IsNullOrWhiteSpace(cacheIdentity) ? null : $"{CustomKind}|{cacheIdentity}",
            SeedPerRequest = seedPerRequest,
            DefaultTemperature = defaultTemperature,
        };
    }

    /// <summary>
    /// Rebuilds a server target from a stored run spec (its timeout and retries included). In-process models need
    /// <c>BiasFree.Engine.Evaluations.LocalTargets.FromSpec</c>; a custom client must be given again.
    /// </summary>
    public static EvaluationTarget FromSpec(RunSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var kind = KindOf(spec);
        if (kind != OpenAICompatibleKind)
        {
            throw new ArgumentException(kind == CustomKind
                ? $"run '{spec.RunId}' used a custom client ({spec.Model}); pass the same client to resume it."
                : $"run '{spec.RunId}' used an in-process model ({spec.TargetEndpoint}); rebuild it with BiasFree.Engine.Evaluations.LocalTargets.FromSpec.");
        }
        if (!Uri.TryCreate(spec.TargetEndpoint, UriKind.Absolute, out var uri))
        {
            throw new ArgumentException($"'{spec.TargetEndpoint}' is not an http(s) URL such as http://127.0.0.1:8000/v1.");
        }
        return OpenAICompatible(new OpenAICompatibleTargetOptions
        {
            Endpoint = uri,
            Model = spec.Model,
            ApiKeyEnvironmentVariable = spec.ApiKeyEnvironmentVariable,
            Timeout = TimeSpan.FromSeconds(spec.TimeoutSeconds),
            MaxRetries = spec.Retries,
            BaseDelay = TimeSpan.FromSeconds(1),
            AdditionalEndpoints = [.. (spec.TargetReplicas ?? []).Select(r => new Uri(r))],
            EndpointConcurrency = spec.EndpointConcurrency,
            MaxConnectionsPerServer = Math.Clamp(spec.Concurrency, 256, OpenAICompatibleTargetOptions.MaxConnectionsLimit),
            // Runs stored before the field was recorded sent max_completion_tokens (the SDK's name).
            MaxTokensParameter = spec.MaxTokensField is null ? MaxTokensParameter.MaxCompletionTokens : MaxTokensParameters.Parse(spec.MaxTokensField),
        });
    }

    /// <summary>The target kind of a stored spec; runs stored before <see cref="RunSpec.TargetKind"/> existed are told by their endpoint.</summary>
    public static string KindOf(RunSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.TargetKind is { } k)
        {
            return k;
        }
        if (IsHttpUrl(spec.TargetEndpoint))
        {
            return OpenAICompatibleKind;
        }
        return spec.Local?.DemoModel == true ? DemoKind : spec.TargetEndpoint is null ? CustomKind : LocalKind;
    }

    /// <summary>True for an absolute http or https URL.</summary>
    public static bool IsHttpUrl(string? text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps);

    /// <inheritdoc/>
    public override string ToString() => $"{Model} ({Kind}{(Endpoint is null ? "" : $" at {Endpoint}")})";
}
