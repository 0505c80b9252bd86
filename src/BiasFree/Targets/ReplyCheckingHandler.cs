using System.Text.Json;

namespace BiasFree.Targets;

/// <summary>
/// A 2xx reply whose body is not a chat completion: truncated or malformed JSON, or a JSON value without
/// <c>choices</c>. Servers under load produce these now and then, so it is retried like a 5xx.
/// </summary>
public sealed class MalformedReplyException(string message) : HttpRequestException(message);

/// <summary>
/// A 2xx reply that is not JSON at all (an HTML page, plain text): the URL points at something that is not an
/// OpenAI-compatible API (a web UI, a proxy's login page, a base URL without <c>/v1</c>). Every request would get the
/// same, so it is not retried.
/// </summary>
public sealed class NonJsonReplyException(string message, string what) : Exception(message)
{
    /// <summary>What came back instead, e.g. "an HTML/XML page (text/html)".</summary>
    public string What { get; } = what;
}

/// <summary>
/// Reads every successful reply's body inside the retry pipeline and checks it before the SDK sees it. Reading the
/// body here puts it under the per-attempt timeout, so a reply that stalls half-way is abandoned and retried like
/// one that never starts (outside the pipeline a stalled body would wait forever). Error statuses are judged by the
/// retry strategy by their status alone; their body is read here only to take out the API key when a server echoes
/// it (see <see cref="RedactErrorBodyAsync"/>).
/// </summary>
internal sealed class ReplyCheckingHandler(Uri endpoint, string? apiKey = null) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            return await RedactErrorBodyAsync(response, apiKey, cancellationToken).ConfigureAwait(false);
        }

        var body = await ReadBodyAsync(response, cancellationToken).ConfigureAwait(false);

        var problem = Check(body, response.Content.Headers.ContentType?.MediaType);
        if (problem is not null)
        {
            var status = (int)response.StatusCode;
            response.Dispose();
            throw problem.Value.Persistent
                ? new NonJsonReplyException($"{TargetDescriptor.SanitizeEndpoint(endpoint)} answered HTTP {status} with {problem.Value.What}, not an OpenAI-compatible JSON reply", problem.Value.What)
                : new MalformedReplyException($"{TargetDescriptor.SanitizeEndpoint(endpoint)} answered HTTP {status} with {problem.Value.What}");
        }

        // The SDK reads the body again: hand it a buffered copy with the same headers.
        return WithBody(response, body);
    }

    /// <summary>
    /// An error reply whose body repeats the API key (some servers echo the credential they refused) gets that key
    /// replaced by <see cref="ChatCompletionsClient.RedactedKey"/> before the SDK quotes the body in its exception
    /// message: those messages reach the run store, the report and the terminal. The same rule as our own path's
    /// (<see cref="ChatCompletionsClient.RedactKey"/>): no key, or one too short to tell from ordinary text, and the
    /// reply passes through unread.
    /// </summary>
    internal static async Task<HttpResponseMessage> RedactErrorBodyAsync(HttpResponseMessage response, string? apiKey, CancellationToken cancellationToken)
    {
        if (apiKey is null || !ChatCompletionsClient.IsRedactable(apiKey))
        {
            return response;
        }

        var body = await ReadBodyAsync(response, cancellationToken).ConfigureAwait(false);

        return WithBody(response, ChatCompletionsClient.RedactKey(body, apiKey));
    }

    /// <summary>The whole body; the response is disposed when reading fails.</summary>
    private static async Task<byte[]> ReadBodyAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        try
        {
            return await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    /// <summary>
    /// <paramref name="response"/> with its content replaced by <paramref name="body"/> under the same content headers,
    /// except the length, which the buffered content states itself (a redacted body is not as long as the original).
    /// </summary>
    private static HttpResponseMessage WithBody(HttpResponseMessage response, byte[] body)
    {
        var copy = new ByteArrayContent(body);
        foreach (var h in response.Content.Headers)
        {
            if (!h.Key.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                copy.Headers.TryAddWithoutValidation(h.Key, h.Value);
            }
        }

        response.Content.Dispose();
        response.Content = copy;
        return response;
    }

    /// <summary>Null when <paramref name="body"/> is a JSON object with a <c>choices</c> array; otherwise what is wrong.</summary>
    internal static (bool Persistent, string What)? Check(ReadOnlySpan<byte> body, string? mediaType)
    {
        var text = body;
        if (text.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
        {
            text = text[3..];
        }

        var first = 0;
        while (first < text.Length && text[first] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')
        {
            first++;
        }

        // Not JSON at all: markup, or a non-JSON media type whose body does not even start like JSON.
        var looksLikeJson = first < text.Length && text[first] is (byte)'{' or (byte)'[';
        if (first < text.Length && text[first] == (byte)'<')
        {
            return (true, $"an HTML/XML page ({mediaType ?? "no content type"})");
        }

        if (!looksLikeJson && mediaType is not null && !mediaType.Contains("json", StringComparison.OrdinalIgnoreCase))
        {
            return (true, $"a {mediaType} body");
        }

        if (first == text.Length)
        {
            return (false, "an empty body");
        }

        try
        {
            using var doc = JsonDocument.Parse(text.ToArray());
            return doc.RootElement.ValueKind == JsonValueKind.Object
                   && doc.RootElement.TryGetProperty("choices", out var choices) && choices.ValueKind == JsonValueKind.Array
                ? null
                : (false, "JSON that is not a chat completion (no choices)");
        }
        catch (JsonException)
        {
            return (false, $"malformed JSON ({body.Length} bytes)");
        }
    }
}
