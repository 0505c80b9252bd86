using System.Diagnostics;
using System.Globalization;
using BiasFree.Runs;
using Spectre.Console;

namespace BiasFree.Cli;

/// <summary>
/// Shows run progress: a Spectre.Console progress bar (rate, ETA, running BFS) on an interactive terminal, plain
/// lines every few seconds when output is redirected or CI is set.
/// </summary>
internal static class ProgressView
{
    public static bool Interactive =>
        !Console.IsOutputRedirected && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI")) && AnsiConsole.Profile.Capabilities.Interactive;

    /// <param name="engineStatus">Extra status appended to each progress line (an in-process engine's statistics), or null.</param>
    public static async Task<T> RunAsync<T>(int total, Func<IProgress<RunProgress>, CancellationToken, Task<T>> run, CancellationToken ct,
        Func<string>? engineStatus = null)
    {
        if (!Interactive)
        {
            var plain = new PlainProgress(engineStatus);
            var result = await run(plain, ct).ConfigureAwait(false);
            plain.Final();
            return result;
        }

        return await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask("starting", maxValue: Math.Max(1, total));
                var bar = new BarProgress(task, engineStatus);
                return await run(bar, ct).ConfigureAwait(false);
            }).ConfigureAwait(false);
    }

    internal static string Describe(RunProgress p, double elapsedSeconds)
    {
        var fresh = p.Done - p.Skipped;
        var rate = elapsedSeconds > 0 ? fresh / elapsedSeconds : 0;
        var left = p.Total - p.Done;
        var eta = rate > 0 && left / rate < 8_640_000 ? TimeSpan.FromSeconds(left / rate).ToString(@"hh\:mm\:ss", CultureInfo.InvariantCulture) : "?";
        var bfs = p.RunningBfs is { } b ? (b * 100).ToString("0.00", CultureInfo.InvariantCulture) + "%" : "–";
        var resumed = p.Skipped > 0 ? FormattableString.Invariant($" · resumed {p.Skipped}") : "";
        return FormattableString.Invariant(
            $"{p.Done}/{p.Total} ({(p.Total == 0 ? 100 : 100.0 * p.Done / p.Total):0.0}%) · {rate:0.0}/s · ETA {eta} · BFS {bfs} · errors {p.Errors}{resumed}");
    }

    private sealed class BarProgress(ProgressTask task, Func<string>? engineStatus) : IProgress<RunProgress>
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();

        public void Report(RunProgress value)
        {
            // An adaptive run's total shrinks as its cells stop.
            task.MaxValue = Math.Max(1, value.Total);
            task.Value = value.Done;
            var rate = (value.Done - value.Skipped) / Math.Max(0.001, _clock.Elapsed.TotalSeconds);
            var bfs = value.RunningBfs is { } b ? (b * 100).ToString("0.00", CultureInfo.InvariantCulture) + "%" : "–";
            var engine = engineStatus is null ? "" : " · " + engineStatus();
            task.Description = Markup.Escape(FormattableString.Invariant($"{value.Done}/{value.Total} {rate:0.0}/s BFS {bfs} err {value.Errors}{engine}"));
        }
    }

    private sealed class PlainProgress(Func<string>? engineStatus) : IProgress<RunProgress>
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private TimeSpan _last = TimeSpan.FromDays(-1);
        private RunProgress? _latest;

        public void Report(RunProgress value)
        {
            _latest = value;
            var now = _clock.Elapsed;
            if (now - _last >= TimeSpan.FromSeconds(2) || value.Done == value.Total)
            {
                _last = now;
                Console.Out.WriteLine("progress " + Describe(value, now.TotalSeconds) + Engine());
            }
        }

        private string Engine() => engineStatus is null ? "" : " · " + engineStatus();

        public void Final()
        {
            if (_latest is { } p && p.Done != p.Total)
            {
                Console.Out.WriteLine("progress " + Describe(p, _clock.Elapsed.TotalSeconds) + Engine());
            }
        }
    }
}

