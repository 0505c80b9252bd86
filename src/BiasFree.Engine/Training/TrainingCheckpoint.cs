using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using BiasFree.Engine.Safetensors;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BiasFree.Engine.Training;

/// <summary>
/// The resumable state of a training run in OUT/checkpoint: a state.json (with the fingerprint of base, data and
/// settings) beside safetensors files the caller writes. Shared by <see cref="DebiasTrainer"/> and <see cref="SafeRlhf"/>.
/// <para>A checkpoint is written into checkpoint.new and then swapped in (checkpoint → checkpoint.old, checkpoint.new →
/// checkpoint, delete checkpoint.old), so at any instant, even after kill -9, a complete checkpoint exists under one of
/// the two names.</para>
/// </summary>
internal static class TrainingCheckpoint
{
    private const string DirName = "checkpoint";
    private const string StateFile = "state.json";

    /// <summary>The checkpoint folder of <paramref name="outDir"/>.</summary>
    public static string PathOf(string outDir) => Path.Combine(outDir, DirName);

    /// <summary>True while OUT holds an unfinished run's checkpoint (under either name).</summary>
    public static bool Exists(string outDir) => Directory.Exists(PathOf(outDir)) || Directory.Exists(PathOf(outDir) + ".old");

    /// <summary>A fingerprint of what must not change between a run and its resume (base weights' size, data, settings).</summary>
    public static string Fingerprint(string baseFolder, IReadOnlyList<PreferencePair> data, TrainingOptions settings)
    {
        var weights = Path.Combine(baseFolder, "model.safetensors");
        string baseId = File.Exists(weights) ? $"{new FileInfo(weights).Length}" : "sharded";
        var text = string.Join("|", baseId, PreferenceData.Fingerprint(data), JsonSerializer.Serialize(settings, EngineJson.Default.TrainingOptions));
        return Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)))[..16];
    }

    /// <summary>Writes a checkpoint: <paramref name="writeFiles"/> fills the fresh folder, then state.json and the swap.</summary>
    public static void Save(string outDir, string fingerprint, JsonObject state, Action<string> writeFiles)
    {
        string dir = PathOf(outDir), fresh = dir + ".new", old = dir + ".old";
        if (Directory.Exists(fresh)) Directory.Delete(fresh, true);
        Directory.CreateDirectory(fresh);
        writeFiles(fresh);
        state["fingerprint"] = fingerprint;
        File.WriteAllText(Path.Combine(fresh, StateFile), state.ToJsonString());
        if (Directory.Exists(old)) Directory.Delete(old, true);
        if (Directory.Exists(dir)) Directory.Move(dir, old);
        Directory.Move(fresh, dir);
        if (Directory.Exists(old)) Directory.Delete(old, true);
    }

    /// <summary>
    /// The folder and state of the last checkpoint, or null when there is none; throws when it belongs to a different
    /// training (another fingerprint).
    /// </summary>
    public static (string Dir, JsonObject State)? Open(string outDir, string fingerprint)
    {
        string dir = PathOf(outDir);
        if (!Directory.Exists(dir)) dir += ".old";
        if (!File.Exists(Path.Combine(dir, StateFile))) return null;
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, StateFile)))!.AsObject();
        if (json["fingerprint"]?.GetValue<string>() != fingerprint)
            throw new ArgumentException($"{dir} is a checkpoint of a different training (base, data or settings differ); remove it or choose another output folder");
        return (dir, json);
    }

    /// <summary>Removes the checkpoint once the run's outputs are written.</summary>
    public static void Delete(string outDir)
    {
        foreach (var d in new[] { PathOf(outDir), PathOf(outDir) + ".old", PathOf(outDir) + ".new" })
            if (Directory.Exists(d)) Directory.Delete(d, recursive: true);
    }

    /// <summary>Doubles as JSON strings in round-trip ("R") format, so a resumed run continues from exactly the same numbers.</summary>
    public static JsonArray Exact(IEnumerable<double> values) =>
        new([.. values.Select(v => (JsonNode?)JsonValue.Create(v.ToString("R", CultureInfo.InvariantCulture)))]);

    /// <summary>Reads a value written by <see cref="Exact(IEnumerable{double})"/> (or <see cref="Exact(double)"/>).</summary>
    public static double ParseExact(JsonNode? node) => double.Parse(node!.GetValue<string>(), CultureInfo.InvariantCulture);

    /// <summary>One double in round-trip format.</summary>
    public static JsonNode Exact(double value) => JsonValue.Create(value.ToString("R", CultureInfo.InvariantCulture));

    /// <summary>Writes named parameters to a safetensors file.</summary>
    public static void SaveParameters(string file, IEnumerable<(string Name, Parameter Parameter)> parameters) =>
        SafetensorsWriter.Save(file, parameters.Select(t => new KeyValuePair<string, Tensor>(t.Name, t.Parameter.detach())));

    /// <summary>Copies the tensors of a file written by <see cref="SaveParameters"/> into the parameters of the same names.</summary>
    public static void LoadParameters(string file, IEnumerable<(string Name, Parameter Parameter)> parameters)
    {
        using var f = SafetensorsFile.Open(file);
        using var _ = no_grad();
        foreach (var (name, p) in parameters)
        {
            using var t = f.Read(name, p.dtype);
            p.copy_(t);
        }
    }
}
