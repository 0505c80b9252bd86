using System.Text.Json;

namespace BiasFree.Probes.Loaders;

/// <summary>
/// Loads StereoSet's <c>dev.json</c> (<c>{"version":…, "data": {"intersentence": […], "intrasentence": […]}}</c>).
/// Each example becomes a multiple-choice probe with all three sentences shown (order from seed + id):
/// gold label <c>stereotype</c> → <see cref="OptionRole.Stereotyped"/>, <c>anti-stereotype</c> →
/// <see cref="OptionRole.AntiStereotyped"/>, <c>unrelated</c> → <see cref="OptionRole.Unknown"/> with group
/// "unrelated". There is no correct option. Intersentence examples are emitted first, then intrasentence.
/// </summary>
public static class StereoSetLoader
{
    public const string SuiteName = "stereoset";
    public const string IntrasentenceQuestion = "Which option fits best in place of BLANK?";
    public const string IntersentenceQuestion = "Which sentence most naturally comes next?";

    public static string CanonicalCategory(string biasType) => biasType.ToLowerInvariant() switch
    {
        "race" => "race-ethnicity",
        "gender" => "gender-identity",
        "religion" => "religion",
        "profession" => "profession",
        var other => other.Replace('_', '-').Replace(' ', '-'),
    };

    /// <remarks>
    /// Parsed whole, not streamed like the JSON-lines and JSON-array suites: the probes come intersentence first while
    /// StereoSet's own file lists intrasentence first, so emitting in this order needs the whole file (or two passes), and
    /// the dataset is a fixed public file of a few thousand examples, so what this holds does not grow with a run.
    /// </remarks>
    public static IReadOnlyList<Probe> Load(string path, int seed = 0)
    {
        var bytes = JsonSupport.ReadNonEmpty(path);
        using var doc = JsonSupport.ParseFile(path, bytes);
        var root = new JsonRecord(path, 1, doc.RootElement);
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new ProbeFormatException(path, 1, null, $"expected a JSON object, got {JsonRecord.Kind(doc.RootElement)}");
        var data = root.Object("data");
        var lines = JsonSupport.ObjectStartLines(bytes, 3)
            .Where(l => l.Parent is "intersentence" or "intrasentence").ToList();
        var probes = new List<Probe>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        int objectNo = 0;
        // Items are visited in document order so the i-th depth-3 object is the i-th item seen.
        foreach (var split in data.Properties())
        {
            if (split.Name is not ("intersentence" or "intrasentence")) continue;
            if (split.Value.ValueKind != JsonValueKind.Array)
                throw data.Error(split.Name, $"expected array, got {JsonRecord.Kind(split.Value)}");
            int i = 0;
            foreach (var item in split.Value.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object)
                    throw data.Error($"{split.Name}[{i}]", $"expected object, got {JsonRecord.Kind(item)}");
                var r = new JsonRecord(path, lines[objectNo++].Line, item);
                var probe = Parse(r, split.Name, seed);
                if (!ids.Add(probe.Id)) throw r.Error("id", $"duplicate id '{probe.Id}'");
                probes.Add(probe);
                i++;
            }
        }
        return probes.OrderBy(p => p.Metadata["split"] == "intersentence" ? 0 : 1).ToList();
    }

    private static Probe Parse(JsonRecord r, string split, int seed)
    {
        string exampleId = r.String("id");
        string target = r.String("target");
        string biasType = r.String("bias_type");
        if (biasType is not ("race" or "religion" or "gender" or "profession"))
            throw r.Error("bias_type", biasType.Length == 0 ? "must not be empty"
                : $"unknown bias type '{biasType}'; StereoSet uses race, religion, gender, profession");
        string context = r.String("context");
        if (split == "intrasentence" && !context.Contains("BLANK", StringComparison.Ordinal))
            throw r.Error("context", "intrasentence context must contain BLANK");
        var sentences = r.Array("sentences");
        var byLabel = new Dictionary<string, (string Text, string Id)>();
        int k = 0;
        foreach (var s in sentences.EnumerateArray())
        {
            var field = $"sentences[{k}]";
            if (s.ValueKind != JsonValueKind.Object) throw r.Error(field, $"expected object, got {JsonRecord.Kind(s)}");
            var sr = new JsonRecord(r.File, r.Line, s, field);
            var gold = sr.String("gold_label");
            if (gold is not ("stereotype" or "anti-stereotype" or "unrelated"))
                throw sr.Error("gold_label", $"expected 'stereotype', 'anti-stereotype' or 'unrelated', got '{gold}'");
            if (byLabel.ContainsKey(gold)) throw sr.Error("gold_label", $"second sentence labelled '{gold}'");
            byLabel[gold] = (sr.String("sentence"), sr.String("id"));
            k++;
        }
        if (byLabel.Count != 3)
            throw r.Error("sentences", $"expected one stereotype, one anti-stereotype and one unrelated sentence, got {k} sentences");

        var id = $"stereoset-{split}-{exampleId}";
        var options = new List<ProbeOption>
        {
            new(byLabel["stereotype"].Text, OptionRole.Stereotyped, target),
            new(byLabel["anti-stereotype"].Text, OptionRole.AntiStereotyped, target),
            new(byLabel["unrelated"].Text, OptionRole.Unknown, "unrelated"),
        };
        var shown = StableRandom.For(seed, id).Shuffle(options);
        var question = split == "intrasentence" ? IntrasentenceQuestion : IntersentenceQuestion;
        return new Probe
        {
            Id = id,
            Suite = SuiteName,
            Scenario = Scenario.MultipleChoice,
            Category = CanonicalCategory(biasType),
            UserTurns = [MultipleChoiceQuery.Format(context, question, shown.Select(o => o.Text).ToList())],
            Options = shown,
            ContextText = context,
            Question = question,
            Metadata = new Dictionary<string, string>
            {
                ["split"] = split,
                ["stereoset_id"] = exampleId,
                ["target"] = target,
                ["bias_type"] = biasType,
                ["stereotype_sentence_id"] = byLabel["stereotype"].Id,
                ["anti_stereotype_sentence_id"] = byLabel["anti-stereotype"].Id,
                ["unrelated_sentence_id"] = byLabel["unrelated"].Id,
                ["line"] = JsonSupport.Invariant(r.Line),
            },
        };
    }
}
