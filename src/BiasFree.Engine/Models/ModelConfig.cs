using System.Text.Json;
using System.Text.Json.Nodes;

namespace BiasFree.Engine.Models;

/// <summary>HF <c>rope_scaling</c>: "linear" divides all frequencies; "llama3" rescales only the low frequencies (Llama 3.1+).</summary>
public sealed record RopeScaling(
    string Type,
    double Factor,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int OriginalMaxPositionEmbeddings = 8192);

/// <summary>The subset of a HF <c>config.json</c> the decoder-only architectures here need.</summary>
public sealed record ModelConfig
{
    public string ModelType { get; init; } = "llama";
    public IReadOnlyList<string> Architectures { get; init; } = [];
    public int VocabSize { get; init; }
    public int HiddenSize { get; init; }
    public int IntermediateSize { get; init; }
    public int NumHiddenLayers { get; init; }
    public int NumAttentionHeads { get; init; }
    public int NumKeyValueHeads { get; init; }
    /// <summary>Per-head width; HF defaults it to hidden_size / num_attention_heads.</summary>
    public int HeadDim { get; init; }
    public double RmsNormEps { get; init; } = 1e-6;
    public double RopeTheta { get; init; } = 10000.0;
    public RopeScaling? RopeScaling { get; init; }
    public int MaxPositionEmbeddings { get; init; } = 2048;
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Attention window (keys within the last N positions, self included). Mistral: all layers; Qwen2: only with use_sliding_window.</summary>
    public int? SlidingWindow { get; init; }
    /// <summary>Qwen2: layers below this index use full attention even when use_sliding_window is set.</summary>
    public int MaxWindowLayers { get; init; }
    /// <summary>Bias on q/k/v projections (always on for Qwen2; Llama's attention_bias also biases o_proj).</summary>
    public bool QkvBias { get; init; }
    public bool OutputBias { get; init; }
    public bool MlpBias { get; init; }
    public string HiddenAct { get; init; } = "silu";
    public string? TorchDtype { get; init; }
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int? PadTokenId { get; init; }
    public double InitializerRange { get; init; } = 0.02;

    public static readonly IReadOnlyList<string> SupportedModelTypes = ["llama", "qwen2", "mistral"];

    public int? SlidingWindowForLayer(int layer) => ModelType switch
    {
        "mistral" => SlidingWindow,
        "qwen2" => SlidingWindow is { } w && layer >= MaxWindowLayers ? w : null,
        _ => null,
    };

