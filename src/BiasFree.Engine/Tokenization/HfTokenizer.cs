using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace BiasFree.Engine.Tokenization;

/// <summary>Which BPE flavour a <see cref="HfTokenizer"/> runs.</summary>
public enum HfTokenizerKind
{
    /// <summary>GPT-2 / Llama-3 / Qwen2 style: text is UTF-8 bytes mapped to the byte-level alphabet.</summary>
    ByteLevelBpe,

    /// <summary>Llama-2 / Mistral style: "▁" marks spaces; unknown characters fall back to &lt;0xNN&gt; tokens.</summary>
    SentencePieceBpe,
}

/// <summary>One entry of tokenizer.json's <c>added_tokens</c>.</summary>
public sealed record AddedTokenInfo(int Id, string Content, bool Special, bool LStrip, bool RStrip, bool SingleWord, bool Normalized);

/// <summary>
/// A BPE tokenizer loaded from a Hugging Face model folder (<c>tokenizer.json</c>, <c>tokenizer_config.json</c>,
/// and optionally <c>generation_config.json</c> and <c>special_tokens_map.json</c>). Supports byte-level BPE
/// (through Microsoft.ML.Tokenizers) and SentencePiece-style BPE with byte fallback (own implementation).
/// Instances are immutable and thread-safe.
/// </summary>
public sealed class HfTokenizer
{
    private readonly Func<string, string>? _normalizer;
    private readonly List<Func<List<Piece>, List<Piece>>> _preTokenizers;
    private readonly Dictionary<string, int> _vocab;
    private readonly string?[] _idToToken;
    private readonly BpeTokenizer? _byteLevelBpe;
    private readonly RankedBpe? _rankedBpe;
    private readonly bool _ignoreMerges;
    private readonly AddedTokenInfo[] _added;
    private readonly Dictionary<int, AddedTokenInfo> _addedById;
    private readonly Dictionary<string, AddedTokenInfo> _addedByContent;
    private readonly Dictionary<char, AddedTokenInfo[]> _addedByFirstChar;
    private readonly int[] _prefixIds;
    private readonly int[] _suffixIds;
    private readonly Func<List<string>, List<string>>? _decoder;

    private readonly record struct Piece(string Text, bool AtStart);

    private HfTokenizer(Builder b)
    {
        Kind = b.Kind;
        _normalizer = b.Normalizer;
        _preTokenizers = b.PreTokenizers;
        _vocab = b.Vocab;
        _byteLevelBpe = b.ByteLevelBpe;
        _rankedBpe = b.RankedBpe;
        _ignoreMerges = b.IgnoreMerges;
        _added = b.Added.ToArray();
        _addedById = _added.GroupBy(a => a.Id).ToDictionary(g => g.Key, g => g.Last());
        _addedByContent = new Dictionary<string, AddedTokenInfo>(StringComparer.Ordinal);
        foreach (var a in _added) _addedByContent[a.Content] = a;
        _addedByFirstChar = _added.Where(a => a.Content.Length > 0)
            .GroupBy(a => a.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(a => a.Content.Length).ToArray());
        _prefixIds = b.PrefixIds;
        _suffixIds = b.SuffixIds;
        _decoder = b.Decoder;
        int max = -1;
        foreach (var v in _vocab.Values) max = Math.Max(max, v);
        foreach (var a in _added) max = Math.Max(max, a.Id);
        VocabSize = max + 1;
        _idToToken = new string?[VocabSize];
        foreach (var (tok, id) in _vocab) _idToToken[id] = tok;
        foreach (var a in _added) _idToToken[a.Id] = a.Content;
        BosId = b.BosId;
        EosIds = b.EosIds;
        PadId = b.PadId;
        UnkId = b.UnkId;
        ChatTemplateSource = b.ChatTemplate;
        SourcePath = b.SourcePath;
    }

    /// <summary>Which BPE flavour this tokenizer runs.</summary>
    public HfTokenizerKind Kind { get; }

    /// <summary>Beginning-of-sequence token id, if the model has one.</summary>
    public int? BosId { get; }

    /// <summary>End-of-sequence ids: tokenizer_config's eos_token first, then generation_config's eos_token_id(s).</summary>
    public IReadOnlyList<int> EosIds { get; }

    /// <summary>Padding token id, if configured.</summary>
    public int? PadId { get; }