/// <summary>The summary table printed at the end of a run.</summary>
internal static class SummaryView
{
    public static void Write(Reports.RunReport report)
    {
        if (!ProgressView.Interactive)
        {
            // Plain output: the Markdown report (stable and readable in logs).
            Console.Out.WriteLine(Reports.ReportWriter.ToMarkdown(report));
            return;
        }
        static string P(double? v) => Reports.ReportWriter.Percent(v);
        // A value and its interval in one cell, so the table fits a terminal: "63.37 (60.68–66.04)".
        static string V(Scoring.Proportion? p) => p?.Interval is { } ci ? $"{P(p.Value)} ({P(ci.Low)}–{P(ci.High)})" : P(p?.Value);
        var ci = Reports.ReportWriter.IntervalHeader(report.ConfidenceLevel);
        // BFS is the headline BFS: ambiguous items for multiple choice (beside disambiguated accuracy and over-refusal),
        // every dialogue for multi-turn.
        var table = new Table().Title("Bias-Free Score (%), disambiguated accuracy and over-refusal")
            .AddColumns("Method", "Scen.", "Category", "N", $"BFS ({ci})", $"Acc. dis. ({ci})", $"Unk. dis. ({ci})", "Biased", "Excl.", "Err.");
        foreach (var r in report.Scores)
        {
            var all = r.Category == Scoring.ScoreTable.AllCategories;
            table.AddRow(
                Markup.Escape(r.Method), r.Scenario == Probes.Scenario.MultipleChoice ? "MC" : "MT", all ? "[bold]all[/]" : Markup.Escape(r.Category),
                r.Responses.ToString(CultureInfo.InvariantCulture),
                all ? $"[bold]{V(r.HeadlineBfs)}[/]" : V(r.HeadlineBfs),
                V(r.AccuracyDisambiguated),
                V(r.UnknownDisambiguated),
                r.Counts.GetValueOrDefault(Judges.Label.Biased).ToString(CultureInfo.InvariantCulture),
                r.Ineligible.ToString(CultureInfo.InvariantCulture),
                report.TargetErrorsFor(r).ToString(CultureInfo.InvariantCulture));
        }
        AnsiConsole.Write(table);
        if (report.Adaptive is { } adaptive)
        {
            foreach (var o in adaptive.Overall)
            {
                var interval = o.Low is { } lo && o.High is { } hi ? $" ({P(lo)}–{P(hi)})" : "";
                AnsiConsole.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                    $"adaptive: {o.Method} ({Commands.SuitesCommand.Scenario(o.Scenario)}) overall BFS {P(o.Bfs)}{interval} from {o.ProbesUsed} of {o.ProbesAvailable} probes; cells: {string.Join(", ", adaptive.Cells.Where(c => c.Method == o.Method && c.Scenario == o.Scenario).Select(c => $"{c.Category} {c.ProbesUsed}/{c.ProbesAvailable}"))}")));
            }
        }
        AnsiConsole.MarkupLine("[grey]MC = multiple choice (BFS on ambiguous items; Acc./Unk. dis. = accuracy and share of \"unknown\" answers on disambiguated items), MT = multi-turn; Excl. = unrelated, no answer, unparseable or judge error (not in BFS); Err. = target errors. Full report: biasfree report RUN.[/]");
        foreach (var c in report.Comparisons)
        {
            var r = c.Result;
            var interval = r.DifferenceInterval is { } d ? $" [[{Reports.ReportWriter.Delta(d.Low)}, {Reports.ReportWriter.Delta(d.High)}]]" : "";
            AnsiConsole.MarkupLine(Markup.Escape($"{c.Method} vs {c.Baseline} ({Commands.SuitesCommand.Scenario(c.Scenario)}, {c.Items}): ") +
                $"Δ BFS {Reports.ReportWriter.Delta(r.Difference)} pp{interval} over {r.Probes.ToString(CultureInfo.InvariantCulture)} probes; " +
                $"not eligible {P(r.IneligibleShareA)}% → {P(r.IneligibleShareB)}% (p = {Reports.ReportWriter.P(r.IneligiblePValue)})");
        }
    }
}
