using BiasFree.Mitigations;
using Microsoft.Extensions.AI;

namespace BiasFree.Targets;

/// <summary>
/// Removes the run's <see cref="ProbeContext"/> keys (every <c>biasfree.*</c> entry) from
/// <see cref="ChatOptions.AdditionalProperties"/> before a request is passed on, so they never reach a remote server.
/// The caller's options object is not modified.
/// </summary>
public sealed class ProbeContextStrippingChatClient(IChatClient innerClient) : DelegatingChatClient(innerClient)
{
    /// <summary>Prefix shared by all probe-context keys.</summary>
    public const string KeyPrefix = "biasfree.";

    public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) =>
        base.GetResponseAsync(messages, Strip(options), cancellationToken);

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages,
        ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        base.GetStreamingResponseAsync(messages, Strip(options), cancellationToken);

    /// <summary>Returns options without <c>biasfree.*</c> keys (a clone when anything had to be removed).</summary>
    public static ChatOptions? Strip(ChatOptions? options)
    {
        if (options?.AdditionalProperties is not { Count: > 0 } props
            || !props.Keys.Any(k => k.StartsWith(KeyPrefix, StringComparison.Ordinal)))
        {
            return options;
        }

        var clone = options.Clone();
        var kept = new AdditionalPropertiesDictionary();
        foreach (var (k, v) in props)
        {
            if (!k.StartsWith(KeyPrefix, StringComparison.Ordinal))
            {
                kept[k] = v;
            }
        }

        clone.AdditionalProperties = kept.Count > 0 ? kept : null;
        return clone;
    }
}

/// <summary>Builder extensions for target plumbing.</summary>
public static class TargetChatClientBuilderExtensions
{
    /// <summary>Adds a <see cref="ProbeContextStrippingChatClient"/> to the pipeline.</summary>
    public static ChatClientBuilder UseProbeContextStripping(this ChatClientBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.Use(inner => new ProbeContextStrippingChatClient(inner));
    }
}
