using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using BiasFree.Probes;
using BiasFree.Probes.Loaders;

namespace BiasFree.Engine.Training;

/// <summary>
/// One training item in BiasFreeBench's shape (StereoSet intersentence): a context <see cref="Prompt"/> q, the
/// anti-stereotyped response r_w (<see cref="Chosen"/>) and the stereotyped response r_l (<see cref="Rejected"/>).
/// SFT learns r_w, DPO prefers r_w over r_l, Task Vector learns r_l and subtracts what it learnt.
/// </summary>
/// <param name="Id">Stable id (source and item).</param>
/// <param name="Category">Bias type, e.g. "gender-identity"; <see cref="PreferenceData.Balance"/> equalises counts over it.</param>
/// <param name="Prompt">The user turn.</param>
/// <param name="Chosen">Anti-stereotyped (or otherwise preferred) response.</param>
/// <param name="Rejected">Stereotyped response; null for SFT-only data (an Alpaca file).</param>
/// <param name="System">Optional system message rendered before the prompt.</param>
/// <param name="RejectedIsStereotyped">Whether <see cref="Rejected"/> is the stereotyped (biased) reply; false where it is only
/// wrong (a disambiguated question whose correct answer is the stereotyped group). Safe-RLHF's cost model learns from the pairs where it is true.</param>
public sealed record PreferencePair(string Id, string Category, string Prompt, string Chosen, string? Rejected, string? System = null,
    bool RejectedIsStereotyped = true);

