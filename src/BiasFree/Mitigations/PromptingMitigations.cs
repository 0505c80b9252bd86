using Microsoft.Extensions.AI;

namespace BiasFree.Mitigations;

/// <summary>The prompting mitigations by name, for the CLI and run configuration.</summary>
public static class PromptingMitigations
{
    public const string None = "none";
    public const string SelfAwareness = "self-awareness";
    public const string SelfReflection = "self-reflection";
    public const string SelfHelp = "self-help";
    public const string ChainOfThought = "cot";

    /// <summary>Every accepted name, "none" first.</summary>
    public static IReadOnlyList<string> Names { get; } = [None, SelfAwareness, SelfReflection, SelfHelp, ChainOfThought];

    /// <summary>Wraps <paramref name="inner"/> in the named mitigation ("none" returns it unchanged). Names are case-insensitive.</summary>
    public static IChatClient Apply(IChatClient inner, string name) => Apply(inner, name, MethodPrompts.Default);

    /// <summary>As <see cref="Apply(IChatClient, string)"/>, with the methods' wording taken from <paramref name="prompts"/>.</summary>
    public static IChatClient Apply(IChatClient inner, string name, MethodPrompts prompts)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(prompts);
        return Normalize(name) switch
        {
            None => inner,
            SelfAwareness => new SelfAwarenessChatClient(inner, prompts),
            SelfReflection => new SelfReflectionChatClient(inner, prompts),
            SelfHelp => new SelfHelpChatClient(inner, prompts: prompts),
            ChainOfThought => new ChainOfThoughtChatClient(inner, prompts: prompts),
            _ => throw new InvalidOperationException("unreachable"),
        };
    }

    /// <summary>The canonical (trimmed, lower-case) name; throws <see cref="ArgumentException"/> listing the names when unknown.</summary>
    public static string Normalize(string name)
    {
        var key = (name ?? "").Trim().ToLowerInvariant();
        return Names.Contains(key)
            ? key
            : throw new ArgumentException($"Unknown mitigation '{name}'. Known: {string.Join(", ", Names)}.", nameof(name));
    }
}

/// <summary><see cref="ChatClientBuilder"/> extensions for the prompting mitigations.</summary>
public static class PromptingMitigationBuilderExtensions
{
    public static ChatClientBuilder UseSelfAwareness(this ChatClientBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.Use(inner => new SelfAwarenessChatClient(inner));
    }

    public static ChatClientBuilder UseSelfReflection(this ChatClientBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.Use(inner => new SelfReflectionChatClient(inner));
    }

    public static ChatClientBuilder UseSelfHelp(this ChatClientBuilder builder, int maxRewriteAttempts = 10)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.Use(inner => new SelfHelpChatClient(inner, maxRewriteAttempts));
    }

    public static ChatClientBuilder UseChainOfThought(this ChatClientBuilder builder, bool extractFinalAnswer = true)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.Use(inner => new ChainOfThoughtChatClient(inner, extractFinalAnswer));
    }

    /// <summary>Adds the named mitigation (see <see cref="PromptingMitigations.Names"/>); "none" adds nothing.</summary>
    public static ChatClientBuilder UsePromptingMitigation(this ChatClientBuilder builder, string name)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var canonical = PromptingMitigations.Normalize(name);
        return builder.Use(inner => PromptingMitigations.Apply(inner, canonical));
    }
}