    /// <summary>Unknown token id, if the model has one.</summary>
    public int? UnkId { get; }

    /// <summary>Largest token id + 1 over the model vocabulary and added tokens (the embedding rows needed).</summary>
    public int VocabSize { get; }

    /// <summary>The Jinja chat template from tokenizer_config.json, if any.</summary>
    public string? ChatTemplateSource { get; }

    /// <summary>The tokenizer.json this was loaded from.</summary>
    public string SourcePath { get; }

    /// <summary>The added tokens (special and non-special) of tokenizer.json.</summary>
    public IReadOnlyList<AddedTokenInfo> AddedTokens => _added;

    /// <summary>The id of a token (model vocabulary or added token), or null.</summary>
    public int? TokenToId(string token)
    {
        if (_addedByContent.TryGetValue(token, out var a)) return a.Id;
        return _vocab.TryGetValue(token, out int id) ? id : null;
    }

    /// <summary>The token string of an id, or null when the id is unused.</summary>
    public string? IdToToken(int id) => id >= 0 && id < _idToToken.Length ? _idToToken[id] : null;

    /// <summary>True when <paramref name="id"/> is an added token marked special.</summary>
    public bool IsSpecial(int id) => _addedById.TryGetValue(id, out var a) && a.Special;

    /// <summary>Loads a model folder containing tokenizer.json (and tokenizer_config.json etc. when present).</summary>
    public static HfTokenizer FromFolder(string folder)
    {
        string tj = Path.Combine(folder, "tokenizer.json");
        if (!File.Exists(tj))
        {
            throw new FileNotFoundException(
                File.Exists(Path.Combine(folder, "tokenizer.model"))
                    ? $"{tj}: not found; this folder only has a SentencePiece tokenizer.model, which is not supported (convert it to tokenizer.json with HF transformers)"
                    : $"{tj}: not found", tj);
        }
        return FromFiles(tj,
            OptionalFile(folder, "tokenizer_config.json"),
            OptionalFile(folder, "generation_config.json"),
            OptionalFile(folder, "special_tokens_map.json"));
    }

    private static string? OptionalFile(string folder, string name)
    {
        var p = Path.Combine(folder, name);
        return File.Exists(p) ? p : null;
    }

    /// <summary>Loads from explicit file paths.</summary>
    public static HfTokenizer FromFiles(string tokenizerJson, string? tokenizerConfigJson = null, string? generationConfigJson = null, string? specialTokensMapJson = null)
    {
        var b = new Builder { SourcePath = tokenizerJson };
        var (doc, root) = JsonCursor.Open(tokenizerJson);
        using (doc)
        {
            LoadTokenizerJson(b, root);
        }
        ConfigValues cfg = new();
        if (specialTokensMapJson is not null) ReadConfig(specialTokensMapJson, cfg, isTokenizerConfig: false);
        if (tokenizerConfigJson is not null) ReadConfig(tokenizerConfigJson, cfg, isTokenizerConfig: true);
        if (generationConfigJson is not null) ReadGenerationConfig(generationConfigJson, cfg);
        ResolveSpecials(b, cfg);
        return new HfTokenizer(b);
    }

