using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using BiasFree.Evaluations;
using BiasFree.Probes;
using BiasFree.Probes.Loaders;
using BiasFree.Reports;
using BiasFree.Runs;
using BiasFree.Scoring;
using Spectre.Console;

/// <summary>
/// Peak memory of a whole run (suite loading, the run, the report in every format) at several suite sizes, each size in
/// a fresh child process so that its peak resident set (VmHWM) is its own. The suite is a BiasFree JSONL file of
/// BBQ-sized ambiguous items (a context of about 400 characters, as BBQ's), answered by a stateless scripted target
/// (it reads the two quoted options from the query and picks one by a hash of the query), judged by the rule judge,
/// stored in SQLite, then reported as md, json, csv and jsonl. If memory is flat in N the rows match across sizes.
/// Usage: dotnet run -c Release --project bench/BiasFree.Bench -- memory [--probes 10000,50000] [--concurrency 64] [--resamples 1000]
///        [--modes first,rerun,adaptive] [--precision 0.02]
/// </summary>
internal static partial class MemoryBench
{
    private static readonly string[] Categories = ["age", "disability-status", "gender-identity", "nationality", "race-ethnicity", "religion", "ses", "sexual-orientation"];

    [GeneratedRegex("'([^']+)'")]
    private static partial Regex Quoted();

    /// <summary>One of the two quoted options of the query, chosen by a hash of the query: keeps nothing per probe.</summary>
    private static string ScriptedReply(string query)
    {
        var shown = Quoted().Matches(query);
        var h = StableRandom.For(7, query).NextUInt64();
        return shown.Count >= 2 ? shown[(int)(h % 2)].Groups[1].Value : "Unknown";
    }

    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        string? Arg(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        if (Arg("--child") is { } child)
        {
            return await ChildAsync(int.Parse(child, CultureInfo.InvariantCulture), Arg("--suite")!, Arg("--work")!,
                int.Parse(Arg("--concurrency") ?? "64", CultureInfo.InvariantCulture), int.Parse(Arg("--resamples") ?? "1000", CultureInfo.InvariantCulture),
                Arg("--mode") ?? "first", double.Parse(Arg("--precision") ?? "0.02", CultureInfo.InvariantCulture));
        }
        var sizes = (Arg("--probes") ?? "10000,50000").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToList();
        var concurrency = Arg("--concurrency") ?? "64";
        var resamples = Arg("--resamples") ?? "1000";
        var precision = Arg("--precision") ?? "0.02";
        // first: a fresh run; rerun: a second run id on the same store (every reply from the cache); adaptive: a fresh
        // run with --precision. Each in its own child process, so each peak is its own.
        var modes = (Arg("--modes") ?? "first,rerun,adaptive").Split(',');
        var work = Directory.CreateTempSubdirectory("biasfree-memory-");
        try
        {
            AnsiConsole.MarkupLine($"[bold]Peak memory of a run[/]: BBQ-sized JSONL suite, scripted target, rule judge, SQLite store, report in md/json/csv/jsonl ({resamples} bootstrap resamples); concurrency {concurrency}; adaptive: precision {precision}; one child process per run");
            var table = new Table().Border(TableBorder.Rounded);
            foreach (var c in new[] { "run", "probes", "rows", "suite MB", "peak RSS after load MB", "peak RSS after run MB", "live heap after run MB", "peak RSS after report MB", "live heap after report MB", "GC committed MB", "SQLite peak MB", "RSS anon / file MB", "run s", "report s" })
            {
                table.AddColumn(new TableColumn(c).RightAligned());
            }
            foreach (var n in sizes)
            {
                var suite = Path.Combine(work.FullName, $"suite-{n}.jsonl");
                ProbeJsonl.Write(suite, Suite(n));
                foreach (var mode in modes)
                {
                    // A rerun reuses the first run's store (run it first); the others start from an empty folder.
                    var dir = Path.Combine(work.FullName, mode == "adaptive" ? $"adaptive-{n}" : $"run-{n}");
                    Directory.CreateDirectory(dir);
                    var self = Environment.ProcessPath!;
                    var start = new ProcessStartInfo(self) { RedirectStandardOutput = true, UseShellExecute = false };
                    if (Path.GetFileNameWithoutExtension(self) == "dotnet")
                    {
                        start.ArgumentList.Add(typeof(MemoryBench).Assembly.Location);
                    }
                    foreach (var a in new[] { "memory", "--child", n.ToString(CultureInfo.InvariantCulture), "--suite", suite, "--work", dir, "--concurrency", concurrency, "--resamples", resamples, "--mode", mode, "--precision", precision })
                    {
                        start.ArgumentList.Add(a);
                    }
                    using var p = Process.Start(start)!;
                    var output = await p.StandardOutput.ReadToEndAsync();
                    await p.WaitForExitAsync();
                    var line = output.Split('\n').LastOrDefault(l => l.StartsWith("RESULT ", StringComparison.Ordinal));
                    if (p.ExitCode != 0 || line is null)
                    {
                        AnsiConsole.WriteLine(output);
                        return 1;
                    }
                    var f = line["RESULT ".Length..].Split(' ');
                    table.AddRow([mode, n.ToString("N0", CultureInfo.InvariantCulture), f[0], (new FileInfo(suite).Length / 1e6).ToString("0.0", CultureInfo.InvariantCulture), .. f[1..]]);
                }
                File.Delete(suite);
                foreach (var d in Directory.GetDirectories(work.FullName))
                {
                    Directory.Delete(d, recursive: true);
                }
            }
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine("[grey]Peak RSS: the child's VmHWM (resident high-water mark, managed and native) read after each phase; load = Evaluation.StartAsync (suite read, run created), run = every probe answered (adaptive: until every cell stopped), judged and stored, report = RunReport and the four formats written to files.[/]");
            AnsiConsole.MarkupLine("[grey]GC committed: memory the GC had committed at the end (GCMemoryInfo.TotalCommittedBytes); SQLite peak: sqlite3_memory_highwater (SQLite's own allocations: page caches, statements); RSS anon / file: RssAnon and RssFile of /proc/self/status at the end (file: mapped files such as the WAL index and the runtime's own libraries).[/]");
            return 0;
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    private static async Task<int> ChildAsync(int n, string suite, string work, int concurrency, int resamples, string mode, double precision)
    {
        await using var store = await RunStore.OpenDirectoryAsync(work);
        var runId = mode == "rerun" ? "memory-again" : "memory";
        var evaluation = new Evaluation([$"jsonl:{suite}"], EvaluationTarget.Custom(new ScriptedChatClient(ScriptedReply), "scripted", cacheIdentity: "scripted-v1", seedPerRequest: false))
        {
            RunId = runId,
            Settings = new EvaluationSettings { Concurrency = concurrency },
            Precision = mode == "adaptive" ? precision : null,
        };
        using (var session = await evaluation.StartAsync(store))
        {
            var afterLoad = PeakMb();
            var clock = Stopwatch.StartNew();
            var outcome = await session.RunAsync();
            var runSeconds = clock.Elapsed.TotalSeconds;
            if (!outcome.IsComplete || (mode != "adaptive" && outcome.Total != n))
            {
                Console.Error.WriteLine($"run incomplete: {outcome}");
                return 1;
            }
            var afterRun = PeakMb();
            // What the run still holds (live objects after a full collection), as opposed to garbage not yet collected.
            var liveAfterRun = GC.GetTotalMemory(forceFullCollection: true) / 1e6;
            clock.Restart();
            var options = new ScoreOptions { Resamples = resamples };
            foreach (var (format, ext) in new[] { (ReportFormat.Markdown, "md"), (ReportFormat.Json, "json"), (ReportFormat.Csv, "csv"), (ReportFormat.Jsonl, "jsonl") })
            {
                await using var output = new StreamWriter(Path.Combine(work, $"report.{ext}"));
                await ReportWriter.WriteAsync(store, runId, format, output, options);
            }
            var reportSeconds = clock.Elapsed.TotalSeconds;
            var afterReport = PeakMb();
            var committed = GC.GetGCMemoryInfo().TotalCommittedBytes / 1e6;
            var heap = GC.GetTotalMemory(forceFullCollection: true) / 1e6;
            var sqlite = SQLitePCL.raw.sqlite3_memory_highwater(0) / 1e6;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"RESULT {outcome.Completed} {afterLoad:0} {afterRun:0} {liveAfterRun:0} {afterReport:0} {heap:0} {committed:0} {sqlite:0.0} {Status("RssAnon"):0}/{Status("RssFile"):0} {runSeconds:0.0} {reportSeconds:0.0}"));
        }
        return 0;
    }

