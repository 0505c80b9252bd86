using System.Globalization;
using System.Text;
using System.Text.Json;

namespace BiasFree.Probes.Loaders;

/// <summary>
/// A JSON object read from a suite file, remembering where it came from so every problem is reported as
/// <c>file:line: field 'x': problem</c>. <see cref="Prefix"/> makes nested field names dotted.
/// </summary>
internal readonly record struct JsonRecord(string File, int Line, JsonElement Element, string Prefix = "")
{
    public string FieldName(string name) => Prefix.Length == 0 ? name : $"{Prefix}.{name}";

    public ProbeFormatException Error(string? field, string problem) =>
        new(File, Line, field is null ? (Prefix.Length == 0 ? null : Prefix) : FieldName(field), problem);

    public bool Has(string name) => Element.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

    public JsonElement Get(string name) =>
        Element.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : throw Error(name, "missing");

    public string String(string name)
    {
        var v = Get(name);
        return v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Error(name, $"expected string, got {Kind(v)}");
    }

    public string? OptionalString(string name) => Has(name) ? String(name) : null;

    /// <summary>A string, or a number written as a string (BBQ's question_index is "1" but some copies use 1).</summary>
    public string StringOrNumber(string name)
    {
        var v = Get(name);
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString()!,
            JsonValueKind.Number => v.GetRawText(),
            _ => throw Error(name, $"expected string or number, got {Kind(v)}"),
        };
    }

    public int Int(string name, int min = int.MinValue, int max = int.MaxValue)
    {
        var v = Get(name);
        string range = min == int.MinValue && max == int.MaxValue ? "integer" : max == int.MaxValue
            ? $"integer >= {min}" : $"integer {min}..{max}";
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var i) || i < min || i > max)
            throw Error(name, $"expected {range}, got {Show(v)}");
        return i;
    }

    public int? OptionalInt(string name, int min = int.MinValue, int max = int.MaxValue) =>
        Has(name) ? Int(name, min, max) : null;

    public JsonRecord Object(string name)
    {
        var v = Get(name);
        return v.ValueKind == JsonValueKind.Object
            ? new JsonRecord(File, Line, v, FieldName(name))
            : throw Error(name, $"expected object, got {Kind(v)}");
    }

    public JsonElement Array(string name)
    {
        var v = Get(name);
        return v.ValueKind == JsonValueKind.Array ? v : throw Error(name, $"expected array, got {Kind(v)}");
    }

    public List<string> StringArray(string name, int minCount = 0)
    {
        var v = Array(name);
        var list = new List<string>();
        foreach (var item in v.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String) throw Error(name, $"expected array of strings, found {Kind(item)}");
            list.Add(item.GetString()!);
        }
        if (list.Count < minCount) throw Error(name, $"expected at least {minCount} strings, got {list.Count}");
        return list;
    }

    public static string Kind(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };

    private static string Show(JsonElement v)
    {
        var raw = v.GetRawText();
        return raw.Length > 40 ? raw[..40] + "…" : raw;
    }
}

internal static class JsonSupport
{
    private static readonly System.Buffers.SearchValues<byte> Blank = System.Buffers.SearchValues.Create(" \n\r\t"u8);

    public static readonly JsonDocumentOptions DocumentOptions = new() { AllowTrailingCommas = false, MaxDepth = 64 };

    /// <summary>Reads a file as UTF-8 bytes without BOM; an empty or whitespace-only file is an error.</summary>
    public static byte[] ReadNonEmpty(string file)
    {
        if (!System.IO.File.Exists(file)) throw new FileNotFoundException($"suite file not found: {file}", file);
        var bytes = System.IO.File.ReadAllBytes(file);
        int start = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
        if (bytes.AsSpan(start).IndexOfAnyExcept(Blank) < 0)
            throw new ProbeFormatException(file, 0, null, "file is empty");
        return start == 0 ? bytes : bytes[start..];
    }

    /// <summary>
    /// Non-blank lines of a JSONL file, each parsed as a JSON object, with 1-based line numbers.
    /// Bad JSON or a non-object line throws with that line's number.
    /// </summary>
    public static List<(JsonRecord Record, JsonDocument Doc)> ReadJsonl(string file)
    {
        var bytes = ReadNonEmpty(file);
        var text = Encoding.UTF8.GetString(bytes);
        var result = new List<(JsonRecord, JsonDocument)>();
        int lineNo = 0;
        foreach (var rawLine in text.Split('\n'))
        {
            lineNo++;
            var line = rawLine.TrimEnd('\r');
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonDocument doc;
            try { doc = JsonDocument.Parse(line, DocumentOptions); }
            catch (JsonException e) { throw new ProbeFormatException(file, lineNo, null, $"invalid JSON: {Brief(e)}", e); }
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ProbeFormatException(file, lineNo, null, $"expected a JSON object, got {JsonRecord.Kind(doc.RootElement)}");
            result.Add((new JsonRecord(file, lineNo, doc.RootElement), doc));
        }
        return result;
    }

    /// <summary>Parses a whole JSON file; syntax errors report the 1-based line of the error.</summary>
    public static JsonDocument ParseFile(string file, byte[] bytes)
    {
        try { return JsonDocument.Parse(bytes, DocumentOptions); }
        catch (JsonException e)
        {
            int line = e.LineNumber is long l ? (int)l + 1 : 0;
            throw new ProbeFormatException(file, line, null, $"invalid JSON: {Brief(e)}", e);
        }
    }

    /// <summary>
    /// 1-based start lines of every JSON object token at <paramref name="depth"/> (root = 0), in document order,
    /// each with the nearest enclosing property name one level up (e.g. "intersentence" for StereoSet items).
    /// </summary>
    public static List<(int Line, string? Parent)> ObjectStartLines(byte[] bytes, int depth)
    {
        var result = new List<(int, string?)>();
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip });
        var propertyAtDepth = new string?[depth + 2];
        int line = 1;
        long counted = 0;
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.PropertyName && reader.CurrentDepth < propertyAtDepth.Length)
                propertyAtDepth[reader.CurrentDepth] = reader.GetString();
            if (reader.TokenType == JsonTokenType.StartObject && reader.CurrentDepth == depth)
            {
                long pos = reader.TokenStartIndex;
                line += bytes.AsSpan((int)counted, (int)(pos - counted)).Count((byte)'\n');
                counted = pos;
                result.Add((line, depth >= 2 ? propertyAtDepth[depth - 1] : null));
            }
        }
        return result;
    }

    public static string Brief(JsonException e)
    {
        var m = e.Message;
        int cut = m.IndexOf(" Path:", StringComparison.Ordinal);
        return cut > 0 ? m[..cut] : m;
    }

    public static string Invariant(int i) => i.ToString(CultureInfo.InvariantCulture);
}