    /// <summary>Encodes text to ids. With <paramref name="addSpecialTokens"/>, adds the post-processor's BOS/EOS.</summary>
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        if (addSpecialTokens) ids.AddRange(_prefixIds);
        int pos = 0;
        bool first = true;
        while (pos < text.Length)
        {
            var (start, end, token) = FindAddedToken(text, pos);
            if (token is null)
            {
                EncodeSegment(text[pos..], first, ids);
                break;
            }
            if (start > pos) EncodeSegment(text[pos..start], first, ids);
            ids.Add(token.Id);
            pos = end;
            first = false;
        }
        if (addSpecialTokens) ids.AddRange(_suffixIds);
        return ids;
    }

    /// <summary>Decodes ids to text; special added tokens are dropped when <paramref name="skipSpecialTokens"/>.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var sb = new StringBuilder();
        var chunk = new List<string>();
        foreach (int id in ids)
        {
            if (_addedById.TryGetValue(id, out var added))
            {
                if (skipSpecialTokens && added.Special) continue;
                Flush();
                sb.Append(added.Content);
            }
            else if (id >= 0 && id < _idToToken.Length && _idToToken[id] is string tok)
            {
                chunk.Add(tok);
            }
        }
        Flush();
        return sb.ToString();

        void Flush()
        {
            if (chunk.Count == 0) return;
            if (_decoder is null) sb.Append(string.Join(' ', chunk));
            else foreach (var s in _decoder(chunk)) sb.Append(s);
            chunk.Clear();
        }
    }

    private (int Start, int End, AddedTokenInfo? Token) FindAddedToken(string text, int from)
    {
        if (_addedByFirstChar.Count == 0) return (text.Length, text.Length, null);
        for (int i = from; i < text.Length; i++)
        {
            if (!_addedByFirstChar.TryGetValue(text[i], out var candidates)) continue;
            foreach (var a in candidates)
            {
                if (a.Content.Length > text.Length - i || string.CompareOrdinal(text, i, a.Content, 0, a.Content.Length) != 0) continue;
                int start = i, end = i + a.Content.Length;
                if (a.SingleWord && ((start > 0 && IsWordChar(text[start - 1])) || (end < text.Length && IsWordChar(text[end])))) continue;
                if (a.LStrip) while (start > from && char.IsWhiteSpace(text[start - 1])) start--;
                if (a.RStrip) while (end < text.Length && char.IsWhiteSpace(text[end])) end++;
                return (start, end, a);
            }
        }
        return (text.Length, text.Length, null);
    }

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';

    private void EncodeSegment(string segment, bool atStart, List<int> ids)
    {
        string normalized = _normalizer is null ? segment : _normalizer(segment);
        if (normalized.Length == 0) return;
        var pieces = new List<Piece> { new(normalized, atStart) };
        foreach (var step in _preTokenizers) pieces = step(pieces);
        foreach (var piece in pieces)
        {
            if (piece.Text.Length == 0) continue;
            if (_byteLevelBpe is not null)
            {
                if (_ignoreMerges && _vocab.TryGetValue(ByteLevelAlphabet.Encode(piece.Text), out int whole))
                {
                    ids.Add(whole);
                }
                else
                {
                    ids.AddRange(_byteLevelBpe.EncodeToIds(piece.Text, considerPreTokenization: false, considerNormalization: false));
                }
            }
            else
            {
                _rankedBpe!.Encode(piece.Text, ids);
            }
        }
    }

    // ---------------------------------------------------------------- loading

    private sealed class Builder
    {
        public required string SourcePath { get; init; }
        public HfTokenizerKind Kind { get; set; }
        public Func<string, string>? Normalizer { get; set; }
        public List<Func<List<Piece>, List<Piece>>> PreTokenizers { get; } = new();
        public bool SawByteLevel { get; set; }
        public bool SawMetaspace { get; set; }
        public Dictionary<string, int> Vocab { get; set; } = new(StringComparer.Ordinal);
        public BpeTokenizer? ByteLevelBpe { get; set; }
        public RankedBpe? RankedBpe { get; set; }
        public bool IgnoreMerges { get; set; }
        public string? UnkToken { get; set; }
        public List<AddedTokenInfo> Added { get; } = new();
        public int[] PrefixIds { get; set; } = [];
        public int[] SuffixIds { get; set; } = [];
        public Func<List<string>, List<string>>? Decoder { get; set; }
        public int? BosId { get; set; }
        public List<int> EosIds { get; set; } = new();
        public int? PadId { get; set; }
        public int? UnkId { get; set; }
        public string? ChatTemplate { get; set; }

        public int? Lookup(string token)
        {
            foreach (var a in Added) if (a.Content == token) return a.Id;
            return Vocab.TryGetValue(token, out int id) ? id : null;
        }
    }

    private static void LoadTokenizerJson(Builder b, JsonCursor root)
    {
        var model = root.Required("model");
        string type = model.OptionalString("type") ?? (model.Optional("merges") is not null ? "BPE" : "");
        if (type != "BPE")
        {
            throw model.Error($"model.type \"{type}\" is unsupported; only BPE tokenizers (byte-level or SentencePiece-style with byte fallback) are supported");
        }

        foreach (var item in root.Optional("added_tokens")?.Items() ?? [])
        {
            b.Added.Add(new AddedTokenInfo(
                item.Required("id").GetInt32(),
                item.Required("content").GetString(),
                item.OptionalBool("special", false),
                item.OptionalBool("lstrip", false),
                item.OptionalBool("rstrip", false),
                item.OptionalBool("single_word", false),
                item.OptionalBool("normalized", false)));
        }

        if (root.Optional("normalizer") is { } norm) b.Normalizer = BuildNormalizer(norm);
        if (root.Optional("pre_tokenizer") is { } pre) AddPreTokenizer(b, pre);
        if (root.Optional("decoder") is { } dec)
        {
            b.Decoder = BuildDecoder(b, dec);
        }

        // Model.
        var vocabCursor = model.Required("vocab");
        foreach (var (name, value) in vocabCursor.Properties()) b.Vocab[name] = value.GetInt32();
        var merges = new List<(string, string)>();
        foreach (var m in model.Optional("merges")?.Items() ?? [])
        {
            if (m.Kind == JsonValueKind.String)
            {
                var s = m.GetString();
                int sp = s.IndexOf(' ', 1);
                if (sp <= 0 || sp == s.Length - 1) throw m.Error($"merge \"{s}\" is not of the form \"left right\"");
                merges.Add((s[..sp], s[(sp + 1)..]));
            }
            else if (m.Kind == JsonValueKind.Array && m.Element.GetArrayLength() == 2)
            {
                var parts = m.Items().Select(p => p.GetString()).ToArray();
                merges.Add((parts[0], parts[1]));
            }
            else
            {
                throw m.Error("a merge must be a \"left right\" string or a [\"left\", \"right\"] pair");
            }
        }
        if (model.Optional("dropout") is { } dropout && dropout.Kind == JsonValueKind.Number && dropout.Element.GetDouble() != 0)
        {
            throw dropout.Error("BPE dropout is unsupported (set it to null for inference)");
        }
        foreach (var affix in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
        {
            if (model.Optional(affix) is { } c && c.GetString().Length > 0) throw c.Error($"{affix} is unsupported");
        }
        bool byteFallback = model.OptionalBool("byte_fallback", false);
        b.IgnoreMerges = model.OptionalBool("ignore_merges", false);
        b.UnkToken = model.OptionalString("unk_token");
        bool fuseUnk = model.OptionalBool("fuse_unk", false);

        bool byteLevel = b.SawByteLevel;
        if (byteLevel && byteFallback) throw model.Error("byte_fallback together with a ByteLevel pre-tokenizer is unsupported");
        b.Kind = byteLevel ? HfTokenizerKind.ByteLevelBpe : HfTokenizerKind.SentencePieceBpe;
        if (byteLevel)
        {
            var mergeStrings = merges.Select(m => m.Item1 + " " + m.Item2).ToList();
            try
            {
                b.ByteLevelBpe = BpeTokenizer.Create(new BpeOptions(b.Vocab)
                {
                    Merges = mergeStrings,
                    ByteLevel = true,
                    UnknownToken = b.UnkToken,
                });
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException)
            {
                throw model.Error($"the BPE model could not be built: {ex.Message}");
            }
        }
        else
        {
            var mergesPath = $"{model.Path}.merges";
            try
            {
                b.RankedBpe = new RankedBpe(b.Vocab, merges, byteFallback, b.UnkToken, fuseUnk, b.IgnoreMerges, rank => $"{model.File}: {mergesPath}[{rank}]");
            }
            catch (InvalidDataException ex)
            {
                throw new TokenizerFormatException(model.File, mergesPath, ex.Message, ex);
            }
            if (!byteFallback && b.UnkToken is null && !b.SawMetaspace)
            {
                // Neither byte-level nor SentencePiece-like: most likely a word-level BPE we would mis-handle.
                throw model.Error("a BPE model without a ByteLevel pre-tokenizer must use byte_fallback, an unk_token or a Metaspace pre-tokenizer; this one has none");
            }
        }

        if (root.Optional("post_processor") is { } post) ReadPostProcessor(b, post);
    }

    private static Func<string, string>? BuildNormalizer(JsonCursor n)
    {
        string type = n.Required("type").GetString();
        switch (type)
        {
            case "NFC": return s => UnicodeNormalization.Normalize(s, NormalizationForm.FormC);
            case "NFD": return s => UnicodeNormalization.Normalize(s, NormalizationForm.FormD);
            case "NFKC": return s => UnicodeNormalization.Normalize(s, NormalizationForm.FormKC);
            case "NFKD": return s => UnicodeNormalization.Normalize(s, NormalizationForm.FormKD);
            case "Lowercase": return s => s.ToLowerInvariant();
            case "Prepend":
            {
                string p = n.Required("prepend").GetString();
                return s => s.Length == 0 ? s : p + s;
            }
            case "Replace":
            {
                var replace = BuildReplace(n);
                return replace;
            }
            case "Strip":
            {
                bool left = n.OptionalBool("strip_left", true), right = n.OptionalBool("strip_right", true);
                return s => left && right ? s.Trim() : left ? s.TrimStart() : right ? s.TrimEnd() : s;
            }
            case "Sequence":
            {
                var steps = n.Required("normalizers").Items().Select(BuildNormalizer).Where(f => f is not null).Select(f => f!).ToArray();
                return s =>
                {
                    foreach (var f in steps) s = f(s);
                    return s;
                };
            }
            default:
                throw n.Error($"normalizer type \"{type}\" is unsupported (supported: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, Sequence)");
        }
    }

    private static Func<string, string> BuildReplace(JsonCursor n)
    {
        var pattern = n.Required("pattern");
        string content = n.Required("content").GetString();
        if (pattern.Optional("String") is { } str)
        {
            string from = str.GetString();
            return s => from.Length == 0 ? s : s.Replace(from, content, StringComparison.Ordinal);
        }
        if (pattern.Optional("Regex") is { } rx)
        {
            var regex = new Regex(CodePointRegex.ConvertPossessive(rx.GetString()), RegexOptions.CultureInvariant);
            return s => regex.Replace(s, content.Replace("$", "$$", StringComparison.Ordinal));
        }
        throw pattern.Error("expected {\"String\": ...} or {\"Regex\": ...}");
    }

    private static void AddPreTokenizer(Builder b, JsonCursor p)
    {
        string type = p.Required("type").GetString();
        switch (type)
        {
            case "Sequence":
                foreach (var item in p.Required("pretokenizers").Items()) AddPreTokenizer(b, item);
                return;
            case "ByteLevel":
            {
                b.SawByteLevel = true;
                bool addPrefixSpace = p.OptionalBool("add_prefix_space", false);
                bool useRegex = p.OptionalBool("use_regex", true);
                var regex = useRegex ? new CodePointRegex(CodePointRegex.Gpt2Pattern) : null;
                b.PreTokenizers.Add(pieces =>
                {
                    var result = new List<Piece>(pieces.Count);
                    foreach (var piece in pieces)
                    {
                        string text = addPrefixSpace && !piece.Text.StartsWith(' ') ? " " + piece.Text : piece.Text;
                        if (regex is null) result.Add(piece with { Text = text });
                        else foreach (var s in regex.SplitIsolated(text)) result.Add(new Piece(s, false));
                    }
                    return result;
                });
                return;
            }
            case "Split":
            {
                var pattern = p.Required("pattern");
                CodePointRegex regex;
                if (pattern.Optional("Regex") is { } rx) regex = new CodePointRegex(rx.GetString());
                else if (pattern.Optional("String") is { } str) regex = new CodePointRegex(Regex.Escape(str.GetString()));
                else throw pattern.Error("expected {\"String\": ...} or {\"Regex\": ...}");
                string behavior = p.OptionalString("behavior") ?? "Isolated";
                bool invert = p.OptionalBool("invert", false);
                if (behavior is not ("Isolated" or "Removed" or "MergedWithPrevious" or "MergedWithNext" or "Contiguous"))
                {
                    throw p.Required("behavior").Error($"Split behavior \"{behavior}\" is unsupported");
                }
                b.PreTokenizers.Add(pieces => SplitPieces(pieces, regex, behavior, invert));
                return;
            }
            case "Digits":
            {
                bool individual = p.OptionalBool("individual_digits", false);
                var regex = new CodePointRegex(@"\p{Nd}");
                b.PreTokenizers.Add(pieces => SplitPieces(pieces, regex, individual ? "Isolated" : "Contiguous", false));
                return;
            }
            case "Metaspace":
            {
                b.SawMetaspace = true;
                string replacement = p.OptionalString("replacement") ?? "\u2581";
                string scheme = p.OptionalString("prepend_scheme") ?? (p.OptionalBool("add_prefix_space", true) ? "always" : "never");
                bool split = p.OptionalBool("split", true);
                var regex = new CodePointRegex(Regex.Escape(replacement));
                b.PreTokenizers.Add(pieces =>
                {
                    var result = new List<Piece>(pieces.Count);
                    foreach (var piece in pieces)
                    {
                        string text = piece.Text.Replace(" ", replacement, StringComparison.Ordinal);
                        bool prepend = scheme == "always" || (scheme == "first" && piece.AtStart);
                        if (prepend && !text.StartsWith(replacement, StringComparison.Ordinal)) text = replacement + text;
                        if (split) result.AddRange(SplitPieces([new Piece(text, piece.AtStart)], regex, "MergedWithNext", false));
                        else result.Add(new Piece(text, piece.AtStart));
                    }
                    return result;
                });
                return;
            }
            default:
                throw p.Error($"pre_tokenizer type \"{type}\" is unsupported (supported: ByteLevel, Split, Metaspace, Digits, Sequence)");
        }
    }

    private static List<Piece> SplitPieces(List<Piece> pieces, CodePointRegex regex, string behavior, bool invert)
    {
        var result = new List<Piece>();
        foreach (var piece in pieces)
        {
            var spans = new List<(string Text, bool IsMatch)>();
            int pos = 0;
            foreach (var (start, length) in regex.Matches(piece.Text))
            {
                if (start > pos) spans.Add((piece.Text[pos..start], invert));
                spans.Add((piece.Text.Substring(start, length), !invert));
                pos = start + length;
            }
            if (pos < piece.Text.Length) spans.Add((piece.Text[pos..], invert));

            var outTexts = new List<string>();
            switch (behavior)
            {
                case "Isolated":
                    outTexts.AddRange(spans.Select(s => s.Text));
                    break;
                case "Removed":
                    outTexts.AddRange(spans.Where(s => !s.IsMatch).Select(s => s.Text));
                    break;
                case "MergedWithPrevious":
                    foreach (var s in spans)
                    {
                        if (s.IsMatch && outTexts.Count > 0) outTexts[^1] += s.Text;
                        else outTexts.Add(s.Text);
                    }
                    break;
                case "MergedWithNext":
                {
                    string? pending = null;
                    foreach (var s in spans)
                    {
                        if (s.IsMatch)
                        {
                            if (pending is not null) outTexts.Add(pending);
                            pending = s.Text;
                        }
                        else
                        {
                            outTexts.Add((pending ?? "") + s.Text);
                            pending = null;
                        }
                    }
                    if (pending is not null) outTexts.Add(pending);
                    break;
                }
                case "Contiguous":
                {
                    bool lastMatch = false;
                    foreach (var s in spans)
                    {
                        if (s.IsMatch && lastMatch) outTexts[^1] += s.Text;
                        else outTexts.Add(s.Text);
                        lastMatch = s.IsMatch;
                    }
                    break;
                }
            }
            for (int i = 0; i < outTexts.Count; i++)
            {
                if (outTexts[i].Length > 0) result.Add(new Piece(outTexts[i], piece.AtStart && i == 0));
            }
        }
        return result;
    }

    private static Func<List<string>, List<string>> BuildDecoder(Builder b, JsonCursor d)
    {
        string type = d.Required("type").GetString();
        switch (type)
        {
            case "ByteLevel":
                return tokens =>
                {
                    var bytes = new List<byte>();
                    foreach (var t in tokens) ByteLevelAlphabet.AppendTokenBytes(t, bytes);
                    return [Encoding.UTF8.GetString(bytes.ToArray())];
                };
            case "Sequence":
            {
                var steps = d.Required("decoders").Items().Select(x => BuildDecoder(b, x)).ToArray();
                return tokens =>
                {
                    foreach (var s in steps) tokens = s(tokens);
                    return tokens;
                };
            }
            case "Replace":
            {
                var pattern = d.Required("pattern");
                string content = d.Required("content").GetString();
                if (pattern.Optional("String") is { } str)
                {
                    string from = str.GetString();
                    return tokens => tokens.Select(t => t.Replace(from, content, StringComparison.Ordinal)).ToList();
                }
                var replace = BuildReplace(d);
                return tokens => tokens.Select(replace).ToList();
            }
            case "ByteFallback":
                return DecodeByteFallback;
            case "Fuse":
                return tokens => [string.Concat(tokens)];
            case "Strip":
            {
                string content = d.Required("content").GetString();
                int start = d.Optional("start")?.GetInt32() ?? 0, stop = d.Optional("stop")?.GetInt32() ?? 0;
                return tokens => tokens.Select(t => StripToken(t, content, start, stop)).ToList();
            }
            case "Metaspace":
            {
                string replacement = d.OptionalString("replacement") ?? "\u2581";
                string scheme = d.OptionalString("prepend_scheme") ?? (d.OptionalBool("add_prefix_space", true) ? "always" : "never");
                return tokens =>
                {
                    var result = new List<string>(tokens.Count);
                    for (int i = 0; i < tokens.Count; i++)
                    {
                        string t = tokens[i].Replace(replacement, " ", StringComparison.Ordinal);
                        if (i == 0 && scheme != "never" && t.StartsWith(' ')) t = t[1..];
                        result.Add(t);
                    }
                    return result;
                };
            }
            default:
                throw d.Error($"decoder type \"{type}\" is unsupported (supported: ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence)");
        }
    }

    private static string StripToken(string t, string content, int start, int stop)
    {
        if (content.Length != 1) return t;
        char c = content[0];
        int s = 0, e = t.Length;
        while (s < e && s < start && t[s] == c) s++;
        int removed = 0;
        while (e > s && removed < stop && t[e - 1] == c) { e--; removed++; }
        return t[s..e];
    }

    private static List<string> DecodeByteFallback(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        var pending = new List<byte>();
        foreach (var t in tokens)
        {
            if (t.Length == 6 && t.StartsWith("<0x", StringComparison.Ordinal) && t[5] == '>' &&
                byte.TryParse(t.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out byte value))
            {
                pending.Add(value);
                continue;
            }
            FlushBytes();
            result.Add(t);
        }
        FlushBytes();
        return result;

        void FlushBytes()
        {
            if (pending.Count == 0) return;
            var arr = pending.ToArray();
            try
            {
                result.Add(new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(arr));
            }
            catch (DecoderFallbackException)
            {
                for (int i = 0; i < arr.Length; i++) result.Add("\uFFFD");
            }
            pending.Clear();
        }
    }

    private static void ReadPostProcessor(Builder b, JsonCursor p)
    {
        string type = p.Required("type").GetString();
        switch (type)
        {
            case "ByteLevel":
                return;
            case "Sequence":
                foreach (var item in p.Required("processors").Items()) ReadPostProcessor(b, item);
                return;
            case "TemplateProcessing":
            {
                var specials = new Dictionary<string, int[]>(StringComparer.Ordinal);
                if (p.Optional("special_tokens") is { } st)
                {
                    foreach (var (name, value) in st.Properties())
                    {
                        specials[name] = value.Required("ids").Items().Select(x => x.GetInt32()).ToArray();
                    }
                }
                var prefix = new List<int>();
                var suffix = new List<int>();
                bool seenSequence = false;
                foreach (var item in p.Required("single").Items())
                {
                    if (item.Optional("SpecialToken") is { } sp)
                    {
                        string id = sp.Required("id").GetString();
                        if (!specials.TryGetValue(id, out var ids))
                        {
                            ids = b.Lookup(id) is int x ? [x] : throw sp.Error($"special token \"{id}\" is neither in post_processor.special_tokens nor in the vocabulary");
                        }
                        (seenSequence ? suffix : prefix).AddRange(ids);
                    }
                    else if (item.Optional("Sequence") is not null)
                    {
                        seenSequence = true;
                    }
                    else
                    {
                        throw item.Error("expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
                    }
                }
                b.PrefixIds = prefix.ToArray();
                b.SuffixIds = suffix.ToArray();
                return;
            }
            case "RobertaProcessing":
            case "BertProcessing":
            {
                var cls = p.Required("cls").Items().ToArray();
                var sep = p.Required("sep").Items().ToArray();
                b.PrefixIds = [cls[1].GetInt32()];
                b.SuffixIds = [sep[1].GetInt32()];
                return;
            }
            default:
                throw p.Error($"post_processor type \"{type}\" is unsupported (supported: TemplateProcessing, ByteLevel, Sequence, RobertaProcessing, BertProcessing)");
        }
    }

    // ---------------------------------------------------------------- configs

    private sealed class ConfigValues
    {
        public string? Bos, Eos, Pad, Unk, ChatTemplate;
        public bool? AddBos, AddEos;
        public int? GenBos, GenPad;
        public List<int> GenEos = new();
    }

    private static string? ReadTokenValue(JsonCursor? c)
    {
        if (c is not { } v) return null;
        return v.Kind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object => v.Required("content").GetString(),
            _ => throw v.Error("expected a token string or an object with \"content\""),
        };
    }

    private static void ReadConfig(string file, ConfigValues cfg, bool isTokenizerConfig)
    {
        var (doc, root) = JsonCursor.Open(file);
        using (doc)
        {
            cfg.Bos = ReadTokenValue(root.Optional("bos_token")) ?? cfg.Bos;
            cfg.Eos = ReadTokenValue(root.Optional("eos_token")) ?? cfg.Eos;
            cfg.Pad = ReadTokenValue(root.Optional("pad_token")) ?? cfg.Pad;
            cfg.Unk = ReadTokenValue(root.Optional("unk_token")) ?? cfg.Unk;
            if (!isTokenizerConfig) return;
            if (root.Optional("add_bos_token") is { } ab) cfg.AddBos = ab.GetBoolean();
            if (root.Optional("add_eos_token") is { } ae) cfg.AddEos = ae.GetBoolean();
            if (root.Optional("chat_template") is { } ct)
            {
                if (ct.Kind == JsonValueKind.String) cfg.ChatTemplate = ct.GetString();
                else if (ct.Kind == JsonValueKind.Array)
                {
                    // [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]
                    var named = ct.Items().Select(x => (Name: x.OptionalString("name"), Template: x.Required("template").GetString())).ToList();
                    cfg.ChatTemplate = named.FirstOrDefault(x => x.Name == "default").Template ?? named.FirstOrDefault().Template;
                }
                else throw ct.Error("expected a string or a list of {name, template}");
            }
        }
    }

    private static void ReadGenerationConfig(string file, ConfigValues cfg)
    {
        var (doc, root) = JsonCursor.Open(file);
        using (doc)
        {
            cfg.GenBos = root.Optional("bos_token_id")?.GetInt32();
            cfg.GenPad = root.Optional("pad_token_id") is { } p ? (p.Kind == JsonValueKind.Array ? p.Items().First().GetInt32() : p.GetInt32()) : null;
            if (root.Optional("eos_token_id") is { } e)
            {
                if (e.Kind == JsonValueKind.Array) cfg.GenEos.AddRange(e.Items().Select(x => x.GetInt32()));
                else cfg.GenEos.Add(e.GetInt32());
            }
        }
    }

    private static void ResolveSpecials(Builder b, ConfigValues cfg)
    {
        cfg.ChatTemplate ??= null;
        b.ChatTemplate = cfg.ChatTemplate;
        int? templateBos = b.PrefixIds.Length > 0 ? b.PrefixIds[0] : null;
        int? templateEos = b.SuffixIds.Length > 0 ? b.SuffixIds[^1] : null;

        b.BosId = (cfg.Bos is not null ? b.Lookup(cfg.Bos) : null) ?? cfg.GenBos ?? templateBos;
        var eos = new List<int>();
        if (cfg.Eos is not null && b.Lookup(cfg.Eos) is int e) eos.Add(e);
        foreach (var g in cfg.GenEos) if (!eos.Contains(g)) eos.Add(g);
        if (eos.Count == 0 && templateEos is int te) eos.Add(te);
        b.EosIds = eos;
        b.PadId = (cfg.Pad is not null ? b.Lookup(cfg.Pad) : null) ?? cfg.GenPad;
        b.UnkId = (cfg.Unk ?? b.UnkToken) is string u ? b.Lookup(u) : null;

        // tokenizer_config's add_bos_token / add_eos_token override the post-processor, as transformers does
        // for Llama-style tokenizers.
        if (cfg.AddBos is bool addBos && b.BosId is int bos)
        {
            if (addBos && b.PrefixIds.Length == 0) b.PrefixIds = [bos];
            else if (!addBos && b.PrefixIds.SequenceEqual([bos])) b.PrefixIds = [];
        }
        if (cfg.AddEos is bool addEos && eos.Count > 0)
        {
            if (addEos && b.SuffixIds.Length == 0) b.SuffixIds = [eos[0]];
            else if (!addEos && b.SuffixIds.SequenceEqual([eos[0]])) b.SuffixIds = [];
        }
    }
}
