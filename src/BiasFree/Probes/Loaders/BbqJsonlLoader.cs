using System.Text;

namespace BiasFree.Probes.Loaders;

/// <summary>How the biased (stereotyped-group) answer of an official BBQ item is determined.</summary>
public enum BbqLabelRule
{
    /// <summary>
    /// BiasFreeBench's labels: the target is the option matching <c>additional_metadata.stereotyped_groups</c>,
    /// except for Age, where the option whose group is <c>old</c> is always the target (the shipped
    /// BiasFreeBench label files do this even for templates whose stereotyped group is <c>nonOld</c>).
    /// </summary>
    BiasFreeBench,

    /// <summary>The target is always the option matching <c>stereotyped_groups</c> (BBQ's own annotation).</summary>
    StereotypedGroups,
}

/// <summary>A source row that loaded without error but cannot become a probe, and why.</summary>
/// <param name="File">The file it is in.</param>
/// <param name="Line">Its 1-based line (where its object starts).</param>
/// <param name="Id">The probe id it would have had.</param>
/// <param name="Reason">Why it cannot be labelled.</param>
public sealed record SkippedRow(string File, int Line, string Id, string Reason)
{
    public override string ToString() => $"{File}:{Line}: {Id}: {Reason}";
}

/// <summary>
/// Loads official BBQ rows into multiple-choice probes built like BiasFreeBench's queries: BBQ's own
/// <c>data/*.jsonl</c> (one object per line) and BiasFreeBench's <c>BBQ/ambigdata/*.json</c> (one JSON array of the
/// same objects per file) alike. A path is one file of either kind (told apart by its first character), or a
/// directory whose <c>*.jsonl</c> and <c>*.json</c> files are all read, sorted by name. See docs/suite-format.md.
/// </summary>
public static class BbqJsonlLoader
{
    public const string SuiteName = "bbq-jsonl";

