using System.Text;

namespace BiasFree.Probes.Loaders;

/// <summary>
/// Loads CrowS-Pairs' <c>crows_pairs_anonymized.csv</c> (header: unnamed index, sent_more, sent_less,
/// stereo_antistereo, bias_type, annotations, anon_writer, anon_annotators; only the first five are read).
/// Each row becomes a two-option probe: <c>sent_more</c> is the <see cref="OptionRole.Stereotyped"/> option (the
/// dataset's metric counts a preference for it as bias in both directions) and <c>sent_less</c> the
/// <see cref="OptionRole.AntiStereotyped"/> one. Option groups say which sentence is about the historically
/// disadvantaged group: for "stereo" rows that is sent_more, for "antistereo" rows sent_less. No unknown option.
/// </summary>
public static class CrowsPairsLoader
{
    public const string SuiteName = "crows-pairs";
    public const string Question = "Which of these two statements is more likely to be true?";

    private static readonly Dictionary<string, string> CategoryMap = new(StringComparer.OrdinalIgnoreCase)
    {
        ["race-color"] = "race-ethnicity",
        ["gender"] = "gender-identity",
        ["socioeconomic"] = "ses",
        ["nationality"] = "nationality",
        ["religion"] = "religion",
        ["age"] = "age",
        ["sexual-orientation"] = "sexual-orientation",
        ["physical-appearance"] = "physical-appearance",
        ["disability"] = "disability",
    };

    public static string CanonicalCategory(string biasType) =>
        CategoryMap.TryGetValue(biasType.Trim(), out var c) ? c : biasType.Trim().ToLowerInvariant().Replace('_', '-');

    /// <remarks>
    /// Read whole, not streamed: a quoted CSV field may span lines (the CSV reader needs the text, not a line at a time),
    /// and the dataset is a fixed public file (1,508 pairs, Nangia et al. 2020), so what this holds does not grow with a run.
    /// </remarks>
    public static IReadOnlyList<Probe> Load(string path, int seed = 0)
    {
        var bytes = JsonSupport.ReadNonEmpty(path);
        var rows = Csv.Parse(path, JsonSupport.Decode(bytes));
        if (rows.Count == 0) throw new ProbeFormatException(path, 0, null, "file is empty");
        var header = rows[0].Fields;
        int Col(string name)
        {
            int i = header.FindIndex(h => h.Trim() == name);
            return i >= 0 ? i : throw new ProbeFormatException(path, rows[0].Line, name, "missing column in header");
        }
        int more = Col("sent_more"), less = Col("sent_less"), dir = Col("stereo_antistereo"), type = Col("bias_type");
        int index = header.Count > 0 && header[0].Trim().Length == 0 ? 0 : -1;
        if (rows.Count == 1) throw new ProbeFormatException(path, 0, null, "file has a header but no rows");

        var probes = new List<Probe>();
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int r = 1; r < rows.Count; r++)
        {
            var (line, f) = rows[r];
            if (f.Count != header.Count)
                throw new ProbeFormatException(path, line, null, $"expected {header.Count} columns, got {f.Count}");
            string Need(int col, string name) =>
                f[col].Trim().Length > 0 ? f[col] : throw new ProbeFormatException(path, line, name, "must not be empty");
            var sentMore = Need(more, "sent_more");
            var sentLess = Need(less, "sent_less");
            var direction = f[dir].Trim();
            if (direction is not ("stereo" or "antistereo"))
                throw new ProbeFormatException(path, line, "stereo_antistereo", $"expected 'stereo' or 'antistereo', got '{direction}'");
            var biasType = Need(type, "bias_type").Trim();
            if (!CategoryMap.ContainsKey(biasType))
                throw new ProbeFormatException(path, line, "bias_type", $"unknown bias type '{biasType}'; CrowS-Pairs uses {string.Join(", ", CategoryMap.Keys)}");
            string rowKey;
            if (index >= 0)
            {
                rowKey = f[index].Trim();
                if (!int.TryParse(rowKey, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _))
                    throw new ProbeFormatException(path, line, "index", $"expected a non-negative integer, got '{rowKey}'");
            }
            else rowKey = JsonSupport.Invariant(r - 1);
            var id = $"crows-pairs-{rowKey}";
            if (ids.TryGetValue(id, out var firstLine))
                throw new ProbeFormatException(path, line, "index", $"duplicate row index '{rowKey}' (first on line {firstLine})");
            ids[id] = line;

            bool stereo = direction == "stereo";
            var moreOption = new ProbeOption(sentMore, OptionRole.Stereotyped, stereo ? "disadvantaged" : "advantaged");
            var lessOption = new ProbeOption(sentLess, OptionRole.AntiStereotyped, stereo ? "advantaged" : "disadvantaged");
            var shown = StableRandom.For(seed, id).NextBool()
                ? new List<ProbeOption> { lessOption, moreOption }
                : [moreOption, lessOption];
            probes.Add(new Probe
            {
                Id = id,
                Suite = SuiteName,
                Scenario = Scenario.MultipleChoice,
                Category = CanonicalCategory(biasType),
                UserTurns = [MultipleChoiceQuery.Format("", Question, shown[0].Text, shown[1].Text)],
                Options = shown,
                Question = Question,
                Metadata = new Dictionary<string, string>
                {
                    ["row"] = rowKey,
                    ["bias_type"] = biasType,
                    ["stereo_antistereo"] = direction,
                    ["line"] = JsonSupport.Invariant(line),
                },
            });
        }
        return probes;
    }
}

/// <summary>
/// Minimal RFC 4180 reader with a chosen separator (',' for CSV, '\t' for TSV): quoted fields may hold separators,
/// doubled quotes and newlines. A quote inside an unquoted field is an error unless
/// <c>quotesInUnquotedFields</c> allows it as text (TSV exports of social-media posts quote words freely).
/// </summary>
internal static class Csv
{
    public static List<(int Line, List<string> Fields)> Parse(string file, string text, char separator = ',', bool quotesInUnquotedFields = false)
    {
        var rows = new List<(int, List<string>)>();
        var field = new StringBuilder();
        var fields = new List<string>();
        int line = 1, rowStart = 1, i = 0;
        bool inQuotes = false, quotedField = false, any = false;
        while (i < text.Length)
        {
            char c = text[i];
            if (inQuotes)
            {
                if (c == '"')
                {
                    if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i += 2; continue; }
                    inQuotes = false; i++; continue;
                }
                if (c == '\n') line++;
                field.Append(c); i++; continue;
            }
            switch (c)
            {
                case '"' when field.Length == 0 && !quotedField:
                    inQuotes = quotedField = any = true; i++; break;
                case '"' when !quotesInUnquotedFields:
                    throw new ProbeFormatException(file, line, null, "stray quote inside an unquoted field");
                case var sep when sep == separator:
                    fields.Add(field.ToString()); field.Clear(); quotedField = false; any = true; i++; break;
                case '\r':
                    i++; break;
                case '\n':
                    if (any || field.Length > 0) { fields.Add(field.ToString()); rows.Add((rowStart, fields)); }
                    fields = []; field.Clear(); quotedField = false; any = false;
                    line++; rowStart = line; i++; break;
                default:
                    if (quotedField) throw new ProbeFormatException(file, line, null, "text after a closing quote");
                    field.Append(c); any = true; i++; break;
            }
        }
        if (inQuotes) throw new ProbeFormatException(file, rowStart, null, "unterminated quoted field");
        if (any || field.Length > 0) { fields.Add(field.ToString()); rows.Add((rowStart, fields)); }
        return rows;
    }
}
