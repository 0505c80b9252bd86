using System.Runtime.CompilerServices;
using System.Threading.Channels;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.Chat;

/// <summary>What the chat client needs from a tokenizer (the lead adapts HfTokenizer to it).</summary>
public interface ITextTokenizer
{
    IReadOnlyList<int> Encode(string text, bool addSpecialTokens);
    string Decode(IEnumerable<int> ids);
    int? BosId { get; }
    IReadOnlyList<int> EosIds { get; }
}

/// <summary>Renders a conversation to the model's prompt text (a chat template).</summary>
public interface IChatFormatter
{
    string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt);
}

public sealed record EngineChatClientOptions
{
    public string ModelId { get; init; } = "biasfree-engine";
    public int DefaultMaxOutputTokens { get; init; } = 256;
    /// <summary>Used when ChatOptions.Temperature is null; 0 means greedy decoding.</summary>
    public float DefaultTemperature { get; init; }
    /// <summary>Passed to Encode for the rendered prompt. Chat templates usually spell out BOS themselves.</summary>
    public bool AddSpecialTokens { get; init; }
    /// <summary>Extra end-of-turn ids (e.g. &lt;|eot_id|&gt;, &lt;|im_end|&gt;) on top of the tokenizer's and the model config's EOS ids.</summary>
    public IReadOnlyList<int> ExtraEosIds { get; init; } = [];
    /// <summary>Logits processors applied to every request (reward/value guidance).</summary>
    public IReadOnlyList<ILogitsProcessor> LogitsProcessors { get; init; } = [];
}

