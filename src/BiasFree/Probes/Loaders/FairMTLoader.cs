using System.Text.Json;
using System.Text.RegularExpressions;

namespace BiasFree.Probes.Loaders;

/// <summary>
/// Loads FairMT-Bench dialogues into multi-turn probes. Accepted paths:
/// <list type="bullet">
/// <item>a FairMT_10K root: <c>{root}/{Stereotype|Toxicity}/{Task}/prompt_{attr}.json</c>, items keyed "0-turn Conv".."4-turn Conv";</item>
/// <item>a directory holding it as <c>FairMT_10K/</c>;</item>
/// <item>a FairMT_1K directory of <c>{Task}.json</c> files, items keyed "0".."4" (BiasFreeBench's
/// <c>scattered_questions.json</c>-style copies with "k-turn Conv" keys also load);</item>
/// <item>a single file of either kind.</item>
/// </list>
/// </summary>
public static partial class FairMTLoader
{
    public const string SuiteName = "fairmt";
    public const int TurnCount = 5;

    private static readonly Dictionary<string, string> TaskMap = new(StringComparer.OrdinalIgnoreCase)
    {
        ["scatteredquestions"] = "scattered-questions",
        ["separateinput"] = "scattered-questions",
        ["anaphoraellipsis"] = "anaphora-ellipsis",
        ["coreference"] = "anaphora-ellipsis",
        ["jailbreaktips"] = "jailbreak-tips",
        ["coaattack"] = "jailbreak-tips",
        ["interferencemisinformation"] = "interference-misinformation",
        ["errorinfoanswer"] = "interference-misinformation",
        ["negativefeedback"] = "negative-feedback",
        ["perturbationprompt"] = "negative-feedback",
        ["fixedformat"] = "fixed-format",
        ["fixedtasktemplate"] = "fixed-format",
    };

    private static readonly Dictionary<string, string> AttributeMap = new(StringComparer.OrdinalIgnoreCase)
    {
        ["age"] = "age",
        ["appearance"] = "appearance",
        ["body"] = "appearance",
        ["disable"] = "disability",
        ["disability"] = "disability",
        ["gender"] = "gender",
        ["race"] = "race",
        ["religion"] = "religion",
        ["orientation"] = "sexual-orientation",
    };

    /// <summary>
    /// Canonical task for a FairMT folder or file name ("Anaphora_Ellipsis", "anaphora_ellipsis.json", or the old
    /// FairMT-1K names such as "coreference"), or null if it is not a FairMT task.
    /// </summary>
    public static string? CanonicalTask(string name)
    {
        var stem = Path.GetFileNameWithoutExtension(name);
        var key = BbqJsonlLoader.Normalize(stem);
        return TaskMap.TryGetValue(key, out var t) ? t : null;
    }

    /// <summary>Canonical attribute for a FairMT file attribute ("disable" → "disability").</summary>
    public static string CanonicalAttribute(string attribute) =>
        AttributeMap.TryGetValue(attribute, out var a) ? a : attribute.ToLowerInvariant().Replace('_', '-');

    /// <summary>
    /// Loads the dialogues at <paramref name="path"/>. Files without attribute (FairMT_1K, BiasFreeBench's
    /// <c>FairMT-Bench/data/*.json</c>) load with category <c>unspecified</c> unless <paramref name="attributesFrom"/>
    /// names a FairMT_10K tree: a dialogue found there with the same task and the same five turns, word for word,
    /// under a single bias type and attribute takes them (metadata <c>attribute_source</c> says where from); the
    /// others stay <c>unspecified</c>. The 10K tree's dialogues are only looked up, never added.
    /// </summary>
    public static IReadOnlyList<Probe> Load(string path, string? attributesFrom = null) => [.. Read(path, attributesFrom)];

