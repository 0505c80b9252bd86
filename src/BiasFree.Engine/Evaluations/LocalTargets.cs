using System.Security.Cryptography;
using BiasFree.Engine.Chat;
using BiasFree.Engine.Tokenization;
using BiasFree.Evaluations;
using BiasFree.Runs;

namespace BiasFree.Engine.Evaluations;

/// <summary>
/// In-process targets for <see cref="Evaluation"/>: a Hugging Face model folder or the embedded demo model, with the
/// defaults the CLI uses, a cache identity from the model's content and load settings, and a seed per request.
/// </summary>
public static class LocalTargets
{
    /// <summary>
    /// A Hugging Face model folder run in-process: greedy (temperature 0) unless the evaluation says otherwise.
    /// </summary>
    /// <param name="folder">The model folder (config.json, tokenizer.json, safetensors).</param>
    /// <param name="model">Model name for reports (default: the folder's name).</param>
    /// <param name="settings">dtype, device and chat template (default: float32 on cpu, template detected).</param>
    /// <param name="kvCacheBytes">Bound on the KV cache's memory (default <see cref="Generation.ContinuousBatchOptions.DefaultKvCacheBytes"/>); scheduling only, replies do not depend on it.</param>
    /// <param name="workers">Model workers (see <see cref="EngineChatClientOptions.Workers"/>); null = <see cref="EngineChatClient.AutoWorkers"/>. Scheduling only, like the cache bound.</param>
    /// <exception cref="DirectoryNotFoundException">The folder is not a model folder.</exception>
    public static EvaluationTarget ModelFolder(string folder, string? model = null, LocalTargetSettings? settings = null, long? kvCacheBytes = null, int? workers = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        var full = Path.GetFullPath(folder);
        if (!LocalModel.IsModelFolder(full))
        {
            throw new DirectoryNotFoundException($"'{folder}' is not a model folder (it needs config.json and tokenizer.json).");
        }
        return Build(full, model ?? new DirectoryInfo(full).Name, Normalize(settings ?? new LocalTargetSettings()) with { DemoModel = false }, kvCacheBytes, workers);
    }

    /// <summary>
    /// The embedded demo model (<see cref="DemoModel.DemoModel.Locate"/> finds it): sampled at its trained temperature
    /// <see cref="DemoModel.DemoModel.DefaultTemperature"/>, with a seed per request.
    /// </summary>
    /// <param name="settings">dtype, device and chat template (default: float32 on cpu, template detected).</param>
    /// <param name="path">The model folder (default: located).</param>
    /// <param name="model">Model name for reports (default <see cref="DemoModel.DemoModel.ModelId"/>).</param>
    /// <param name="kvCacheBytes">Bound on the KV cache's memory (see <see cref="ModelFolder"/>).</param>
    /// <param name="workers">Model workers (see <see cref="ModelFolder"/>).</param>
    /// <exception cref="DirectoryNotFoundException">No demo model; the message says where it was looked for.</exception>
    public static EvaluationTarget Demo(LocalTargetSettings? settings = null, string? path = null, string? model = null, long? kvCacheBytes = null, int? workers = null)
    {
        var folder = path is null ? DemoModel.DemoModel.Locate() : Path.GetFullPath(path);
        if (!DemoModel.DemoModel.Exists(folder))
        {
            throw new DirectoryNotFoundException($"no demo model at {folder} (it needs config.json, model.safetensors and tokenizer.json); train one with `biasfree demo-model train`.");
        }
        return Build(folder, model ?? DemoModel.DemoModel.ModelId, Normalize(settings ?? new LocalTargetSettings()) with { DemoModel = true }, kvCacheBytes, workers);
    }

    /// <summary>
    /// Rebuilds the target of a stored run: in-process models here, servers by <see cref="EvaluationTarget.FromSpec"/>.
    /// </summary>
    public static EvaluationTarget FromSpec(RunSpec spec) => FromSpec(spec, null);

    /// <summary>As <see cref="FromSpec(RunSpec)"/>, with a KV-cache bound and a worker count for an in-process model (null: the defaults).</summary>
    public static EvaluationTarget FromSpec(RunSpec spec, long? kvCacheBytes, int? workers = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var kind = EvaluationTarget.KindOf(spec);
        if (kind is not (EvaluationTarget.LocalKind or EvaluationTarget.DemoKind))
        {
            return EvaluationTarget.FromSpec(spec);
        }
        var settings = spec.Local ?? new LocalTargetSettings(DemoModel: kind == EvaluationTarget.DemoKind);
        var folder = spec.TargetEndpoint ?? throw new ArgumentException($"run '{spec.RunId}' has no model folder.");
        return settings.DemoModel
            ? Demo(settings, folder, spec.Model, kvCacheBytes, workers)
            : ModelFolder(folder, spec.Model, settings, kvCacheBytes, workers);
    }

