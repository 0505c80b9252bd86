using BiasFree.Engine.Models;
using BiasFree.Engine.Tokenization;
using Microsoft.Extensions.AI;
using static TorchSharp.torch;

namespace BiasFree.Engine.Chat;

/// <summary>How to load a Hugging Face model folder as an in-process chat target.</summary>
public sealed record LocalModelOptions
{
    /// <summary>"float32" (default) or "bfloat16". float16 checkpoints are converted on load (fp16 matmul is unusably slow on CPU).</summary>
    public string DType { get; init; } = "float32";

    /// <summary>"cpu" (default) or "cuda" (needs a CUDA build of TorchSharp's native libraries).</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Chat template family (llama3, chatml, qwen2, mistral); null = detect from tokenizer_config.json.</summary>
    public string? ChatTemplate { get; init; }

    /// <summary>Model id reported in responses and run records; null = the folder's name.</summary>
    public string? ModelId { get; init; }

    /// <summary>Temperature used when a request does not set one.</summary>
    public float DefaultTemperature { get; init; }

    /// <summary>Max new tokens when a request does not set MaxOutputTokens.</summary>
    public int DefaultMaxOutputTokens { get; init; } = 256;

    /// <summary>A PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors) applied on top of the base weights, unmerged.</summary>
    public string? Adapter { get; init; }

    /// <summary>Bound on the KV cache's memory in bytes (see <see cref="EngineChatClientOptions.KvCacheBytes"/>).</summary>
    public long KvCacheBytes { get; init; } = Generation.ContinuousBatchOptions.DefaultKvCacheBytes;

    /// <summary>
    /// Model workers (see <see cref="EngineChatClientOptions.Workers"/>); null = <see cref="EngineChatClient.AutoWorkers"/>
    /// (one per core for a small model). The default is 1: callers that change the loaded model's weights or hooks after
    /// loading (training, steering) need every request to run on that one instance.
    /// </summary>
    public int? Workers { get; init; } = 1;
}

/// <summary>
/// Loads a Hugging Face model folder (config.json, safetensors, tokenizer.json, tokenizer_config.json) into an
/// <see cref="EngineChatClient"/>: the in-process, white-box target that every part of the testbed accepts as an IChatClient.
/// </summary>
public static class LocalModel
{
    /// <summary>True when <paramref name="folder"/> looks like a loadable HF model folder.</summary>
    public static bool IsModelFolder(string folder) =>
        Directory.Exists(folder) && File.Exists(Path.Combine(folder, "config.json")) && File.Exists(Path.Combine(folder, "tokenizer.json"));

    /// <summary>Parses a dtype name as accepted on the command line.</summary>
    public static ScalarType ParseDType(string name) => name.Trim().ToLowerInvariant() switch
    {
        "float32" or "fp32" or "f32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        _ => throw new ArgumentException($"unsupported dtype '{name}': use float32 or bfloat16 (float16 is converted to bfloat16 on load)"),
    };

    /// <summary>Loads the folder. Throws <see cref="ChatTemplateException"/> when no template can be chosen (pass <see cref="LocalModelOptions.ChatTemplate"/>).</summary>
    public static EngineChatClient Load(string folder, LocalModelOptions? options = null)
    {
        options ??= new LocalModelOptions();
        if (!IsModelFolder(folder))
            throw new DirectoryNotFoundException($"'{folder}' is not a Hugging Face model folder (needs config.json and tokenizer.json)");
        // Resolve tokenizer and template before loading weights: a template error should come quickly, not after a long load.
        var tokenizer = HfTokenizer.FromFolder(folder);
        var template = Tokenization.ChatTemplate.For(tokenizer, options.ChatTemplate);
        var dtype = ParseDType(options.DType);
        var model = CausalLM.Load(folder, dtype, options.Device);
        if (options.Adapter is { } adapter)
        {
            try
            {
                Lora.LoraAdapter.Load(model, adapter);
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
        // The template's end-of-turn markers (e.g. <|im_end|>, <|eot_id|>) end a reply even when generation_config omits them.
        var extraEos = template.StopStrings.Select(tokenizer.TokenToId).OfType<int>().ToList();
        return new EngineChatClient(model, new HfTextTokenizer(tokenizer), new ChatTemplateFormatter(template), new EngineChatClientOptions
        {
            ModelId = options.ModelId ?? new DirectoryInfo(folder).Name,
            DefaultTemperature = options.DefaultTemperature,
            DefaultMaxOutputTokens = options.DefaultMaxOutputTokens,
            AddSpecialTokens = false, // the rendered template already carries BOS where the family wants it
            ExtraEosIds = extraEos,
            KvCacheBytes = options.KvCacheBytes,
            Workers = options.Workers ?? EngineChatClient.AutoWorkers(model, options.KvCacheBytes),
        });
    }
}

/// <summary><see cref="ITextTokenizer"/> over an <see cref="HfTokenizer"/> (decoding skips special tokens).</summary>
public sealed class HfTextTokenizer(HfTokenizer tokenizer) : ITextTokenizer
{
    /// <summary>The wrapped tokenizer.</summary>
    public HfTokenizer Tokenizer => tokenizer;

    /// <inheritdoc/>
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens) => tokenizer.Encode(text, addSpecialTokens);

    /// <inheritdoc/>
    public string Decode(IEnumerable<int> ids) => tokenizer.Decode(ids, skipSpecialTokens: true);

    /// <inheritdoc/>
    public int? BosId => tokenizer.BosId;

    /// <inheritdoc/>
    public IReadOnlyList<int> EosIds => tokenizer.EosIds;
}

/// <summary><see cref="IChatFormatter"/> over a built-in <see cref="Tokenization.ChatTemplate"/>.</summary>
public sealed class ChatTemplateFormatter(Tokenization.ChatTemplate template) : IChatFormatter
{
    /// <summary>The template.</summary>
    public Tokenization.ChatTemplate Template => template;

    /// <inheritdoc/>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt) => template.Render(messages, addGenerationPrompt);
}
