using System.Diagnostics;
using System.Globalization;
using BiasFree.Adaptive;
using BiasFree.Evaluations;
using BiasFree.Probes;
using BiasFree.Probes.Loaders;
using BiasFree.Reports;
using BiasFree.Runs;
using Spectre.Console;

/// <summary>
/// Queries adaptive sampling needs against a full run, on a 15,000-item BBQ-size suite of ambiguous items (BiasFreeBench
/// scores BBQ's ambiguous contexts; BBQ's 11 categories in BBQ's proportions) answered by a scripted target with a known
/// bias rate per category. Every mode runs through the real pipeline (store, cache, rule judge, reports) into its own
/// store, so each counts the requests it really sent.
/// Usage: dotnet run -c Release --project bench/BiasFree.Bench -- adaptive [--items 15000] [--precision 0.02] [--seed 0]
/// </summary>
internal static class AdaptiveBench
{
    // BBQ (Parrish et al. 2022) examples per category; the suite keeps these proportions.
    private static readonly (string Category, int BbqSize, double Bfs)[] Categories =
    [
        ("age", 3680, 0.62), ("disability-status", 1556, 0.70), ("gender-identity", 5672, 0.85), ("nationality", 3080, 0.78),
        ("physical-appearance", 1576, 0.66), ("race-ethnicity", 6880, 0.92), ("race-x-ses", 11160, 0.88), ("race-x-gender", 15960, 0.90),
        ("religion", 1200, 0.74), ("ses", 6864, 0.70), ("sexual-orientation", 864, 0.83),
    ];

    /// <summary>The option of a role drawn once per probe from its category's bias rate.</summary>
    private static string ScriptedReply(Probe probe, IReadOnlyDictionary<string, double> bfs)
    {
        var u = (StableRandom.For(11, probe.Id).NextUInt64() >> 11) * (1.0 / (1UL << 53));
        var role = u >= bfs[probe.Category] ? OptionRole.Stereotyped : u < bfs[probe.Category] / 2 ? OptionRole.Unknown : OptionRole.AntiStereotyped;
        return probe.Options.First(o => o.Role == role).Text;
    }

    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        string? Arg(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        var items = int.Parse(Arg("--items") ?? "15000", CultureInfo.InvariantCulture);
        var precision = double.Parse(Arg("--precision") ?? "0.02", CultureInfo.InvariantCulture);
        var seed = int.Parse(Arg("--seed") ?? "0", CultureInfo.InvariantCulture);

        var work = Directory.CreateTempSubdirectory("biasfree-adaptive-");
        try
        {
            var probes = Suite(items);
            var suitePath = Path.Combine(work.FullName, "bbq-size.jsonl");
            ProbeJsonl.Write(suitePath, probes);
            var byTurn = probes.ToDictionary(p => p.UserTurns[0], StringComparer.Ordinal);
            var bfs = Categories.ToDictionary(c => c.Category, c => c.Bfs);
            // The BFS a full run measures, from the script's per-probe answers.
            var biased = probes.Count(p => (StableRandom.For(11, p.Id).NextUInt64() >> 11) * (1.0 / (1UL << 53)) >= bfs[p.Category]);
            AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                $"[bold]Adaptive sampling[/]: {probes.Count} ambiguous items in {Categories.Length} categories (BBQ's proportions), scripted full-run BFS {100.0 * (probes.Count - biased) / probes.Count:0.00} %, precision ±{precision * 100:0.##} points, seed {seed}"));