    private static LocalTargetSettings Normalize(LocalTargetSettings s)
    {
        var dtype = LocalModel.ParseDType(s.DType) == TorchSharp.torch.ScalarType.BFloat16 ? "bfloat16" : "float32";
        var device = s.Device.Trim().ToLowerInvariant() switch
        {
            "cpu" => "cpu",
            "cuda" => "cuda",
            _ => throw new ArgumentException($"unsupported device '{s.Device}': use cpu or cuda."),
        };
        string? template = null;
        if (s.ChatTemplate is { } t)
        {
            template = t.Trim().ToLowerInvariant();
            if (!ChatTemplate.KnownNames.Contains(template, StringComparer.Ordinal))
            {
                throw new ArgumentException($"unknown chat template '{t}': use {string.Join(", ", ChatTemplate.KnownNames)}.");
            }
        }
        return s with { DType = dtype, Device = device, ChatTemplate = template };
    }

    private static EvaluationTarget Build(string folder, string model, LocalTargetSettings settings, long? kvCacheBytes, int? workers)
    {
        if (kvCacheBytes is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(kvCacheBytes), kvCacheBytes, "the KV-cache bound must be positive.");
        }
        if (workers is < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(workers), workers, "the number of model workers must be at least 1.");
        }
        var kind = settings.DemoModel ? EvaluationTarget.DemoKind : EvaluationTarget.LocalKind;
        return new EvaluationTarget(kind, model, () => Load(folder, model, settings, kvCacheBytes, workers), ownsClient: true)
        {
            Endpoint = folder,
            Local = settings,
            CacheIdentity = CacheIdentity(folder, settings),
            DefaultTemperature = settings.DemoModel ? DemoModel.DemoModel.DefaultTemperature : 0f,
            SeedPerRequest = true,
        };
    }

    private static EngineChatClient Load(string folder, string model, LocalTargetSettings settings, long? kvCacheBytes, int? workers)
    {
        var options = new LocalModelOptions
        {
            ModelId = model, DType = settings.DType, Device = settings.Device, ChatTemplate = settings.ChatTemplate, Adapter = settings.Adapter,
            KvCacheBytes = kvCacheBytes ?? Generation.ContinuousBatchOptions.DefaultKvCacheBytes,
            // An evaluation target's weights stay as loaded; white-box methods that need the one instance get it per
            // request (EngineChatClient sends requests with hooks to worker 0), so several workers are safe here.
            Workers = workers,
        };
        if (settings.DemoModel)
        {
            options = options with { DefaultTemperature = DemoModel.DemoModel.DefaultTemperature, DefaultMaxOutputTokens = DemoModel.DemoModel.DefaultMaxOutputTokens };
        }
        try
        {
            return LocalModel.Load(folder, options);
        }
        catch (ChatTemplateException ex)
        {
            throw new ArgumentException($"cannot choose a chat template for {folder}: {ex.Message}", ex);
        }
        catch (Exception ex) when (ex is not (OperationCanceledException or DirectoryNotFoundException or ArgumentException))
        {
            throw new InvalidDataException($"cannot load the model folder {folder}: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// Cache identity of an in-process model: <see cref="ContentHash"/> of its files plus the load settings that can
    /// change replies. Not the folder's path: a moved copy keeps its cache, a retrained model in the same folder does not.
    /// </summary>
    public static string CacheIdentity(string folder, LocalTargetSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return $"local|sha256:{ContentHash(folder)}|dtype={settings.DType}|device={settings.Device}|template={settings.ChatTemplate ?? "auto"}{(settings.DemoModel ? "|demo" : "")}" +
               (settings.Adapter is { } adapter ? $"|adapter=sha256:{AdapterHash(adapter)}" : "");
    }

    /// <summary>SHA-256 (hex) of a PEFT adapter folder's adapter_config.json and adapter_model.safetensors (name, length, bytes).</summary>
    public static string AdapterHash(string folder)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var name in new[] { "adapter_config.json", "adapter_model.safetensors" })
        {
            var path = Path.Combine(folder, name);
            if (!File.Exists(path)) continue;
            var bytes = File.ReadAllBytes(path);
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes($"{name}\u0000{bytes.Length}\u0000"));
            sha.AppendData(bytes);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>
    /// SHA-256 (hex) over the name, length and bytes of each file that defines the model's replies, in ordinal name
    /// order: config.json, every *.safetensors file, and the tokenizer, chat-template and generation files a trained
    /// folder takes from its base (<see cref="Models.ModelFolder.TokenizerFiles"/>: tokenizer.json,
    /// tokenizer_config.json, special_tokens_map.json, generation_config.json, chat_template.jinja, chat_template.json,
    /// and the slow tokenizers' files). A new chat template changes every prompt, so replies cached under the old one
    /// must not be reused.
    /// </summary>
    public static string ContentHash(string folder)
    {
        var names = Models.ModelFolder.TokenizerFiles.Prepend("config.json")
            .Where(n => File.Exists(Path.Combine(folder, n)))
            .Concat(Directory.EnumerateFiles(folder, "*.safetensors").Select(Path.GetFileName).OfType<string>())
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal);
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        foreach (var name in names)
        {
            using var file = File.OpenRead(Path.Combine(folder, name));
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes($"{name}\u0000{file.Length}\u0000"));
            int read;
            while ((read = file.Read(buffer)) > 0)
            {
                sha.AppendData(buffer.AsSpan(0, read));
            }
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }
}
