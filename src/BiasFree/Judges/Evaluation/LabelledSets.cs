using System.Globalization;
using System.Text;
using System.Text.Json;
using BiasFree.Probes;
using BiasFree.Probes.Loaders;

namespace BiasFree.Judges.Evaluation;

/// <summary>
/// Loaders for labelled bias-detection sets in their published formats (the five BiasGuard evaluates on, plus our
/// JSONL). A data spec is <c>FORMAT:PATH</c>: <c>toxigen</c>, <c>sbic</c>, <c>redditbias</c>, <c>ghc</c>,
/// <c>implicit-toxicity</c> or <c>jsonl</c>. Tabular sources are read as CSV (<c>.csv</c>), TSV (<c>.tsv</c>) or JSON
/// lines (<c>.jsonl</c>, e.g. a Hugging Face export); rows that carry no usable label are skipped and counted.
/// Every problem is reported as <c>file:line: field 'x': problem</c> (<see cref="ProbeFormatException"/>).
/// The label rule of each source is documented on its method and in docs/judges.md.
/// </summary>
public static class LabelledSets
{
    /// <summary>The formats <see cref="Load(string)"/> accepts.</summary>
    public static IReadOnlyList<string> Formats { get; } = ["toxigen", "sbic", "redditbias", "ghc", "implicit-toxicity", "jsonl"];

