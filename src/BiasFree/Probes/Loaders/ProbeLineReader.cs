using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

namespace BiasFree.Probes.Loaders;

/// <summary>
/// One line of a BiasFree JSONL suite read into a <see cref="Probe"/> with a <see cref="Utf8JsonReader"/>, without a
/// <see cref="JsonDocument"/> (issue #11: building a document per line and looking each field up in it was most of the
/// cost of reading a suite, which a cache-only rerun does twice).
/// </summary>
/// <remarks>
/// Same result and same errors as the document path (<see cref="ProbeJsonl.ReadWithDocuments"/>, kept as the reference
/// that <c>ProbeLineReaderTests</c> compares against): the whole line is read first, so a syntax error anywhere in it wins
/// with the reader's own message (the reader a document is built with), then the fields are checked in the document
/// path's order, each with its message. A field given twice counts with its last value, as
/// <see cref="JsonElement.TryGetProperty(string, out JsonElement)"/> finds it.
/// </remarks>
internal static class ProbeLineReader
{
    private static readonly JsonReaderOptions ReaderOptions = new()
    {
        AllowTrailingCommas = JsonSupport.DocumentOptions.AllowTrailingCommas,
        CommentHandling = JsonSupport.DocumentOptions.CommentHandling,
        MaxDepth = JsonSupport.DocumentOptions.MaxDepth,
    };

    private const int Id = 0, Suite = 1, ScenarioField = 2, Category = 3, UserTurns = 4, Options = 5, Context = 6,
        Polarity = 7, Correct = 8, ContextText = 9, Question = 10, Metadata = 11, TaskType = 12, FieldCount = 13;

    private static readonly string[] Names =
        ["id", "suite", "scenario", "category", "user_turns", "options", "context", "polarity", "correct_option", "context_text", "question", "metadata", "task_type"];

    /// <summary>A top-level field as last seen on the line: its kind, its bytes, and for a string its value.</summary>
    private struct Field
    {
        public bool Present;
        public JsonTokenType Kind;
        public int Start;
        public int End;
        public string? Text;
        public bool BadEscape;

        /// <summary>What <see cref="JsonRecord.Has"/> says: present and not null.</summary>
        public readonly bool Has => Present && Kind != JsonTokenType.Null;
    }

    [InlineArray(FieldCount)]
    private struct Fields
    {
        private Field _first;
    }

    /// <summary>The probe on line <paramref name="line"/> of <paramref name="file"/>, whose (non-blank) JSON is <paramref name="json"/>.</summary>
    public static Probe Parse(string file, int line, ReadOnlySpan<byte> json) => Read(file, line, json, build: true);

    /// <summary>
    /// The line checked exactly as <see cref="Parse"/> checks it (same errors), but built only as far as a run's validation
    /// pass needs: a probe with its id, suite, scenario, category and context, and nothing else (no turns, options or
    /// metadata; a string that has no escape is valid UTF-8 already and is not even decoded).
    /// </summary>
    public static Probe Scan(string file, int line, ReadOnlySpan<byte> json) => Read(file, line, json, build: false);

