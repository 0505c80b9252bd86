using System.Text.Encodings.Web;
using System.Text.Json;

namespace BiasFree.Engine.Tokenization;

/// <summary>What <see cref="TokenizerJsonWriter"/> writes besides the model.</summary>
public sealed record TokenizerWriteOptions
{
    /// <summary>BOS token (must be one of the trained special tokens), or null for none.</summary>
    public string? BosToken { get; init; }

    /// <summary>EOS token (must be one of the trained special tokens), or null.</summary>
    public string? EosToken { get; init; }

    /// <summary>Padding token (must be one of the trained special tokens), or null.</summary>
    public string? PadToken { get; init; }

    /// <summary>Add the BOS token when encoding with special tokens (a TemplateProcessing post-processor).</summary>
    public bool AddBosToken { get; init; }

    /// <summary>Jinja chat template written into tokenizer_config.json (e.g. <see cref="ChatTemplate.JinjaSource"/>).</summary>
    public string? ChatTemplate { get; init; }

    /// <summary>model_max_length in tokenizer_config.json.</summary>
    public int ModelMaxLength { get; init; } = 2048;
}

/// <summary>
/// Writes a trained byte-level BPE as a Hugging Face tokenizer folder: <c>tokenizer.json</c>,
/// <c>tokenizer_config.json</c> and <c>special_tokens_map.json</c>, loadable by <see cref="HfTokenizer"/>,
/// HF tokenizers and transformers' PreTrainedTokenizerFast.
/// </summary>
public static class TokenizerJsonWriter
{
    private static readonly JsonWriterOptions s_writerOptions = new()
    {
        Indented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Writes the three files into <paramref name="folder"/> (created if needed).</summary>
    public static void Write(string folder, TrainedBpe bpe, TokenizerWriteOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(bpe);
        options ??= new TokenizerWriteOptions();
        Validate(bpe, options);
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, "tokenizer.json"), TokenizerJson(bpe, options));
        File.WriteAllBytes(Path.Combine(folder, "tokenizer_config.json"), TokenizerConfigJson(bpe, options));
        File.WriteAllBytes(Path.Combine(folder, "special_tokens_map.json"), SpecialTokensMapJson(options));
    }

    private static void Validate(TrainedBpe bpe, TokenizerWriteOptions options)
    {
        foreach (var (name, token) in new[] { ("BosToken", options.BosToken), ("EosToken", options.EosToken), ("PadToken", options.PadToken) })
        {
            if (token is not null && !bpe.SpecialTokens.Any(s => s.Content == token))
            {
                throw new ArgumentException($"{name} \"{token}\" is not one of the trained special tokens ({string.Join(", ", bpe.SpecialTokens.Select(s => s.Content))})", nameof(options));
            }
        }
        if (options.AddBosToken && options.BosToken is null) throw new ArgumentException("AddBosToken needs a BosToken", nameof(options));
    }

    /// <summary>The bytes of tokenizer.json.</summary>
    public static byte[] TokenizerJson(TrainedBpe bpe, TokenizerWriteOptions options)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, s_writerOptions))
        {
            w.WriteStartObject();
            w.WriteString("version", "1.0");
            w.WriteNull("truncation");
            w.WriteNull("padding");
            w.WriteStartArray("added_tokens");
            foreach (var (content, id) in bpe.SpecialTokens)
            {
                w.WriteStartObject();
                w.WriteNumber("id", id);
                w.WriteString("content", content);
                w.WriteBoolean("single_word", false);
                w.WriteBoolean("lstrip", false);
                w.WriteBoolean("rstrip", false);
                w.WriteBoolean("normalized", false);
                w.WriteBoolean("special", true);
                w.WriteEndObject();
            }
            w.WriteEndArray();

            if (bpe.Options.NfcNormalize)
            {
                w.WriteStartObject("normalizer");
                w.WriteString("type", "NFC");
                w.WriteEndObject();
            }
            else
            {
                w.WriteNull("normalizer");
            }

            w.WriteStartObject("pre_tokenizer");
            w.WriteString("type", "Sequence");
            w.WriteStartArray("pretokenizers");
            w.WriteStartObject();
            w.WriteString("type", "Split");
            w.WriteStartObject("pattern");
            w.WriteString("Regex", bpe.Options.PreTokenizerPattern);
            w.WriteEndObject();
            w.WriteString("behavior", "Isolated");
            w.WriteBoolean("invert", false);
            w.WriteEndObject();
            w.WriteStartObject();
            w.WriteString("type", "ByteLevel");
            w.WriteBoolean("add_prefix_space", false);
            w.WriteBoolean("trim_offsets", true);
            w.WriteBoolean("use_regex", false);
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();

            w.WriteStartObject("post_processor");
            if (options.AddBosToken && options.BosToken is string bos)
            {
                int bosId = bpe.SpecialTokens.First(s => s.Content == bos).Id;
                w.WriteString("type", "TemplateProcessing");
                w.WriteStartArray("single");
                WriteSpecial(w, bos, 0);
                WriteSequence(w, "A", 0);
                w.WriteEndArray();
                w.WriteStartArray("pair");
                WriteSpecial(w, bos, 0);
                WriteSequence(w, "A", 0);
                WriteSpecial(w, bos, 1);
                WriteSequence(w, "B", 1);
                w.WriteEndArray();
                w.WriteStartObject("special_tokens");
                w.WriteStartObject(bos);
                w.WriteString("id", bos);
                w.WriteStartArray("ids");
                w.WriteNumberValue(bosId);
                w.WriteEndArray();
                w.WriteStartArray("tokens");
                w.WriteStringValue(bos);
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteEndObject();
            }
            else
            {
                w.WriteString("type", "ByteLevel");
                w.WriteBoolean("add_prefix_space", false);
                w.WriteBoolean("trim_offsets", false);
                w.WriteBoolean("use_regex", false);
            }
            w.WriteEndObject();

            w.WriteStartObject("decoder");
            w.WriteString("type", "ByteLevel");
            w.WriteBoolean("add_prefix_space", false);
            w.WriteBoolean("trim_offsets", true);
            w.WriteBoolean("use_regex", true);
            w.WriteEndObject();

            w.WriteStartObject("model");
            w.WriteString("type", "BPE");
            w.WriteNull("dropout");
            w.WriteNull("unk_token");
            w.WriteNull("continuing_subword_prefix");
            w.WriteNull("end_of_word_suffix");
            w.WriteBoolean("fuse_unk", false);
            w.WriteBoolean("byte_fallback", false);
            w.WriteBoolean("ignore_merges", false);
            w.WriteStartObject("vocab");
            foreach (var (token, id) in bpe.Vocab.OrderBy(kv => kv.Value)) w.WriteNumber(token, id);
            w.WriteEndObject();
            w.WriteStartArray("merges");
            foreach (var (l, r) in bpe.Merges) w.WriteStringValue(l + " " + r);
            w.WriteEndArray();
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    private static void WriteSpecial(Utf8JsonWriter w, string id, int typeId)
    {
        w.WriteStartObject();
        w.WriteStartObject("SpecialToken");
        w.WriteString("id", id);
        w.WriteNumber("type_id", typeId);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteSequence(Utf8JsonWriter w, string id, int typeId)
    {
        w.WriteStartObject();
        w.WriteStartObject("Sequence");
        w.WriteString("id", id);
        w.WriteNumber("type_id", typeId);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>The bytes of tokenizer_config.json.</summary>
    public static byte[] TokenizerConfigJson(TrainedBpe bpe, TokenizerWriteOptions options)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, s_writerOptions))
        {
            w.WriteStartObject();
            w.WriteBoolean("add_bos_token", options.AddBosToken);
            w.WriteBoolean("add_eos_token", false);
            w.WriteStartObject("added_tokens_decoder");
            foreach (var (content, id) in bpe.SpecialTokens)
            {
                w.WriteStartObject(id.ToString(System.Globalization.CultureInfo.InvariantCulture));
                w.WriteString("content", content);
                w.WriteBoolean("lstrip", false);
                w.WriteBoolean("normalized", false);
                w.WriteBoolean("rstrip", false);
                w.WriteBoolean("single_word", false);
                w.WriteBoolean("special", true);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            WriteTokenOrNull(w, "bos_token", options.BosToken);
            if (options.ChatTemplate is not null) w.WriteString("chat_template", options.ChatTemplate);
            w.WriteBoolean("clean_up_tokenization_spaces", false);
            WriteTokenOrNull(w, "eos_token", options.EosToken);
            w.WriteNumber("model_max_length", options.ModelMaxLength);
            WriteTokenOrNull(w, "pad_token", options.PadToken);
            w.WriteString("tokenizer_class", "PreTrainedTokenizerFast");
            w.WriteNull("unk_token");
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    private static byte[] SpecialTokensMapJson(TokenizerWriteOptions options)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, s_writerOptions))
        {
            w.WriteStartObject();
            if (options.BosToken is not null) w.WriteString("bos_token", options.BosToken);
            if (options.EosToken is not null) w.WriteString("eos_token", options.EosToken);
            if (options.PadToken is not null) w.WriteString("pad_token", options.PadToken);
            w.WriteEndObject();
        }
        return ms.ToArray();
    }

    private static void WriteTokenOrNull(Utf8JsonWriter w, string name, string? token)
    {
        if (token is null) w.WriteNull(name);
        else w.WriteString(name, token);
    }
}