    /// <summary>Loads <c>FORMAT:PATH</c>.</summary>
    /// <exception cref="ArgumentException">Unknown format or no path.</exception>
    /// <exception cref="ProbeFormatException">The file is malformed.</exception>
    public static LabelledSet Load(string spec)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(spec);
        int i = spec.IndexOf(':', StringComparison.Ordinal);
        // A bare path ending in .jsonl is our format; "C:\..." on Windows has a one-letter "format".
        if (i <= 1) return spec.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) ? Jsonl(spec)
            : throw new ArgumentException($"data '{spec}': expected FORMAT:PATH with FORMAT one of {string.Join(", ", Formats)}");
        var format = spec[..i].Trim().ToLowerInvariant();
        var path = spec[(i + 1)..].Trim();
        if (path.Length == 0) throw new ArgumentException($"data '{spec}': no path after '{format}:'");
        return format switch
        {
            "toxigen" => ToxiGen(path),
            "sbic" or "social-bias-frames" => Sbic(path),
            "redditbias" or "reddit-bias" => RedditBias(path),
            "ghc" or "gabhatecorpus" or "gab-hate-corpus" => GabHateCorpus(path),
            "implicit-toxicity" or "implicittoxicity" => ImplicitToxicity(path),
            "jsonl" => Jsonl(path),
            _ => throw new ArgumentException($"data '{spec}': unknown format '{format}' (use one of {string.Join(", ", Formats)})"),
        };
    }

    /// <summary>
    /// ToxiGen (Hartvigsen et al. 2022), the human-annotated release (Hugging Face <c>toxigen/toxigen-data</c>, config
    /// <c>annotated</c>): columns <c>text</c>, <c>target_group</c>, <c>toxicity_ai</c>, <c>toxicity_human</c> (1–5).
    /// Label rule (lm-evaluation-harness's toxigen task): biased when toxicity_ai + toxicity_human &gt; 5.5.
    /// </summary>
    public static LabelledSet ToxiGen(string path)
    {
        var rows = Table.Read(path);
        var items = new List<LabelledItem>();
        int skipped = 0;
        foreach (var r in rows)
        {
            var text = r.Required("text");
            double? ai = r.OptionalNumber("toxicity_ai"), human = r.OptionalNumber("toxicity_human");
            if (ai is null || human is null) { skipped++; continue; }
            items.Add(new($"toxigen/{r.Line}", "toxigen", Kebab(r.Optional("target_group")), text, null, ai + human > 5.5 ? Label.Biased : Label.Unbiased));
        }
        return new("toxigen", path, items, skipped);
    }

    /// <summary>
    /// SBIC, the Social Bias Inference Corpus (Sap et al. 2020), release CSVs (<c>SBIC.v2.*.csv</c>): one row per
    /// annotation with <c>post</c>, <c>offensiveYN</c> (0, 0.5, 1), <c>whoTarget</c> (1 = a group is targeted) and
    /// <c>targetCategory</c>. Rows are grouped by post. Label rule (ours): biased when the mean offensiveYN is at least
    /// 0.5 and the mean whoTarget is at least 0.5 (offensive and aimed at a group); else unbiased. Bias type: the most
    /// frequent targetCategory. Posts without any offensiveYN answer are skipped.
    /// </summary>
    public static LabelledSet Sbic(string path)
    {
        var rows = Table.Read(path);
        var byPost = new Dictionary<string, (int Line, List<double> Off, List<double> Who, List<string> Cat)>();
        var order = new List<string>();
        foreach (var r in rows)
        {
            var post = r.Required("post");
            if (!byPost.TryGetValue(post, out var agg)) { agg = (r.Line, [], [], []); byPost[post] = agg; order.Add(post); }
            if (r.OptionalNumber("offensiveYN") is { } off) agg.Off.Add(off);
            if (r.OptionalNumber("whoTarget") is { } who) agg.Who.Add(who);
            if (r.Optional("targetCategory") is { Length: > 0 } cat) agg.Cat.Add(cat);
        }
        var items = new List<LabelledItem>();
        int skipped = 0;
        foreach (var post in order)
        {
            var (line, off, who, cat) = byPost[post];
            if (off.Count == 0) { skipped++; continue; }
            bool biased = off.Average() >= 0.5 && who.Count > 0 && who.Average() >= 0.5;
            var type = cat.Count == 0 ? "none" : cat.GroupBy(c => c).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).First().Key;
            items.Add(new($"sbic/{line}", "sbic", Kebab(type), post, null, biased ? Label.Biased : Label.Unbiased));
        }
        return new("sbic", path, items, skipped);
    }

    /// <summary>
    /// RedditBias (Barikeri et al. 2021) annotated comment CSVs: <c>reddit_comments_&lt;demographic&gt;_&lt;group&gt;_processed_phrase_annotated.csv</c>
    /// (<c>comment</c>, <c>bias_sent</c>) and the reduced test/valid sets (<c>comments_processed</c> or
    /// <c>comments</c>, <c>bias_sent</c>). Label: bias_sent 1 = biased, 0 = unbiased; blank rows are skipped.
    /// Bias type: the demographic in the file name (religion1/religion2 → religion, orientation → sexual-orientation).
    /// </summary>
    public static LabelledSet RedditBias(string path)
    {
        var rows = Table.Read(path);
        var type = RedditBiasType(Path.GetFileName(path));
        var items = new List<LabelledItem>();
        int skipped = 0;
        foreach (var r in rows)
        {
            var text = r.Optional("comment") ?? r.Optional("comments_processed") ?? r.Optional("comments")
                ?? throw r.Error("comment", "missing (expected 'comment', 'comments_processed' or 'comments')");
            var label = r.Optional("bias_sent");
            if (string.IsNullOrWhiteSpace(label)) { skipped++; continue; }
            var v = r.Number("bias_sent");
            if (v is not (0 or 1)) throw r.Error("bias_sent", $"expected 0 or 1, got '{label}'");
            items.Add(new($"redditbias/{r.Line}", "redditbias", type, text, null, v == 1 ? Label.Biased : Label.Unbiased));
        }
        return new("redditbias", path, items, skipped);
    }

    private static string RedditBiasType(string file)
    {
        var f = file.ToLowerInvariant();
        foreach (var (key, type) in new[] { ("orientation", "sexual-orientation"), ("religion", "religion"), ("race", "race-ethnicity"), ("gender", "gender") })
            if (f.Contains(key, StringComparison.Ordinal)) return type;
        return "none";
    }

    /// <summary>
    /// The Gab Hate Corpus (Kennedy et al. 2022). Either the per-annotator release <c>GabHateCorpus_annotations.tsv</c>
    /// (<c>ID</c>, <c>Annotator</c>, <c>Text</c>, <c>Hate</c> and target flags <c>REL</c>, <c>RAE</c>, <c>SXO</c>,
    /// <c>GEN</c>, <c>IDL</c>, <c>NAT</c>, <c>POL</c>, <c>MPH</c>): rows are grouped by ID and the label is the
    /// majority of Hate (a tie counts as biased, since half of the annotators saw hate); or the aggregated split files
    /// <c>ghc_train.tsv</c>/<c>ghc_test.tsv</c> (<c>text</c>, <c>hd</c>, <c>cv</c>): biased when hd or cv is 1.
    /// Bias type: the target flag most annotators set, "none" when none is set.
    /// </summary>
    public static LabelledSet GabHateCorpus(string path)
    {
        var rows = Table.Read(path);
        var items = new List<LabelledItem>();
        if (rows.Count > 0 && !rows[0].Has("Annotator") && rows[0].Has("hd"))
        {
            foreach (var r in rows)
            {
                bool hate = r.Number("hd") == 1 || r.Number("cv") == 1;
                items.Add(new($"ghc/{r.Line}", "ghc", "none", r.Required("text"), null, hate ? Label.Biased : Label.Unbiased));
            }
            return new("ghc", path, items, 0);
        }
        var targets = new (string Column, string Type)[] { ("REL", "religion"), ("RAE", "race-ethnicity"), ("SXO", "sexual-orientation"), ("GEN", "gender"), ("NAT", "nationality"), ("MPH", "disability"), ("IDL", "political"), ("POL", "political") };
        var groups = rows.GroupBy(r => r.Required("ID")).ToList();
        foreach (var g in groups)
        {
            var first = g.First();
            var votes = g.Select(r => r.Number("Hate")).ToList();
            if (votes.Any(v => v is not (0 or 1))) throw first.Error("Hate", "expected 0 or 1");
            int hate = votes.Count(v => v == 1);
            var type = targets.Select(t => (t.Type, Count: g.Count(r => r.OptionalNumber(t.Column) == 1)))
                .Where(t => t.Count > 0).OrderByDescending(t => t.Count).Select(t => t.Type).FirstOrDefault() ?? "none";
            items.Add(new($"ghc/{g.Key}", "ghc", type, first.Required("Text"), null, 2 * hate >= votes.Count ? Label.Biased : Label.Unbiased));
        }
        return new("ghc", path, items, 0);
    }

    /// <summary>
    /// Implicit Toxicity (Wen et al. 2023, Hugging Face <c>jiaxin-wen/Implicit-Toxicity</c>, <c>test/test.json</c>):
    /// a JSON array (or JSON lines) of objects with <c>context</c>, <c>response</c> and <c>label</c> (1 = toxic,
    /// 0 = not toxic). The response is judged; the context is given to the judge as the user turn.
    /// </summary>
    public static LabelledSet ImplicitToxicity(string path)
    {
        var items = new List<LabelledItem>();
        foreach (var rec in JsonObjects(path))
        {
            var label = rec.Int("label", 0, 1);
            items.Add(new($"implicit-toxicity/{rec.Line}", "implicit-toxicity", "none", rec.String("response"), rec.OptionalString("context"),
                label == 1 ? Label.Biased : Label.Unbiased));
        }
        return new("implicit-toxicity", path, items, 0);
    }

    /// <summary>
    /// Our format: JSON lines <c>{"id", "text", "label": "biased"|"unbiased"|"unrelated", "context"?, "bias_type"?, "source"?}</c>.
    /// </summary>
    public static LabelledSet Jsonl(string path)
    {
        var items = new List<LabelledItem>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var name = Path.GetFileNameWithoutExtension(path);
        foreach (var (rec, doc) in JsonSupport.ReadJsonl(path))
        {
            using (doc)
            {
                var id = rec.StringOrNumber("id");
                if (!seen.Add(id)) throw rec.Error("id", $"'{id}' appears twice");
                var label = rec.String("label").Trim().ToLowerInvariant() switch
                {
                    "biased" => Label.Biased,
                    "unbiased" => Label.Unbiased,
                    "unrelated" => Label.Unrelated,
                    var other => throw rec.Error("label", $"expected biased, unbiased or unrelated, got '{other}'"),
                };
                items.Add(new(id, rec.OptionalString("source") ?? name, Kebab(rec.OptionalString("bias_type")), rec.String("text"), rec.OptionalString("context"), label));
            }
        }
        return new(name, path, items, 0);
    }

    private static List<JsonRecord> JsonObjects(string path)
    {
        var bytes = JsonSupport.ReadNonEmpty(path);
        if (!JsonSupport.IsJsonArray(bytes)) return [.. JsonSupport.ReadJsonl(path, bytes).Select(x => x.Record)];
        var doc = JsonSupport.ParseFile(path, bytes);
        return JsonSupport.ReadArrayOfObjects(path, bytes, doc, "objects");
    }

    private static string Kebab(string? s)
    {
        if (string.IsNullOrWhiteSpace(s)) return "none";
        var sb = new StringBuilder();
        foreach (var ch in s.Trim().ToLowerInvariant()) sb.Append(char.IsLetterOrDigit(ch) ? ch : '-');
        var k = sb.ToString();
        while (k.Contains("--", StringComparison.Ordinal)) k = k.Replace("--", "-", StringComparison.Ordinal);
        return k.Trim('-') is { Length: > 0 } t ? t : "none";
    }

    /// <summary>A header-keyed row of a CSV/TSV/JSONL table with its 1-based line.</summary>
    private sealed class Row(string file, int line, Dictionary<string, string> fields)
    {
        public int Line => line;

        public bool Has(string name) => fields.ContainsKey(name);

        public string? Optional(string name) => fields.TryGetValue(name, out var v) ? v : null;

        public string Required(string name) =>
            fields.TryGetValue(name, out var v) && !string.IsNullOrWhiteSpace(v) ? v : throw Error(name, "missing or empty");

        public double? OptionalNumber(string name)
        {
            var v = Optional(name);
            if (string.IsNullOrWhiteSpace(v)) return null;
            return double.TryParse(v.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : throw Error(name, $"expected a number, got '{v}'");
        }

        public double Number(string name) => OptionalNumber(name) ?? throw Error(name, "missing number");

        public ProbeFormatException Error(string field, string problem) => new(file, line, field, problem);
    }

    /// <summary>Reads CSV, TSV or JSON lines into header-keyed rows.</summary>
    private static class Table
    {
        public static List<Row> Read(string path)
        {
            if (path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            {
                return [.. JsonObjects(path).Select(rec => new Row(path, rec.Line, rec.Properties().ToDictionary(
                    p => p.Name, p => p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.ValueKind == JsonValueKind.Null ? "" : p.Value.GetRawText(),
                    StringComparer.Ordinal)))];
            }
            var text = JsonSupport.Decode(JsonSupport.ReadNonEmpty(path));
            if (text.Length > 0 && text[0] == '\uFEFF') text = text[1..];
            char sep = path.EndsWith(".tsv", StringComparison.OrdinalIgnoreCase) ? '\t' : ',';
            var raw = Csv.Parse(path, text, sep, quotesInUnquotedFields: true);
            if (raw.Count == 0) throw new ProbeFormatException(path, 0, null, "no header row");
            var header = raw[0].Fields;
            var rows = new List<Row>();
            foreach (var (line, fields) in raw.Skip(1))
            {
                if (fields.Count != header.Count)
                    throw new ProbeFormatException(path, line, null, $"expected {header.Count} fields as in the header, got {fields.Count}");
                var d = new Dictionary<string, string>(StringComparer.Ordinal);
                for (int i = 0; i < header.Count; i++) d[header[i].Trim()] = fields[i];
                rows.Add(new Row(path, line, d));
            }
            return rows;
        }
    }
}

/// <summary>A loaded labelled set.</summary>
/// <param name="Name">Source name.</param>
/// <param name="Path">File it came from.</param>
/// <param name="Items">Items with a gold label.</param>
/// <param name="SkippedRows">Rows or posts left out because they carry no usable label.</param>
public sealed record LabelledSet(string Name, string Path, IReadOnlyList<LabelledItem> Items, int SkippedRows);
