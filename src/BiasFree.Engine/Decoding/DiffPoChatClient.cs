using System.Globalization;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using BiasFree.Engine.Chat;
using BiasFree.Engine.Evaluations;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using BiasFree.Evaluations;
using BiasFree.Methods;
using BiasFree.Mitigations;
using BiasFree.Reports;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.Decoding;

/// <summary>Counts of DiffPO refinements summed over replies.</summary>
/// <param name="Replies">Answers refined.</param>
/// <param name="Changed">Answers whose refined text differs from the original.</param>
/// <param name="Iterations">Jacobi iterations (aligner passes over a window).</param>
/// <param name="ChangedTokens">Token positions changed against the originals.</param>
/// <param name="OriginalTokens">Tokens of the original answers (the aligner's encoding).</param>
/// <param name="RefinedTokens">Tokens of the refined answers.</param>
/// <param name="Converged">Answers whose every window reached a fixed point.</param>
/// <param name="Seconds">Refinement wall time.</param>
public sealed record DiffPoStatistics(long Replies, long Changed, long Iterations, long ChangedTokens, long OriginalTokens, long RefinedTokens, long Converged, double Seconds)
{
    /// <summary>All zero.</summary>
    public static DiffPoStatistics Empty { get; } = new(0, 0, 0, 0, 0, 0, 0, 0);
}

/// <summary>One refined answer and what the refinement did.</summary>
/// <param name="Text">The refined answer.</param>
/// <param name="Result">The Jacobi counts.</param>
/// <param name="PromptTokens">Tokens of the aligner's prompt (the chat up to the assistant turn).</param>
/// <param name="OriginalTokens">Tokens of the original answer.</param>
public sealed record DiffPoRefinement(string Text, JacobiResult Result, int PromptTokens, int OriginalTokens);

/// <summary>
/// The DiffPO aligner: a model run in-process (any engine model folder, e.g. one written by <c>biasfree diffpo train</c>)
/// that refines answers with <see cref="JacobiRefiner"/>, and the refinement settings. It does not need the target's
/// weights, so the answers may come from any target, an OpenAI-compatible server included. Refinements run one at a
/// time per aligner model (each keeps its own KV cache and does not share the engine's continuous batch).
/// </summary>
public sealed class DiffPoStrategy : IDisposable
{
    private static readonly ConditionalWeakTable<CausalLM, SemaphoreSlim> Locks = new();
    private readonly Lock _statsLock = new();
    private readonly bool _ownsAligner;
    private DiffPoStatistics _total = DiffPoStatistics.Empty;

    /// <summary>A strategy over <paramref name="aligner"/> (an in-process engine client: its model, tokenizer and chat template are used).</summary>
    /// <param name="aligner">The aligner model.</param>
    /// <param name="settings">Window, iterations and frozen tokens (default: the released script's).</param>
    /// <param name="identity">What identifies the aligner's weights in cache keys (e.g. <see cref="LocalTargets.ContentHash"/>); null: the model id.</param>
    /// <param name="ownsAligner">Dispose <paramref name="aligner"/> with this strategy.</param>
    public DiffPoStrategy(EngineChatClient aligner, DiffPoSettings? settings = null, string? identity = null, bool ownsAligner = false)
    {
        Aligner = aligner ?? throw new ArgumentNullException(nameof(aligner));
        Settings = settings ?? new DiffPoSettings();
        Settings.Validate();
        _ownsAligner = ownsAligner;
        var options = aligner.GetService<EngineChatClientOptions>();
        AlignerIdentity = identity ?? options?.ModelId ?? "aligner";
    }

    /// <summary>Loads the aligner from a model folder (float32, CPU, template detected unless given).</summary>
    public static DiffPoStrategy Load(string folder, DiffPoSettings? settings = null, string? chatTemplate = null)
    {
        var engine = LocalModel.Load(folder, new LocalModelOptions { ChatTemplate = chatTemplate, KvCacheBytes = 16L << 20 });
        return new DiffPoStrategy(engine, settings, $"sha256:{LocalTargets.ContentHash(folder)}", ownsAligner: true);
    }

    /// <summary>The aligner.</summary>
    public EngineChatClient Aligner { get; }

    /// <summary>Window, iterations and frozen tokens.</summary>
    public DiffPoSettings Settings { get; }

