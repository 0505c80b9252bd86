using BiasFree.Engine.Chat;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.Decoding;

/// <summary>A decoding algorithm that produces a reply from the in-process model instead of the engine's plain sampler.</summary>
public interface IDecodingStrategy
{
    /// <summary>Method name, for messages.</summary>
    string Name { get; }

    /// <summary>Decodes a reply to <paramref name="messages"/> with <paramref name="engine"/>'s model, tokenizer and template.</summary>
    Task<ChatResponse> GenerateAsync(EngineChatClient engine, IReadOnlyList<ChatMessage> messages, ChatOptions? options, CancellationToken cancellationToken);
}

/// <summary>
/// The engine end of decoding-time methods. A method step (outside the run's recording and cache) puts its
/// <see cref="IDecodingStrategy"/> into the request's <c>ChatOptions.AdditionalProperties[<see cref="StrategyKey"/>]</c>;
/// this client, placed directly over the in-process target, runs that strategy on the engine and passes every other
/// request through unchanged. So the request is recorded, cached and seeded like any other, and the method only
/// changes how tokens are chosen.
/// </summary>
public sealed class DecodingStrategyChatClient(IChatClient inner) : DelegatingChatClient(inner)
{
    /// <summary>AdditionalProperties key of the strategy a request asks for.</summary>
    public const string StrategyKey = "biasfree.decoding.strategy";

    /// <inheritdoc />
    public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (options?.AdditionalProperties?.TryGetValue(StrategyKey, out var value) != true || value is not IDecodingStrategy strategy)
            return base.GetResponseAsync(messages, options, cancellationToken);
        var engine = InnerClient.GetService<EngineChatClient>()
            ?? throw new InvalidOperationException($"{strategy.Name} needs an in-process model target (a model folder or the demo model): it reads the model's next-token distributions.");
        var forward = options.Clone();
        forward.AdditionalProperties!.Remove(StrategyKey);
        return strategy.GenerateAsync(engine, [.. messages], forward, cancellationToken);
    }

    /// <inheritdoc />
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (options?.AdditionalProperties?.ContainsKey(StrategyKey) != true)
        {
            await foreach (var u in base.GetStreamingResponseAsync(messages, options, cancellationToken).ConfigureAwait(false)) yield return u;
            yield break;
        }
        var response = await GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        foreach (var update in response.ToChatResponseUpdates()) yield return update;
    }

    /// <summary>
    /// Sends a request that asks for <paramref name="strategy"/> down <paramref name="inner"/>: through a dispatcher when
    /// the chain has one, else straight to the engine the chain reaches; a chain without an engine is refused.
    /// </summary>
    public static Task<ChatResponse> Request(IChatClient inner, IDecodingStrategy strategy, IEnumerable<ChatMessage> messages, ChatOptions? options,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(strategy);
        if (inner.GetService<DecodingStrategyChatClient>() is not null)
        {
            var o = options?.Clone() ?? new ChatOptions();
            o.AdditionalProperties = o.AdditionalProperties is null ? [] : new AdditionalPropertiesDictionary(o.AdditionalProperties);
            o.AdditionalProperties[StrategyKey] = strategy;
            return inner.GetResponseAsync(messages, o, cancellationToken);
        }
        var engine = inner.GetService<EngineChatClient>()
            ?? throw new InvalidOperationException($"{strategy.Name} needs an in-process model target (a model folder or the demo model): it reads the model's next-token distributions.");
        return strategy.GenerateAsync(engine, [.. messages], options, cancellationToken);
    }
}
