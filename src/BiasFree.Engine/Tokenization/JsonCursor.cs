using System.Text.Json;

namespace BiasFree.Engine.Tokenization;

/// <summary>A JSON element together with its file and JSON path, for precise error messages.</summary>
internal readonly record struct JsonCursor(JsonElement Element, string File, string Path)
{
    public JsonValueKind Kind => Element.ValueKind;

    public bool IsNull => Element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined;

    public TokenizerFormatException Error(string problem) => new(File, Path, problem);

    public JsonCursor? Optional(string name)
    {
        if (Element.ValueKind != JsonValueKind.Object) throw Error($"expected an object, found {Element.ValueKind}");
        return Element.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null
            ? new JsonCursor(v, File, $"{Path}.{name}")
            : null;
    }

    public JsonCursor Required(string name)
    {
        if (Element.ValueKind != JsonValueKind.Object) throw Error($"expected an object, found {Element.ValueKind}");
        return Element.TryGetProperty(name, out var v) ? new JsonCursor(v, File, $"{Path}.{name}") : throw Error($"missing required property \"{name}\"");
    }

    public string GetString() => Element.ValueKind == JsonValueKind.String ? Element.GetString()! : throw Error($"expected a string, found {Element.ValueKind}");

    public int GetInt32()
    {
        if (Element.ValueKind == JsonValueKind.Number && Element.TryGetInt32(out int v)) return v;
        throw Error($"expected an integer, found {Element.ValueKind} {Element.GetRawText()}");
    }

    public bool GetBoolean() => Element.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw Error($"expected true or false, found {Element.ValueKind}"),
    };

    public string? OptionalString(string name) => Optional(name)?.GetString();

    public bool OptionalBool(string name, bool fallback) => Optional(name)?.GetBoolean() ?? fallback;

    public IEnumerable<JsonCursor> Items()
    {
        if (Element.ValueKind != JsonValueKind.Array) throw Error($"expected an array, found {Element.ValueKind}");
        int i = 0;
        foreach (var item in Element.EnumerateArray())
        {
            yield return new JsonCursor(item, File, $"{Path}[{i++}]");
        }
    }

    public IEnumerable<(string Name, JsonCursor Value)> Properties()
    {
        if (Element.ValueKind != JsonValueKind.Object) throw Error($"expected an object, found {Element.ValueKind}");
        foreach (var p in Element.EnumerateObject())
        {
            yield return (p.Name, new JsonCursor(p.Value, File, $"{Path}[{JsonSerializer.Serialize(p.Name, EngineJson.Default.String)}]"));
        }
    }

    public static (JsonDocument Doc, JsonCursor Root) Open(string file)
    {
        if (!System.IO.File.Exists(file)) throw new FileNotFoundException($"{file}: file not found", file);
        try
        {
            var doc = JsonDocument.Parse(System.IO.File.ReadAllBytes(file), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip, MaxDepth = 256 });
            return (doc, new JsonCursor(doc.RootElement, file, "$"));
        }
        catch (JsonException ex)
        {
            throw new TokenizerFormatException(file, $"line {ex.LineNumber + 1}", $"not valid JSON: {ex.Message}", ex);
        }
    }
}
