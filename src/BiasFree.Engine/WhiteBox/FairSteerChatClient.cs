using System.Globalization;
using BiasFree.Engine.Chat;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.WhiteBox;

/// <summary>
/// FairSteer as a chat-client step: every request to the inner in-process engine gets its own <see cref="FairSteerHook"/>
/// (probe-gated steering at the fitted layer, at every decoding step with the KV cache), and the reply carries what the
/// gate did in its AdditionalProperties (<see cref="GateFiringsKey"/>, <see cref="GateStepsKey"/>), which the run store
/// records per response. Prompting methods can wrap it (<c>cot+fairsteer</c>): they change the messages, this changes the
/// activations of whatever request reaches the model.
/// </summary>
public sealed class FairSteerChatClient : DelegatingChatClient
{
    public const string GateFiringsKey = "biasfree.fairsteer.gate_firings";
    public const string GateStepsKey = "biasfree.fairsteer.gate_steps";
    public const string SettingsKey = "biasfree.fairsteer.settings";

    private readonly FairSteerModel _steer;
    private readonly SteeringMode _mode;
    private readonly bool _randomVector;

    public FairSteerChatClient(IChatClient inner, FairSteerModel steer, SteeringMode mode = SteeringMode.Gated, bool randomVector = false)
        : base(inner)
    {
        _steer = steer;
        _mode = mode;
        _randomVector = randomVector;
        var engine = inner.GetService<EngineChatClient>()
            ?? throw new InvalidOperationException("FairSteer needs an in-process model target (a model folder or the demo model), not a remote server.");
        if (engine.Model.Config.HiddenSize != steer.Info.HiddenSize || engine.Model.Config.NumHiddenLayers != steer.Info.NumLayers)
            throw new InvalidOperationException($"the FairSteer probes were fitted on a model with hidden size {steer.Info.HiddenSize} and {steer.Info.NumLayers} layers ('{steer.Info.Model}'); the target has {engine.Model.Config.HiddenSize} and {engine.Model.Config.NumHiddenLayers}.");
    }

    /// <summary>A short description of the settings, recorded with each reply.</summary>
    public string Settings => string.Create(CultureInfo.InvariantCulture,
        $"layer={_steer.Info.Layer};alpha={_steer.Info.Alpha};mode={_mode.ToString().ToLowerInvariant()}{(_randomVector ? ";vector=random" : "")}");

    public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        base.GetResponseAsync(messages, WithHook(options), cancellationToken);

    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        base.GetStreamingResponseAsync(messages, WithHook(options), cancellationToken);

    /// <summary>The first position FairSteer steers: the prompt's last token (the one its probes were fitted on).</summary>
    public static int LastPromptToken(IReadOnlyList<int> prompt) => prompt.Count - 1;

    private ChatOptions WithHook(ChatOptions? options)
    {
        FairSteerHook? hook = null;
        var o = options?.Clone() ?? new ChatOptions();
        o.AdditionalProperties = o.AdditionalProperties is null ? [] : new AdditionalPropertiesDictionary(o.AdditionalProperties);
        o.AdditionalProperties[EngineChatClient.RequestHooksKey] = new EngineRequestHooks
        {
            // Steer from the prompt's last token on: the batcher gives the hook only those positions (the prompt's last token,
            // then one per decoding step), and shares the prompt before it with other requests like a plain request's.
            CreateOnLayer = prompt => (hook = _steer.CreateHook(_mode, randomVector: _randomVector, fromPosition: 0)).OnLayer,
            OnLayerFrom = LastPromptToken,
            Describe = props =>
            {
                if (hook is null) return;
                props[GateFiringsKey] = hook.Firings.Sum();
                props[GateStepsKey] = hook.Steps.Sum();
                props[SettingsKey] = Settings;
            },
        };
        return o;
    }
}
