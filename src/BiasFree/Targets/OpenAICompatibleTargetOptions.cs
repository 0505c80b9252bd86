namespace BiasFree.Targets;

/// <summary>
/// How to reach a remote OpenAI-compatible chat model. The API key is never part of the options: it is read from the
/// environment variable named by <see cref="ApiKeyEnvironmentVariable"/> when the client is created.
/// </summary>
public sealed record OpenAICompatibleTargetOptions
{
    /// <summary>Base URL ending in <c>/v1</c>, e.g. <c>https://api.openai.com/v1</c> or <c>http://127.0.0.1:8000/v1</c>.</summary>
    public required Uri Endpoint { get; init; }

    /// <summary>The model name sent in every request.</summary>
    public required string Model { get; init; }

    /// <summary>
    /// Name of the environment variable holding the API key. When null, or when the variable is unset or empty,
    /// a placeholder key is sent (local servers usually ignore it).
    /// </summary>
    public string? ApiKeyEnvironmentVariable { get; init; } = "OPENAI_API_KEY";

    /// <summary>Time limit for one attempt (not for the whole call with its retries).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>How many times a failed attempt (429, 408, 5xx, timeout, network error) is retried.</summary>
    public int MaxRetries { get; init; } = 4;

    /// <summary>Base delay of the jittered exponential backoff.</summary>
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Upper bound on any single wait between attempts, including one asked for by a Retry-After header.</summary>
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Which field carries <c>--max-tokens</c>: <see cref="Targets.MaxTokensParameter.Auto"/> (default) sends
    /// <c>max_completion_tokens</c> to OpenAI and Azure OpenAI and <c>max_tokens</c> to every other server.
    /// </summary>
    public MaxTokensParameter MaxTokensParameter { get; init; } = MaxTokensParameter.Auto;

    /// <summary>The field name sent (<see cref="MaxTokensParameter"/> resolved for <see cref="Endpoint"/>).</summary>
    public string MaxTokensField => MaxTokensParameters.FieldFor(MaxTokensParameter, Endpoint);

    /// <summary>
    /// Other base URLs serving the same model (replicas with no load balancer in front). Requests go to the endpoint with
    /// the fewest outstanding, a failing one is drained and tried again later (<see cref="EndpointCooldown"/>). Replies are
    /// filed under <see cref="Endpoint"/>'s identity, so a run over several endpoints shares its cache with a run over the
    /// first alone.
    /// </summary>
    public IReadOnlyList<Uri> AdditionalEndpoints { get; init; } = [];

    /// <summary>Most requests in flight at any one endpoint (null: no limit beyond the run's concurrency).</summary>
    public int? EndpointConcurrency { get; init; }

    /// <summary>How long a failing endpoint gets no new request; doubles with each failure in a row, up to 64 times this.</summary>
    public TimeSpan EndpointCooldown { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Most connections to one server, the HTTP/1.1 bound on requests in flight to it (1 to <see cref="MaxConnectionsLimit"/>).</summary>
    public int MaxConnectionsPerServer { get; init; } = 256;

    /// <summary>Largest <see cref="MaxConnectionsPerServer"/>: the largest run concurrency (<c>--concurrency</c> accepts up to 1024).</summary>
    public const int MaxConnectionsLimit = 1024;

    /// <summary>Every endpoint: <see cref="Endpoint"/> first, then <see cref="AdditionalEndpoints"/>.</summary>
    public IReadOnlyList<Uri> AllEndpoints => [Endpoint, .. AdditionalEndpoints];

    /// <summary>Printable form; the endpoint is shown without user info or query string.</summary>
    public override string ToString() => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"{Model} @ {TargetDescriptor.SanitizeEndpoint(Endpoint)} (key from {ApiKeyEnvironmentVariable ?? "none"}, timeout {Timeout}, retries {MaxRetries}, base delay {BaseDelay}, max delay {MaxDelay})");

    /// <summary>Throws when the options cannot describe a usable target.</summary>
    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Endpoint);
        if (!Endpoint.IsAbsoluteUri || (Endpoint.Scheme != Uri.UriSchemeHttp && Endpoint.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException("Endpoint must be an absolute http(s) URL such as http://127.0.0.1:8000/v1.", nameof(Endpoint));
        }

        if (string.IsNullOrWhiteSpace(Model))
        {
            throw new ArgumentException("Model must be set.", nameof(Model));
        }

        if (Timeout <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(Timeout), Timeout, "Timeout must be positive.");
        }

        if (MaxRetries < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxRetries), MaxRetries, "MaxRetries must not be negative.");
        }

        foreach (var e in AdditionalEndpoints)
        {
            if (e is null || !e.IsAbsoluteUri || (e.Scheme != Uri.UriSchemeHttp && e.Scheme != Uri.UriSchemeHttps) || e.UserInfo.Length > 0 || e.Query.Length > 0)
            {
                throw new ArgumentException($"every endpoint must be an http(s) URL without user info or query string, such as http://127.0.0.1:8001/v1 (got '{e}').", nameof(AdditionalEndpoints));
            }
        }

        if (EndpointConcurrency is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(EndpointConcurrency), EndpointConcurrency, "EndpointConcurrency must be at least 1.");
        }

        if (MaxConnectionsPerServer is < 1 or > MaxConnectionsLimit)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxConnectionsPerServer), MaxConnectionsPerServer, "MaxConnectionsPerServer must be between 1 and 1024.");
        }

        if (EndpointCooldown < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(EndpointCooldown), "EndpointCooldown must not be negative.");
        }

        if (BaseDelay < TimeSpan.Zero || MaxDelay < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(BaseDelay), "Delays must not be negative.");
        }
    }
}