    private static Probe Read(string file, int line, ReadOnlySpan<byte> json, bool build)
    {
        var fields = new Fields();
        Span<Field> f = fields;
        var at = new Where(file, line);
        // The turns and options are checked (and built) as the one pass reads them; their first problem waits, as every
        // field's does, until the whole line has been read.
        ArrayRead<string> turns = default;
        ArrayRead<ProbeOption> options = default;
        var reader = new Utf8JsonReader(json, ReaderOptions);
        var root = JsonTokenType.None;
        try
        {
            while (reader.Read())
            {
                if (root == JsonTokenType.None)
                {
                    root = reader.TokenType;
                    continue;
                }
                if (root != JsonTokenType.StartObject || reader.TokenType != JsonTokenType.PropertyName || reader.CurrentDepth != 1)
                {
                    continue; // read on: the line's syntax is checked to its end before any field is
                }
                var index = FieldIndex(ref reader);
                reader.Read();
                if (index < 0)
                {
                    continue;
                }
                ref var field = ref f[index];
                field = new Field { Present = true, Kind = reader.TokenType, Start = (int)reader.TokenStartIndex };
                if (reader.TokenType == JsonTokenType.String && index is not (UserTurns or Options or Metadata or Correct))
                {
                    // The validation pass keeps only these fields' values; the others it only checks.
                    field.Text = index switch
                    {
                        ScenarioField => Known(ref reader, ScenarioValues),
                        Context => Known(ref reader, ContextValues),
                        Polarity => Known(ref reader, PolarityValues),
                        Suite or Category => Repeated(ref reader),
                        _ => ValidString(ref reader, build || index == Id),
                    };
                    field.BadEscape = field.Text is null;
                }
                else if (reader.TokenType == JsonTokenType.StartArray && index == UserTurns)
                {
                    turns = ReadTurns(ref reader, at, build);
                }
                else if (reader.TokenType == JsonTokenType.StartArray && index == Options)
                {
                    options = ReadOptions(ref reader, at, build);
                }
                else if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                {
                    reader.Skip();
                }
                field.End = (int)reader.BytesConsumed;
            }
        }
        catch (JsonException e)
        {
            throw new ProbeFormatException(file, line, null, $"invalid JSON: {JsonSupport.Brief(e)}", e);
        }
        if (root != JsonTokenType.StartObject)
        {
            throw new ProbeFormatException(file, line, null, $"expected a JSON object, got {JsonSupport.KindOf(root)}");
        }

        string id = NonEmpty(at, f[Id], Names[Id]);
        string suite = NonEmpty(at, f[Suite], Names[Suite]);
        var scenario = String(at, f[ScenarioField], "scenario") switch
        {
            "multiple-choice" => Scenario.MultipleChoice,
            "multi-turn" => Scenario.MultiTurn,
            var s => throw at.Error("scenario", $"expected 'multiple-choice' or 'multi-turn', got '{s}'"),
        };
        string category = NonEmpty(at, f[Category], "category");
        if (!JsonSupport.IsKebabCase(category))
            throw at.Error("category", $"expected kebab-case (lower-case letters and digits joined by '-', e.g. 'gender-identity'), got '{category}'");
        if (!f[UserTurns].Has) throw at.Error("user_turns", "missing");
        if (f[UserTurns].Kind != JsonTokenType.StartArray) throw at.Error("user_turns", $"expected array, got {JsonSupport.KindOf(f[UserTurns].Kind)}");
        if (turns.Error is { } turnsError) throw turnsError;
        if (turns.Count < 1) throw at.Error("user_turns", $"expected at least 1 strings, got {turns.Count}");

        var optionCount = 0;
        if (f[Options].Has)
        {
            if (f[Options].Kind != JsonTokenType.StartArray) throw at.Error("options", $"expected array, got {JsonSupport.KindOf(f[Options].Kind)}");
            if (options.Error is { } optionsError) throw optionsError;
            optionCount = options.Count;
        }
        ContextCondition? condition = OptionalString(at, f[Context], "context") switch
        {
            null => null,
            "ambiguous" => ContextCondition.Ambiguous,
            "disambiguated" => ContextCondition.Disambiguated,
            var s => throw at.Error("context", $"expected 'ambiguous' or 'disambiguated', got '{s}'"),
        };
        QuestionPolarity? polarity = OptionalString(at, f[Polarity], "polarity") switch
        {
            null => null,
            "negative" => QuestionPolarity.Negative,
            "non-negative" => QuestionPolarity.NonNegative,
            var s => throw at.Error("polarity", $"expected 'negative' or 'non-negative', got '{s}'"),
        };
        int? correct = null;
        if (f[Correct].Has)
        {
            if (optionCount == 0) throw at.Error("correct_option", "given but the probe has no options");
            correct = Int(at, json, f[Correct], "correct_option", 0, optionCount - 1);
        }
        if (scenario == Scenario.MultipleChoice && optionCount < 2)
            throw at.Error("options", "a multiple-choice probe needs at least 2 options");

        var metadata = build ? new Dictionary<string, string>(StringComparer.Ordinal) : null;
        if (f[Metadata].Has)
        {
            ReadMetadata(at, json, f[Metadata], metadata);
        }
        if (!build)
        {
            // The other string fields are checked in the order Parse reads them.
            OptionalString(at, f[TaskType], "task_type");
            OptionalString(at, f[ContextText], "context_text");
            OptionalString(at, f[Question], "question");
            return new Probe { Id = id, Suite = suite, Scenario = scenario, Category = category, UserTurns = [], Context = condition };
        }
        return new Probe
        {
            Id = id,
            Suite = suite,
            Scenario = scenario,
            Category = category,
            TaskType = OptionalString(at, f[TaskType], "task_type"),
            UserTurns = turns.Items!,
            Options = options.Items ?? [],
            Context = condition,
            Polarity = polarity,
            CorrectOption = correct,
            ContextText = OptionalString(at, f[ContextText], "context_text"),
            Question = OptionalString(at, f[Question], "question"),
            Metadata = metadata!,
        };
    }

