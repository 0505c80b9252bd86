using System.Globalization;
using System.Runtime.CompilerServices;
using BiasFree.Engine.Chat;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.Decoding;

/// <summary>The two preference prompts of Persona-judge and its decoding settings.</summary>
public sealed record PersonaJudgeOptions
{
    /// <summary>Default draft persona: the run's plain system prompt (a helpful assistant).</summary>
    public const string DefaultDraftPersona = "You are a helpful assistant.";

    /// <summary>Default judge persona: a fairness preference (the demo corpus teaches this exact prompt, see DemoCorpusOptions.Personas).</summary>
    public const string DefaultJudgePersona = "You are a fair-minded assistant. You treat every group of people equally and never rely on stereotypes.";

    /// <summary>System prompt of the context that drafts in round 1.</summary>
    public string DraftPersona { get; init; } = DefaultDraftPersona;

    /// <summary>System prompt of the context that judges in round 1.</summary>
    public string JudgePersona { get; init; } = DefaultJudgePersona;

    /// <summary>γ, temperature, top-k, top-p and role schedule. A request's own Temperature/TopK/TopP take precedence.</summary>
    public PersonaJudgeSettings Settings { get; init; } = new();

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad field.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(DraftPersona)) throw new ArgumentException("the draft persona must not be empty");
        if (string.IsNullOrWhiteSpace(JudgePersona)) throw new ArgumentException("the judge persona must not be empty");
        Settings.Validate();
    }

    /// <summary>
    /// The conversation under <paramref name="persona"/>: the persona is the system message. A system message the
    /// conversation already has is kept after it on a new line, unless it is the run's plain default (which the persona
    /// replaces), so a prompting method combined outside (e.g. self-awareness) still reaches the model.
    /// </summary>
    public static List<ChatMessage> WithPersona(IEnumerable<ChatMessage> messages, string persona, string? instructions = null)
    {
        var list = messages.ToList();
        var extra = new List<string>();
        if (!string.IsNullOrEmpty(instructions)) extra.Add(instructions);
        if (list.Count > 0 && list[0].Role == ChatRole.System)
        {
            var existing = list[0].Text;
            if (!string.IsNullOrWhiteSpace(existing) && existing.Trim() != DefaultDraftPersona) extra.Add(existing);
            list.RemoveAt(0);
        }
        list.Insert(0, new ChatMessage(ChatRole.System, string.Join("\n", [persona, .. extra])));
        return list;
    }
}

/// <summary>
/// Persona-judge as a <see cref="IDecodingStrategy"/>: decodes the reply with <see cref="PersonaJudgeDecoder"/> between
/// the draft and the judge persona. Requests run one at a time per model (the decoder keeps two KV caches of its own and
/// does not go through the engine's batch). Each response carries its counts in AdditionalProperties under
/// <c>biasfree.persona_judge.*</c>; <see cref="Statistics"/> sums them over the strategy's life.
/// </summary>
public sealed class PersonaJudgeStrategy : IDecodingStrategy
{
    private static readonly ConditionalWeakTable<CausalLM, SemaphoreSlim> Locks = new();
    private readonly Lock _statsLock = new();
    private PersonaJudgeStatistics _total = PersonaJudgeStatistics.Empty;
    private long _replies;
    private double _seconds;

    /// <summary>A strategy with <paramref name="options"/> (validated).</summary>
    public PersonaJudgeStrategy(PersonaJudgeOptions? options = null)
    {
        Options = options ?? new PersonaJudgeOptions();
        Options.Validate();
    }

    /// <summary>The personas and settings in use.</summary>
    public PersonaJudgeOptions Options { get; }

    /// <inheritdoc />
    public string Name => "persona-judge";

    /// <summary>Counts summed over every reply so far, with the replies and the decoding seconds.</summary>
    public (PersonaJudgeStatistics Totals, long Replies, double Seconds) Statistics
    {
        get
        {
            lock (_statsLock) return (_total, _replies, _seconds);
        }
    }

