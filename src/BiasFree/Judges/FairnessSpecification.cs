using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace BiasFree.Judges;

/// <summary>One bias type the judge checks, with its definition (our wording).</summary>
public sealed record BiasTypeDefinition(string Id, string Name, string Definition);

/// <summary>
/// One judgment standard: a question and what makes the answer biased or unbiased. BiasGuard (Fan et al. 2025)
/// lists seven; the last one, "beware of over-protective judgments", guards against over-fairness.
/// </summary>
public sealed record JudgmentStandard(string Id, string Question, string Biased, string Unbiased);

/// <summary>A sentence type and how to read its intent (direct assertion, reported speech, denial, …).</summary>
public sealed record SentenceType(string Id, string Name, string Guidance);

/// <summary>
/// Fairness specifications as data, after BiasGuard (Fan, Chen, Liu: "BiasGuard: A Reasoning-enhanced Bias Detection
/// Tool For Large Language Models", Findings of ACL 2025): the judge reasons over explicit bias-type definitions,
/// judgment standards and a sentence-type analysis before it concludes. <see cref="Id"/> and <see cref="Version"/>
/// identify the text; judges put them in their name so every stored verdict says which specification produced it.
/// Load your own with <see cref="Load"/>; <see cref="Default"/> is the one shipped with BiasFree
/// (<c>Judges/Specifications/fairness-spec-v1.json</c>).
/// </summary>
public sealed partial record FairnessSpecification
{
    /// <summary>Short stable name, e.g. "biasfree-fairness".</summary>
    public required string Id { get; init; }

    /// <summary>Version of the text; change it whenever the wording changes (verdicts of different versions are not comparable).</summary>
    public required string Version { get; init; }

    /// <summary>What the specification is for.</summary>
    public string Description { get; init; } = "";

    /// <summary>The judging procedure, in order.</summary>
    public required IReadOnlyList<string> Steps { get; init; }

    /// <summary>Bias-type definitions.</summary>
    public required IReadOnlyList<BiasTypeDefinition> BiasTypes { get; init; }

    /// <summary>Judgment standards.</summary>
    public required IReadOnlyList<JudgmentStandard> Standards { get; init; }

    /// <summary>Sentence types and how to read them.</summary>
    public required IReadOnlyList<SentenceType> SentenceTypes { get; init; }

    /// <summary>"id@version", as recorded in judge names.</summary>
    public string Tag => $"{Id}@{Version}";

    /// <summary>The specification shipped with BiasFree (embedded resource).</summary>
    public static FairnessSpecification Default => LazyDefault.Value;

    // Lazy: a static initializer here would run before JsonOptions below is set.
    private static readonly Lazy<FairnessSpecification> LazyDefault = new(LoadDefault);

    /// <summary>The shipped specification's JSON text (what <c>biasfree judge spec</c> prints; a starting point for your own).</summary>
    public static string DefaultJson
    {
        get
        {
            using var stream = typeof(FairnessSpecification).Assembly.GetManifestResourceStream(ResourceName)
                ?? throw new InvalidOperationException($"embedded resource {ResourceName} is missing");
            using var reader = new StreamReader(stream, Encoding.UTF8);
            return reader.ReadToEnd();
        }
    }

    private const string ResourceName = "BiasFree.Judges.Specifications.fairness-spec-v1.json";

    private static FairnessSpecification LoadDefault() => Parse(DefaultJson, "fairness-spec-v1.json");

    /// <summary>Reads a specification file.</summary>
    /// <exception cref="FormatException">The file is not a valid specification; the message reads <c>file:line: field 'x': problem</c>.</exception>
    public static FairnessSpecification Load(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: specification file not found", path);
        return Parse(File.ReadAllText(path, Encoding.UTF8), path);
    }

    /// <summary>Parses specification JSON; <paramref name="source"/> names it in error messages.</summary>
    /// <exception cref="FormatException">Invalid JSON or a missing/empty/duplicate field (<c>source:line: field 'x': problem</c>).</exception>
    public static FairnessSpecification Parse(string json, string source)
    {
        ArgumentNullException.ThrowIfNull(json);
        Dto? dto;
        try
        {
            dto = JsonSerializer.Deserialize(json, SpecificationJson.Default.Dto);
        }
        catch (JsonException ex)
        {
            var field = string.IsNullOrEmpty(ex.Path) || ex.Path == "$" ? "" : $" field '{ex.Path.TrimStart('$', '.')}':";
            throw new FormatException($"{source}:{(ex.LineNumber ?? 0) + 1}:{field} {FirstSentence(ex.Message)}", ex);
        }
        if (dto is null) throw new FormatException($"{source}:1: the file holds no specification object");
        var lines = new ElementLines(json);

        string Required(string? value, string field, int line) =>
            string.IsNullOrWhiteSpace(value) ? throw new FormatException($"{source}:{line}: field '{field}': missing or empty") : value.Trim();

        List<T> Items<TDto, T>(List<TDto?>? list, string field, Func<TDto, string, int, T> map)
        {
            if (list is null || list.Count == 0) throw new FormatException($"{source}:{lines.Of(field, -1)}: field '{field}': missing or empty list");
            var result = new List<T>();
            for (int i = 0; i < list.Count; i++)
            {
                var path = $"{field}[{i}]";
                var line = lines.Of(field, i);
                if (list[i] is not { } item) throw new FormatException($"{source}:{line}: field '{path}': null entry");
                result.Add(map(item, path, line));
            }
            return result;
        }

        void Unique(IEnumerable<string> ids, string field)
        {
            var dup = ids.GroupBy(x => x, StringComparer.OrdinalIgnoreCase).FirstOrDefault(g => g.Count() > 1);
            if (dup is not null) throw new FormatException($"{source}:{lines.Of(field, -1)}: field '{field}': id '{dup.Key}' appears twice");
        }

        var spec = new FairnessSpecification
        {
            Id = Required(dto.Id, "id", 1),
            Version = Required(dto.Version, "version", 1),
            Description = dto.Description?.Trim() ?? "",
            Steps = Items<string, string>(dto.Steps, "steps", (s, p, l) => Required(s, p, l)),
            BiasTypes = Items<BiasTypeDto, BiasTypeDefinition>(dto.BiasTypes, "biasTypes", (b, p, l) =>
                new(Required(b.Id, p + ".id", l), Required(b.Name, p + ".name", l), Required(b.Definition, p + ".definition", l))),
            Standards = Items<StandardDto, JudgmentStandard>(dto.Standards, "standards", (s, p, l) =>
                new(Required(s.Id, p + ".id", l), Required(s.Question, p + ".question", l), Required(s.Biased, p + ".biased", l), Required(s.Unbiased, p + ".unbiased", l))),
            SentenceTypes = Items<SentenceTypeDto, SentenceType>(dto.SentenceTypes, "sentenceTypes", (s, p, l) =>
                new(Required(s.Id, p + ".id", l), Required(s.Name, p + ".name", l), Required(s.Guidance, p + ".guidance", l))),
        };
        Unique(spec.BiasTypes.Select(b => b.Id), "biasTypes");
        Unique(spec.Standards.Select(s => s.Id), "standards");
        Unique(spec.SentenceTypes.Select(s => s.Id), "sentenceTypes");
        return spec;
    }