    /// <summary>What identifies the aligner's weights.</summary>
    public string AlignerIdentity { get; }

    /// <summary>A short hash of the aligner and every setting that changes replies, for response-cache keys.</summary>
    public string CacheIdentity
    {
        get
        {
            var text = string.Join("\u0001", AlignerIdentity, Settings.Window, Settings.MaxIterations, Settings.ReserveTokens);
            return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16];
        }
    }

    /// <summary>Counts summed over every refinement so far.</summary>
    public DiffPoStatistics Statistics
    {
        get
        {
            lock (_statsLock) return _total;
        }
    }

    /// <summary>
    /// Refines the last message of <paramref name="conversation"/> (the assistant's answer) given the messages before it.
    /// r (frozen tokens) is drawn from <paramref name="options"/>'s seed; the length limit is its MaxOutputTokens
    /// (default: the aligner's).
    /// </summary>
    public async Task<DiffPoRefinement> RefineAsync(IReadOnlyList<ChatMessage> conversation, ChatOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(conversation);
        if (conversation.Count < 2 || conversation[^1].Role != ChatRole.Assistant)
            throw new ArgumentException("DiffPO refines an answer: the conversation must end with the assistant's reply", nameof(conversation));
        var tokenizer = Aligner.GetService<ITextTokenizer>()!;
        var formatter = Aligner.GetService<IChatFormatter>()!;
        var engineOptions = Aligner.GetService<EngineChatClientOptions>() ?? new EngineChatClientOptions();
        var model = Aligner.Model;

        var context = conversation.Take(conversation.Count - 1).ToList();
        if (!string.IsNullOrEmpty(options?.Instructions)) context.Insert(0, new ChatMessage(ChatRole.System, options.Instructions));
        var prompt = tokenizer.Encode(formatter.Render(context, addGenerationPrompt: true), engineOptions.AddSpecialTokens);
        if (prompt.Count == 0 && tokenizer.BosId is int bos) prompt = [bos];
        var answer = tokenizer.Encode(conversation[^1].Text, addSpecialTokens: false);
        // The template's end-of-turn marker first: it also pads the initial point, and it is what a chat model ends an answer with.
        var eos = engineOptions.ExtraEosIds.Concat(tokenizer.EosIds).Concat(model.EosTokenIds).Distinct().ToList();
        int maxTokens = options?.MaxOutputTokens ?? engineOptions.DefaultMaxOutputTokens;
        long seed = options?.Seed ?? Random.Shared.NextInt64();
        int frozen = Settings.FrozenTokensFor(seed);

        var gate = Locks.GetValue(model, _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        JacobiResult result;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            result = await Task.Run(() => JacobiRefiner.Refine(model, prompt, answer, frozen, Settings, maxTokens, eos, cancellationToken), cancellationToken)
                .ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
        cancellationToken.ThrowIfCancellationRequested();
        double seconds = System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds;
        var text = tokenizer.Decode(result.Tokens);
        bool changed = !string.Equals(text.Trim(), conversation[^1].Text.Trim(), StringComparison.Ordinal);
        lock (_statsLock)
        {
            _total = new DiffPoStatistics(_total.Replies + 1, _total.Changed + (changed ? 1 : 0), _total.Iterations + result.Iterations,
                _total.ChangedTokens + result.ChangedTokens, _total.OriginalTokens + answer.Count, _total.RefinedTokens + result.Tokens.Count,
                _total.Converged + (result.Converged ? 1 : 0), _total.Seconds + seconds);
        }
        return new DiffPoRefinement(text, result, prompt.Count, answer.Count);
    }

    /// <summary>The refinement as a chat response carrying its counts under <c>biasfree.diffpo.*</c> (recorded by a run).</summary>
    public static ChatResponse ToResponse(DiffPoRefinement refinement, string? modelId)
    {
        ArgumentNullException.ThrowIfNull(refinement);
        var r = refinement.Result;
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, refinement.Text))
        {
            ModelId = modelId,
            CreatedAt = DateTimeOffset.UtcNow,
            ResponseId = Guid.NewGuid().ToString("N"),
            FinishReason = r.FinishReason == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop,
            // The aligner's tokens: it reads the prompt and the frozen tokens, and writes the refined answer.
            Usage = new UsageDetails
            {
                InputTokenCount = refinement.PromptTokens + r.FrozenTokens,
                OutputTokenCount = r.Tokens.Count - r.FrozenTokens,
                TotalTokenCount = refinement.PromptTokens + r.Tokens.Count,
            },
            AdditionalProperties = new AdditionalPropertiesDictionary
            {
                [DiffPoMethods.IterationsKey] = r.Iterations,
                [DiffPoMethods.WindowsKey] = r.Windows,
                [DiffPoMethods.ChangedTokensKey] = r.ChangedTokens,
                [DiffPoMethods.TokenUpdatesKey] = r.TokenUpdates,
                [DiffPoMethods.FrozenTokensKey] = r.FrozenTokens,
                [DiffPoMethods.ConvergedKey] = r.Converged,
                [DiffPoMethods.OriginalTokensKey] = refinement.OriginalTokens,
                [DiffPoMethods.RefinedTokensKey] = r.Tokens.Count,
                [DiffPoMethods.AlignerOutputTokensKey] = r.Tokens.Count - r.FrozenTokens,
            },
        };
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_ownsAligner) Aligner.Dispose();
    }
}

