using BiasFree.Mitigations;
using Microsoft.Extensions.AI;

namespace BiasFree.Methods;

/// <summary>Where a method acts: on the prompt and replies, on the model's activations, or on its weights.</summary>
public enum MethodKind
{
    /// <summary>Wraps the target's requests and replies (any <see cref="IChatClient"/>).</summary>
    Prompting,

    /// <summary>Acts on an in-process model's activations (needs the engine's white-box target).</summary>
    WhiteBox,

    /// <summary>Runs a fine-tuned copy of the model.</summary>
    Training,
}

/// <summary>A named method: the <see cref="ChatClientBuilder"/> steps that turn a target into the mitigated target.</summary>
/// <param name="Name">Canonical name (lower case, no <c>+</c>).</param>
/// <param name="Description">One line for help texts.</param>
/// <param name="Configure">Adds the method's steps to a builder whose inner client is the target.</param>
/// <param name="Kind">Where the method acts.</param>
public sealed record MethodDefinition(string Name, string Description, Action<ChatClientBuilder> Configure, MethodKind Kind = MethodKind.Prompting);

/// <summary>
/// Methods by name, as used by run specs, the CLI's <c>--method</c> and <see cref="Evaluations.Evaluation"/>.
/// A method name is one registered name, or several joined by <c>+</c> (e.g. <c>self-awareness+cot</c>): the parts
/// wrap the target from the outside in, in the order written, exactly as the same <see cref="ChatClientBuilder.Use(Func{IChatClient, IChatClient})"/>
/// calls would. The intended use is a prompting method over a white-box one (<c>cot+fairsteer</c>: the
/// chain-of-thought prompt goes to a model steered by FairSteer) once white-box methods register here; today every
/// registered method is a prompting method and any combination of them runs.
/// </summary>
public sealed class MethodRegistry
{
    /// <summary>Separator of combined methods.</summary>
    public const char CombineSeparator = '+';

    private readonly Dictionary<string, MethodDefinition> _methods = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];
    private readonly bool _frozen;

    /// <summary>An empty registry, or a copy of <paramref name="copyFrom"/> that can be extended.</summary>
    public MethodRegistry(MethodRegistry? copyFrom = null)
    {
        if (copyFrom is not null)
        {
            foreach (var name in copyFrom._order)
            {
                Add(copyFrom._methods[name]);
            }
        }
    }

    private MethodRegistry(IEnumerable<MethodDefinition> methods)
    {
        foreach (var m in methods)
        {
            Add(m);
        }
        _frozen = true;
    }

    /// <summary>
    /// The built-in prompting methods of BiasFreeBench (Xu et al., 2025): <c>none</c>, <c>self-awareness</c>,
    /// <c>self-reflection</c>, <c>self-help</c>, <c>cot</c>. Read-only; copy it with the constructor to add methods.
    /// </summary>
    public static MethodRegistry Prompting { get; } = PromptingWith(MethodPrompts.Default);

    /// <summary>
    /// The prompting methods worded by <paramref name="prompts"/> (a user's <c>--prompts</c> file, or a run's stored
    /// templates), as a read-only registry; copy it with <c>new MethodRegistry(registry)</c> to add methods.
    /// </summary>
    public static MethodRegistry PromptingWith(MethodPrompts prompts)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        return new(PromptingMitigations.Names.Select(name => new MethodDefinition(
            name,
            name switch
            {
                PromptingMitigations.None => "the vanilla prompt",
                PromptingMitigations.SelfAwareness => "system prompt asking to avoid the probe's bias type",
                PromptingMitigations.SelfReflection => "a second turn asking to revise a biased answer",
                PromptingMitigations.SelfHelp => "the model rewrites the prompt without bias first",
                PromptingMitigations.ChainOfThought => "think step by step, then answer",
                _ => name,
            },
            name == PromptingMitigations.None
                ? static _ => { }
                : b => b.Use(inner => PromptingMitigations.Apply(inner, name, prompts)))));
    }

    /// <summary>Registered names, in registration order.</summary>
    public IReadOnlyList<string> Names => _order;

    /// <summary>The definition of a single registered name (case-insensitive), or null.</summary>
    public MethodDefinition? Find(string name) =>
        _methods.GetValueOrDefault((name ?? "").Trim().ToLowerInvariant());

    /// <summary>Registers <paramref name="method"/>; a name may be registered once.</summary>
    public MethodRegistry Add(MethodDefinition method)
    {
        ArgumentNullException.ThrowIfNull(method);
        if (_frozen)
        {
            throw new InvalidOperationException("This registry is read-only; copy it with new MethodRegistry(registry) to add methods.");
        }
        var name = method.Name.Trim().ToLowerInvariant();
        if (name.Length == 0 || name.Contains(CombineSeparator, StringComparison.Ordinal) || name.Contains(',', StringComparison.Ordinal))
        {
            throw new ArgumentException($"method name '{method.Name}' must be non-empty and contain neither '{CombineSeparator}' nor ','.", nameof(method));
        }
        if (!_methods.TryAdd(name, method with { Name = name }))
        {
            throw new ArgumentException($"method '{name}' is already registered.", nameof(method));
        }
        _order.Add(name);
        return this;
    }

    /// <summary>True when <paramref name="name"/> (single or combined) is valid here.</summary>
    public bool IsKnown(string name) => TryNormalize(name, out _, out _);

    /// <summary>
    /// The canonical name (trimmed, lower case, parts joined by <c>+</c>); throws <see cref="ArgumentException"/>
    /// naming the problem and the known methods.
    /// </summary>
    public string Normalize(string name) =>
        TryNormalize(name, out var canonical, out var error) ? canonical : throw new ArgumentException(error, nameof(name));

    private bool TryNormalize(string name, out string canonical, out string error)
    {
        canonical = "";
        var parts = (name ?? "").Split(CombineSeparator, StringSplitOptions.TrimEntries).Select(p => p.ToLowerInvariant()).ToList();
        foreach (var p in parts)
        {
            if (!_methods.ContainsKey(p))
            {
                error = $"unknown method '{(p.Length == 0 ? name : p)}'; available: {string.Join(", ", _order)} (combine with '{CombineSeparator}', e.g. self-awareness{CombineSeparator}cot).";
                return false;
            }
        }
        if (parts.Count > 1 && parts.Contains(PromptingMitigations.None))
        {
            error = $"'{name}': '{PromptingMitigations.None}' cannot be combined with other methods.";
            return false;
        }
        if (parts.Distinct(StringComparer.Ordinal).Count() != parts.Count)
        {
            error = $"'{name}' names a method twice.";
            return false;
        }
        canonical = string.Join(CombineSeparator, parts);
        error = "";
        return true;
    }

    /// <summary>The parts of a (combined) method name, canonical, outermost first.</summary>
    public IReadOnlyList<MethodDefinition> Resolve(string name) =>
        [.. Normalize(name).Split(CombineSeparator).Select(p => _methods[p])];

    /// <summary>Adds the (combined) method's steps to <paramref name="builder"/>.</summary>
    public ChatClientBuilder Use(ChatClientBuilder builder, string name)
    {
        ArgumentNullException.ThrowIfNull(builder);
        foreach (var m in Resolve(name))
        {
            m.Configure(builder);
        }
        return builder;
    }

    /// <summary>Wraps <paramref name="target"/> in the (combined) method; <c>none</c> returns it unchanged.</summary>
    public IChatClient Apply(IChatClient target, string name)
    {
        ArgumentNullException.ThrowIfNull(target);
        return Use(new ChatClientBuilder(target), name).Build();
    }
}