    public static ModelConfig Load(string folderOrFile)
    {
        string path = Directory.Exists(folderOrFile) ? Path.Combine(folderOrFile, "config.json") : folderOrFile;
        if (!File.Exists(path)) throw new FileNotFoundException($"config.json not found: {path}", path);
        try
        {
            return Parse(File.ReadAllText(path));
        }
        catch (Exception e) when (e is JsonException or InvalidDataException or NotSupportedException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    public static ModelConfig Parse(string json)
    {
        var root = JsonNode.Parse(json) as JsonObject ?? throw new InvalidDataException("config.json must be a JSON object");
        var archs = root["architectures"] is JsonArray a ? a.Select(x => x!.GetValue<string>()).ToList() : [];
        string type = Str(root, "model_type") ?? archs.FirstOrDefault() switch
        {
            string s when s.StartsWith("Llama", StringComparison.Ordinal) => "llama",
            string s when s.StartsWith("Qwen2", StringComparison.Ordinal) => "qwen2",
            string s when s.StartsWith("Mistral", StringComparison.Ordinal) => "mistral",
            _ => throw new InvalidDataException("config.json has neither model_type nor a known architectures entry"),
        };
        if (!SupportedModelTypes.Contains(type))
            throw new NotSupportedException($"model_type '{type}' is not supported (supported: {string.Join(", ", SupportedModelTypes)})");

        int hidden = Req(root, "hidden_size"), heads = Req(root, "num_attention_heads");
        bool attentionBias = Bool(root, "attention_bias") ?? false;
        return new ModelConfig
        {
            ModelType = type,
            Architectures = archs,
            VocabSize = Req(root, "vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = Req(root, "intermediate_size"),
            NumHiddenLayers = Req(root, "num_hidden_layers"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = Int(root, "num_key_value_heads") ?? heads,
            HeadDim = Int(root, "head_dim") ?? hidden / heads,
            RmsNormEps = Num(root, "rms_norm_eps") ?? 1e-6,
            RopeTheta = Num(root, "rope_theta") ?? 10000.0,
            RopeScaling = ParseRopeScaling(root["rope_scaling"] as JsonObject, Int(root, "max_position_embeddings")),
            MaxPositionEmbeddings = Int(root, "max_position_embeddings") ?? 2048,
            TieWordEmbeddings = Bool(root, "tie_word_embeddings") ?? false,
            SlidingWindow = type switch
            {
                "mistral" => Int(root, "sliding_window"),
                "qwen2" => Bool(root, "use_sliding_window") == true ? Int(root, "sliding_window") : null,
                _ => null,
            },
            MaxWindowLayers = Int(root, "max_window_layers") ?? 0,
            QkvBias = type == "qwen2" || attentionBias,
            OutputBias = type != "qwen2" && attentionBias,
            MlpBias = Bool(root, "mlp_bias") ?? false,
            HiddenAct = Str(root, "hidden_act") ?? "silu",
            TorchDtype = Str(root, "torch_dtype") ?? Str(root, "dtype"),
            BosTokenId = Int(root, "bos_token_id"),
            EosTokenIds = IntList(root["eos_token_id"]),
            PadTokenId = Int(root, "pad_token_id"),
            InitializerRange = Num(root, "initializer_range") ?? 0.02,
        }.Validated();
    }

    private static RopeScaling? ParseRopeScaling(JsonObject? o, int? maxPos)
    {
        if (o is null) return null;
        string type = Str(o, "rope_type") ?? Str(o, "type") ?? "default";
        if (type == "default") return null;
        if (type is not ("linear" or "llama3"))
            throw new NotSupportedException($"rope_scaling type '{type}' is not supported (supported: linear, llama3)");
        return new RopeScaling(type,
            Num(o, "factor") ?? throw new InvalidDataException("rope_scaling.factor is required"),
            Num(o, "low_freq_factor") ?? 1.0,
            Num(o, "high_freq_factor") ?? 4.0,
            Int(o, "original_max_position_embeddings") ?? maxPos ?? 8192);
    }

    private ModelConfig Validated()
    {
        if (HiddenAct != "silu") throw new NotSupportedException($"hidden_act '{HiddenAct}' is not supported (only silu)");
        if (NumAttentionHeads % NumKeyValueHeads != 0)
            throw new InvalidDataException($"num_attention_heads ({NumAttentionHeads}) must be a multiple of num_key_value_heads ({NumKeyValueHeads})");
        if (HeadDim % 2 != 0) throw new InvalidDataException($"head_dim ({HeadDim}) must be even for rotary embeddings");
        return this;
    }

    /// <summary>Serialises back to HF config.json form.</summary>
    public string ToJson()
    {
        var o = new JsonObject
        {
            ["architectures"] = new JsonArray((Architectures.Count > 0 ? Architectures : [DefaultArchitecture]).Select(x => (JsonNode?)JsonValue.Create(x)).ToArray()),
            ["model_type"] = ModelType,
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumHiddenLayers,
            ["num_attention_heads"] = NumAttentionHeads,
            ["num_key_value_heads"] = NumKeyValueHeads,
            ["head_dim"] = HeadDim,
            ["hidden_act"] = HiddenAct,
            ["rms_norm_eps"] = RmsNormEps,
            ["rope_theta"] = RopeTheta,
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["initializer_range"] = InitializerRange,
        };
        if (RopeScaling is { } rs)
            o["rope_scaling"] = new JsonObject
            {
                ["rope_type"] = rs.Type, ["factor"] = rs.Factor, ["low_freq_factor"] = rs.LowFreqFactor,
                ["high_freq_factor"] = rs.HighFreqFactor, ["original_max_position_embeddings"] = rs.OriginalMaxPositionEmbeddings,
            };
        switch (ModelType)
        {
            case "llama":
                o["attention_bias"] = QkvBias;
                o["mlp_bias"] = MlpBias;
                break;
            case "mistral":
                o["sliding_window"] = SlidingWindow;
                break;
            case "qwen2":
                o["use_sliding_window"] = SlidingWindow is not null;
                o["sliding_window"] = SlidingWindow ?? 4096;
                o["max_window_layers"] = MaxWindowLayers;
                break;
        }
        if (TorchDtype is not null) o["torch_dtype"] = TorchDtype;
        if (BosTokenId is not null) o["bos_token_id"] = BosTokenId;
        if (EosTokenIds.Count == 1) o["eos_token_id"] = EosTokenIds[0];
        else if (EosTokenIds.Count > 1) o["eos_token_id"] = new JsonArray(EosTokenIds.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray());
        if (PadTokenId is not null) o["pad_token_id"] = PadTokenId;
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    private string DefaultArchitecture => ModelType switch
    {
        "qwen2" => "Qwen2ForCausalLM",
        "mistral" => "MistralForCausalLM",
        _ => "LlamaForCausalLM",
    };

    internal static string? Str(JsonObject o, string k) => o[k] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
    internal static bool? Bool(JsonObject o, string k) => o[k] is JsonValue v && v.TryGetValue<bool>(out var b) ? b : null;
    internal static double? Num(JsonObject o, string k) => o[k] is JsonValue v && v.TryGetValue<double>(out var d) ? d : null;
    internal static int? Int(JsonObject o, string k) => o[k] is JsonValue v && v.TryGetValue<double>(out var d) ? checked((int)d) : null;
    private static int Req(JsonObject o, string k) => Int(o, k) ?? throw new InvalidDataException($"config.json lacks required integer '{k}'");

    internal static IReadOnlyList<int> IntList(JsonNode? n) => n switch
    {
        JsonArray a => a.Select(x => checked((int)x!.GetValue<double>())).ToList(),
        JsonValue v when v.TryGetValue<double>(out var d) => [checked((int)d)],
        _ => [],
    };
}

/// <summary>HF <c>generation_config.json</c>: default decoding settings and special ids.</summary>
public sealed record GenerationConfig
{
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int? PadTokenId { get; init; }
    public bool DoSample { get; init; }
    public double? Temperature { get; init; }
    public int? TopK { get; init; }
    public double? TopP { get; init; }
    public int? MaxNewTokens { get; init; }
    public double? RepetitionPenalty { get; init; }

    /// <summary>Reads folder/generation_config.json, or returns null when the file is absent.</summary>
    public static GenerationConfig? Load(string folder)
    {
        string path = Path.Combine(folder, "generation_config.json");
        if (!File.Exists(path)) return null;
        try
        {
            return Parse(File.ReadAllText(path));
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    public static GenerationConfig Parse(string json)
    {
        var o = JsonNode.Parse(json) as JsonObject ?? throw new InvalidDataException("generation_config.json must be a JSON object");
        return new GenerationConfig
        {
            BosTokenId = ModelConfig.Int(o, "bos_token_id"),
            EosTokenIds = ModelConfig.IntList(o["eos_token_id"]),
            PadTokenId = ModelConfig.Int(o, "pad_token_id"),
            DoSample = ModelConfig.Bool(o, "do_sample") ?? false,
            Temperature = ModelConfig.Num(o, "temperature"),
            TopK = ModelConfig.Int(o, "top_k"),
            TopP = ModelConfig.Num(o, "top_p"),
            MaxNewTokens = ModelConfig.Int(o, "max_new_tokens"),
            RepetitionPenalty = ModelConfig.Num(o, "repetition_penalty"),
        };
    }
}