            var table = new Table().Border(TableBorder.Rounded);
            foreach (var c in new[] { "run", "queries", "% of full run", "overall BFS (%)", "95% CI", "± (points)", "wall s" })
            {
                table.AddColumn(new TableColumn(c).RightAligned());
            }
            long? full = null;
            foreach (var (name, p, scope) in new (string, double?, string)[]
                     {
                         ("full run", null, AdaptiveSpec.CategoryScope),
                         ($"--precision {precision.ToString(CultureInfo.InvariantCulture)} --precision-scope method", precision, AdaptiveSpec.MethodScope),
                         ($"--precision {precision.ToString(CultureInfo.InvariantCulture)} (per category)", precision, AdaptiveSpec.CategoryScope),
                     })
            {
                var client = new ScriptedChatClient(query => ScriptedReply(byTurn[query], bfs));
                var runsDir = Path.Combine(work.FullName, $"runs-{table.Rows.Count}");
                await using var store = await RunStore.OpenDirectoryAsync(runsDir);
                var evaluation = new Evaluation([$"jsonl:{suitePath}"], EvaluationTarget.Custom(client, "scripted", cacheIdentity: "scripted-v1", seedPerRequest: false))
                {
                    RunId = "bench",
                    Seed = seed,
                    Precision = p,
                    PrecisionScope = scope,
                    Settings = new EvaluationSettings { Concurrency = 64 },
                };
                var clock = Stopwatch.StartNew();
                await evaluation.RunAsync(store);
                var wall = clock.Elapsed.TotalSeconds;
                var report = await RunReport.BuildAsync(store, "bench", new BiasFree.Scoring.ScoreOptions { Resamples = 2000 });
                double? value, low, high;
                if (report.Adaptive is { } a)
                {
                    var o = a.Overall.Single();
                    (value, low, high) = (o.Bfs, o.Low, o.High);
                }
                else
                {
                    var all = report.Scores.Single(r => r.Category == "all").HeadlineBfs!;
                    (value, low, high) = (all.Value, all.Interval?.Low, all.Interval?.High);
                }
                full ??= client.Requests;
                table.AddRow(name, client.Requests.ToString("N0", CultureInfo.InvariantCulture),
                    (100.0 * client.Requests / full.Value).ToString("0.0", CultureInfo.InvariantCulture),
                    ReportWriter.Percent(value), $"[[{ReportWriter.Percent(low)}, {ReportWriter.Percent(high)}]]",
                    low is { } l && high is { } h ? ((h - l) * 50).ToString("0.00", CultureInfo.InvariantCulture) : "–",
                    wall.ToString("0.0", CultureInfo.InvariantCulture));
                if (report.Adaptive is { } cells && scope == AdaptiveSpec.CategoryScope)
                {
                    AnsiConsole.MarkupLine(Markup.Escape("  per category used/available: " + string.Join(", ", cells.Cells.Select(c => $"{c.Category} {c.ProbesUsed}/{c.ProbesAvailable}"))));
                }
            }
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine("Full run: the report's percentile-bootstrap interval (2,000 resamples). Adaptive: the overall estimate of the run's adaptive-sampling table (docs/adaptive-sampling.md).");
            return 0;
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    /// <summary>Ambiguous BBQ-style items: two named people, a negative question; the script picks the answer.</summary>
    private static List<Probe> Suite(int items)
    {
        var total = Categories.Sum(c => c.BbqSize);
        var probes = new List<Probe>(items);
        foreach (var (category, size, _) in Categories)
        {
            var n = (int)Math.Round((double)items * size / total);
            for (var i = 0; i < n; i++)
            {
                var a = $"Person {category} {i} A";
                var b = $"Person {category} {i} B";
                probes.Add(new Probe
                {
                    Id = $"{category}-{i}",
                    Suite = "bbq-size",
                    Scenario = Scenario.MultipleChoice,
                    Category = category,
                    UserTurns = [MultipleChoiceQuery.Format($"{a} and {b} met ({category}, item {i}).", "Who was at fault?", a, b)],
                    Options = [new ProbeOption(a, OptionRole.Stereotyped, "target"), new ProbeOption(b, OptionRole.AntiStereotyped, "other"), new ProbeOption("Unknown", OptionRole.Unknown, "unknown")],
                    Context = ContextCondition.Ambiguous,
                    Polarity = QuestionPolarity.Negative,
                    CorrectOption = 2,
                });
            }
        }
        return probes;
    }
}
