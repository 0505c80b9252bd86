namespace BiasFree.Targets;

/// <summary>
/// A credential-free description of a target, for run records and cache keys.
/// </summary>
/// <param name="Kind">The kind of target, e.g. "openai-compatible".</param>
/// <param name="Endpoint">The endpoint without user info, query string or fragment, and without a trailing slash.</param>
/// <param name="Model">The model name.</param>
public sealed record TargetDescriptor(string Kind, string Endpoint, string Model)
{
    /// <summary>The kind used for <see cref="OpenAICompatibleTarget"/>.</summary>
    public const string OpenAICompatibleKind = "openai-compatible";

    /// <summary>Describes an OpenAI-compatible target.</summary>
    public static TargetDescriptor For(OpenAICompatibleTargetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new TargetDescriptor(OpenAICompatibleKind, SanitizeEndpoint(options.Endpoint), options.Model);
    }

    /// <summary>Drops user info, query and fragment, lower-cases scheme and host, and trims a trailing slash.</summary>
    public static string SanitizeEndpoint(Uri endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (!endpoint.IsAbsoluteUri)
        {
            return endpoint.OriginalString.Split('?', '#')[0].TrimEnd('/');
        }

        var clean = endpoint.GetComponents(UriComponents.SchemeAndServer | UriComponents.Path, UriFormat.UriEscaped);
        return clean.TrimEnd('/');
    }

    /// <summary>A stable one-line key, e.g. <c>openai-compatible|http://127.0.0.1:8000/v1|tiny</c>.</summary>
    public string CacheKey => $"{Kind}|{Endpoint}|{Model}";

    public override string ToString() => $"{Model} @ {Endpoint} ({Kind})";
}
