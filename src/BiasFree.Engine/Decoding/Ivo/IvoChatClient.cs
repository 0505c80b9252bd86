using System.Globalization;
using BiasFree.Engine.Chat;
using BiasFree.Engine.Training;
using BiasFree.Methods;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.Decoding.Ivo;

/// <summary>
/// IVO as a chat-client step over an in-process engine target: every request gets its own <see cref="ValueGuide"/>
/// (tokenwise: a logits processor inside the engine's continuous batch, so the request keeps its seed, filters and
/// batching) or <see cref="IvoBlockDecoder"/> (blockwise: run whole on the engine's worker thread). The reply carries
/// what the search did under <c>biasfree.ivo.*</c>, which the run store records per response and <c>report</c> sums.
/// Prompting methods wrap it (<c>cot+ivo</c>): they change the messages, IVO changes how the tokens are chosen.
/// </summary>
public sealed class IvoChatClient : DelegatingChatClient
{
    public const string ModeKey = "biasfree.ivo.mode";
    public const string ValueKey = "biasfree.ivo.value";
    public const string ValueEvaluationsKey = "biasfree.ivo.value_evaluations";
    public const string CostKey = "biasfree.ivo.target_tokens_per_output_token";
    public const string SettingsKey = "biasfree.ivo.settings";

    private readonly ScoreModel _value;

    /// <summary>A step that decodes with <paramref name="value"/> in <paramref name="mode"/>.</summary>
    public IvoChatClient(IChatClient inner, ScoreModel value, IvoSettings settings, IvoMode mode) : base(inner)
    {
        ArgumentNullException.ThrowIfNull(value);
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        _value = value;
        Settings = settings;
        Mode = mode;
        var engine = inner.GetService<EngineChatClient>()
            ?? throw new InvalidOperationException("IVO needs an in-process model target (a model folder or the demo model): it reads the model's next-token logits.");
        if (engine.Model.Config.VocabSize != value.Model.Config.VocabSize)
            throw new InvalidOperationException($"the value model's vocabulary ({value.Model.Config.VocabSize}) differs from the target's ({engine.Model.Config.VocabSize}): it must share the target's tokenizer.");
    }

    /// <summary>β, k, block settings.</summary>
    public IvoSettings Settings { get; }

    /// <summary>Tokenwise or blockwise.</summary>
    public IvoMode Mode { get; }

    /// <summary>A short description of the settings, recorded with each reply.</summary>
    public string Describe() => Mode == IvoMode.Tokenwise
        ? string.Create(CultureInfo.InvariantCulture, $"tokenwise;beta={Settings.Beta};k={Settings.Candidates}")
        : string.Create(CultureInfo.InvariantCulture, $"blockwise;L={Settings.BlockTokens};W={Settings.Beams};B={Settings.BlocksPerBeam}");

    /// <inheritdoc />
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var o = options?.Clone() ?? new ChatOptions();
        o.AdditionalProperties = o.AdditionalProperties is null ? [] : new AdditionalPropertiesDictionary(o.AdditionalProperties);
        if (Mode == IvoMode.Tokenwise)
        {
            using var guide = new ValueGuide(_value, Settings);
            o.AdditionalProperties[EngineChatClient.RequestHooksKey] = new EngineRequestHooks
            {
                LogitsProcessors = [guide],
                Describe = props =>
                {
                    props[ModeKey] = "tokenwise";
                    props[SettingsKey] = Describe();
                    props[ValueEvaluationsKey] = guide.ValueEvaluations;
                    props[CostKey] = "1";
                    if (guide.LastValue() is { } v) props[ValueKey] = Math.Round(v, 4).ToString(CultureInfo.InvariantCulture);
                },
            };
            return await base.GetResponseAsync(messages, o, cancellationToken).ConfigureAwait(false);
        }
        var decoder = new IvoBlockDecoder(_value, Settings);
        o.AdditionalProperties[EngineChatClient.RequestHooksKey] = new EngineRequestHooks
        {
            Decoder = decoder.Decode,
            Describe = props =>
            {
                if (decoder.LastTrace is not { } t) return;
                props[ModeKey] = "blockwise";
                props[SettingsKey] = Describe();
                props[ValueEvaluationsKey] = t.Candidates;
                props[CostKey] = Math.Round(t.TargetTokensPerOutputToken, 3).ToString(CultureInfo.InvariantCulture);
                props[ValueKey] = Math.Round(t.Value, 4).ToString(CultureInfo.InvariantCulture);
            },
        };
        return await base.GetResponseAsync(messages, o, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        // The guide's caches live for one request; the reply is delivered whole.
        var response = await GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        foreach (var update in response.ToChatResponseUpdates()) yield return update;
    }
}

/// <summary>What the IVO methods of a run need: the value model folder and the decoding settings.</summary>
/// <param name="ValueModel">Folder written by <c>biasfree value train</c> (<see cref="ValueTrainer"/>).</param>
/// <param name="Settings">β, k and the block settings.</param>
public sealed record IvoOptions(string ValueModel, IvoSettings Settings);

/// <summary>
/// The IVO methods by name: <c>ivo</c> (tokenwise) and <c>ivo-block</c> (blockwise beam search). Registered as white-box
/// methods, so a prompting method combines outside (<c>cot+ivo</c>). The value model is loaded once per registry.
/// </summary>
public static class IvoMethods
{
    public const string Tokenwise = "ivo";
    public const string Blockwise = "ivo-block";

    public static IReadOnlyList<string> Names { get; } = [Tokenwise, Blockwise];

    public static string Describe(string name) => Normalize(name) switch
    {
        Tokenwise => "IVO: value-guided tokenwise decoding, logits + β·(V(s∘a) − V(s)) over the top-k (needs --value-model DIR from `biasfree value train`)",
        Blockwise => "IVO: value-guided blockwise beam search over sampled blocks of a few tokens (needs --value-model DIR)",
        _ => throw new ArgumentException($"unknown IVO method '{name}'", nameof(name)),
    };

    /// <summary>True for an IVO method's name (case-insensitive).</summary>
    public static bool IsIvo(string name) => Names.Contains(Normalize(name));

    private static string Normalize(string name) => (name ?? "").Trim().ToLowerInvariant();

    /// <summary>
    /// Adds <c>ivo</c> and <c>ivo-block</c> to <paramref name="registry"/>. With <paramref name="options"/> null they are
    /// still known (so a missing --value-model is reported by name when the method is applied).
    /// </summary>
    public static MethodRegistry Register(MethodRegistry registry, IvoOptions? options)
    {
        ArgumentNullException.ThrowIfNull(registry);
        var value = options is null ? null : new Lazy<ScoreModel>(() => ScoreModel.Load(options.ValueModel), LazyThreadSafetyMode.ExecutionAndPublication);
        foreach (var name in Names)
        {
            var mode = name == Tokenwise ? IvoMode.Tokenwise : IvoMode.Blockwise;
            registry.Add(new MethodDefinition(name, Describe(name), b => b.Use(inner => new IvoChatClient(inner,
                value?.Value ?? throw new ArgumentException($"method '{name}' needs a value model (--value-model DIR, made by `biasfree value train`)."),
                options!.Settings, mode)), MethodKind.WhiteBox));
        }
        return registry;
    }
}
