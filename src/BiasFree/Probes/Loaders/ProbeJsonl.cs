using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace BiasFree.Probes.Loaders;

/// <summary>
/// BiasFree's own suite format: UTF-8 JSONL, one <see cref="Probe"/> per line (documented in docs/suite-format.md).
/// <see cref="Write(TextWriter, IEnumerable{Probe})"/> and <see cref="Load"/> round-trip every field exactly.
/// </summary>
public static class ProbeJsonl
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = false,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static string ScenarioName(Scenario s) => ScenarioNames.Name(s);

    public static string RoleName(OptionRole r) => r switch
    {
        OptionRole.Stereotyped => "stereotyped",
        OptionRole.AntiStereotyped => "anti-stereotyped",
        OptionRole.Unknown => "unknown",
        _ => throw new ArgumentOutOfRangeException(nameof(r)),
    };

    public static string ConditionName(ContextCondition c) => c == ContextCondition.Ambiguous ? "ambiguous" : "disambiguated";

    public static string PolarityName(QuestionPolarity p) => p == QuestionPolarity.Negative ? "negative" : "non-negative";

    /// <summary>Writes the probes to <paramref name="path"/> (UTF-8, no BOM, '\n' line ends).</summary>
    public static void Write(string path, IEnumerable<Probe> probes)
    {
        using var writer = new StreamWriter(path, append: false, new UTF8Encoding(false));
        Write(writer, probes);
    }

    /// <summary>Writes one JSON object per probe, each followed by '\n'.</summary>
    public static void Write(TextWriter writer, IEnumerable<Probe> probes)
    {
        foreach (var p in probes)
        {
            writer.Write(Serialize(p));
            writer.Write('\n');
        }
    }

    /// <summary>One probe as a single-line JSON object.</summary>
    public static string Serialize(Probe p)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("id", p.Id);
            w.WriteString("suite", p.Suite);
            w.WriteString("scenario", ScenarioName(p.Scenario));
            w.WriteString("category", p.Category);
            if (p.TaskType is not null) w.WriteString("task_type", p.TaskType);
            w.WriteStartArray("user_turns");
            foreach (var t in p.UserTurns) w.WriteStringValue(t);
            w.WriteEndArray();
            if (p.Options.Count > 0)
            {
                w.WriteStartArray("options");
                foreach (var o in p.Options)
                {
                    w.WriteStartObject();
                    w.WriteString("text", o.Text);
                    w.WriteString("role", RoleName(o.Role));
                    w.WriteString("group", o.Group);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
            }
            if (p.Context is { } c) w.WriteString("context", ConditionName(c));
            if (p.Polarity is { } pol) w.WriteString("polarity", PolarityName(pol));
            if (p.CorrectOption is { } k) w.WriteNumber("correct_option", k);
            if (p.ContextText is not null) w.WriteString("context_text", p.ContextText);
            if (p.Question is not null) w.WriteString("question", p.Question);
            if (p.Metadata.Count > 0)
            {
                w.WriteStartObject("metadata");
                foreach (var (key, value) in p.Metadata) w.WriteString(key, value);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>
    /// Reads a suite file. Every line is validated before anything is returned; a problem throws
    /// <see cref="ProbeFormatException"/> naming file, line and field. Ids must be unique within the file.
    /// </summary>
    public static IReadOnlyList<Probe> Load(string path) => [.. Read(path)];

    /// <summary>
    /// Reads a suite file lazily, one line per probe as the enumeration asks for it, with the checks of <see cref="Load"/>;
    /// a problem throws when its line is reached (enumerate once to validate a whole file). Only the ids seen so far are
    /// kept, for the duplicate check.
    /// </summary>
    /// <remarks>
    /// Each line is read with a <see cref="Utf8JsonReader"/> straight into its probe (<see cref="ProbeLineReader"/>), from
    /// one reused line buffer: no document per line, no copy of the line.
    /// </remarks>
    public static IEnumerable<Probe> Read(string path) => ReadLines(path, build: true).Select(x => x.Probe);

    /// <summary>
    /// <see cref="Read"/>'s checks and errors, with each probe built only as far as a run's validation pass needs
    /// (<see cref="ProbeLineReader.Scan"/>: id, suite, scenario, category and context).
    /// </summary>
    /// <remarks>A file of <see cref="SplitScanBytes"/> or more is scanned in two halves at once (<see cref="ScanSplit"/>).</remarks>
    public static IEnumerable<Probe> Scan(string path) => ScanSplit(path, null).Select(x => x.Probe);

    /// <summary>
    /// <see cref="Scan"/> with each probe's place in the file (<see cref="ProbePlace"/>), so that it can be read again on
    /// its own (<see cref="ProbeJsonlSuite.ReadAt"/>).
    /// </summary>
    internal static IEnumerable<(Probe Probe, ProbePlace Place)> ScanPlaces(string path) => ScanSplit(path, null);

    /// <summary>Files from this size on are scanned in two halves on two threads (when the machine has two cores or more).</summary>
    internal const long SplitScanBytes = 1 << 20;

    /// <summary>
    /// The validation scan (<see cref="ReadLines"/> with <c>build: false</c>): the same probes, places and errors in the
    /// same order, with the second half of a large file read and checked on another thread while this one reads the first.
    /// </summary>
    /// <remarks>
    /// <para><b>Why.</b> The validation pass must finish before a run's first request (a malformed line stops the run before
    /// it sends anything), so it is all start-up latency, on one core: about a tenth of a 50,000-probe cache-only rerun
    /// (docs/runs-and-reports.md, "Seventh round").</para>
    /// <para><b>Same result.</b> The file is cut at the first line start at or after <paramref name="splitAt"/> (default: half
    /// its size). The second thread counts the lines before the cut (so its line numbers and offsets are the file's), then
    /// reads its lines with the same line checks and builds each scanned probe, and stops at its first error, which it keeps.
    /// This thread reads the first half as <see cref="ReadLines"/> does, then goes on through the second half's probes in
    /// order with the one duplicate-id check, and throws the second half's error where its line comes: every line is checked
    /// in the file's order, so the first problem of the file is the one thrown, with its line (a duplicate names the first
    /// line that used the id, in either half). The empty-file error needs both halves blank.</para>
    /// </remarks>
    /// <param name="path">The suite file.</param>
    /// <param name="splitAt">Where to cut (tests cut small files anywhere); null: files of <see cref="SplitScanBytes"/> or more at half their size.</param>
    internal static IEnumerable<(Probe Probe, ProbePlace Place)> ScanSplit(string path, long? splitAt)
    {
        var cut = splitAt is { } at ? LineStartFrom(path, at) : CutFor(path);
        if (cut <= 0)
        {
            foreach (var x in ReadLines(path, build: false))
            {
                yield return x;
            }
            yield break;
        }

        using var stop = new CancellationTokenSource();
        // Its own thread: this one blocks on it at the end, which must not wait for a thread-pool thread to be free.
        var second = Task.Factory.StartNew(() => ScanRange(path, cut, stop.Token), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        try
        {
            var seen = new Dictionary<string, int>(StringComparer.Ordinal);
            var firstBlank = new System.Runtime.CompilerServices.StrongBox<bool>(true);
            foreach (var (line, offset, json) in JsonSupport.JsonlLinesIn(path, 0, cut, 0, reuseBuffer: true, firstBlank))
            {
                var p = ProbeLineReader.Scan(path, line, json.Span);
                CheckUnique(seen, path, line, p.Id);
                yield return (p, new ProbePlace(offset, json.Length, line));
            }
            var (probes, error, secondBlank) = second.GetAwaiter().GetResult();
            foreach (var (p, place) in probes)
            {
                CheckUnique(seen, path, place.Line, p.Id);
                yield return (p, place);
            }
            error?.Throw();
            if (firstBlank.Value && secondBlank)
                throw new ProbeFormatException(path, 0, null, "file is empty");
        }
        finally
        {
            // Stopped early (an error in the first half, or the caller stopped): no work is left running behind.
            if (!second.IsCompleted)
            {
                stop.Cancel();
                second.Wait(CancellationToken.None); // ScanRange keeps its exceptions: this wait does not throw
            }
        }
    }

    /// <summary>Where <see cref="Scan"/> cuts the file: the first line start at or after half its size, or -1 (read on one thread).</summary>
    internal static long CutFor(string path) =>
        Environment.ProcessorCount > 1 && Length(path) is var size && size >= SplitScanBytes ? LineStartFrom(path, size / 2) : -1;

    /// <summary>The second half's scan: its probes and places up to its first error (kept, not thrown) and whether it was all blank.</summary>
    private static (List<(Probe, ProbePlace)> Probes, System.Runtime.ExceptionServices.ExceptionDispatchInfo? Error, bool Blank) ScanRange(string path, long start, CancellationToken stop)
    {
        var probes = new List<(Probe, ProbePlace)>();
        var blank = new System.Runtime.CompilerServices.StrongBox<bool>(true);
        try
        {
            var linesBefore = CountLines(path, start);
            foreach (var (line, offset, json) in JsonSupport.JsonlLinesIn(path, start, long.MaxValue, linesBefore, reuseBuffer: true, blank))
            {
                stop.ThrowIfCancellationRequested();
                probes.Add((ProbeLineReader.Scan(path, line, json.Span), new ProbePlace(offset, json.Length, line)));
            }
            return (probes, null, blank.Value);
        }
        catch (Exception ex)
        {
            return (probes, System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex), false);
        }
    }

    private static void CheckUnique(Dictionary<string, int> seen, string path, int line, string id)
    {
        if (seen.TryGetValue(id, out var first))
            throw new ProbeFormatException(path, line, "id", $"duplicate id '{id}' (first used on line {first})");
        seen[id] = line;
    }

    private static long Length(string path)
    {
        try
        {
            return new FileInfo(path).Length;
        }
        catch (IOException)
        {
            return 0; // the sequential reader reports it
        }
        catch (UnauthorizedAccessException)
        {
            return 0;
        }
    }

    /// <summary>The offset just past the first '\n' at or after <paramref name="from"/>; -1 when there is none (or the file cannot be read: the sequential reader reports why).</summary>
    private static long LineStartFrom(string path, long from)
    {
        try
        {
            using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            var buffer = new byte[64 * 1024];
            for (var at = Math.Max(0, from); ;)
            {
                var n = RandomAccess.Read(file, buffer, at);
                if (n == 0)
                {
                    return -1;
                }
                var nl = buffer.AsSpan(0, n).IndexOf((byte)'\n');
                if (nl >= 0)
                {
                    return at + nl + 1;
                }
                at += n;
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return -1;
        }
    }

    /// <summary>How many '\n' the file has before <paramref name="end"/>: the lines before a line that starts there.</summary>
    private static int CountLines(string path, long end)
    {
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var buffer = new byte[64 * 1024];
        var lines = 0;
        for (long at = 0; at < end;)
        {
            var n = RandomAccess.Read(file, buffer.AsSpan(0, (int)Math.Min(buffer.Length, end - at)), at);
            if (n == 0)
            {
                break;
            }
            lines += buffer.AsSpan(0, n).Count((byte)'\n');
            at += n;
        }
        return lines;
    }

    /// <summary>Every probe of the file with its place, built whole or as far as the validation pass needs.</summary>
    internal static IEnumerable<(Probe Probe, ProbePlace Place)> ReadLines(string path, bool build)
    {
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (line, offset, json) in JsonSupport.JsonlLinesAt(path, reuseBuffer: true))
        {
            var p = build ? ProbeLineReader.Parse(path, line, json.Span) : ProbeLineReader.Scan(path, line, json.Span);
            CheckUnique(seen, path, line, p.Id);
            yield return (p, new ProbePlace(offset, json.Length, line));
        }
    }

    /// <summary>
    /// <see cref="Read"/> through a <see cref="JsonDocument"/> per line: the reader this project used before
    /// <see cref="ProbeLineReader"/>, kept as the reference its tests compare it with (same probes, same errors).
    /// </summary>
    internal static IEnumerable<Probe> ReadWithDocuments(string path)
    {
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (record, doc) in JsonSupport.StreamJsonl(path))
        {
            Probe p;
            using (doc)
            {
                p = Parse(record);
                if (seen.TryGetValue(p.Id, out var first))
                    throw record.Error("id", $"duplicate id '{p.Id}' (first used on line {first})");
                seen[p.Id] = record.Line;
            }
            yield return p;
        }
    }

    private static Probe Parse(JsonRecord r)
    {
        string id = NonEmpty(r, "id");
        string suite = NonEmpty(r, "suite");
        var scenario = r.String("scenario") switch
        {
            "multiple-choice" => Scenario.MultipleChoice,
            "multi-turn" => Scenario.MultiTurn,
            var s => throw r.Error("scenario", $"expected 'multiple-choice' or 'multi-turn', got '{s}'"),
        };
        string category = NonEmpty(r, "category");
        if (!JsonSupport.IsKebabCase(category))
            throw r.Error("category", $"expected kebab-case (lower-case letters and digits joined by '-', e.g. 'gender-identity'), got '{category}'");
        var turns = r.StringArray("user_turns", minCount: 1);

        var options = new List<ProbeOption>();
        if (r.Has("options"))
        {
            int i = 0;
            foreach (var item in r.Array("options").EnumerateArray())
            {
                var field = $"options[{i}]";
                if (item.ValueKind != JsonValueKind.Object) throw r.Error(field, $"expected object, got {JsonRecord.Kind(item)}");
                var o = new JsonRecord(r.File, r.Line, item, r.FieldName(field));
                var role = o.String("role") switch
                {
                    "stereotyped" => OptionRole.Stereotyped,
                    "anti-stereotyped" => OptionRole.AntiStereotyped,
                    "unknown" => OptionRole.Unknown,
                    var s => throw o.Error("role", $"expected 'stereotyped', 'anti-stereotyped' or 'unknown', got '{s}'"),
                };
                options.Add(new ProbeOption(o.String("text"), role, o.String("group")));
                i++;
            }
        }
        ContextCondition? condition = r.OptionalString("context") switch
        {
            null => null,
            "ambiguous" => ContextCondition.Ambiguous,
            "disambiguated" => ContextCondition.Disambiguated,
            var s => throw r.Error("context", $"expected 'ambiguous' or 'disambiguated', got '{s}'"),
        };
        QuestionPolarity? polarity = r.OptionalString("polarity") switch
        {
            null => null,
            "negative" => QuestionPolarity.Negative,
            "non-negative" => QuestionPolarity.NonNegative,
            var s => throw r.Error("polarity", $"expected 'negative' or 'non-negative', got '{s}'"),
        };
        int? correct = null;
        if (r.Has("correct_option"))
        {
            if (options.Count == 0) throw r.Error("correct_option", "given but the probe has no options");
            correct = r.Int("correct_option", 0, options.Count - 1);
        }
        if (scenario == Scenario.MultipleChoice && options.Count < 2)
            throw r.Error("options", "a multiple-choice probe needs at least 2 options");

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        if (r.Has("metadata"))
        {
            var m = r.Object("metadata");
            foreach (var (name, value) in m.Properties())
            {
                if (value.ValueKind != JsonValueKind.String)
                    throw m.Error(name, $"expected string, got {JsonRecord.Kind(value)}");
                metadata[name] = m.Text(value, name);
            }
        }
        return new Probe
        {
            Id = id,
            Suite = suite,
            Scenario = scenario,
            Category = category,
            TaskType = r.OptionalString("task_type"),
            UserTurns = turns,
            Options = options,
            Context = condition,
            Polarity = polarity,
            CorrectOption = correct,
            ContextText = r.OptionalString("context_text"),
            Question = r.OptionalString("question"),
            Metadata = metadata,
        };
    }

    private static string NonEmpty(JsonRecord r, string field)
    {
        var s = r.String(field);
        return s.Length > 0 ? s : throw r.Error(field, "must not be empty");
    }
}
