using System.IO.MemoryMappedFiles;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Safetensors;

/// <summary>A malformed or unsupported safetensors file; the message always names the file.</summary>
public sealed class SafetensorsFormatException(string path, string problem)
    : IOException($"{path}: {problem}")
{
    public string FilePath { get; } = path;
}

/// <summary>One tensor's header entry: dtype string, shape, and byte range relative to the start of the data block.</summary>
public sealed record SafetensorsEntry(string Name, string DType, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
}

/// <summary>
/// Reader for one .safetensors file. Layout: u64 little-endian header length N, N bytes of JSON header, then raw
/// little-endian tensor data. The file is memory-mapped; <see cref="Read"/> copies one tensor into a fresh CPU tensor.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    /// <summary>Bytes copied per span (Span lengths are int-sized; big embeddings exceed 2 GiB in fp32).</summary>
    internal static long CopyChunkBytes = 1L << 30;

    private const long MaxHeaderBytes = 100L << 20;

    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;
    private readonly long _dataStart;
    private readonly Dictionary<string, SafetensorsEntry> _entries;

    public string Path { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public IReadOnlyCollection<SafetensorsEntry> Entries => _entries.Values;
    public IReadOnlyCollection<string> Names => _entries.Keys;

    private SafetensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, long dataStart,
        Dictionary<string, SafetensorsEntry> entries, Dictionary<string, string> metadata)
    {
        Path = path;
        _map = map;
        _view = view;
        _dataStart = dataStart;
        _entries = entries;
        Metadata = metadata;
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;
    }

    public static SafetensorsFile Open(string path)
    {
        path = System.IO.Path.GetFullPath(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"safetensors file not found: {path}", path);
        long fileLength = new FileInfo(path).Length;
        if (fileLength < 8) throw new SafetensorsFormatException(path, $"file is {fileLength} bytes, too short for the 8-byte header length");

        byte[] headerBytes;
        using (var fs = File.OpenRead(path))
        {
            Span<byte> len = stackalloc byte[8];
            fs.ReadExactly(len);
            ulong n = BitConverter.ToUInt64(len);
            if (n > (ulong)(fileLength - 8) || n > MaxHeaderBytes)
                throw new SafetensorsFormatException(path, $"header length {n} exceeds the file size ({fileLength} bytes) or the 100 MiB limit");
            headerBytes = new byte[n];
            fs.ReadExactly(headerBytes);
        }
        long dataStart = 8 + headerBytes.Length;
        long dataLength = fileLength - dataStart;
        var (entries, metadata) = ParseHeader(path, headerBytes, dataLength);

        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        try
        {
            var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            return new SafetensorsFile(path, map, view, dataStart, entries, metadata);
        }
        catch
        {
            map.Dispose();
            throw;
        }
    }

    private static (Dictionary<string, SafetensorsEntry>, Dictionary<string, string>) ParseHeader(string path, byte[] header, long dataLength)
    {
        JsonDocument doc;
        try
        {
            // Writers pad the header with trailing spaces; JSON allows trailing whitespace.
            doc = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw new SafetensorsFormatException(path, $"header is not valid JSON ({e.Message})");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafetensorsFormatException(path, "header JSON must be an object");
            var entries = new Dictionary<string, SafetensorsEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (prop.Value.ValueKind == JsonValueKind.Object)
                        foreach (var m in prop.Value.EnumerateObject())
                            metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
                    continue;
                }
                entries[prop.Name] = ParseEntry(path, prop.Name, prop.Value, dataLength);
            }
            return (entries, metadata);
        }
    }

    private static SafetensorsEntry ParseEntry(string path, string name, JsonElement e, long dataLength)
    {
        string Bad(string what) => throw new SafetensorsFormatException(path, $"tensor '{name}': {what}");
        if (e.ValueKind != JsonValueKind.Object) Bad("entry is not an object");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String) Bad("missing string 'dtype'");
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array) Bad("missing array 'shape'");
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            Bad("missing 'data_offsets' [begin, end]");
        var shape = new long[sh.GetArrayLength()];
        int i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0) Bad("shape must hold non-negative integers");
            shape[i++] = d.GetInt64();
        }
        if (!off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            Bad("data_offsets must be integers with 0 <= begin <= end");
        begin = off[0].GetInt64();
        end = off[1].GetInt64();
        if (end > dataLength) Bad($"data_offsets [{begin}, {end}] run past the data block ({dataLength} bytes)");
        string dtype = dt.GetString()!;
        var entry = new SafetensorsEntry(name, dtype, shape, begin, end);
        if (SafetensorsDType.ToScalarType(dtype) is not null)
        {
            long expected = entry.ElementCount * SafetensorsDType.ElementSize(dtype);
            if (expected != entry.ByteLength) Bad($"shape [{string.Join(",", shape)}] of {dtype} needs {expected} bytes but data_offsets span {entry.ByteLength}");
        }
        return entry;
    }

    public bool Contains(string name) => _entries.ContainsKey(name);

    public SafetensorsEntry Entry(string name) =>
        _entries.TryGetValue(name, out var e) ? e : throw new KeyNotFoundException($"{Path}: no tensor named '{name}'");

    /// <summary>
    /// Copies one tensor into a new CPU tensor. F16 is always converted (fp16 matmul is unusably slow on CPU):
    /// to <paramref name="floatType"/> when given, else to bfloat16. With <paramref name="floatType"/> set, every
    /// floating-point tensor is converted to it; integer tensors are left alone.
    /// </summary>
    public Tensor Read(string name, ScalarType? floatType = null)
    {
        var e = Entry(name);
        var type = SafetensorsDType.ToScalarType(e.DType)
                   ?? throw new SafetensorsFormatException(Path, $"tensor '{name}' has unsupported dtype '{e.DType}'");
        var t = torch.empty(e.Shape, type);
        CopyInto(t, _base + _dataStart + e.Begin, e.ByteLength);
        bool isFloat = type is ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float32 or ScalarType.Float64;
        var target = type == ScalarType.Float16 ? floatType ?? ScalarType.BFloat16 : isFloat ? floatType ?? type : type;
        if (target == type) return t;
        var converted = t.to_type(target);
        t.Dispose();
        return converted;
    }

    internal static void CopyInto(Tensor t, byte* src, long byteLength)
    {
        if (byteLength == 0) return;
        long elemSize = byteLength / t.numel();
        long chunkElems = Math.Max(1, CopyChunkBytes / elemSize);
        using var flat = t.view(-1);
        for (long start = 0; start < flat.numel(); start += chunkElems)
        {
            long n = Math.Min(chunkElems, flat.numel() - start);
            using var part = flat.narrow(0, start, n);
            new ReadOnlySpan<byte>(src + start * elemSize, checked((int)(n * elemSize))).CopyTo(part.bytes);
        }
    }

    public Dictionary<string, Tensor> ReadAll(ScalarType? floatType = null) =>
        _entries.Keys.ToDictionary(n => n, n => Read(n, floatType), StringComparer.Ordinal);

    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _map.Dispose();
    }
}