    /// <summary>The specification as the numbered text a judge prompt carries.</summary>
    public string Render()
    {
        var sb = new StringBuilder();
        sb.Append("Fairness specification ").Append(Tag).Append('\n');
        sb.Append("\nProcedure:\n");
        for (int i = 0; i < Steps.Count; i++) sb.Append(i + 1).Append(". ").Append(Steps[i]).Append('\n');
        sb.Append("\nBias types:\n");
        foreach (var b in BiasTypes) sb.Append("- ").Append(b.Name).Append(": ").Append(b.Definition).Append('\n');
        sb.Append("\nJudgment standards:\n");
        for (int i = 0; i < Standards.Count; i++)
        {
            var s = Standards[i];
            sb.Append('J').Append(i + 1).Append(". ").Append(s.Question).Append(" Biased: ").Append(s.Biased).Append(" Unbiased: ").Append(s.Unbiased).Append('\n');
        }
        sb.Append("\nSentence types:\n");
        foreach (var t in SentenceTypes) sb.Append("- ").Append(t.Name).Append(": ").Append(t.Guidance).Append('\n');
        return sb.ToString().TrimEnd();
    }

    private static string FirstSentence(string message)
    {
        int i = message.IndexOf(". ", StringComparison.Ordinal);
        return i < 0 ? message : message[..(i + 1)];
    }

    /// <summary>
    /// Compile-time serialization metadata for reading a specification file: names in any case, comments and trailing
    /// commas allowed, an unknown field an error. No converter is built at run time (Native AOT).
    /// </summary>
    [JsonSourceGenerationOptions(PropertyNameCaseInsensitive = true, ReadCommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
    [JsonSerializable(typeof(Dto))]
    private sealed partial class SpecificationJson : JsonSerializerContext;

    private sealed class Dto
    {
        public string? Id { get; set; }
        public string? Version { get; set; }
        public string? Description { get; set; }
        public List<string?>? Steps { get; set; }
        public List<BiasTypeDto?>? BiasTypes { get; set; }
        public List<StandardDto?>? Standards { get; set; }
        public List<SentenceTypeDto?>? SentenceTypes { get; set; }
    }

    private sealed class BiasTypeDto
    {
        public string? Id { get; set; }
        public string? Name { get; set; }
        public string? Definition { get; set; }
    }

    private sealed class StandardDto
    {
        public string? Id { get; set; }
        public string? Question { get; set; }
        public string? Biased { get; set; }
        public string? Unbiased { get; set; }
    }

    private sealed class SentenceTypeDto
    {
        public string? Id { get; set; }
        public string? Name { get; set; }
        public string? Guidance { get; set; }
    }

    /// <summary>1-based line numbers of top-level fields and of their array entries, for error messages.</summary>
    private sealed class ElementLines
    {
        private readonly Dictionary<(string, int), int> _lines = new();

        public ElementLines(string json)
        {
            var bytes = Encoding.UTF8.GetBytes(json);
            int LineAt(long offset)
            {
                int n = 1;
                for (long i = 0; i < offset && i < bytes.Length; i++) if (bytes[i] == (byte)'\n') n++;
                return n;
            }
            try
            {
                var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
                string? top = null;
                int index = -1;
                while (reader.Read())
                {
                    if (reader.CurrentDepth == 1 && reader.TokenType == JsonTokenType.PropertyName)
                    {
                        top = reader.GetString()!;
                        index = -1;
                        _lines[(top, -1)] = LineAt(reader.TokenStartIndex);
                    }
                    else if (reader.CurrentDepth == 2 && top is not null && reader.TokenType is not (JsonTokenType.EndObject or JsonTokenType.EndArray))
                    {
                        _lines[(top, ++index)] = LineAt(reader.TokenStartIndex);
                        if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray) reader.Skip();
                    }
                }
            }
            catch (JsonException)
            {
                // Already parsed once; line numbers are best effort.
            }
        }

        public int Of(string field, int index) =>
            _lines.TryGetValue((field, index), out var l) ? l
            : _lines.FirstOrDefault(kv => string.Equals(kv.Key.Item1, field, StringComparison.OrdinalIgnoreCase) && kv.Key.Item2 == index).Value is > 0 and var m ? m
            : 1;
    }
}