    /// <summary>The line's location, for errors (<see cref="JsonRecord.Error"/>'s messages).</summary>
    private readonly record struct Where(string File, int Line)
    {
        public ProbeFormatException Error(string? field, string problem) => new(File, Line, field, problem);
    }

    /// <summary>Which field of <see cref="Names"/> the current property name is, or -1. Escaped names are compared unescaped.</summary>
    private static int FieldIndex(ref Utf8JsonReader reader)
    {
        if (reader.ValueIsEscaped)
        {
            string name;
            // A name that is not valid UTF-16 is none of ours (a document lookup does not match it either).
            try { name = reader.GetString()!; }
            catch (InvalidOperationException) { return -1; }
            return Array.IndexOf(Names, name);
        }
        var raw = reader.ValueSpan;
        return raw.Length switch
        {
            2 when raw.SequenceEqual("id"u8) => Id,
            5 when raw.SequenceEqual("suite"u8) => Suite,
            8 when raw.SequenceEqual("scenario"u8) => ScenarioField,
            8 when raw.SequenceEqual("category"u8) => Category,
            10 when raw.SequenceEqual("user_turns"u8) => UserTurns,
            7 when raw.SequenceEqual("options"u8) => Options,
            7 when raw.SequenceEqual("context"u8) => Context,
            8 when raw.SequenceEqual("polarity"u8) => Polarity,
            14 when raw.SequenceEqual("correct_option"u8) => Correct,
            12 when raw.SequenceEqual("context_text"u8) => ContextText,
            8 when raw.SequenceEqual("question"u8) => Question,
            8 when raw.SequenceEqual("metadata"u8) => Metadata,
            9 when raw.SequenceEqual("task_type"u8) => TaskType,
            _ => -1,
        };
    }

    private static string String(Where at, in Field f, string name)
    {
        if (!f.Has) throw at.Error(name, "missing");
        if (f.Kind != JsonTokenType.String) throw at.Error(name, $"expected string, got {JsonSupport.KindOf(f.Kind)}");
        if (f.BadEscape) throw at.Error(name, "invalid \\u escape (a lone UTF-16 surrogate)");
        return f.Text!;
    }

    private static string? OptionalString(Where at, in Field f, string name) => f.Has ? String(at, f, name) : null;

    private static string NonEmpty(Where at, in Field f, string name)
    {
        var s = String(at, f, name);
        return s.Length > 0 ? s : throw at.Error(name, "must not be empty");
    }

    /// <summary>An array read in the line's one pass: its items (when built), how many, and its first problem.</summary>
    private struct ArrayRead<T>
    {
        public List<T>? Items;
        public int Count;
        public ProbeFormatException? Error;
    }

