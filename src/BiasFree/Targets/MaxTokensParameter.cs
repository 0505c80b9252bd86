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
            if (JsonNode.Parse(body) is JsonObject json && json.Remove(MaxTokensParameters.MaxCompletionTokensField, out var limit))
            {
                json[MaxTokensParameters.MaxTokensField] = limit;
                var rewritten = new ByteArrayContent(System.Text.Encoding.UTF8.GetBytes(json.ToJsonString()));
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
}
