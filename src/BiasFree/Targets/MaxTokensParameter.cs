using System.Text.Json;
using System.Text.Json.Nodes;

namespace BiasFree.Targets;

/// <summary>Which request field carries the completion-token limit.</summary>
public enum MaxTokensParameter
{
    /// <summary><see cref="MaxCompletionTokens"/> for OpenAI's and Azure OpenAI's hosts, <see cref="MaxTokens"/> for any other server.</summary>
    Auto,

    /// <summary><c>max_tokens</c>: what vLLM, llama.cpp, Ollama, TGI and most OpenAI-compatible servers read (OpenAI deprecated it and its reasoning models refuse it).</summary>
    MaxTokens,

    /// <summary><c>max_completion_tokens</c>: OpenAI's current name, which the OpenAI SDK sends; older servers ignore it and generate until their own limit.</summary>
    MaxCompletionTokens,
}

/// <summary>Names and resolution of <see cref="MaxTokensParameter"/>.</summary>
public static class MaxTokensParameters
{
    /// <summary>The JSON field <c>max_tokens</c>.</summary>
    public const string MaxTokensField = "max_tokens";

    /// <summary>The JSON field <c>max_completion_tokens</c>.</summary>
    public const string MaxCompletionTokensField = "max_completion_tokens";

    /// <summary>The field sent to <paramref name="endpoint"/> (Auto resolved by host).</summary>
    public static string FieldFor(MaxTokensParameter parameter, Uri endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        return parameter switch
        {
            MaxTokensParameter.MaxTokens => MaxTokensField,
            MaxTokensParameter.MaxCompletionTokens => MaxCompletionTokensField,
            _ => endpoint.Host.Equals("api.openai.com", StringComparison.OrdinalIgnoreCase)
                 || endpoint.Host.EndsWith(".openai.azure.com", StringComparison.OrdinalIgnoreCase)
                ? MaxCompletionTokensField : MaxTokensField,
        };
    }

    /// <summary>Parses "auto", "max_tokens" or "max_completion_tokens".</summary>
    public static MaxTokensParameter Parse(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        null or "" or "auto" => MaxTokensParameter.Auto,
        MaxTokensField => MaxTokensParameter.MaxTokens,
        MaxCompletionTokensField => MaxTokensParameter.MaxCompletionTokens,
        _ => throw new ArgumentException($"unknown max-tokens field '{text}': use auto, {MaxTokensField} or {MaxCompletionTokensField}."),
    };
}

/// <summary>
/// Renames the SDK's <c>max_completion_tokens</c> to <c>max_tokens</c> in chat-completion request bodies, for servers
/// that only read the older name (vLLM before 0.6, llama.cpp, Ollama, TGI...). Outside the retry pipeline, so a body is
/// rewritten once however often it is sent.
/// </summary>
internal sealed class MaxTokensFieldHandler : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (request.Content is { } content && request.Method == HttpMethod.Post)
        {
            var body = await content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            if (Rewrite(body) is { } bytes)
            {
                var rewritten = new ByteArrayContent(bytes);
                foreach (var header in content.Headers)
                {
                    if (!header.Key.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                    {
                        rewritten.Headers.TryAddWithoutValidation(header.Key, header.Value);
                    }
                }
                request.Content = rewritten;
                content.Dispose();
            }
        }
        return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The body with its top-level <c>max_completion_tokens</c> renamed to <c>max_tokens</c>, or null when it has none.</summary>
    /// <remarks>
    /// The name is replaced where it stands, found by one pass of a <see cref="Utf8JsonReader"/>; the rest of the body is
    /// copied byte for byte. Parsing the body into a <see cref="JsonNode"/> tree and writing it out again, as this did
    /// before, was a visible share of the client's CPU per request in the harness profile. A body the splice cannot
    /// handle exactly (the name written with escapes, a <c>max_tokens</c> already there, invalid JSON) goes the tree way.
    /// </remarks>
    internal static byte[]? Rewrite(byte[] body)
    {
        var old = "\"max_completion_tokens\""u8;
        if (body.AsSpan().IndexOf(old[1..^1]) < 0 && body.AsSpan().IndexOf((byte)'\\') < 0)
        {
            return null; // the name is nowhere in the body, and no escape could spell it
        }

        long at = -1;
        try
        {
            var reader = new Utf8JsonReader(body);
            while (reader.Read())
            {
                if (reader.TokenType != JsonTokenType.PropertyName || reader.CurrentDepth != 1)
                {
                    if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray && reader.CurrentDepth >= 1)
                    {
                        reader.Skip();
                    }
                    continue;
                }
                if (reader.ValueIsEscaped)
                {
                    return RewriteTree(body);
                }
                if (reader.ValueTextEquals(MaxTokensParameters.MaxTokensField))
                {
                    return RewriteTree(body); // both names: let the tree decide as before
                }
                if (reader.ValueTextEquals(MaxTokensParameters.MaxCompletionTokensField))
                {
                    if (at >= 0)
                    {
                        return RewriteTree(body);
                    }
                    at = reader.TokenStartIndex;
                }
            }
        }
        catch (JsonException)
        {
            return RewriteTree(body);
        }
        if (at < 0)
        {
            return null;
        }

        var replacement = "\"max_tokens\""u8;
        var result = new byte[body.Length - old.Length + replacement.Length];
        body.AsSpan(0, (int)at).CopyTo(result);
        replacement.CopyTo(result.AsSpan((int)at));
        body.AsSpan((int)at + old.Length).CopyTo(result.AsSpan((int)at + replacement.Length));
        return result;
    }

    private static byte[]? RewriteTree(byte[] body)
    {
        if (JsonNode.Parse(body) is JsonObject json && json.Remove(MaxTokensParameters.MaxCompletionTokensField, out var limit))
        {
            json[MaxTokensParameters.MaxTokensField] = limit;
            return System.Text.Encoding.UTF8.GetBytes(json.ToJsonString());
        }
        return null;
    }
}