    /// <summary>The user turns, the reader on their '['; leaves it on the ']'. The first item that is not a valid string is the error.</summary>
    private static ArrayRead<string> ReadTurns(ref Utf8JsonReader reader, Where at, bool build)
    {
        var read = new ArrayRead<string> { Items = build ? new List<string>(1) : null };
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.String)
            {
                read.Error ??= at.Error("user_turns", $"expected array of strings, found {JsonSupport.KindOf(reader.TokenType)}");
                if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray) reader.Skip();
                continue;
            }
            if (read.Error is not null) continue;
            var text = ValidString(ref reader, build);
            if (text is null) read.Error = at.Error("user_turns", "invalid \\u escape (a lone UTF-16 surrogate)");
            else read.Items?.Add(text);
            read.Count++;
        }
        return read;
    }

    /// <summary>
    /// The current string token's value, or null when its escapes are not valid UTF-16. Without <paramref name="build"/>
    /// the string is only checked and "" stands for it: one with no escape is valid already (its bytes are valid UTF-8,
    /// checked with the line), and one with escapes is unescaped into a scratch buffer, which fails exactly where
    /// <see cref="Utf8JsonReader.GetString"/> does (issue #11: decoding every escaped turn into a string it then dropped
    /// was most of the 1.5 KB the validation pass allocated per line).
    /// </summary>
    private static string? ValidString(ref Utf8JsonReader reader, bool build)
    {
        if (!build && !reader.ValueIsEscaped) return "";
        try
        {
            if (build) return reader.GetString();
            // Unescaping never lengthens a string, so the escaped length is room enough.
            var length = reader.HasValueSequence ? checked((int)reader.ValueSequence.Length) : reader.ValueSpan.Length;
            if (length <= 512)
            {
                Span<byte> small = stackalloc byte[512];
                reader.CopyString(small);
                return "";
            }
            var rented = System.Buffers.ArrayPool<byte>.Shared.Rent(length);
            try { reader.CopyString(rented); }
            finally { System.Buffers.ArrayPool<byte>.Shared.Return(rented); }
            return "";
        }
        catch (InvalidOperationException) { return null; }
    }

    // The values Known matches on their bytes: the format's own names, as the writer spells them.
    private static readonly string[] ScenarioValues = [ScenarioNames.MultipleChoice, ScenarioNames.MultiTurn];
    private static readonly string[] ContextValues = [ProbeJsonl.ConditionName(ContextCondition.Ambiguous), ProbeJsonl.ConditionName(ContextCondition.Disambiguated)];
    private static readonly string[] PolarityValues = [ProbeJsonl.PolarityName(QuestionPolarity.Negative), ProbeJsonl.PolarityName(QuestionPolarity.NonNegative)];
    private static readonly string[] RoleValues = [.. Enum.GetValues<OptionRole>().Select(ProbeJsonl.RoleName)];

    /// <summary>
    /// The current string token's value, which is compared with <paramref name="names"/>: the name itself when its bytes
    /// are one of them (no string made), otherwise as <see cref="ValidString"/> builds it.
    /// </summary>
    private static string? Known(ref Utf8JsonReader reader, string[] names)
    {
        if (!reader.ValueIsEscaped && !reader.HasValueSequence)
        {
            var raw = reader.ValueSpan;
            foreach (var name in names)
            {
                if (raw.Length == name.Length && System.Text.Ascii.Equals(raw, name))
                {
                    return name;
                }
            }
        }
        return ValidString(ref reader, build: true);
    }

    /// <summary>
    /// The current string token's value, shared with the last lines that had the same bytes: a suite's name and its
    /// categories repeat on every line, and each probe would otherwise hold its own copy of them.
    /// </summary>
    private static string? Repeated(ref Utf8JsonReader reader)
    {
        if (reader.ValueIsEscaped || reader.HasValueSequence || reader.ValueSpan.Length > 64)
        {
            return ValidString(ref reader, build: true);
        }
        var raw = reader.ValueSpan;
        var recent = _recent ??= new (byte[]?, string)[32];
        for (var i = 0; i < recent.Length && recent[i].Raw is { } bytes; i++)
        {
            if (raw.SequenceEqual(bytes))
            {
                return recent[i].Text;
            }
        }
        var text = Encoding.UTF8.GetString(raw); // valid: the line's UTF-8 was checked, and it has no escape
        recent[_next] = (raw.ToArray(), text);
        _next = (_next + 1) % recent.Length;
        return text;
    }

    // Repeated's last values, per thread (a suite is read on one thread; two halves of one scan on two).
    [ThreadStatic] private static (byte[]? Raw, string Text)[]? _recent;
    [ThreadStatic] private static int _next;

    /// <summary>
    /// The current string token's value, shared with an earlier line's that had the same bytes when that one is still in
    /// a table of 1,024 values (by a hash of the bytes, each slot holding the last value that fell in it): an option's text
    /// and group recur over a suite (the harness suite's 50,000 probes have 45 option sets; BBQ's names and groups recur over
    /// its 58k items), and each probe would otherwise decode and hold its own copies. What the value is does not depend
    /// on the table, only which string object holds it.
    /// </summary>
    private static string? Recurring(ref Utf8JsonReader reader)
    {
        if (reader.ValueIsEscaped || reader.HasValueSequence || reader.ValueSpan.Length > 128)
        {
            return ValidString(ref reader, build: true);
        }
        var raw = reader.ValueSpan;
        var table = _values ??= new (byte[]?, string?)[1024];
        var hash = new HashCode();
        hash.AddBytes(raw);
        ref var slot = ref table[hash.ToHashCode() & 1023];
        if (slot.Raw is { } bytes && raw.SequenceEqual(bytes))
        {
            return slot.Text;
        }
        var text = Encoding.UTF8.GetString(raw); // valid: the line's UTF-8 was checked, and it has no escape
        slot = (raw.ToArray(), text);
        return text;
    }

    // Recurring's table, per thread like Repeated's.
    [ThreadStatic] private static (byte[]? Raw, string? Text)[]? _values;

    /// <summary>
    /// The options, the reader on their '['; leaves it on the ']'. Each option's fields are checked in the document path's
    /// order (role, text, group) once the option is read; the first problem, in item order, is the error.
    /// </summary>
    private static ArrayRead<ProbeOption> ReadOptions(ref Utf8JsonReader reader, Where at, bool build)
    {
        var read = new ArrayRead<ProbeOption> { Items = build ? new List<ProbeOption>(3) : null };
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            var i = read.Count++;
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                read.Error ??= at.Error(Item(i), $"expected object, got {JsonSupport.KindOf(reader.TokenType)}");
                if (reader.TokenType == JsonTokenType.StartArray) reader.Skip();
                continue;
            }
            // text, role, group: the last of each name counts, as in a document.
            Field text = default, role = default, group = default;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
            {
                int which;
                if (reader.ValueIsEscaped)
                {
                    string? name = null;
                    try { name = reader.GetString(); }
                    catch (InvalidOperationException) { }
                    which = name switch { "text" => 0, "role" => 1, "group" => 2, _ => -1 };
                }
                else
                {
                    var raw = reader.ValueSpan;
                    which = raw.SequenceEqual("text"u8) ? 0 : raw.SequenceEqual("role"u8) ? 1 : raw.SequenceEqual("group"u8) ? 2 : -1;
                }
                reader.Read();
                var value = new Field { Present = true, Kind = reader.TokenType };
                if (reader.TokenType == JsonTokenType.String && which >= 0)
                {
                    // The role is compared with its names; a text or group is only checked when the probe is not built.
                    value.Text = which == 1 ? Known(ref reader, RoleValues) : build ? Recurring(ref reader) : ValidString(ref reader, build: false);
                    value.BadEscape = value.Text is null;
                }
                else if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                {
                    reader.Skip();
                }
                switch (which)
                {
                    case 0: text = value; break;
                    case 1: role = value; break;
                    case 2: group = value; break;
                }
            }
            if (read.Error is not null) continue;
            // Field names are made only for a message: they would be three strings per option.
            OptionRole? r = Valid(role) ? role.Text switch
            {
                "stereotyped" => OptionRole.Stereotyped,
                "anti-stereotyped" => OptionRole.AntiStereotyped,
                "unknown" => OptionRole.Unknown,
                _ => null,
            } : null;
            if (r is null)
            {
                read.Error = Valid(role)
                    ? at.Error(Item(i) + ".role", $"expected 'stereotyped', 'anti-stereotyped' or 'unknown', got '{role.Text}'")
                    : Problem(at, role, Item(i) + ".role");
            }
            else if (!Valid(text))
            {
                read.Error = Problem(at, text, Item(i) + ".text");
            }
            else if (!Valid(group))
            {
                read.Error = Problem(at, group, Item(i) + ".group");
            }
            else
            {
                read.Items?.Add(new ProbeOption(text.Text!, r.Value, group.Text!));
            }
        }
        return read;

        static string Item(int i) => "options[" + i.ToString(CultureInfo.InvariantCulture) + "]";
    }

    /// <summary>What <see cref="String"/> says of <paramref name="f"/>: true when it is a valid string.</summary>
    private static bool Valid(in Field f) => f.Has && f.Kind == JsonTokenType.String && !f.BadEscape;

    /// <summary><see cref="String"/>'s error for a field that is not a valid string.</summary>
    private static ProbeFormatException Problem(Where at, in Field f, string name)
    {
        try
        {
            String(at, f, name);
        }
        catch (ProbeFormatException e)
        {
            return e;
        }
        throw new InvalidOperationException($"field '{name}' is valid.");
    }

    private static int Int(Where at, ReadOnlySpan<byte> json, in Field f, string name, int min, int max)
    {
        var raw = json[f.Start..f.End];
        var reader = new Utf8JsonReader(raw, ReaderOptions);
        reader.Read();
        if (f.Kind != JsonTokenType.Number || !reader.TryGetInt32(out var i) || i < min || i > max)
        {
            var shown = Encoding.UTF8.GetString(raw);
            throw at.Error(name, $"expected integer {min}..{max}, got {(shown.Length > 40 ? shown[..40] + "…" : shown)}");
        }
        return i;
    }

    /// <summary>Checks the metadata and adds it to <paramref name="metadata"/> (null: checked only).</summary>
    private static void ReadMetadata(Where at, ReadOnlySpan<byte> json, in Field f, Dictionary<string, string>? metadata)
    {
        if (f.Kind != JsonTokenType.StartObject) throw at.Error("metadata", $"expected object, got {JsonSupport.KindOf(f.Kind)}");
        // Every name is checked before any value, as the document path listed the fields before reading them.
        var reader = new Utf8JsonReader(json[f.Start..f.End], ReaderOptions);
        reader.Read();
        var values = new List<(string Name, Field Value)>();
        var badName = false;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            var name = ValidString(ref reader, build: true); // errors name the field, checked or built
            badName |= name is null;
            reader.Read();
            var value = new Field { Present = true, Kind = reader.TokenType };
            if (reader.TokenType == JsonTokenType.String)
            {
                value.Text = ValidString(ref reader, metadata is not null);
                value.BadEscape = value.Text is null;
            }
            else if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
            {
                reader.Skip();
            }
            values.Add((name ?? "", value));
        }
        if (badName) throw at.Error("metadata", "a field name has an invalid \\u escape (a lone UTF-16 surrogate)");
        foreach (var (name, value) in values)
        {
            var field = "metadata." + name;
            if (value.Kind != JsonTokenType.String) throw at.Error(field, $"expected string, got {JsonSupport.KindOf(value.Kind)}");
            if (value.BadEscape) throw at.Error(field, "invalid \\u escape (a lone UTF-16 surrogate)");
            if (metadata is not null) metadata[name] = value.Text!;
        }
    }
}