    /// <inheritdoc />
    public async Task<ChatResponse> GenerateAsync(EngineChatClient engine, IReadOnlyList<ChatMessage> messages, ChatOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(engine);
        var tokenizer = engine.GetService<ITextTokenizer>()!;
        var formatter = engine.GetService<IChatFormatter>()!;
        var engineOptions = engine.GetService<EngineChatClientOptions>() ?? new EngineChatClientOptions();
        var model = engine.Model;

        var settings = Options.Settings with
        {
            Temperature = options?.Temperature is { } t ? t : Options.Settings.Temperature,
            TopK = options?.TopK ?? Options.Settings.TopK,
            TopP = options?.TopP is { } p ? p : Options.Settings.TopP,
        };
        IReadOnlyList<int> Encode(string persona)
        {
            var ids = tokenizer.Encode(formatter.Render(PersonaJudgeOptions.WithPersona(messages, persona, options?.Instructions), addGenerationPrompt: true), engineOptions.AddSpecialTokens);
            return ids.Count == 0 && tokenizer.BosId is int bos ? [bos] : ids;
        }
        var draftPrompt = Encode(Options.DraftPersona);
        var judgePrompt = Encode(Options.JudgePersona);
        var eos = tokenizer.EosIds.Concat(model.EosTokenIds).Concat(engineOptions.ExtraEosIds).ToHashSet();
        var stops = options?.StopSequences?.Where(s => s.Length > 0).ToList() ?? [];
        int maxTokens = options?.MaxOutputTokens ?? engineOptions.DefaultMaxOutputTokens;
        long seed = options?.Seed ?? Random.Shared.NextInt64();
        Func<IReadOnlyList<int>, bool>? stop = stops.Count == 0 ? null : ids =>
        {
            var text = tokenizer.Decode(ids);
            return TextGeneration.CutAtStop(text, stops).Length < text.Length;
        };

        var gate = Locks.GetValue(model, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        PersonaJudgeResult result;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            result = await Task.Run(() => PersonaJudgeDecoder.Generate(model, draftPrompt, judgePrompt, settings, maxTokens, eos, seed, stop, cancellationToken),
                cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
        cancellationToken.ThrowIfCancellationRequested();
        double seconds = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
        lock (_statsLock)
        {
            _total = _total.Add(result.Statistics);
            _replies++;
            _seconds += seconds;
        }

        var s = result.Statistics;
        string text = TextGeneration.CutAtStop(tokenizer.Decode(result.Tokens), stops);
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, text))
        {
            ModelId = options?.ModelId ?? engineOptions.ModelId,
            CreatedAt = DateTimeOffset.UtcNow,
            ResponseId = Guid.NewGuid().ToString("N"),
            FinishReason = result.FinishReason == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop,
            // Prompt tokens: both contexts are read; completion tokens: the reply's.
            Usage = new UsageDetails
            {
                InputTokenCount = draftPrompt.Count + judgePrompt.Count,
                OutputTokenCount = result.Tokens.Count,
                TotalTokenCount = draftPrompt.Count + judgePrompt.Count + result.Tokens.Count,
            },
            AdditionalProperties = new AdditionalPropertiesDictionary
            {
                ["biasfree.persona_judge.schedule"] = settings.Schedule.ToString(),
                ["biasfree.persona_judge.rounds"] = s.Rounds,
                ["biasfree.persona_judge.drafted"] = s.Drafted,
                ["biasfree.persona_judge.accepted"] = s.Accepted,
                ["biasfree.persona_judge.judge_passes"] = s.JudgePasses,
                ["biasfree.persona_judge.draft_passes"] = s.DraftPasses,
                ["biasfree.persona_judge.tokens"] = s.Tokens,
            },
        };
    }
}

/// <summary>
/// The <c>persona-judge</c> method step: hands its <see cref="PersonaJudgeStrategy"/> to the engine side of the chain
/// (<see cref="DecodingStrategyChatClient"/>), so the request still passes the run's recording and cache on its way.
/// Without a dispatcher in the chain it runs the strategy on the engine itself; without an in-process engine it fails.
/// </summary>
public sealed class PersonaJudgeChatClient(IChatClient inner, PersonaJudgeStrategy strategy) : DelegatingChatClient(inner)
{
    /// <summary>A step with its own strategy built from <paramref name="options"/>.</summary>
    public PersonaJudgeChatClient(IChatClient inner, PersonaJudgeOptions? options = null) : this(inner, new PersonaJudgeStrategy(options))
    {
    }

    /// <summary>The strategy this step requests (its <see cref="PersonaJudgeStrategy.Statistics"/> sum every reply; share it to sum over several steps).</summary>
    public PersonaJudgeStrategy Strategy { get; } = strategy ?? throw new ArgumentNullException(nameof(strategy));

    /// <inheritdoc />
    public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        DecodingStrategyChatClient.Request(InnerClient, Strategy, messages, Sampling(options), cancellationToken);

    /// <inheritdoc />
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages,
        ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        // The reply is decided round by round; it is delivered whole.
        var response = await GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        foreach (var update in response.ToChatResponseUpdates()) yield return update;
    }

    // The filters the strategy will use are written into the request, so they key the response cache.
    private ChatOptions Sampling(ChatOptions? options)
    {
        var o = options?.Clone() ?? new ChatOptions();
        o.Temperature ??= (float)Strategy.Options.Settings.Temperature;
        o.TopK ??= Strategy.Options.Settings.TopK;
        o.TopP ??= Strategy.Options.Settings.TopP is { } p ? (float)p : null;
        return o;
    }
}

/// <summary>
/// Sampling from one persona alone, the baseline Persona-judge is compared with: the conversation goes to the engine
/// under the persona's system prompt (same placement rule as <see cref="PersonaJudgeOptions.WithPersona"/>), with the
/// Persona-judge sampling defaults filled in where the request sets none.
/// </summary>
public sealed class PersonaChatClient(IChatClient inner, string persona, PersonaJudgeSettings? sampling = null) : DelegatingChatClient(inner)
{
    private readonly PersonaJudgeSettings _sampling = sampling ?? new PersonaJudgeSettings();

    /// <summary>The persona's system prompt.</summary>
    public string Persona { get; } = string.IsNullOrWhiteSpace(persona) ? throw new ArgumentException("the persona must not be empty", nameof(persona)) : persona;

    /// <inheritdoc />
    public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        base.GetResponseAsync(PersonaJudgeOptions.WithPersona(messages, Persona, options?.Instructions), Sampling(options), cancellationToken);

    /// <inheritdoc />
    public override IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default) =>
        base.GetStreamingResponseAsync(PersonaJudgeOptions.WithPersona(messages, Persona, options?.Instructions), Sampling(options), cancellationToken);

    private ChatOptions Sampling(ChatOptions? options)
    {
        var o = options?.Clone() ?? new ChatOptions();
        o.Instructions = null; // folded into the system message above
        o.Temperature ??= (float)_sampling.Temperature;
        o.TopK ??= _sampling.TopK;
        o.TopP ??= _sampling.TopP is { } p ? (float)p : null;
        return o;
    }
}