/// <summary>
/// <see cref="IChatClient"/> over an in-process <see cref="CausalLM"/>. Requests are serialised with a lock, because a
/// model's forward pass (and its OnLayer callback) is not re-entrant.
/// Honours Temperature, TopP, TopK, Seed, MaxOutputTokens, StopSequences and Instructions; reports token usage.
/// </summary>
public sealed class EngineChatClient(CausalLM model, ITextTokenizer tokenizer, IChatFormatter formatter, EngineChatClientOptions? options = null)
    : IChatClient
{
    private readonly EngineChatClientOptions _options = options ?? new EngineChatClientOptions();
    private readonly SemaphoreSlim _gate = new(1, 1);

    public CausalLM Model => model;

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        var (prompt, gen) = Prepare(messages, options, onToken: null);
        SequenceResult result;
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            result = await Task.Run(() => model.Generate([prompt], gen, cancellationToken)[0], cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
        cancellationToken.ThrowIfCancellationRequested();
        string text = TextGeneration.CutAtStop(tokenizer.Decode(result.Tokens), gen.StopStrings);
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, text))
        {
            ModelId = options?.ModelId ?? _options.ModelId,
            CreatedAt = DateTimeOffset.UtcNow,
            ResponseId = Guid.NewGuid().ToString("N"),
            FinishReason = Map(result.FinishReason),
            Usage = Usage(prompt.Count, result.Tokens.Count),
        };
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages,
        ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var channel = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var (prompt, gen) = Prepare(messages, options, onToken: (_, token) => channel.Writer.TryWrite(token));
        string responseId = Guid.NewGuid().ToString("N");
        string modelId = options?.ModelId ?? _options.ModelId;

        // Cancelled when the caller's token fires or when the consumer stops enumerating early.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        Task<SequenceResult> run;
        try
        {
            run = Task.Run(() =>
            {
                try
                {
                    return model.Generate([prompt], gen, stop.Token)[0];
                }
                finally
                {
                    channel.Writer.TryComplete();
                }
            }, CancellationToken.None);
        }
        catch
        {
            _gate.Release();
            throw;
        }

        try
        {
            // Decode the whole output each time and emit only text that can no longer change: hold back an incomplete
            // UTF-8 tail (U+FFFD) and anything that could still grow into a stop string.
            var tokens = new List<int>();
            int emitted = 0;
            await foreach (int token in channel.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            {
                tokens.Add(token);
                string text = tokenizer.Decode(tokens);
                int stable = StableLength(text, gen.StopStrings);
                if (stable > emitted)
                {
                    yield return new ChatResponseUpdate(ChatRole.Assistant, text[emitted..stable]) { ResponseId = responseId, ModelId = modelId };
                    emitted = stable;
                }
            }
            var result = await run.ConfigureAwait(false);
            string final = TextGeneration.CutAtStop(tokenizer.Decode(result.Tokens), gen.StopStrings);
            var last = new ChatResponseUpdate(ChatRole.Assistant, emitted < final.Length ? final[emitted..] : "")
            {
                ResponseId = responseId,
                ModelId = modelId,
                FinishReason = Map(result.FinishReason),
            };
            last.Contents.Add(new UsageContent(Usage(prompt.Count, result.Tokens.Count)));
            yield return last;
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await run.ConfigureAwait(false);
            }
            catch (Exception)
            {
                // Already surfaced to the consumer through `await run` above, or the consumer stopped early.
            }
            _gate.Release();
        }
        cancellationToken.ThrowIfCancellationRequested();
    }

    private static int StableLength(string text, IReadOnlyList<string> stops)
    {
        int end = text.Length;
        while (end > 0 && text[end - 1] == '\uFFFD') end--;
        int cut = TextGeneration.CutAtStop(text[..end], stops).Length;
        if (cut < end) return cut;
        foreach (var s in stops)
            for (int k = Math.Min(s.Length - 1, end); k > 0; k--)
                if (string.CompareOrdinal(text, end - k, s, 0, k) == 0)
                {
                    cut = Math.Min(cut, end - k);
                    break;
                }
        return cut;
    }

    private (IReadOnlyList<int> Prompt, GenerationOptions Options) Prepare(IEnumerable<ChatMessage> messages, ChatOptions? o, Action<int, int>? onToken)
    {
        var list = messages.ToList();
        if (!string.IsNullOrEmpty(o?.Instructions)) list.Insert(0, new ChatMessage(ChatRole.System, o.Instructions));
        var prompt = tokenizer.Encode(formatter.Render(list, addGenerationPrompt: true), _options.AddSpecialTokens);
        if (prompt.Count == 0 && tokenizer.BosId is int bos) prompt = [bos];
        if (prompt.Count == 0) throw new ArgumentException("the rendered prompt is empty and the tokenizer has no BOS id");

        float temperature = o?.Temperature ?? _options.DefaultTemperature;
        var eos = tokenizer.EosIds.Concat(model.Config.EosTokenIds).Concat(_options.ExtraEosIds).Distinct().ToList();
        var gen = new GenerationOptions
        {
            MaxNewTokens = o?.MaxOutputTokens ?? _options.DefaultMaxOutputTokens,
            DoSample = temperature > 0,
            Temperature = temperature > 0 ? temperature : 1.0,
            TopK = o?.TopK,
            TopP = o?.TopP,
            Seed = o?.Seed,
            EosTokenIds = eos,
            StopStrings = o?.StopSequences?.Where(s => s.Length > 0).ToList() ?? [],
            Decode = ids => tokenizer.Decode(ids),
            PadTokenId = model.Config.PadTokenId ?? eos.FirstOrDefault(),
            LogitsProcessors = _options.LogitsProcessors,
            OnToken = onToken,
        };
        return (prompt, gen);
    }

    private static UsageDetails Usage(int input, int output) =>
        new() { InputTokenCount = input, OutputTokenCount = output, TotalTokenCount = input + output };

    private static ChatFinishReason Map(FinishReason r) => r switch
    {
        FinishReason.Length => ChatFinishReason.Length,
        _ => ChatFinishReason.Stop,
    };

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return new ChatClientMetadata("biasfree-engine", null, _options.ModelId);
        if (serviceType.IsInstanceOfType(this)) return this;
        if (serviceType.IsInstanceOfType(model)) return model;
        return null;
    }

    public void Dispose() => _gate.Dispose();
}