/// <summary>
/// The <c>diffpo</c> method step: asks the target (the inner chain) for its answer, then has the in-process aligner
/// refine it (<see cref="DiffPoStrategy"/>). When the chain has a <see cref="DiffPoRefinementChatClient"/> (a run puts it
/// directly over the target, under the run's recording and cache), the refinement travels down the chain as a second
/// request [conversation, the original answer], so the run store records the original answer, the refined one and the
/// refinement's counts; otherwise this step refines by itself. Dialogues are refined on their final turn only, like
/// the prompting methods; earlier turns pass through.
/// </summary>
public sealed class DiffPoChatClient(IChatClient inner, DiffPoStrategy strategy) : DelegatingChatClient(inner)
{
    /// <summary>The aligner and settings.</summary>
    public DiffPoStrategy Strategy { get; } = strategy ?? throw new ArgumentNullException(nameof(strategy));

    /// <inheritdoc />
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var list = messages as IReadOnlyList<ChatMessage> ?? [.. messages];
        var original = await base.GetResponseAsync(list, options, cancellationToken).ConfigureAwait(false);
        if (!ProbeContext.IsFinalTurn(options)) return original;

        List<ChatMessage> conversation = [.. list, new ChatMessage(ChatRole.Assistant, original.Text)];
        if (InnerClient.GetService<DiffPoRefinementChatClient>() is not null)
        {
            var o = options?.Clone() ?? new ChatOptions();
            o.AdditionalProperties = o.AdditionalProperties is null ? [] : new AdditionalPropertiesDictionary(o.AdditionalProperties);
            o.AdditionalProperties[DiffPoRefinementChatClient.StrategyKey] = Strategy;
            return await InnerClient.GetResponseAsync(conversation, o, cancellationToken).ConfigureAwait(false);
        }
        var refinement = await Strategy.RefineAsync(conversation, options, cancellationToken).ConfigureAwait(false);
        return DiffPoStrategy.ToResponse(refinement, original.ModelId);
    }

    /// <inheritdoc />
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        // The refined answer exists only once the whole original answer does; it is delivered whole.
        var response = await GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        foreach (var update in response.ToChatResponseUpdates()) yield return update;
    }
}

/// <summary>
/// The aligner's end of DiffPO, placed directly over any target: a request whose options carry a
/// <see cref="DiffPoStrategy"/> under <see cref="StrategyKey"/> is a refinement request (the conversation ends with the
/// answer to refine) and is answered by the in-process aligner; every other request goes to the target unchanged.
/// </summary>
public sealed class DiffPoRefinementChatClient(IChatClient inner) : DelegatingChatClient(inner)
{
    /// <summary>AdditionalProperties key of the strategy a refinement request asks for.</summary>
    public const string StrategyKey = "biasfree.diffpo.strategy";

