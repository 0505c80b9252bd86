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

        if (BaseDelay < TimeSpan.Zero || MaxDelay < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(BaseDelay), "Delays must not be negative.");
        }
    }
}