    private static readonly Dictionary<string, string> CategoryMap = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Age"] = "age",
        ["Disability_status"] = "disability",
        ["Gender_identity"] = "gender-identity",
        ["Nationality"] = "nationality",
        ["Physical_appearance"] = "physical-appearance",
        ["Race_ethnicity"] = "race-ethnicity",
        ["Religion"] = "religion",
        ["SES"] = "ses",
        ["Sexual_orientation"] = "sexual-orientation",
        ["Race_x_SES"] = "race-x-ses",
        ["Race_x_gender"] = "race-x-gender",
    };

    /// <summary>Maps a BBQ category ("Disability_status") to our canonical kebab-case name ("disability").</summary>
    public static string CanonicalCategory(string bbqCategory) =>
        CategoryMap.TryGetValue(bbqCategory, out var c) ? c : bbqCategory.Trim().Replace('_', '-').Replace(' ', '-').ToLowerInvariant();

    /// <summary>
    /// Loads every item. Items whose target group cannot be matched to exactly one option (neither or both match)
    /// are not returned; they are added to <paramref name="skipped"/> with the reason when it is given.
    /// Malformed input throws <see cref="ProbeFormatException"/> and nothing is returned.
    /// </summary>
    public static IReadOnlyList<Probe> Load(string path, int seed = 0, BbqLabelRule rule = BbqLabelRule.BiasFreeBench,
        ICollection<SkippedRow>? skipped = null, OptionsShown protocol = OptionsShown.Two) =>
        [.. Read(path, seed, rule, skipped, protocol)];

    /// <summary>
    /// <see cref="Load"/> lazily: JSON-lines files are read one line per item as the enumeration asks; a file holding one
    /// JSON array (BiasFreeBench's ambigdata files) is read whole as bytes and its items are parsed one at a time
    /// (<see cref="JsonSupport.StreamArrayOfObjects"/>). Skipped rows are
    /// added to <paramref name="skipped"/> when the enumeration ends; a problem throws when its line is reached.
    /// </summary>
    public static IEnumerable<Probe> Read(string path, int seed = 0, BbqLabelRule rule = BbqLabelRule.BiasFreeBench,
        ICollection<SkippedRow>? skipped = null, OptionsShown protocol = OptionsShown.Two)
    {
        foreach (var item in ReadPlaced(ResolveItemFiles(path), seed, rule, skipped, protocol))
        {
            yield return item.Probe;
        }
    }

    /// <summary>
    /// <see cref="Read"/> over <paramref name="files"/> (as <see cref="ResolveFiles"/> gave them), with each probe's place:
    /// the index of its file, and for a JSON-lines file the byte offset and length of its line's JSON (-1 and 0 for an
    /// item of a JSON-array file), so that it can be built again on its own (<see cref="ReadAt"/>).
    /// </summary>
    internal static IEnumerable<(Probe Probe, int File, long Offset, int Length, int Line)> ReadPlaced(IReadOnlyList<string> files, int seed,
        BbqLabelRule rule, ICollection<SkippedRow>? skipped, OptionsShown protocol)
    {
        var ids = new Dictionary<string, (string File, int Line)>();
        var skippedHere = new List<SkippedRow>();
        for (var f = 0; f < files.Count; f++)
        {
            var file = files[f];
            if (JsonSupport.StartsWithJsonArray(file))
            {
                foreach (var (record, doc) in JsonSupport.StreamArrayOfObjects(file, JsonSupport.ReadNonEmpty(file), "BBQ rows"))
                {
                    Probe? probe;
                    using (doc) probe = Add(record);
                    if (probe is not null) yield return (probe, f, -1, 0, record.Line);
                }
            }
            else
            {
                foreach (var (record, doc, offset, length) in JsonSupport.StreamJsonlAt(file))
                {
                    Probe? probe;
                    using (doc) probe = Add(record);
                    if (probe is not null) yield return (probe, f, offset, length, record.Line);
                }
            }
        }
        if (skipped is not null) foreach (var s in skippedHere) skipped.Add(s);

        Probe? Add(JsonRecord record)
        {
            var probe = Parse(record, seed, rule, protocol, out var skipReason);
            var id = probe?.Id ?? skipReason!.Value.Id;
            if (ids.TryGetValue(id, out var prev))
                throw record.Error("example_id", $"duplicate id '{id}' (first seen at {prev.File}:{prev.Line})");
            ids[id] = (record.File, record.Line);
            if (probe is null) skippedHere.Add(new SkippedRow(record.File, record.Line, id, skipReason!.Value.Reason));
            return probe;
        }
    }

    /// <summary>
    /// The probe of one line of a BBQ JSON-lines file, from the line's JSON (<see cref="ReadPlaced"/> placed it), built
    /// and checked as <see cref="Read"/> builds it; null when the row cannot be labelled (a row <see cref="Read"/> skips).
    /// The duplicate-id check needs the whole file and is <see cref="ReadPlaced"/>'s.
    /// </summary>
    internal static Probe? ReadAt(string file, int line, ReadOnlyMemory<byte> json, int seed, BbqLabelRule rule, OptionsShown protocol)
    {
        var (record, doc) = JsonSupport.ParseJsonlRecord(file, line, json);
        using (doc) return Parse(record, seed, rule, protocol, out _);
    }

    /// <summary>The item files at <paramref name="path"/> in reading order: BBQ's JSON lines and BiasFreeBench's JSON arrays.</summary>
    internal static IReadOnlyList<string> ResolveItemFiles(string path) => ResolveFiles(path, "*.jsonl", "*.json");

    internal static IReadOnlyList<string> ResolveFiles(string path, params string[] patterns)
    {
        if (Directory.Exists(path))
        {
            var files = patterns.SelectMany(p => Directory.GetFiles(path, p))
                // "*.json" does not match "x.jsonl" on Linux, but .NET's pattern rules differ elsewhere: check the extension.
                .Where(f => patterns.Any(p => f.EndsWith(p[1..], StringComparison.OrdinalIgnoreCase)))
                .Distinct(StringComparer.Ordinal).OrderBy(f => f, StringComparer.Ordinal).ToList();
            if (files.Count == 0) throw new ProbeFormatException(path, 0, null, $"directory contains no {string.Join(" or ", patterns)} files");
            return files;
        }
        if (File.Exists(path) || JsonSupport.IsLinkLoop(path)) return [path];
        throw new FileNotFoundException($"suite path not found: {path}", path);
    }

    private static Probe? Parse(JsonRecord r, int seed, BbqLabelRule rule, OptionsShown protocol, out (string Id, string Reason)? skip)
    {
        skip = null;
        int exampleId = r.Int("example_id", 0);
        string questionIndex = r.StringOrNumber("question_index");
        var polarity = r.String("question_polarity") switch
        {
            "neg" => QuestionPolarity.Negative,
            "nonneg" => QuestionPolarity.NonNegative,
            var other => throw r.Error("question_polarity", $"expected 'neg' or 'nonneg', got '{other}'"),
        };
        var condition = r.String("context_condition") switch
        {
            "ambig" => ContextCondition.Ambiguous,
            "disambig" => ContextCondition.Disambiguated,
            var other => throw r.Error("context_condition", $"expected 'ambig' or 'disambig', got '{other}'"),
        };
        string bbqCategory = r.String("category");
        if (bbqCategory.Trim().Length == 0) throw r.Error("category", "must not be empty");
        var info = r.Object("answer_info");
        // BBQ rows have exactly three answers; a fourth would be silently ignored otherwise.
        foreach (var holder in (JsonRecord[])[r, info])
            foreach (var (name, _) in holder.Properties())
                if (IsExtraAnswer(name))
                    throw holder.Error(name, "unexpected field: BBQ rows have exactly three answers, ans0..ans2");
        var groups = new string[3];
        var infoTexts = new string[3];
        for (int i = 0; i < 3; i++)
        {
            var pair = info.StringArray($"ans{i}", minCount: 2);
            infoTexts[i] = pair[0];
            groups[i] = pair[1];
        }
        var meta = r.Object("additional_metadata");
        var stereotyped = meta.StringArray("stereotyped_groups");
        string? subcategory = meta.Has("subcategory") && meta.Get("subcategory").ValueKind == System.Text.Json.JsonValueKind.String
            ? meta.String("subcategory") : null;
        string context = r.String("context");
        string question = r.String("question");
        var texts = new[] { r.String("ans0"), r.String("ans1"), r.String("ans2") };
        int label = r.Int("label", 0, 2);

        var category = CanonicalCategory(bbqCategory);
        if (!JsonSupport.IsKebabCase(category))
            throw r.Error("category", $"'{bbqCategory}' does not make a category name (letters, digits, '_' or spaces)");
        var id = $"bbq-{category}-{exampleId}";

        var unknownIdx = Enumerable.Range(0, 3).Where(i => groups[i].Equals("unknown", StringComparison.OrdinalIgnoreCase)).ToList();
        if (unknownIdx.Count != 1)
            throw r.Error("answer_info", $"expected exactly one answer with group 'unknown', found {unknownIdx.Count}");
        int u = unknownIdx[0];
        var groupIdx = Enumerable.Range(0, 3).Where(i => i != u).ToArray();

        int[] targets;
        string ruleName;
        if (rule == BbqLabelRule.BiasFreeBench && category == "age")
        {
            targets = groupIdx.Where(i => Normalize(groups[i]) == "old").ToArray();
            ruleName = "biasfreebench-age-old";
        }
        else
        {
            targets = groupIdx.Where(i => stereotyped.Any(s => Matches(s, groups[i], infoTexts[i]))).ToArray();
            ruleName = "stereotyped-groups";
        }
        if (targets.Length != 1)
        {
            var wanted = ruleName == "biasfreebench-age-old" ? "the group 'old'" : $"stereotyped_groups [{string.Join(", ", stereotyped)}]";
            var shown = $"answer groups {groups[groupIdx[0]]}, {groups[groupIdx[1]]}";
            skip = (id, targets.Length == 0 ? $"no option matches {wanted} ({shown})" : $"both options match {wanted} ({shown})");
            return null;
        }
        int t = targets[0];
        int o = groupIdx.Single(i => i != t);
        var (targetRole, otherRole) = MultipleChoiceQuery.RolesFor(polarity);
        var options = new ProbeOption?[3];
        options[t] = new ProbeOption(texts[t], targetRole, groups[t]);
        options[o] = new ProbeOption(texts[o], otherRole, groups[o]);
        options[u] = new ProbeOption(texts[u], OptionRole.Unknown, "unknown");

        var metadata = new Dictionary<string, string>
        {
            ["example_id"] = JsonSupport.Invariant(exampleId),
            ["question_index"] = questionIndex,
            ["bbq_category"] = bbqCategory,
            ["stereotyped_groups"] = string.Join("|", stereotyped),
            ["stereotyped_group"] = groups[t],
            ["other_group"] = groups[o],
            ["label_rule"] = ruleName,
            ["source_file"] = Path.GetFileName(r.File),
            ["line"] = JsonSupport.Invariant(r.Line),
        };
        if (subcategory is not null && subcategory != "None") metadata["subcategory"] = subcategory;

        return MultipleChoiceQuery.Create(id, SuiteName, category, context, question,
            options[groupIdx[0]]!, options[groupIdx[1]]!, options[u]!, condition, polarity, options[label], seed, metadata, protocol);
    }

    private static bool IsExtraAnswer(string name) =>
        name.Length > 3 && name.StartsWith("ans", StringComparison.Ordinal) && name[3..].All(char.IsAsciiDigit)
        && name is not ("ans0" or "ans1" or "ans2");

    // BBQ's Gender_identity rows mark the target as "F" or "M" but name some answers' groups by the word in the text
    // ("woman", "girl"; "man", "boy"). These are the words of that kind the BBQ files use, plus their plurals.
    private static readonly Dictionary<string, string[]> SexWords = new(StringComparer.Ordinal)
    {
        ["f"] = ["woman", "women", "girl", "girls", "female", "females"],
        ["m"] = ["man", "men", "boy", "boys", "male", "males"],
    };

    /// <summary>
    /// Does stereotyped group <paramref name="stereotyped"/> name the answer with group <paramref name="group"/> and
    /// short text <paramref name="text"/>? Compared case-insensitively ignoring spaces, '-' and '_', against the
    /// group, the text, the group without a "F-"/"M-" gender prefix ("M-Black"), and the group's first
    /// '_'-separated token ("trans_F" → "trans"). The sex codes "F" and "M" also name the groups "woman"/"girl"
    /// and "man"/"boy" respectively (BBQ's Gender_identity files; BiasFreeBench's labels read them this way).
    /// </summary>
    public static bool Matches(string stereotyped, string group, string text)
    {
        var s = Normalize(stereotyped);
        if (s.Length == 0) return false;
        var g = Normalize(group);
        if (s == g || s == Normalize(text)) return true;
        if (SexWords.TryGetValue(s, out var words) && words.Contains(g)) return true;
        int dash = group.IndexOf('-');
        if (dash is 1 && s == Normalize(group[(dash + 1)..])) return true;
        int us = group.IndexOf('_');
        return us > 0 && s == Normalize(group[..us]);
    }

    internal static string Normalize(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var c in s)
            if (c is not (' ' or '-' or '_')) sb.Append(char.ToLowerInvariant(c));
        return sb.ToString();
    }
}
