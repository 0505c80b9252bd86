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
        return v.ValueKind == JsonValueKind.String ? Text(v, name) : throw Error(name, $"expected string, got {Kind(v)}");
    }

    /// <summary>
    /// A string element's value. An escape that is not valid UTF-16 (a lone surrogate such as "\ud800") is an
    /// error here, like invalid UTF-8 bytes: it cannot be read without replacing characters.
    /// </summary>
    public string Text(JsonElement v, string field)
    {
        try { return v.GetString()!; }
        catch (InvalidOperationException) { throw Error(field, "invalid \\u escape (a lone UTF-16 surrogate)"); }
    }

    /// <summary>The object's fields. A field name that is not valid UTF-16 (a lone surrogate escape) is an error.</summary>
    public IEnumerable<(string Name, JsonElement Value)> Properties()
    {
        var list = new List<(string, JsonElement)>();
        foreach (var prop in Element.EnumerateObject())
        {
            string name;
            try { name = prop.Name; }
            catch (InvalidOperationException) { throw Error(null, "a field name has an invalid \\u escape (a lone UTF-16 surrogate)"); }
            list.Add((name, prop.Value));
        }
        return list;
    }

    public string? OptionalString(string name) => Has(name) ? String(name) : null;

    /// <summary>A string, or a number written as a string (BBQ's question_index is "1" but some copies use 1).</summary>
    public string StringOrNumber(string name)
    {
        var v = Get(name);
        return v.ValueKind switch
        {
            JsonValueKind.String => Text(v, name),
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
            list.Add(Text(item, name));
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

    // The ASCII characters string.IsNullOrWhiteSpace counts (tab, line feed, vertical tab, form feed, carriage return, space).
    private static readonly System.Buffers.SearchValues<byte> AsciiWhiteSpace = System.Buffers.SearchValues.Create("\t\n\v\f\r "u8);

    public static readonly JsonDocumentOptions DocumentOptions = new() { AllowTrailingCommas = false, MaxDepth = 64 };

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Reads a suite file's bytes. Every way the read can fail is a <see cref="ProbeFormatException"/> naming the
    /// file (a directory, a symbolic-link loop, an unreadable file) or a <see cref="FileNotFoundException"/>, so
    /// callers never see an I/O exception's own type.
    /// </summary>
    public static byte[] ReadBytes(string file) => Guarded(file, () => System.IO.File.ReadAllBytes(file));

    /// <summary>Opens a suite file for reading, with the errors of <see cref="ReadBytes"/>.</summary>
    public static FileStream OpenRead(string file) =>
        Guarded(file, () => new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan));

    private static T Guarded<T>(string file, Func<T> read)
    {
        if (Directory.Exists(file))
            throw new ProbeFormatException(file, 0, null, "is a directory; this suite format reads one file");
        if (!System.IO.File.Exists(file) && !IsLink(file))
            throw new FileNotFoundException($"suite file not found: {file}", file);
        try
        {
            return read();
        }
        catch (FileNotFoundException)
        {
            throw new FileNotFoundException($"suite file not found: {file}", file);
        }
        catch (IOException) when (IsLinkLoop(file))
        {
            throw new ProbeFormatException(file, 0, null, "symbolic link loop (the link never reaches a file)");
        }
        catch (IOException e)
        {
            throw new ProbeFormatException(file, 0, null, $"cannot read the file: {e.Message}");
        }
        catch (UnauthorizedAccessException)
        {
            throw new ProbeFormatException(file, 0, null, "cannot read the file: permission denied");
        }
    }

    private static bool IsLink(string path)
    {
        try { return new FileInfo(path).LinkTarget is not null; }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <summary>True when following <paramref name="path"/>'s symbolic links never ends (a → b → a).</summary>
    internal static bool IsLinkLoop(string path)
    {
        try
        {
            var info = new FileInfo(path);
            if (info.LinkTarget is null) return false;
            info.ResolveLinkTarget(returnFinalTarget: true);
            return false;
        }
        catch (IOException) { return true; }
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <summary>
    /// Reads a file as UTF-8 bytes without BOM; an empty or whitespace-only file is an error, and so is any byte
    /// sequence that is not valid UTF-8 (reported at its line: nothing is silently replaced by U+FFFD).
    /// </summary>
    public static byte[] ReadNonEmpty(string file)
    {
        var bytes = ReadBytes(file);
        int start = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
        if (bytes.AsSpan(start).IndexOfAnyExcept(Blank) < 0)
            throw new ProbeFormatException(file, 0, null, "file is empty");
        var body = start == 0 ? bytes : bytes[start..];
        CheckUtf8(file, body);
        return body;
    }

    /// <summary>Decodes bytes already checked by <see cref="ReadNonEmpty"/>.</summary>
    public static string Decode(byte[] utf8) => StrictUtf8.GetString(utf8);

    private static void CheckUtf8(string file, byte[] bytes)
    {
        if (System.Text.Unicode.Utf8.IsValid(bytes)) return;
        int at = 0;
        while (at < bytes.Length)
        {
            var status = Rune.DecodeFromUtf8(bytes.AsSpan(at), out _, out int consumed);
            if (status != System.Buffers.OperationStatus.Done) break;
            at += consumed;
        }
        int line = 1 + bytes.AsSpan(0, at).Count((byte)'\n');
        int lineStart = bytes.AsSpan(0, at).LastIndexOf((byte)'\n') + 1;
        throw new ProbeFormatException(file, line, null,
            $"invalid UTF-8 (byte 0x{bytes[Math.Min(at, bytes.Length - 1)]:X2} at column {at - lineStart + 1}); save the file as UTF-8");
    }

    /// <summary>
    /// Non-blank lines of a JSONL file, each parsed as a JSON object, with 1-based line numbers.
    /// Bad JSON or a non-object line throws with that line's number.
    /// </summary>
    public static List<(JsonRecord Record, JsonDocument Doc)> ReadJsonl(string file) => ReadJsonl(file, ReadNonEmpty(file));

    /// <summary>As <see cref="ReadJsonl(string)"/>, for bytes already read with <see cref="ReadNonEmpty"/>.</summary>
    public static List<(JsonRecord Record, JsonDocument Doc)> ReadJsonl(string file, byte[] bytes)
    {
        var text = Decode(bytes);
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

    /// <summary>
    /// As <see cref="ReadJsonl(string)"/>, streamed: the file is read one line at a time and each record is parsed when the
    /// enumeration reaches it, so a suite of any size is never in memory at once (dispose each document once used). The
    /// checks and their messages are those of <see cref="ReadNonEmpty"/> and <see cref="ReadJsonl(string, byte[])"/>, per
    /// line: a BOM is skipped, invalid UTF-8 and bad JSON throw with their line, an all-blank file is empty. A file with
    /// several problems reports the first line that has one.
    /// </summary>
    public static IEnumerable<(JsonRecord Record, JsonDocument Doc)> StreamJsonl(string file)
    {
        foreach (var (record, doc, _, _) in StreamJsonlAt(file))
        {
            yield return (record, doc);
        }
    }

    /// <summary>
    /// <see cref="StreamJsonl"/> with each record's place in the file (<see cref="JsonlLinesAt"/>: the byte offset its JSON
    /// starts at and its length), so that it can be read again on its own (<see cref="ReadJsonlAt"/>, then
    /// <see cref="ParseJsonlRecord"/>).
    /// </summary>
    internal static IEnumerable<(JsonRecord Record, JsonDocument Doc, long Offset, int Length)> StreamJsonlAt(string file)
    {
        // A document keeps the memory it is parsed from, so each line gets bytes of its own here.
        foreach (var (lineNo, offset, json) in JsonlLinesAt(file, reuseBuffer: false))
        {
            var (record, doc) = ParseJsonlRecord(file, lineNo, json);
            yield return (record, doc, offset, json.Length);
        }
    }

    /// <summary>
    /// One JSONL line's JSON parsed as an object, with <see cref="StreamJsonl"/>'s errors (bad JSON, not an object) at
    /// <paramref name="lineNo"/>. The document keeps <paramref name="json"/>: it must not be reused while the record is.
    /// </summary>
    internal static (JsonRecord Record, JsonDocument Doc) ParseJsonlRecord(string file, int lineNo, ReadOnlyMemory<byte> json)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json, DocumentOptions); }
        catch (JsonException e) { throw new ProbeFormatException(file, lineNo, null, $"invalid JSON: {Brief(e)}", e); }
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            var kind = JsonRecord.Kind(doc.RootElement);
            doc.Dispose();
            throw new ProbeFormatException(file, lineNo, null, $"expected a JSON object, got {kind}");
        }
        return (new JsonRecord(file, lineNo, doc.RootElement), doc);
    }

    /// <summary>
    /// The non-blank lines of a JSONL file as the JSON bytes to parse, with 1-based line numbers: the line checks of
    /// <see cref="StreamJsonl"/> (BOM, invalid UTF-8 at its line, an all-blank file is empty), before any parsing.
    /// </summary>
    /// <param name="file">The file.</param>
    /// <param name="reuseBuffer">
    /// True: each line's bytes are valid only until the enumeration moves on (one buffer is reused, so reading a suite
    /// allocates nothing per line); false: each line has an array of its own.
    /// </param>
    internal static IEnumerable<(int Line, ReadOnlyMemory<byte> Json)> JsonlLines(string file, bool reuseBuffer)
    {
        foreach (var (line, _, json) in JsonlLinesAt(file, reuseBuffer))
        {
            yield return (line, json);
        }
    }

    /// <summary>
    /// <see cref="JsonlLines"/> with each line's place in the file: the byte offset its JSON starts at (its length is the
    /// JSON's), so that a record can be read again on its own (<see cref="ReadJsonlAt"/>).
    /// </summary>
    internal static IEnumerable<(int Line, long Offset, ReadOnlyMemory<byte> Json)> JsonlLinesAt(string file, bool reuseBuffer)
    {
        using var stream = OpenRead(file);
        int lineNo = 0;
        long next = 0;
        var blank = true;
        foreach (var line in Lines(stream, file, reuseBuffer))
        {
            lineNo++;
            var offset = next;
            next += line.Length + 1; // the '\n' that ended it (past the last line this is never read)
            var bom = lineNo == 1 && line.Span.StartsWith("\uFEFF"u8);
            var body = bom ? line[3..] : line;
            offset += bom ? 3 : 0;
            if (!System.Text.Unicode.Utf8.IsValid(body.Span))
            {
                int at = 0;
                while (at < body.Length)
                {
                    var status = Rune.DecodeFromUtf8(body.Span[at..], out _, out int consumed);
                    if (status != System.Buffers.OperationStatus.Done) break;
                    at += consumed;
                }
                throw new ProbeFormatException(file, lineNo, null,
                    $"invalid UTF-8 (byte 0x{body.Span[Math.Min(at, body.Length - 1)]:X2} at column {at + 1}); save the file as UTF-8");
            }
            // A line whose first non-blank byte is ASCII is not blank: its bytes are parsed as they are (what parsing the
            // decoded string did, through a decode and a re-encode that cost a fifth of loading a suite). A line that
            // starts with a non-ASCII byte is decoded first, which skips lines of Unicode whitespace as the string path
            // did; otherwise the bytes of that string are the line's own, less its trailing '\r's. Nearly every line
            // starts with its '{', which is answer enough: the searches below cost about a tenth of a cold validation
            // pass when made for each line (run at first by unoptimised code, being generic).
            var lead = body.Length > 0 ? body.Span[0] : (byte)' ';
            var first = lead is > (byte)' ' and < 0x80 ? 0 : body.Span.IndexOfAnyExcept(AsciiWhiteSpace);
            blank = blank && first != 0 && body.Span.IndexOfAnyExcept(Blank) < 0;
            if (first < 0) continue;
            if (body.Span[first] >= 0x80 && string.IsNullOrWhiteSpace(StrictUtf8.GetString(body.Span).TrimEnd('\r'))) continue;
            var end = body.Length;
            while (body.Span[end - 1] == (byte)'\r') end--;
            yield return (lineNo, offset, body[..end]);
        }
        if (blank)
            throw new ProbeFormatException(file, 0, null, "file is empty");
    }

    /// <summary>The file's lines as bytes, split at '\n' (a '\r' before it stays, as in <see cref="ReadJsonl(string, byte[])"/>).</summary>
    private static IEnumerable<ReadOnlyMemory<byte>> Lines(Stream stream, string file, bool reuseBuffer)
    {
        var chunk = new byte[64 * 1024];
        // The start of a line that runs past the chunk it began in, until its '\n' is found.
        var pending = new byte[reuseBuffer ? 4096 : 0];
        int pendingLength = 0;
        while (true)
        {
            int read;
            try { read = stream.Read(chunk, 0, chunk.Length); }
            catch (IOException e) { throw new ProbeFormatException(file, 0, null, $"cannot read the file: {e.Message}"); }
            if (read == 0) break;
            int start = 0;
            while (start < read)
            {
                int nl = chunk.AsSpan(start, read - start).IndexOf((byte)'\n');
                if (nl < 0)
                {
                    Append(ref pending, ref pendingLength, chunk.AsSpan(start, read - start));
                    break;
                }
                if (pendingLength == 0 && reuseBuffer)
                {
                    yield return chunk.AsMemory(start, nl);
                }
                else
                {
                    yield return Join(ref pending, ref pendingLength, chunk.AsSpan(start, nl), reuseBuffer);
                }
                start += nl + 1;
            }
        }
        // The text after the last '\n' is a line too (empty when the file ends with one, as string.Split gives).
        yield return Join(ref pending, ref pendingLength, [], reuseBuffer);

        static void Append(ref byte[] buffer, ref int length, ReadOnlySpan<byte> part)
        {
            if (length + part.Length > buffer.Length)
            {
                Array.Resize(ref buffer, Math.Max(buffer.Length * 2, length + part.Length));
            }
            part.CopyTo(buffer.AsSpan(length));
            length += part.Length;
        }

        static ReadOnlyMemory<byte> Join(ref byte[] pending, ref int length, ReadOnlySpan<byte> tail, bool reuse)
        {
            ReadOnlyMemory<byte> line;
            if (reuse)
            {
                Append(ref pending, ref length, tail);
                line = pending.AsMemory(0, length);
            }
            else
            {
                var own = new byte[length + tail.Length];
                pending.AsSpan(0, length).CopyTo(own);
                tail.CopyTo(own.AsSpan(length));
                line = own;
            }
            length = 0;
            return line;
        }
    }

    /// <summary>
    /// The bytes of one record of a JSONL file that <see cref="JsonlLinesAt"/> placed at <paramref name="offset"/> with
    /// <paramref name="length"/> bytes, read into <paramref name="buffer"/> (grown when too small). The file must not have
    /// changed since (the caller checks).
    /// </summary>
    internal static ReadOnlySpan<byte> ReadJsonlAt(Microsoft.Win32.SafeHandles.SafeFileHandle file, string path, long offset, int length, ref byte[] buffer)
    {
        if (buffer.Length < length)
        {
            buffer = new byte[Math.Max(length, buffer.Length * 2)];
        }
        var span = buffer.AsSpan(0, length);
        var read = 0;
        while (read < length)
        {
            int n;
            try { n = RandomAccess.Read(file, span[read..], offset + read); }
            catch (IOException e) { throw new ProbeFormatException(path, 0, null, $"cannot read the file: {e.Message}"); }
            if (n == 0) throw new ProbeFormatException(path, 0, null, "the file is shorter than when it was read (was it changed?)");
            read += n;
        }
        return span;
    }

    /// <summary>True when the file's first non-blank byte is '[' (read from its start only, not the whole file).</summary>
    public static bool StartsWithJsonArray(string file)
    {
        using var stream = OpenRead(file);
        var buffer = new byte[4096];
        int read;
        while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            var span = buffer.AsSpan(0, read);
            if (span.StartsWith("\uFEFF"u8)) span = span[3..];
            int i = span.IndexOfAnyExcept(Blank);
            if (i >= 0) return span[i] == (byte)'[';
        }
        return false;
    }

    /// <summary>True when the first non-blank byte is '[': the file is one JSON array rather than JSON lines.</summary>
    public static bool IsJsonArray(byte[] bytes)
    {
        int i = bytes.AsSpan().IndexOfAnyExcept(Blank);
        return i >= 0 && bytes[i] == (byte)'[';
    }

    /// <summary>
    /// The objects of a file holding one JSON array of objects (BiasFreeBench's <c>ambigdata/*.json</c>), each with
    /// the 1-based line its '{' is on. A non-object element throws with its line.
    /// </summary>
    public static List<JsonRecord> ReadArrayOfObjects(string file, byte[] bytes, JsonDocument doc, string what)
    {
        if (doc.RootElement.ValueKind != JsonValueKind.Array)
            throw new ProbeFormatException(file, 1, null, $"expected a JSON array of {what}, got {JsonRecord.Kind(doc.RootElement)}");
        var lines = ObjectStartLines(bytes, 1);
        var records = new List<JsonRecord>();
        int index = 0, objectNo = 0;
        foreach (var item in doc.RootElement.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Object)
                throw new ProbeFormatException(file, LineOfArrayElement(bytes, index), null, $"item {index}: expected a JSON object, got {JsonRecord.Kind(item)}");
            int line = lines[objectNo].Line;
            // Files written on one line (BiasFreeBench's ambigdata) give every item line 1; there the item's index
            // becomes part of the field name ("[17].label") so a message still points at one item.
            bool shared = (objectNo > 0 && lines[objectNo - 1].Line == line) || (objectNo + 1 < lines.Count && lines[objectNo + 1].Line == line);
            records.Add(new JsonRecord(file, line, item, shared ? $"[{index.ToString(CultureInfo.InvariantCulture)}]" : ""));
            objectNo++;
            index++;
        }
        return records;
    }

    private static readonly JsonReaderOptions ReaderOptions = new()
    {
        AllowTrailingCommas = DocumentOptions.AllowTrailingCommas,
        CommentHandling = DocumentOptions.CommentHandling,
        MaxDepth = DocumentOptions.MaxDepth,
    };

    /// <summary>
    /// As <see cref="ReadArrayOfObjects"/>, one object at a time: each item is parsed into its own small document when the
    /// enumeration reaches it (dispose each once used), so neither a document of the whole file nor every item is held.
    /// </summary>
    /// <remarks>
    /// The file's bytes (checked by <see cref="ReadNonEmpty"/>) are held while it is read: a JSON array has no record
    /// boundaries a line reader could find, and the positions in the error messages are counted in them. Before the first
    /// item is returned one pass of a <see cref="Utf8JsonReader"/> (no document) checks the syntax, that the root is an
    /// array and that every item is an object, so a malformed file fails with the same message and line as when it was
    /// parsed whole, before any item is used. Items share <see cref="ReadArrayOfObjects"/>'s line rule: an item on a line
    /// it shares with its neighbour gets its index as field prefix ("[17].label").
    /// </remarks>
    public static IEnumerable<(JsonRecord Record, JsonDocument Doc)> StreamArrayOfObjects(string file, byte[] bytes, string what)
    {
        CheckArrayOfObjects(file, bytes, what);
        return Items(file, bytes);

        static IEnumerable<(JsonRecord, JsonDocument)> Items(string file, byte[] bytes)
        {
            var cursor = new ArrayCursor(bytes);
            // One item of look-ahead: whether an item shares its line depends on the next item's line too.
            JsonDocument? current = null;
            int currentLine = 0, previousLine = 0, index = 0;
            try
            {
                while (true)
                {
                    var (next, nextLine) = cursor.Next();
                    if (current is not null)
                    {
                        bool shared = (index > 0 && previousLine == currentLine) || (next is not null && nextLine == currentLine);
                        var doc = current;
                        current = null;
                        yield return (new JsonRecord(file, currentLine, doc.RootElement, shared ? $"[{index.ToString(CultureInfo.InvariantCulture)}]" : ""), doc);
                        previousLine = currentLine;
                        index++;
                    }
                    if (next is null) break;
                    current = next;
                    currentLine = nextLine;
                }
            }
            finally
            {
                current?.Dispose();
            }
        }
    }

    /// <summary>
    /// Walks the items of a checked root array. A <see cref="Utf8JsonReader"/> cannot live across an iterator's yields,
    /// so each step rebuilds one from where the last stopped (bytes consumed and the reader's state).
    /// </summary>
    private sealed class ArrayCursor
    {
        private readonly byte[] _bytes;
        private long _consumed;
        private JsonReaderState _state;
        private int _line = 1;
        private long _counted;

        public ArrayCursor(byte[] bytes)
        {
            _bytes = bytes;
            var reader = new Utf8JsonReader(bytes, ReaderOptions);
            reader.Read(); // the root '[' (checked)
            _consumed = reader.BytesConsumed;
            _state = reader.CurrentState;
        }

        /// <summary>The next item as its own document with its 1-based line; null at the closing ']'.</summary>
        public (JsonDocument? Doc, int Line) Next()
        {
            var reader = new Utf8JsonReader(_bytes.AsSpan((int)_consumed), isFinalBlock: true, _state);
            if (!reader.Read() || reader.TokenType == JsonTokenType.EndArray)
            {
                return (null, 0);
            }
            long start = _consumed + reader.TokenStartIndex;
            _line += _bytes.AsSpan((int)_counted, (int)(start - _counted)).Count((byte)'\n');
            _counted = start;
            var doc = JsonDocument.ParseValue(ref reader);
            _consumed += reader.BytesConsumed;
            _state = reader.CurrentState;
            return (doc, _line);
        }
    }

    /// <summary>
    /// The checks <see cref="ParseFile"/> and <see cref="ReadArrayOfObjects"/> made, in their order, without a document:
    /// the syntax of the whole file, then a root that is an array, then items that are objects.
    /// </summary>
    private static void CheckArrayOfObjects(string file, byte[] bytes, string what)
    {
        var reader = new Utf8JsonReader(bytes, ReaderOptions);
        var root = JsonTokenType.None;
        int index = 0, firstBad = -1;
        var badKind = "";
        try
        {
            while (reader.Read())
            {
                if (root == JsonTokenType.None)
                {
                    root = reader.TokenType;
                    continue;
                }
                if (root != JsonTokenType.StartArray || reader.CurrentDepth != 1 || reader.TokenType is JsonTokenType.EndObject or JsonTokenType.EndArray)
                {
                    continue;
                }
                if (reader.TokenType != JsonTokenType.StartObject && firstBad < 0)
                {
                    firstBad = index;
                    badKind = KindOf(reader.TokenType);
                }
                index++;
            }
        }
        catch (JsonException e)
        {
            int line = e.LineNumber is long l ? (int)l + 1 : 0;
            throw new ProbeFormatException(file, line, null, $"invalid JSON: {Brief(e)}", e);
        }
        if (root != JsonTokenType.StartArray)
            throw new ProbeFormatException(file, 1, null, $"expected a JSON array of {what}, got {KindOf(root)}");
        if (firstBad >= 0)
            throw new ProbeFormatException(file, LineOfArrayElement(bytes, firstBad), null, $"item {firstBad}: expected a JSON object, got {badKind}");
    }

    /// <summary>The name of the JSON value a token starts (<see cref="JsonRecord.Kind"/>'s names), for error messages.</summary>
    internal static string KindOf(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "object",
        JsonTokenType.StartArray => "array",
        JsonTokenType.String => "string",
        JsonTokenType.Number => "number",
        JsonTokenType.True or JsonTokenType.False => "boolean",
        JsonTokenType.Null => "null",
        _ => "nothing",
    };

    /// <summary>The 1-based line of the <paramref name="index"/>-th element of the root array (0 if there is none).</summary>
    public static int LineOfArrayElement(byte[] bytes, int index)
    {
        var reader = new Utf8JsonReader(bytes);
        int seen = -1, line = 1;
        long counted = 0;
        while (reader.Read())
        {
            if (reader.CurrentDepth == 1 && reader.TokenType is not (JsonTokenType.EndObject or JsonTokenType.EndArray or JsonTokenType.PropertyName))
            {
                if (++seen == index)
                {
                    line += bytes.AsSpan((int)counted, (int)(reader.TokenStartIndex - counted)).Count((byte)'\n');
                    return line;
                }
            }
            if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray && reader.CurrentDepth == 1) reader.Skip();
        }
        return 0;
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
            {
                // Only StereoSet's split names are looked up here; a name that is not valid UTF-16 is none of them.
                try { propertyAtDepth[reader.CurrentDepth] = reader.GetString(); }
                catch (InvalidOperationException) { propertyAtDepth[reader.CurrentDepth] = null; }
            }
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

    /// <summary>
    /// System.Text.Json's message without its own position suffix ("Path: $ | LineNumber: 0 | BytePositionInLine: 5."),
    /// which counts from 0 and would contradict our file:line; the column is kept, counted from 1.
    /// </summary>
    public static string Brief(JsonException e)
    {
        var m = e.Message;
        foreach (var marker in (string[])[" Path:", " LineNumber:"])
        {
            int cut = m.IndexOf(marker, StringComparison.Ordinal);
            if (cut > 0) m = m[..cut];
        }
        m = m.TrimEnd().TrimEnd('.');
        return e.BytePositionInLine is long col ? $"{m} (column {(col + 1).ToString(CultureInfo.InvariantCulture)})" : m;
    }

    /// <summary>
    /// Our category spelling: ASCII lower-case letters and digits in words joined by single '-' ("gender-identity").
    /// Reports group by category, so "Gender identity" and "gender-identity" must not both occur.
    /// </summary>
    public static bool IsKebabCase(string s)
    {
        if (s.Length == 0 || s[0] == '-' || s[^1] == '-') return false;
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c == '-' ? s[i - 1] == '-' : !(c is >= 'a' and <= 'z' or >= '0' and <= '9')) return false;
        }
        return true;
    }

    public static string Invariant(int i) => i.ToString(CultureInfo.InvariantCulture);
}