    /// <summary>
    /// <see cref="Load"/> lazily: each file's dialogues are parsed one at a time as the enumeration asks
    /// (<see cref="JsonSupport.StreamArrayOfObjects"/>); only their ids are kept, to refuse a duplicate when it is reached.
    /// With <paramref name="attributesFrom"/>, the FairMT_10K tree is read first, into a lookup of its dialogues'
    /// (task, turns) keys, which is held for the enumeration.
    /// </summary>
    public static IEnumerable<Probe> Read(string path, string? attributesFrom = null)
    {
        var sources = Sources(path);
        var attributes = attributesFrom is null ? null : AttributeIndex(attributesFrom);
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var source in sources)
        {
            foreach (var p in LoadFile(source))
            {
                if (!ids.Add(p.Id)) throw new ProbeFormatException(path, 0, null, $"duplicate probe id '{p.Id}'");
                yield return attributes is null ? p : WithAttribute(p, attributes);
            }
        }
    }

    /// <summary>
    /// Splits a <c>fairmt:</c> suite path "DIALOGUES@TENK" into the dialogues and the FairMT_10K tree to take
    /// attributes from. A path that exists as written is never split, so paths containing '@' still load.
    /// </summary>
    public static (string Dialogues, string? AttributesFrom) SplitSpec(string path)
    {
        int at = path.LastIndexOf('@');
        if (at <= 0 || at == path.Length - 1 || File.Exists(path) || Directory.Exists(path)) return (path, null);
        return (path[..at], path[(at + 1)..]);
    }

    private static Dictionary<string, List<(string BiasType, string Attribute, string Where)>> AttributeIndex(string tenKPath)
    {
        if (!Directory.Exists(tenKPath))
            throw new FileNotFoundException($"FairMT_10K tree to take attributes from not found: {tenKPath}", tenKPath);
        var sources = Sources(tenKPath);
        if (sources.Any(s => s.Attribute is null || s.BiasType is null))
            throw new ProbeFormatException(tenKPath, 0, null,
                "attributes come from a FairMT_10K tree ({Stereotype|Toxicity}/{Task}/prompt_{attr}.json), and this is not one");
        // (task, turns) → every (bias type, attribute, where) it occurs under. FairMT_10K repeats a few dialogues,
        // always under the same attribute; a dialogue under two attributes would be ambiguous and is left alone.
        var index = new Dictionary<string, List<(string BiasType, string Attribute, string Where)>>(StringComparer.Ordinal);
        foreach (var source in sources)
        {
            foreach (var p in LoadFile(source))
            {
                var key = DialogueKey(p);
                if (!index.TryGetValue(key, out var list)) index[key] = list = [];
                list.Add((source.BiasType!, source.Attribute!, $"{Path.GetRelativePath(tenKPath, source.File)}:{p.Metadata["line"]}"));
            }
        }
        return index;
    }

    private static Probe WithAttribute(Probe p, Dictionary<string, List<(string BiasType, string Attribute, string Where)>> index)
    {
        if (p.Metadata.ContainsKey("attribute") || !index.TryGetValue(DialogueKey(p), out var found)
            || found.Select(f => (f.BiasType, f.Attribute)).Distinct().Count() != 1)
        {
            return p;
        }
        var metadata = new Dictionary<string, string>(p.Metadata, StringComparer.Ordinal)
        {
            ["bias_type"] = found[0].BiasType,
            ["attribute"] = found[0].Attribute,
            ["attribute_source"] = $"FairMT_10K {found[0].Where}",
        };
        return p with { Category = found[0].Attribute, Metadata = metadata };
    }

    private static string DialogueKey(Probe p) => p.TaskType + "\u0001" + string.Join("\u0001", p.UserTurns);

    /// <summary>One file to read, with what its location says about it.</summary>
    private sealed record Source(string File, string Task, string? BiasType, string? Attribute, string IdPrefix);

    private static List<Source> Sources(string path)
    {
        if (File.Exists(path)) return [SingleFile(path)];
        if (!Directory.Exists(path)) throw new FileNotFoundException($"suite path not found: {path}", path);

        var tenK = Path.Combine(path, "FairMT_10K");
        if (Directory.Exists(tenK) && !HasBiasTypeDirs(path)) return Sources(tenK);

        var list = new List<Source>();
        if (HasBiasTypeDirs(path))
        {
            foreach (var typeDir in Directory.GetDirectories(path).OrderBy(d => d, StringComparer.Ordinal))
            {
                var biasType = Path.GetFileName(typeDir).ToLowerInvariant();
                if (biasType is not ("stereotype" or "toxicity")) continue;
                foreach (var taskDir in Directory.GetDirectories(typeDir).OrderBy(d => d, StringComparer.Ordinal))
                {
                    var task = CanonicalTask(Path.GetFileName(taskDir))
                        ?? throw new ProbeFormatException(taskDir, 0, null, $"unknown FairMT task folder; expected one of {KnownFolders}");
                    foreach (var file in Directory.GetFiles(taskDir, "*.json").OrderBy(f => f, StringComparer.Ordinal))
                    {
                        var attr = AttributeOf(file);
                        list.Add(new Source(file, task, biasType, attr, $"fairmt-{biasType}-{task}-{attr ?? "unspecified"}"));
                    }
                }
            }
        }
        else
        {
            foreach (var file in Directory.GetFiles(path, "*.json").OrderBy(f => f, StringComparer.Ordinal))
            {
                var task = CanonicalTask(file)
                    ?? throw new ProbeFormatException(file, 0, null, $"not a FairMT task file; expected one of {KnownFolders} (.json)");
                list.Add(new Source(file, task, null, null, $"fairmt-{task}"));
            }
        }
        if (list.Count == 0) throw new ProbeFormatException(path, 0, null, "no FairMT .json files found");
        return list;
    }

    private static Source SingleFile(string file)
    {
        var full = Path.GetFullPath(file);
        var parent = Path.GetFileName(Path.GetDirectoryName(full) ?? "");
        var attr = AttributeOf(file);
        if (attr is not null && CanonicalTask(parent) is { } task)
        {
            var grand = Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(full)) ?? "").ToLowerInvariant();
            string? biasType = grand is "stereotype" or "toxicity" ? grand : null;
            return new Source(file, task, biasType, attr, $"fairmt-{biasType ?? "unspecified"}-{task}-{attr}");
        }
        var t = CanonicalTask(file)
            ?? throw new ProbeFormatException(file, 0, null,
                $"cannot tell the FairMT task: expected {{Task}}/prompt_{{attr}}.json or {{Task}}.json with Task one of {KnownFolders}");
        return new Source(file, t, null, null, $"fairmt-{t}");
    }

    private const string KnownFolders =
        "Scattered_Questions, Anaphora_Ellipsis, Jailbreak_Tips, Interference_Misinformation, Negative_Feedback, Fixed_Format";

    private static bool HasBiasTypeDirs(string path) =>
        Directory.Exists(Path.Combine(path, "Stereotype")) || Directory.Exists(Path.Combine(path, "Toxicity"));

    private static string? AttributeOf(string file)
    {
        var stem = Path.GetFileNameWithoutExtension(file);
        if (!stem.StartsWith("prompt_", StringComparison.OrdinalIgnoreCase)) return null;
        var attribute = CanonicalAttribute(stem["prompt_".Length..]);
        // The attribute becomes the probes' category, so it must be a category name.
        return JsonSupport.IsKebabCase(attribute) ? attribute
            : throw new ProbeFormatException(file, 0, null, attribute.Length == 0
                ? "file name gives an empty attribute (expected prompt_{attr}.json, e.g. prompt_age.json)"
                : $"file name gives attribute '{attribute}', which is not a category name (letters, digits, '-' or '_')");
    }

    private static IEnumerable<Probe> LoadFile(Source s)
    {
        int index = 0;
        bool? turnConvKeys = null;
        foreach (var (r, doc) in JsonSupport.StreamArrayOfObjects(s.File, JsonSupport.ReadNonEmpty(s.File), "dialogues"))
        {
            using var document = doc;
            var item = r.Element;
            turnConvKeys ??= item.TryGetProperty("0-turn Conv", out _);
            var turns = new List<string>(TurnCount);
            for (int k = 0; k < TurnCount; k++)
                turns.Add(r.String(turnConvKeys.Value ? $"{k}-turn Conv" : JsonSupport.Invariant(k)));

            var metadata = new Dictionary<string, string>
            {
                ["source_file"] = Path.GetFileName(s.File),
                ["index"] = JsonSupport.Invariant(index),
                ["line"] = JsonSupport.Invariant(r.Line),
            };
            if (s.BiasType is not null) metadata["bias_type"] = s.BiasType;
            if (s.Attribute is not null) metadata["attribute"] = s.Attribute;
            if (ExtractStatement(s.Task, turns) is { } statement) metadata["stereotype"] = statement;

            var probe = new Probe
            {
                Id = $"{s.IdPrefix}-{index:0000}",
                Suite = SuiteName,
                Scenario = Scenario.MultiTurn,
                Category = s.Attribute ?? "unspecified",
                TaskType = s.Task,
                UserTurns = turns,
                Metadata = metadata,
            };
            index++;
            yield return probe;
        }
    }

    /// <summary>
    /// The biased statement the final turn pushes, recovered the way FairMT-Bench's evaluation scripts do
    /// (notes §A.6), or null where the task's script uses none (jailbreak-tips, scattered-questions) or the
    /// text does not have the expected shape.
    /// </summary>
    public static string? ExtractStatement(string task, IReadOnlyList<string> turns)
    {
        var last = turns[^1];
        string? s = task switch
        {
            "interference-misinformation" => ImStatement().Match(last) is { Success: true } m ? m.Groups[1].Value : null,
            "fixed-format" => last.IndexOf('?') is var q and > 0 ? StripWhy(last[..q]) : null,
            "negative-feedback" => last.LastIndexOf("why", StringComparison.OrdinalIgnoreCase) is var w and >= 0
                ? last[(w + 3)..].TrimEnd('?', '.', ' ') : null,
            "anaphora-ellipsis" => AnaphoraStatement(turns),
            _ => null,
        };
        s = s is null ? null : Spaces().Replace(s, " ").Trim().TrimStart(',').Trim();
        return string.IsNullOrEmpty(s) ? null : s;
    }

    private static string StripWhy(string s)
    {
        s = s.Trim();
        return s.StartsWith("Why ", StringComparison.OrdinalIgnoreCase) ? s[4..] : s;
    }

    private static string? AnaphoraStatement(IReadOnlyList<string> turns)
    {
        const string Prefix = "When you think of the unique and distinctive characteristics of ";
        var first = turns[0];
        if (!first.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase)) return null;
        var rest = first[Prefix.Length..];
        int end = rest.IndexOfAny([',', '?', '.']);
        var group = (end >= 0 ? rest[..end] : rest).Trim();
        var last = turns[^1];
        int comma = last.LastIndexOf(", ", StringComparison.Ordinal);
        if (comma < 0) return null;
        var claim = last[(comma + 2)..].Replace("?", "").Trim();
        claim = TheyWord().Replace(claim, group);
        return claim.Contains(group, StringComparison.Ordinal) ? claim : $"{group} {claim}";
    }

    [GeneratedRegex(@"Please summary why (.+?) based on my inputs from previous turns", RegexOptions.Singleline)]
    private static partial Regex ImStatement();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Spaces();

    [GeneratedRegex(@"\bthey\b", RegexOptions.IgnoreCase)]
    private static partial Regex TheyWord();
}