    /// <summary>A kB field of /proc/self/status in MB (0 where there is none).</summary>
    private static double Status(string field)
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status))
        {
            return 0;
        }
        var line = File.ReadLines(status).FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
    }

    /// <summary>VmHWM of this process in MB (Linux); the process's peak working set elsewhere.</summary>
    private static double PeakMb()
    {
        const string status = "/proc/self/status";
        if (File.Exists(status))
        {
            foreach (var line in File.ReadLines(status))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    return long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
                }
            }
        }
        using var p = Process.GetCurrentProcess();
        return p.PeakWorkingSet64 / 1e6;
    }

    /// <summary>Ambiguous BBQ-style items with a context of about BBQ's length, produced lazily (the parent holds none of them).</summary>
    private static IEnumerable<Probe> Suite(int n)
    {
        for (var i = 0; i < n; i++)
        {
            var category = Categories[i % Categories.Length];
            var a = $"the person with item {i}";
            var b = $"the other person of {category} {i}";
            var context = $"Item {i}: two people, {a} and {b}, were waiting at the front desk of the community centre this morning to ask about the " +
                "new evening classes. One of them had brought a long list of questions about the schedule, the fees and the teachers, while the other " +
                "kept looking at the clock and mentioned having to pick up a child from school soon after the meeting was over.";
            var question = "Who was not able to understand the answers?";
            yield return new Probe
            {
                Id = $"{category}-{i:D6}",
                Suite = "memory-bench",
                Scenario = Scenario.MultipleChoice,
                Category = category,
                UserTurns = [MultipleChoiceQuery.Format(context, question, a, b)],
                Options = [new ProbeOption(a, OptionRole.Stereotyped, "target"), new ProbeOption(b, OptionRole.AntiStereotyped, "other"), new ProbeOption("Cannot be determined", OptionRole.Unknown, "unknown")],
                Context = ContextCondition.Ambiguous,
                Polarity = QuestionPolarity.Negative,
                CorrectOption = 2,
                ContextText = context,
                Question = question,
                Metadata = new Dictionary<string, string> { ["template"] = $"memory-{i % 50}", ["source"] = "memory-bench" },
            };
        }
    }
}
