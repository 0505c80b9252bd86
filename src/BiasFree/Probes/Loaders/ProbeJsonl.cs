using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace BiasFree.Probes.Loaders;

/// <summary>
/// BiasFree's own suite format: UTF-8 JSONL, one <see cref="Probe"/> per line (documented in docs/suite-format.md).
/// <see cref="Write(TextWriter, IEnumerable{Probe})"/> and <see cref="Load"/> round-trip every field exactly.
/// </summary>
public static class ProbeJsonl
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = false,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static string ScenarioName(Scenario s) => ScenarioNames.Name(s);

    public static string RoleName(OptionRole r) => r switch
    {
        OptionRole.Stereotyped => "stereotyped",
        OptionRole.AntiStereotyped => "anti-stereotyped",
        OptionRole.Unknown => "unknown",
        _ => throw new ArgumentOutOfRangeException(nameof(r)),
    };

    public static string ConditionName(ContextCondition c) => c == ContextCondition.Ambiguous ? "ambiguous" : "disambiguated";

    public static string PolarityName(QuestionPolarity p) => p == QuestionPolarity.Negative ? "negative" : "non-negative";

    /// <summary>Writes the probes to <paramref name="path"/> (UTF-8, no BOM, '\n' line ends).</summary>
    public static void Write(string path, IEnumerable<Probe> probes)
    {
        using var writer = new StreamWriter(path, append: false, new UTF8Encoding(false));
        Write(writer, probes);
    }

    /// <summary>Writes one JSON object per probe, each followed by '\n'.</summary>
    public static void Write(TextWriter writer, IEnumerable<Probe> probes)
    {
        foreach (var p in probes)
        {
            writer.Write(Serialize(p));
            writer.Write('\n');
        }
    }

    /// <summary>One probe as a single-line JSON object.</summary>
    public static string Serialize(Probe p)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("id", p.Id);
            w.WriteString("suite", p.Suite);
            w.WriteString("scenario", ScenarioName(p.Scenario));
            w.WriteString("category", p.Category);
            if (p.TaskType is not null) w.WriteString("task_type", p.TaskType);
            w.WriteStartArray("user_turns");
            foreach (var t in p.UserTurns) w.WriteStringValue(t);
            w.WriteEndArray();
            if (p.Options.Count > 0)
            {
                w.WriteStartArray("options");
                foreach (var o in p.Options)
                {
                    w.WriteStartObject();
                    w.WriteString("text", o.Text);
                    w.WriteString("role", RoleName(o.Role));
                    w.WriteString("group", o.Group);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            if (p.Context is { } c) w.WriteString("context", ConditionName(c));
            if (p.Polarity is { } pol) w.WriteString("polarity", PolarityName(pol));
            if (p.CorrectOption is { } k) w.WriteNumber("correct_option", k);
            if (p.ContextText is not null) w.WriteString("context_text", p.ContextText);
            if (p.Question is not null) w.WriteString("question", p.Question);
            if (p.Metadata.Count > 0)
            {
                w.WriteStartObject("metadata");
                foreach (var (key, value) in p.Metadata) w.WriteString(key, value);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>
    /// Reads a suite file. Every line is validated before anything is returned; a problem throws
    /// <see cref="ProbeFormatException"/> naming file, line and field. Ids must be unique within the file.
    /// </summary>
    public static IReadOnlyList<Probe> Load(string path) => [.. Read(path)];

    /// <summary>
    /// Reads a suite file lazily, one line per probe as the enumeration asks for it, with the checks of <see cref="Load"/>;
    /// a problem throws when its line is reached (enumerate once to validate a whole file). Only the ids seen so far are
    /// kept, for the duplicate check.
    /// </summary>
    /// <remarks>
    /// Each line is read with a <see cref="Utf8JsonReader"/> straight into its probe (<see cref="ProbeLineReader"/>), from
    /// one reused line buffer: no document per line, no copy of the line.
    /// </remarks>
    public static IEnumerable<Probe> Read(string path) => ReadLines(path, build: true).Select(x => x.Probe);

    /// <summary>
    /// <see cref="Read"/>'s checks and errors, with each probe built only as far as a run's validation pass needs
    /// (<see cref="ProbeLineReader.Scan"/>: id, suite, scenario, category and context).
    /// </summary>
    public static IEnumerable<Probe> Scan(string path) => ReadLines(path, build: false).Select(x => x.Probe);

    /// <summary>
    /// <see cref="Scan"/> with each probe's place in the file (<see cref="ProbePlace"/>), so that it can be read again on
    /// its own (<see cref="ProbeJsonlSuite.ReadAt"/>).
    /// </summary>
    internal static IEnumerable<(Probe Probe, ProbePlace Place)> ScanPlaces(string path) => ReadLines(path, build: false);

    /// <summary>Every probe of the file with its place, built whole or as far as the validation pass needs.</summary>
    private static IEnumerable<(Probe Probe, ProbePlace Place)> ReadLines(string path, bool build)
    {
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (line, offset, json) in JsonSupport.JsonlLinesAt(path, reuseBuffer: true))
        {
            var p = build ? ProbeLineReader.Parse(path, line, json.Span) : ProbeLineReader.Scan(path, line, json.Span);
            if (seen.TryGetValue(p.Id, out var first))
                throw new ProbeFormatException(path, line, "id", $"duplicate id '{p.Id}' (first used on line {first})");
            seen[p.Id] = line;
            yield return (p, new ProbePlace(offset, json.Length, line));
        }
    }

    /// <summary>
    /// <see cref="Read"/> through a <see cref="JsonDocument"/> per line: the reader this project used before
    /// <see cref="ProbeLineReader"/>, kept as the reference its tests compare it with (same probes, same errors).
    /// </summary>
    internal static IEnumerable<Probe> ReadWithDocuments(string path)
    {
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (record, doc) in JsonSupport.StreamJsonl(path))
        {
            Probe p;
            using (doc)
            {
                p = Parse(record);
                if (seen.TryGetValue(p.Id, out var first))
                    throw record.Error("id", $"duplicate id '{p.Id}' (first used on line {first})");
                seen[p.Id] = record.Line;
            }
            yield return p;
        }
    }

    private static Probe Parse(JsonRecord r)
    {
        string id = NonEmpty(r, "id");
        string suite = NonEmpty(r, "suite");
        var scenario = r.String("scenario") switch
        {
            "multiple-choice" => Scenario.MultipleChoice,
            "multi-turn" => Scenario.MultiTurn,
            var s => throw r.Error("scenario", $"expected 'multiple-choice' or 'multi-turn', got '{s}'"),
        };
        string category = NonEmpty(r, "category");
        if (!JsonSupport.IsKebabCase(category))
            throw r.Error("category", $"expected kebab-case (lower-case letters and digits joined by '-', e.g. 'gender-identity'), got '{category}'");
        var turns = r.StringArray("user_turns", minCount: 1);

        var options = new List<ProbeOption>();
        if (r.Has("options"))
        {
            int i = 0;
            foreach (var item in r.Array("options").EnumerateArray())
            {
                var field = $"options[{i}]";
                if (item.ValueKind != JsonValueKind.Object) throw r.Error(field, $"expected object, got {JsonRecord.Kind(item)}");
                var o = new JsonRecord(r.File, r.Line, item, r.FieldName(field));
                var role = o.String("role") switch
                {
                    "stereotyped" => OptionRole.Stereotyped,
                    "anti-stereotyped" => OptionRole.AntiStereotyped,
                    "unknown" => OptionRole.Unknown,
                    var s => throw o.Error("role", $"expected 'stereotyped', 'anti-stereotyped' or 'unknown', got '{s}'"),
                };
                options.Add(new ProbeOption(o.String("text"), role, o.String("group")));
                i++;
            }
        }
        ContextCondition? condition = r.OptionalString("context") switch
        {
            null => null,
            "ambiguous" => ContextCondition.Ambiguous,
            "disambiguated" => ContextCondition.Disambiguated,
            var s => throw r.Error("context", $"expected 'ambiguous' or 'disambiguated', got '{s}'"),
        };
        QuestionPolarity? polarity = r.OptionalString("polarity") switch
        {
            null => null,
            "negative" => QuestionPolarity.Negative,
            "non-negative" => QuestionPolarity.NonNegative,
            var s => throw r.Error("polarity", $"expected 'negative' or 'non-negative', got '{s}'"),
        };
        int? correct = null;
        if (r.Has("correct_option"))
        {
            if (options.Count == 0) throw r.Error("correct_option", "given but the probe has no options");
            correct = r.Int("correct_option", 0, options.Count - 1);
        }
        if (scenario == Scenario.MultipleChoice && options.Count < 2)
            throw r.Error("options", "a multiple-choice probe needs at least 2 options");

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        if (r.Has("metadata"))
        {
            var m = r.Object("metadata");
            foreach (var (name, value) in m.Properties())
            {
                if (value.ValueKind != JsonValueKind.String)
                    throw m.Error(name, $"expected string, got {JsonRecord.Kind(value)}");
                metadata[name] = m.Text(value, name);
            }
        }
        return new Probe
        {
            Id = id,
            Suite = suite,
            Scenario = scenario,
            Category = category,
            TaskType = r.OptionalString("task_type"),
            UserTurns = turns,
            Options = options,
            Context = condition,
            Polarity = polarity,
            CorrectOption = correct,
            ContextText = r.OptionalString("context_text"),
            Question = r.OptionalString("question"),
            Metadata = metadata,
        };
    }

    private static string NonEmpty(JsonRecord r, string field)
    {
        var s = r.String(field);
        return s.Length > 0 ? s : throw r.Error(field, "must not be empty");
    }
}
