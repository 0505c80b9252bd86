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

    public static async Task<T> RunAsync<T>(int total, Func<IProgress<RunProgress>, CancellationToken, Task<T>> run, CancellationToken ct)
    {
        if (!Interactive)
        {
            var plain = new PlainProgress();
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
                var bar = new BarProgress(task);
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

    private sealed class BarProgress(ProgressTask task) : IProgress<RunProgress>
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();

        public void Report(RunProgress value)
        {
            task.Value = value.Done;
            var rate = (value.Done - value.Skipped) / Math.Max(0.001, _clock.Elapsed.TotalSeconds);
            var bfs = value.RunningBfs is { } b ? (b * 100).ToString("0.00", CultureInfo.InvariantCulture) + "%" : "–";
            task.Description = Markup.Escape(FormattableString.Invariant($"{value.Done}/{value.Total} {rate:0.0}/s BFS {bfs} err {value.Errors}"));
        }
    }

    private sealed class PlainProgress : IProgress<RunProgress>
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
                Console.Out.WriteLine("progress " + Describe(value, now.TotalSeconds));
            }
        }

        public void Final()
        {
            if (_latest is { } p && p.Done != p.Total)
            {
                Console.Out.WriteLine("progress " + Describe(p, _clock.Elapsed.TotalSeconds));
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
            // Plain output: the Markdown score tables (stable and readable in logs).
            Console.Out.WriteLine(Reports.ReportWriter.ToMarkdown(report));
            return;
        }
        var table = new Table().Title("Bias-Free Score (%)").AddColumns("Method", "Scen.", "Category", "N", "BFS", Reports.ReportWriter.IntervalHeader(report.ConfidenceLevel), "Biased", "Excl.", "Err.");
        foreach (var r in report.Scores)
        {
            var all = r.Category == Scoring.ScoreTable.AllCategories;
            string C(Judges.Label l) => r.Counts.GetValueOrDefault(l).ToString(CultureInfo.InvariantCulture);
            table.AddRow(
                Markup.Escape(r.Method), r.Scenario == Probes.Scenario.MultipleChoice ? "MC" : "MT", all ? "[bold]all[/]" : Markup.Escape(r.Category),
                r.Responses.ToString(CultureInfo.InvariantCulture),
                all ? $"[bold]{Reports.ReportWriter.Percent(r.Bfs)}[/]" : Reports.ReportWriter.Percent(r.Bfs),
                r.BfsLow is null ? "" : $"{Reports.ReportWriter.Percent(r.BfsLow)}–{Reports.ReportWriter.Percent(r.BfsHigh)}",
                C(Judges.Label.Biased),
                (r.Counts.GetValueOrDefault(Judges.Label.Unrelated) + r.Counts.GetValueOrDefault(Judges.Label.NoAnswer) +
                 r.Counts.GetValueOrDefault(Judges.Label.Unparseable) + r.Counts.GetValueOrDefault(Judges.Label.JudgeError)).ToString(CultureInfo.InvariantCulture),
                report.TargetErrorsFor(r).ToString(CultureInfo.InvariantCulture));
        }
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("[grey]MC = multiple choice, MT = multi-turn; Excl. = unrelated, no answer, unparseable or judge error (not in BFS); Err. = target errors. Full table: biasfree report RUN.[/]");
        foreach (var c in report.Comparisons)
        {
            var d = c.Result.Difference is { } x ? (x * 100).ToString("+0.00;-0.00", CultureInfo.InvariantCulture) : "–";
            AnsiConsole.MarkupLine($"{Markup.Escape(c.Method)} vs none ({Commands.SuitesCommand.Scenario(c.Scenario)}): Δ BFS {d} pp over {c.Result.Pairs.ToString(CultureInfo.InvariantCulture)} pairs, p = {c.Result.PValue.ToString("0.0000", CultureInfo.InvariantCulture)}");
        }
    }
}
