using System.Text.Json;
using static TorchSharp.torch;

namespace BiasFree.Engine.Safetensors;

/// <summary>
/// All tensors of a HF checkpoint: a single model.safetensors, a sharded set described by
/// model.safetensors.index.json, or one explicit .safetensors file. Tensors are read lazily, one at a time.
/// </summary>
public sealed class SafetensorsCheckpoint : IDisposable
{
    private readonly List<SafetensorsFile> _files = [];
    private readonly Dictionary<string, SafetensorsFile> _byName = new(StringComparer.Ordinal);

    public IReadOnlyCollection<string> Names => _byName.Keys;
    public IReadOnlyList<string> Files => _files.Select(f => f.Path).ToList();

    public static SafetensorsCheckpoint Open(string folderOrFile, string prefix = "model")
    {
        var ckpt = new SafetensorsCheckpoint();
        try
        {
            if (File.Exists(folderOrFile))
            {
                ckpt.Add(SafetensorsFile.Open(folderOrFile), null);
                return ckpt;
            }
            if (!Directory.Exists(folderOrFile)) throw new DirectoryNotFoundException($"checkpoint folder not found: {folderOrFile}");
            string index = Path.Combine(folderOrFile, $"{prefix}.safetensors.index.json");
            string single = Path.Combine(folderOrFile, $"{prefix}.safetensors");
            if (File.Exists(index)) ckpt.OpenIndex(folderOrFile, index);
            else if (File.Exists(single)) ckpt.Add(SafetensorsFile.Open(single), null);
            else throw new FileNotFoundException($"{folderOrFile}: neither {prefix}.safetensors nor {prefix}.safetensors.index.json exists");
            return ckpt;
        }
        catch
        {
            ckpt.Dispose();
            throw;
        }
    }

    private void OpenIndex(string folder, string indexPath)
    {
        Dictionary<string, string> weightMap;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (!doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{indexPath}: missing object 'weight_map'");
            weightMap = wm.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()
                ?? throw new InvalidDataException($"{indexPath}: weight_map['{p.Name}'] is not a string"), StringComparer.Ordinal);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{indexPath}: not valid JSON ({e.Message})", e);
        }
        foreach (var group in weightMap.GroupBy(kv => kv.Value))
        {
            var file = SafetensorsFile.Open(Path.Combine(folder, group.Key));
            Add(file, group.Select(kv => kv.Key).ToHashSet(StringComparer.Ordinal));
            foreach (var (name, _) in group)
                if (!file.Contains(name)) throw new InvalidDataException($"{indexPath}: '{name}' is mapped to {group.Key}, which does not contain it");
        }
    }

    private void Add(SafetensorsFile file, HashSet<string>? only)
    {
        _files.Add(file);
        foreach (var n in file.Names)
            if (only is null || only.Contains(n)) _byName[n] = file;
    }

    public bool Contains(string name) => _byName.ContainsKey(name);

    public SafetensorsEntry Entry(string name) => FileOf(name).Entry(name);

    public Tensor Read(string name, ScalarType? floatType = null) => FileOf(name).Read(name, floatType);

    public Dictionary<string, Tensor> ReadAll(ScalarType? floatType = null) =>
        _byName.Keys.ToDictionary(n => n, n => Read(n, floatType), StringComparer.Ordinal);

    private SafetensorsFile FileOf(string name) =>
        _byName.TryGetValue(name, out var f) ? f : throw new KeyNotFoundException($"checkpoint has no tensor named '{name}'");

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
        _byName.Clear();
    }
}
