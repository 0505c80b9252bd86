using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Safetensors;

/// <summary>Writes safetensors files (single or sharded with a model.safetensors.index.json).</summary>
public static class SafetensorsWriter
{
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (n, _) in list)
            if (!names.Add(n)) throw new ArgumentException($"duplicate tensor name '{n}'");

        // Header: { "__metadata__": {...}, name: { dtype, shape, data_offsets }, ... } with offsets laid out back to back.
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            w.WriteStartObject("__metadata__");
            foreach (var (k, v) in metadata ?? new Dictionary<string, string> { ["format"] = "pt" }) w.WriteString(k, v);
            w.WriteEndObject();
            long offset = 0;
            foreach (var (name, t) in list)
            {
                long bytes = t.numel() * SafetensorsDType.ElementSize(t.dtype);
                w.WriteStartObject(name);
                w.WriteString("dtype", SafetensorsDType.ToName(t.dtype));
                w.WriteStartArray("shape");
                foreach (var d in t.shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        // Pad with spaces so the data block starts 8-byte aligned (8 + header length is a multiple of 8).
        var header = ms.ToArray();
        int padded = (header.Length + 7) / 8 * 8;
        var headerPadded = new byte[padded];
        header.CopyTo(headerPadded, 0);
        headerPadded.AsSpan(header.Length).Fill((byte)' ');

        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        using var fs = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        fs.Write(BitConverter.GetBytes((ulong)padded));
        fs.Write(headerPadded);
        foreach (var (_, t) in list) WriteData(fs, t);
    }

    private static void WriteData(Stream s, Tensor t)
    {
        if (t.numel() == 0) return;
        using var scope = NewDisposeScope();
        var c = t.detach().cpu().contiguous().view(-1);
        long elemSize = SafetensorsDType.ElementSize(t.dtype);
        long chunkElems = Math.Max(1, SafetensorsFile.CopyChunkBytes / elemSize);
        for (long start = 0; start < c.numel(); start += chunkElems)
        {
            long n = Math.Min(chunkElems, c.numel() - start);
            using var part = c.narrow(0, start, n);
            s.Write(part.bytes);
        }
    }

    /// <summary>
    /// Writes HF-style shards "{prefix}-0000i-of-0000n.safetensors" of at most <paramref name="maxShardBytes"/> each
    /// (a single bigger tensor gets its own shard) plus "{prefix}.safetensors.index.json".
    /// </summary>
    public static IReadOnlyList<string> SaveSharded(string folder, IEnumerable<KeyValuePair<string, Tensor>> tensors,
        long maxShardBytes, string prefix = "model")
    {
        var shards = new List<List<KeyValuePair<string, Tensor>>> { new() };
        long current = 0, total = 0;
        foreach (var kv in tensors)
        {
            long bytes = kv.Value.numel() * SafetensorsDType.ElementSize(kv.Value.dtype);
            if (shards[^1].Count > 0 && current + bytes > maxShardBytes)
            {
                shards.Add([]);
                current = 0;
            }
            shards[^1].Add(kv);
            current += bytes;
            total += bytes;
        }
        Directory.CreateDirectory(folder);
        var files = new List<string>();
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < shards.Count; i++)
        {
            string file = $"{prefix}-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            Save(System.IO.Path.Combine(folder, file), shards[i]);
            foreach (var (n, _) in shards[i]) weightMap[n] = file;
            files.Add(file);
        }
        var index = new SafetensorsIndex(new SafetensorsIndexMetadata(total), weightMap);
        File.WriteAllText(System.IO.Path.Combine(folder, $"{prefix}.safetensors.index.json"),
            JsonSerializer.Serialize(index, SafetensorsIndexJson.Default.SafetensorsIndex), new UTF8Encoding(false));
        return files;
    }
}

/// <summary>A sharded checkpoint's index (<c>{"metadata":{"total_size":…},"weight_map":{tensor: file}}</c>).</summary>
internal sealed record SafetensorsIndex(
    [property: System.Text.Json.Serialization.JsonPropertyName("metadata")] SafetensorsIndexMetadata Metadata,
    [property: System.Text.Json.Serialization.JsonPropertyName("weight_map")] SortedDictionary<string, string> WeightMap);

/// <summary>The index's metadata: the bytes of every tensor together.</summary>
internal sealed record SafetensorsIndexMetadata([property: System.Text.Json.Serialization.JsonPropertyName("total_size")] long TotalSize);