    /// <inheritdoc />
    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        if (options?.AdditionalProperties?.TryGetValue(StrategyKey, out var value) != true || value is not DiffPoStrategy strategy)
            return await base.GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        var refinement = await strategy.RefineAsync([.. messages], options, cancellationToken).ConfigureAwait(false);
        return DiffPoStrategy.ToResponse(refinement, options.ModelId);
    }

    /// <inheritdoc />
    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (options?.AdditionalProperties?.ContainsKey(StrategyKey) != true)
        {
            await foreach (var u in base.GetStreamingResponseAsync(messages, options, cancellationToken).ConfigureAwait(false)) yield return u;
            yield break;
        }
        var response = await GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        foreach (var update in response.ToChatResponseUpdates()) yield return update;
    }
}

/// <summary>DiffPO by name (<c>diffpo</c>), its registration and the run-store detail keys.</summary>
public static class DiffPoMethods
{
    /// <summary>The method's name.</summary>
    public const string Name = "diffpo";

    /// <summary>Detail keys of a refinement reply (see <see cref="DiffPoStrategy.ToResponse"/>).</summary>
    public const string IterationsKey = DiffPoSummary.IterationsKey;
    /// <summary>Windows refined.</summary>
    public const string WindowsKey = "biasfree.diffpo.windows";
    /// <summary>Positions changed against the original answer.</summary>
    public const string ChangedTokensKey = DiffPoSummary.ChangedTokensKey;
    /// <summary>Token changes summed over iterations.</summary>
    public const string TokenUpdatesKey = "biasfree.diffpo.token_updates";
    /// <summary>r: frozen leading tokens.</summary>
    public const string FrozenTokensKey = DiffPoSummary.FrozenTokensKey;
    /// <summary>True when every window reached a fixed point.</summary>
    public const string ConvergedKey = DiffPoSummary.ConvergedKey;
    /// <summary>Tokens of the original answer (aligner's encoding).</summary>
    public const string OriginalTokensKey = DiffPoSummary.OriginalTokensKey;
    /// <summary>Tokens of the refined answer.</summary>
    public const string RefinedTokensKey = "biasfree.diffpo.refined_tokens";
    /// <summary>Tokens the aligner wrote (refined minus frozen): what the response's Usage counts as output.</summary>
    public const string AlignerOutputTokensKey = DiffPoSummary.AlignerOutputTokensKey;

    /// <summary>True for <c>diffpo</c> (case-insensitive).</summary>
    public static bool IsDiffPo(string name) => string.Equals((name ?? "").Trim(), Name, StringComparison.OrdinalIgnoreCase);

    /// <summary>One line for help texts.</summary>
    public const string Description = "DiffPO: an in-process aligner refines the target's whole answer by Jacobi fixed-point iteration (any target, servers included)";

    /// <summary>Adds <c>diffpo</c> to <paramref name="registry"/> (an extensible copy); every step shares <paramref name="strategy"/>.</summary>
    public static MethodRegistry Register(MethodRegistry registry, DiffPoStrategy strategy)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(strategy);
        // Prompting kind: it wraps the target's requests and replies and needs nothing from the target's weights.
        registry.Add(new MethodDefinition(Name, Description, b => b.Use(inner => new DiffPoChatClient(inner, strategy)), MethodKind.Prompting));
        return registry;
    }

    /// <summary>
    /// <paramref name="target"/> (any kind) with a <see cref="DiffPoRefinementChatClient"/> directly over its client, so
    /// refinements pass the run's recording and cache; its cache identity gains the aligner's and the settings' hash.
    /// </summary>
    public static EvaluationTarget WithAligner(EvaluationTarget target, DiffPoStrategy strategy)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(strategy);
        return target.Wrap(inner => new DiffPoRefinementChatClient(inner), $"diffpo={strategy.CacheIdentity}");
    }

    /// <summary>Formats a statistics line for the CLI.</summary>
    public static string Describe(DiffPoStatistics s) => string.Create(CultureInfo.InvariantCulture,
        $"diffpo: {s.Replies} answers refined, {s.Changed} changed ({(s.Replies == 0 ? 0 : (double)s.Changed / s.Replies):P1}), {(s.Replies == 0 ? 0 : (double)s.Iterations / s.Replies):0.00} Jacobi iterations and {(s.Replies == 0 ? 0 : (double)s.ChangedTokens / s.Replies):0.00} changed tokens per answer, {s.Converged} converged, {s.Seconds:0.0} s");
}
