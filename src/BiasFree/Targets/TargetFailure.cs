using System.ClientModel;

namespace BiasFree.Targets;

/// <summary>
/// Tells failures that every later request would repeat (a refused key, a wrong URL or model, a server that is not an
/// OpenAI-compatible API) from those worth recording per probe. A run that meets the same one a few times in a row
/// stops (see <c>EvaluationRunner</c>) instead of recording it for every probe.
/// </summary>
public static class TargetFailure
{
    /// <summary>What kind of persistent failure this is.</summary>
    public enum Kind
    {
        /// <summary>HTTP 401 or 403: the API key is missing, wrong, or not allowed to use the model.</summary>
        Refused,

        /// <summary>HTTP 404: no such route or no such model at this URL.</summary>
        NotFound,

        /// <summary>A 2xx reply that is not JSON (an HTML page): the URL is not an OpenAI-compatible API.</summary>
        NotAnApi,
    }

    /// <summary>
    /// The persistent failure inside <paramref name="exception"/> (searched through inner exceptions), with a short
    /// description ("HTTP 401"); null for failures that may not repeat (timeouts, 5xx, 400, malformed replies).
    /// </summary>
    public static (Kind Kind, string Description)? Persistent(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case ClientResultException { Status: 401 or 403 } c:
                    return (Kind.Refused, $"HTTP {c.Status}");
                case ClientResultException { Status: 404 }:
                    return (Kind.NotFound, "HTTP 404");
                case NonJsonReplyException n:
                    return (Kind.NotAnApi, $"{n.What} instead of JSON");
                case AggregateException { InnerExceptions.Count: > 0 } a:
                    if (Persistent(a.InnerExceptions[0]) is { } inner)
                    {
                        return inner;
                    }
                    break;
            }
        }

        return null;
    }

    /// <summary>What a user should check for a persistent failure.</summary>
    public static string Advice(Kind kind, string? apiKeyVariable) => kind switch
    {
        Kind.Refused => apiKeyVariable is null
            ? "the server refused the request: it needs an API key (name its environment variable with --api-key-env)"
            : $"the server refused the API key: check the environment variable {apiKeyVariable} (named by --api-key-env)",
        Kind.NotFound => "no such route or model: check the URL (an OpenAI-compatible base URL usually ends in /v1) and the model name",
        Kind.NotAnApi => "this is not an OpenAI-compatible API: check the URL (it usually ends in /v1)",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };
}
