using Microsoft.Extensions.AI;

namespace BiasFree.Engine.WhiteBox;

/// <summary>What the white-box methods need besides the target: fitted artifacts and reward models.</summary>
public sealed record WhiteBoxSettings
{
    /// <summary>Folder written by <c>biasfree steer fit</c> (FairSteer and its ablations).</summary>
    public string? SteeringFolder { get; init; }

    /// <summary>BiasFilter's reward models and search settings.</summary>
    public BiasFilterOptions? BiasFilter { get; init; }
}

/// <summary>
/// The white-box methods by name: FairSteer, its three ablations and BiasFilter. Each wraps an in-process engine target
/// (anything whose service chain holds an <see cref="Chat.EngineChatClient"/>); a prompting method can wrap the result
/// (<c>cot+fairsteer</c>).
/// </summary>
public static class WhiteBoxMethods
{
    public const string FairSteer = "fairsteer";
    public const string FairSteerAlways = "fairsteer-always";
    public const string FairSteerGateOnly = "fairsteer-gate-only";
    public const string FairSteerRandom = "fairsteer-random";
    public const string FairSteerPromptGate = "fairsteer-prompt-gate";
    public const string BiasFilter = "biasfilter";

    public static IReadOnlyList<string> Names { get; } = [FairSteer, FairSteerAlways, FairSteerGateOnly, FairSteerRandom, FairSteerPromptGate, BiasFilter];

    public static IReadOnlyDictionary<string, string> Descriptions { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [FairSteer] = "probe-gated activation steering (needs --steering DIR from `biasfree steer fit`)",
        [FairSteerAlways] = "FairSteer ablation: steer at every step, no gate",
        [FairSteerGateOnly] = "FairSteer ablation: run and count the gate, never steer",
        [FairSteerRandom] = "FairSteer ablation: gated, with a random vector of the same norm",
        [FairSteerPromptGate] = "FairSteer variant: the gate judged once at the prompt's last token, its decision held for the whole reply",
        [BiasFilter] = "segment filtering by an implicit fairness reward (needs --reward-model and --reward-ref)",
    };

    public static bool IsWhiteBox(string name) => Names.Contains(name, StringComparer.Ordinal);

    public static bool IsFairSteer(string name) => name.StartsWith(FairSteer, StringComparison.Ordinal) && IsWhiteBox(name);

    /// <summary>Wraps <paramref name="inner"/> in the named method (loading its artifacts through <paramref name="cache"/>).</summary>
    public static IChatClient Apply(IChatClient inner, string name, WhiteBoxSettings settings, WhiteBoxArtifacts cache)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(settings);
        if (IsFairSteer(name))
        {
            var folder = settings.SteeringFolder ?? throw new ArgumentException($"method '{name}' needs a FairSteer folder (--steering DIR, made by `biasfree steer fit`).");
            var steer = cache.FairSteer(folder);
            return name switch
            {
                FairSteerAlways => new FairSteerChatClient(inner, steer, SteeringMode.Always),
                FairSteerGateOnly => new FairSteerChatClient(inner, steer, SteeringMode.GateOnly),
                FairSteerRandom => new FairSteerChatClient(inner, steer, SteeringMode.Gated, randomVector: true),
                FairSteerPromptGate => new FairSteerChatClient(inner, steer, SteeringMode.PromptGated),
                _ => new FairSteerChatClient(inner, steer),
            };
        }
        if (name == BiasFilter)
        {
            var options = settings.BiasFilter ?? throw new ArgumentException("method 'biasfilter' needs reward models (--reward-model FOLDER --reward-ref FOLDER).");
            return new BiasFilterChatClient(inner, cache.RewardModels(options), options);
        }
        throw new ArgumentException($"'{name}' is not a white-box method; known: {string.Join(", ", Names)}.");
    }
}

/// <summary>Loads each artifact once per run and disposes the reward models at the end.</summary>
public sealed class WhiteBoxArtifacts : IDisposable
{
    private readonly Dictionary<string, FairSteerModel> _steer = new(StringComparer.Ordinal);
    private ImplicitReward? _reward;
    private readonly Lock _gate = new();

    public FairSteerModel FairSteer(string folder)
    {
        lock (_gate)
        {
            var full = Path.GetFullPath(folder);
            if (!_steer.TryGetValue(full, out var m)) _steer[full] = m = FairSteerModel.Load(full);
            return m;
        }
    }

    public ImplicitReward RewardModels(BiasFilterOptions options)
    {
        lock (_gate)
        {
            return _reward ??= ImplicitReward.Load(options.FairModel, options.ReferenceModel, options.Beta);
        }
    }

    public void Dispose() => _reward?.Dispose();
}
