using System.Security.Cryptography;
using System.Text;
using BiasFree.Evaluations;
using BiasFree.Methods;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.Decoding;

/// <summary>
/// The decoding-time methods by name, as <c>biasfree run --method</c> spells them: <c>persona-judge</c> and the two
/// baselines it is compared with, sampling from each persona alone (<c>draft-persona</c>, <c>judge-persona</c>).
/// </summary>
public static class DecodingMethods
{
    /// <summary>Speculative cross-validation between the two personas (<see cref="PersonaJudgeChatClient"/>).</summary>
    public const string PersonaJudge = "persona-judge";

    /// <summary>Sampling under the draft persona alone.</summary>
    public const string DraftPersona = "draft-persona";

    /// <summary>Sampling under the judge persona alone.</summary>
    public const string JudgePersona = "judge-persona";

    /// <summary>Every name, in help order.</summary>
    public static IReadOnlyList<string> Names { get; } = [PersonaJudge, DraftPersona, JudgePersona];

    /// <summary>One line per name for help texts.</summary>
    public static string Describe(string name) => Normalize(name) switch
    {
        PersonaJudge => "Persona-judge: one persona drafts, the other accepts or replaces each token (speculative sampling), roles swapping",
        DraftPersona => "sampling under the draft persona alone (Persona-judge's baseline)",
        JudgePersona => "sampling under the judge persona alone (Persona-judge's baseline)",
        _ => throw new ArgumentException($"unknown decoding method '{name}'", nameof(name)),
    };

    /// <summary>True for a decoding method's name (case-insensitive).</summary>
    public static bool IsDecodingMethod(string name) => Names.Contains(Normalize(name));

    private static string Normalize(string name) => (name ?? "").Trim().ToLowerInvariant();

    /// <summary>Wraps <paramref name="inner"/> (whose chain reaches the in-process engine) in the named method.</summary>
    /// <param name="inner">The target chain.</param>
    /// <param name="name">A name of <see cref="Names"/>.</param>
    /// <param name="options">Personas and settings (default: <see cref="PersonaJudgeOptions"/>'s).</param>
    /// <param name="strategy">A Persona-judge strategy to share (its counts then sum over every client made with it); by default a new one from <paramref name="options"/>.</param>
    public static IChatClient Apply(IChatClient inner, string name, PersonaJudgeOptions? options = null, PersonaJudgeStrategy? strategy = null)
    {
        options = strategy?.Options ?? options ?? new PersonaJudgeOptions();
        return Normalize(name) switch
        {
            PersonaJudge => new PersonaJudgeChatClient(inner, strategy ?? new PersonaJudgeStrategy(options)),
            DraftPersona => new PersonaChatClient(inner, options.DraftPersona, options.Settings),
            JudgePersona => new PersonaChatClient(inner, options.JudgePersona, options.Settings),
            _ => throw new ArgumentException($"unknown decoding method '{name}'; available: {string.Join(", ", Names)}", nameof(name)),
        };
    }

    /// <summary>
    /// A short hash of everything in <paramref name="options"/> that changes replies (personas, γ, schedule, default
    /// filters), for response-cache keys: a run with other personas must not be answered from this one's cache.
    /// </summary>
    public static string CacheIdentity(PersonaJudgeOptions options)
    {
        var s = options.Settings;
        var text = string.Join("\u0001", options.DraftPersona, options.JudgePersona, s.DraftTokens, s.Schedule, s.Temperature, s.TopK, s.TopP);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16];
    }

    /// <summary>
    /// Adds the decoding methods to <paramref name="registry"/> (an extensible copy, e.g.
    /// <c>new MethodRegistry(MethodRegistry.PromptingWith(prompts))</c>) as white-box methods, so they combine with
    /// prompting methods by '+' (<c>self-awareness+persona-judge</c>: the prompting method outside). Every
    /// <c>persona-judge</c> step shares <paramref name="strategy"/>, whose counts then cover the whole run.
    /// </summary>
    public static MethodRegistry Register(MethodRegistry registry, PersonaJudgeStrategy strategy)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(strategy);
        foreach (var name in Names)
        {
            registry.Add(new MethodDefinition(name, Describe(name), b => b.Use(inner => Apply(inner, name, strategy: strategy)), MethodKind.WhiteBox));
        }
        return registry;
    }

    /// <summary>
    /// The in-process <paramref name="target"/> made ready for decoding methods: its client gets a
    /// <see cref="DecodingStrategyChatClient"/> on top (below the run's per-request seed, recording and cache), and its
    /// cache identity gains <see cref="CacheIdentity"/> of <paramref name="options"/>, since personas, γ and schedule
    /// change replies without changing a method's name.
    /// </summary>
    public static EvaluationTarget WithDecoding(EvaluationTarget target, PersonaJudgeOptions options)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        return target.Wrap(inner => new DecodingStrategyChatClient(inner), $"persona-judge={CacheIdentity(options)}");
    }
}
