using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.AI;

namespace BiasFree.Targets;

/// <summary>
/// Gives every request its own sampling seed, derived from the run's seed and the request's messages. A run sends the
/// same <c>--seed</c> with every request; an in-process model seeds its sampler with it, so without this every probe
/// would draw the same random numbers and sampled answers would be correlated across probes (all stereotyped or none)
/// instead of following the model's answer rates. The derived seed depends only on (seed, messages): runs stay
/// reproducible and the response cache (keyed on the run's seed and the messages) stays consistent.
/// <see cref="Evaluations.Evaluation"/> puts it over sampled in-process targets by default.
/// </summary>
/// <param name="inner">The target that seeds its sampler with <see cref="ChatOptions.Seed"/>.</param>
public sealed class PerRequestSeedChatClient(IChatClient inner) : DelegatingChatClient(inner)
{
    public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var list = messages as IReadOnlyList<ChatMessage> ?? [.. messages];
        return base.GetResponseAsync(list, WithSeed(list, options), cancellationToken);
    }

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var list = messages as IReadOnlyList<ChatMessage> ?? [.. messages];
        return base.GetStreamingResponseAsync(list, WithSeed(list, options), cancellationToken);
    }

    /// <summary>A copy of <paramref name="options"/> whose seed is <see cref="Derive"/>d for <paramref name="messages"/>; unchanged when no seed is set.</summary>
    public static ChatOptions? WithSeed(IReadOnlyList<ChatMessage> messages, ChatOptions? options)
    {
        if (options?.Seed is not long seed)
        {
            return options;
        }
        var copy = options.Clone();
        copy.Seed = Derive(seed, messages);
        return copy;
    }

    /// <summary>The request's seed: the first 63 bits of SHA-256 over the run's seed and each message's role and text.</summary>
    public static long Derive(long seed, IReadOnlyList<ChatMessage> messages)
    {
        var text = new StringBuilder().Append(seed).Append('\u0001');
        foreach (var m in messages)
        {
            text.Append(m.Role.Value).Append('\u0002').Append(m.Text).Append('\u0003');
        }
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString()));
        return BitConverter.ToInt64(hash, 0) & long.MaxValue;
    }
}

/// <summary><see cref="ChatClientBuilder"/> extension for <see cref="PerRequestSeedChatClient"/>.</summary>
public static class PerRequestSeedBuilderExtensions
{
    /// <summary>Gives every request its own seed derived from the request's seed and messages.</summary>
    public static ChatClientBuilder UsePerRequestSeed(this ChatClientBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.Use(inner => new PerRequestSeedChatClient(inner));
    }
}