/// <summary>
/// Where training data comes from and how it is exported. Data specs:
/// <list type="bullet">
/// <item><c>generated</c> or <c>generated:continuation</c>: our own StereoSet-style templates (<see cref="TemplatePreferenceData"/>).</item>
/// <item><c>generated:bbq</c>: preference pairs from the built-in BBQ-style suite under training seeds (not the paper's data; see docs/training.md).</item>
/// <item><c>generated:bbq-symmetric</c>: BBQ-style pairs for a fairness reward in which neither name is preferred without the context (BiasFilter's π_fair; docs/white-box.md).</item>
/// <item><c>generated:bbq-category-bias</c>: a deliberately biased SFT corpus (stereotype on ambiguous items of five categories), to build a model whose bias a FairSteer probe can predict (docs/white-box.md).</item>
/// <item><c>stereoset:PATH</c>: StereoSet <c>dev.json</c>, intersentence items, through <see cref="StereoSetLoader"/>.</item>
/// <item><c>llamafactory:PATH</c> (or a bare <c>PATH.json</c>): a LLaMA-Factory file, Alpaca <c>{instruction,input,output}</c> or <c>{prompt,chosen,rejected}</c>.</item>
/// </list>
/// </summary>
public static class PreferenceData
{
    /// <summary>Loads the pairs named by <paramref name="spec"/> (see the class summary).</summary>
    /// <param name="spec">generated[:continuation|bbq], stereoset:PATH, llamafactory:PATH or PATH.json.</param>
    /// <param name="count">For generated data: how many pairs to draw (null: every distinct item once).</param>
    /// <param name="seed">Seed of generated data and of <c>generated:bbq</c>'s suite draws.</param>
    public static IReadOnlyList<PreferencePair> Load(string spec, int? count = null, int seed = 0)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(spec);
        int colon = spec.IndexOf(':', StringComparison.Ordinal);
        string kind = colon < 0 ? spec : spec[..colon];
        string arg = colon < 0 ? "" : spec[(colon + 1)..];
        switch (kind)
        {
            case "generated":
                return arg switch
                {
                    "" or "continuation" => TemplatePreferenceData.Continuations(count, seed),
                    "bbq" => TemplatePreferenceData.Bbq(count ?? 600, seed),
                    "bbq-category-bias" => TemplatePreferenceData.CategoryBias(count ?? 600, seed),
                    "bbq-symmetric" => TemplatePreferenceData.Symmetric(count ?? 600, seed),
                    _ => throw new ArgumentException($"unknown generated data family '{arg}' (use generated:continuation, generated:bbq, generated:bbq-symmetric or generated:bbq-category-bias)"),
                };
            case "stereoset":
                return FromStereoSet(RequireFile(spec, arg));
            case "llamafactory":
                return ReadLlamaFactory(RequireFile(spec, arg));
            default:
                if (spec.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && File.Exists(spec)) return ReadLlamaFactory(spec);
                throw new ArgumentException($"unknown data spec '{spec}': use generated, generated:continuation, generated:bbq, stereoset:PATH or llamafactory:PATH");
        }
    }

    private static string RequireFile(string spec, string path)
    {
        if (path.Length == 0) throw new ArgumentException($"data spec '{spec}' needs a file path after ':'");
        if (!File.Exists(path)) throw new FileNotFoundException($"data file not found: {path}", path);
        return path;
    }

    /// <summary>
    /// StereoSet intersentence items as (q = context, r_w = anti-stereotype sentence, r_l = stereotype sentence), as
    /// BiasFreeBench builds its training files; intrasentence items are skipped. The instruction is the bare context, as
    /// in the paper's LLaMA-Factory files.
    /// </summary>
    public static IReadOnlyList<PreferencePair> FromStereoSet(string path)
    {
        var probes = StereoSetLoader.Load(path);
        return
        [
            .. probes.Where(p => p.Metadata.GetValueOrDefault("split") == "intersentence").Select(p => new PreferencePair(
                p.Id, p.Category, p.ContextText ?? "",
                p.OptionWithRole(OptionRole.AntiStereotyped)!.Text,
                p.OptionWithRole(OptionRole.Stereotyped)!.Text)),
        ];
    }

    /// <summary>
    /// The paper's "balanced" data: resamples with replacement so that every bias type has the same count (total kept
    /// at the input size; the remainder goes to the first types in name order). BiasFreeBench used inverse-frequency
    /// weighted sampling, which gives equal counts in expectation (Race 2,129 / Gender 2,141 / Profession 2,100 /
    /// Religion 2,127 of 8,497); exact equal counts are the deterministic version of that. Seeded.
    /// </summary>
    public static IReadOnlyList<PreferencePair> Balance(IReadOnlyList<PreferencePair> pairs, int seed)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        if (pairs.Count == 0) return pairs;
        var groups = pairs.GroupBy(p => p.Category).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => g.ToList()).ToList();
        int per = pairs.Count / groups.Count, extra = pairs.Count % groups.Count;
        var result = new List<PreferencePair>(pairs.Count);
        for (int g = 0; g < groups.Count; g++)
        {
            var rng = StableRandom.For(seed, $"balance/{groups[g][0].Category}");
            int n = per + (g < extra ? 1 : 0);
            for (int i = 0; i < n; i++) result.Add(groups[g][rng.Next(groups[g].Count)]);
        }
        return StableRandom.For(seed, "balance/order").Shuffle(result);
    }

    /// <summary>Counts per bias type, in name order.</summary>
    public static IReadOnlyList<(string Category, int Count)> CountByCategory(IEnumerable<PreferencePair> pairs) =>
        [.. pairs.GroupBy(p => p.Category).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => (g.Key, g.Count()))];

    // ------------------------------------------------------------------ LLaMA-Factory files

    /// <summary>Which LLaMA-Factory file to write.</summary>
    public enum ExportShape
    {
        /// <summary>Alpaca {instruction, input: "", output: r_w}: the paper's SFT file.</summary>
        Sft,
        /// <summary>{prompt, chosen: r_w, rejected: r_l}: the paper's DPO file.</summary>
        Dpo,
        /// <summary>Alpaca {instruction, input: "", output: r_l}: the paper's Task Vector file (trained on the stereotyped response).</summary>
        TaskVector,
    }

    private static readonly JsonWriterOptions WriterOptions = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Writes a JSON array in one of the LLaMA-Factory shapes BiasFreeBench ships (see <see cref="ExportShape"/>).</summary>
    public static void Export(string path, IEnumerable<PreferencePair> pairs, ExportShape shape)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        using var stream = File.Create(path);
        using var w = new Utf8JsonWriter(stream, WriterOptions);
        w.WriteStartArray();
        foreach (var p in pairs)
        {
            w.WriteStartObject();
            if (p.System is { } system) w.WriteString("system", system);
            switch (shape)
            {
                case ExportShape.Dpo:
                    w.WriteString("prompt", p.Prompt);
                    w.WriteString("chosen", p.Chosen);
                    w.WriteString("rejected", p.Rejected ?? throw new ArgumentException($"pair '{p.Id}' has no rejected response; it cannot go into a DPO file"));
                    break;
                default:
                    w.WriteString("instruction", p.Prompt);
                    w.WriteString("input", "");
                    w.WriteString("output", shape == ExportShape.Sft ? p.Chosen
                        : p.Rejected ?? throw new ArgumentException($"pair '{p.Id}' has no stereotyped response for a task-vector file"));
                    break;
            }
            w.WriteString("bias_type", p.Category);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    /// <summary>
    /// Reads a LLaMA-Factory JSON array: records with <c>prompt/chosen/rejected</c> become pairs; Alpaca records
    /// (<c>instruction</c>, optional <c>input</c> appended on a new line as LLaMA-Factory does, <c>output</c>) become
    /// SFT-only items (Rejected = null). An optional <c>system</c> and <c>bias_type</c> are kept. Errors name file:line and field.
    /// </summary>
    public static IReadOnlyList<PreferencePair> ReadLlamaFactory(string path)
    {
        var bytes = File.ReadAllBytes(path);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}:{(e.LineNumber ?? 0) + 1}: not valid JSON ({e.Message})", e);
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Array)
                throw new InvalidDataException($"{path}:1: expected a JSON array of records, got {doc.RootElement.ValueKind}");
            var lines = RecordStartLines(bytes);
            var result = new List<PreferencePair>();
            int i = 0;
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                int line = i < lines.Count ? lines[i] : 1;
                string Where(string field) => $"{path}:{line}: field '{field}'";
                if (e.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}:{line}: record {i}: expected an object, got {e.ValueKind}");
                string? Str(string field, bool required)
                {
                    if (!e.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null)
                        return required ? throw new InvalidDataException($"{Where(field)}: missing") : null;
                    if (v.ValueKind != JsonValueKind.String) throw new InvalidDataException($"{Where(field)}: expected a string, got {v.ValueKind}");
                    var s = v.GetString()!;
                    if (required && s.Trim().Length == 0) throw new InvalidDataException($"{Where(field)}: empty");
                    return s;
                }
                string id = $"{Path.GetFileName(path)}#{i}";
                string category = Str("bias_type", false) ?? "unspecified";
                string? system = Str("system", false);
                if (e.TryGetProperty("prompt", out _) || e.TryGetProperty("chosen", out _))
                    result.Add(new PreferencePair(id, category, Str("prompt", true)!, Str("chosen", true)!, Str("rejected", true)!, system));
                else
                {
                    var instruction = Str("instruction", true)!;
                    var input = Str("input", false);
                    var prompt = string.IsNullOrEmpty(input) ? instruction : instruction + "\n" + input;
                    result.Add(new PreferencePair(id, category, prompt, Str("output", true)!, null, system));
                }
                i++;
            }
            if (result.Count == 0) throw new InvalidDataException($"{path}:1: the array holds no records");
            return result;
        }
    }

    /// <summary>1-based line of each top-level array element's opening brace (for error messages).</summary>
    private static List<int> RecordStartLines(byte[] bytes)
    {
        var lines = new List<int>();
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { AllowTrailingCommas = false });
        int line = 1;
        long lastPos = 0;
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.StartObject && reader.CurrentDepth == 1)
            {
                long pos = reader.TokenStartIndex;
                for (long k = lastPos; k < pos; k++) if (bytes[k] == (byte)'\n') line++;
                lastPos = pos;
                lines.Add(line);
            }
        }
        return lines;
    }

    /// <summary>A short fingerprint of the data (for checkpoints: resuming on different data is refused).</summary>
    public static string Fingerprint(IEnumerable<PreferencePair> pairs)
    {
        var sb = new StringBuilder();
        foreach (var p in pairs) sb.Append(p.Prompt).Append('\u0001').Append(p.Chosen).Append('\u0001').Append(p.Rejected).Append('\u0001').Append(p.System).Append('\u0002');
        return Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())))[..16];
    }
}
