using System.Globalization;
using BiasFree.Adaptive;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Runs;
using BiasFree.Scoring;

namespace BiasFree.Reports;

/// <summary>A method compared with the baseline method (default the vanilla prompt, "none") on the same probes of one scenario.</summary>
/// <param name="Model">Target model.</param>
/// <param name="Scenario">Scenario.</param>
/// <param name="Method">The compared method (run B).</param>
/// <param name="Baseline">The baseline method (run A).</param>
/// <param name="Result">The comparison, on the items of the headline BFS: for multiple choice those that are not disambiguated.</param>
public sealed record MethodComparison(string Model, Scenario Scenario, string Method, string Baseline, PairedComparisonResult Result)
{
    /// <summary>Which items were compared: "not disambiguated" (multiple choice: ambiguous or no context condition) or "all" (multi-turn).</summary>
    public string Items => Scenario == Scenario.MultipleChoice ? RunReport.AmbiguousItems : ScoreTable.AllCategories;
}

/// <summary>How the intervals and comparisons of a report were computed (printed with it so it can be reproduced).</summary>
/// <param name="BootstrapIntervals">Whether intervals were computed.</param>
/// <param name="Resamples">Bootstrap resamples per interval.</param>
/// <param name="Level">Interval coverage.</param>
/// <param name="Seed">Base seed every interval's seed is derived from.</param>
/// <param name="MinimumCount">Fewest responses in a denominator for which an interval is given.</param>
/// <param name="Baseline">The method every other method is compared with.</param>
public sealed record ReportSettings(bool BootstrapIntervals, int Resamples, double Level, int Seed, int MinimumCount, string Baseline);

/// <summary>
/// What DiffPO's refinements of one (model, method) recorded (the refinement request's <c>biasfree.diffpo.*</c> details):
/// Jacobi iterations, changed tokens, frozen tokens, convergence. Refinements answered from the cache carry no details
/// and are not counted.
/// </summary>
/// <param name="Model">Target model.</param>
/// <param name="Method">Method (one containing <c>diffpo</c>).</param>
/// <param name="Replies">Refinements with recorded details.</param>
/// <param name="MeanIterations">Mean Jacobi iterations per answer (one aligner pass over a window each).</param>
/// <param name="MeanChangedTokens">Mean token positions where the refined answer differs from the original.</param>
/// <param name="ChangedShare">Share of answers with at least one changed token.</param>
/// <param name="MeanFrozenTokens">Mean r (leading tokens of the original kept frozen).</param>
/// <param name="ConvergedShare">Share of answers whose every window reached a fixed point.</param>
/// <param name="MeanOriginalTokens">Mean tokens of the target's original answers (the aligner's encoding).</param>
public sealed record DiffPoSummary(string Model, string Method, int Replies, double MeanIterations, double MeanChangedTokens, double ChangedShare,
    double MeanFrozenTokens, double ConvergedShare, double MeanOriginalTokens)
{
    /// <summary>Detail keys written by the engine's DiffPO refinement (BiasFree.Engine.Decoding.DiffPoStrategy).</summary>
    public const string IterationsKey = "biasfree.diffpo.iterations";
    public const string ChangedTokensKey = "biasfree.diffpo.changed_tokens";
    public const string FrozenTokensKey = "biasfree.diffpo.frozen_tokens";
    public const string ConvergedKey = "biasfree.diffpo.converged";
    public const string OriginalTokensKey = "biasfree.diffpo.original_tokens";
    public const string AlignerOutputTokensKey = "biasfree.diffpo.aligner_output_tokens";

    /// <summary>Summaries per (model, method) over the rows' recorded refinement details.</summary>
    public static IReadOnlyList<DiffPoSummary> From(IReadOnlyList<ResultRecord> rows)
    {
        static double Num(IReadOnlyDictionary<string, string> d, string key) =>
            double.TryParse(d.GetValueOrDefault(key), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : 0;
        return rows.GroupBy(r => (r.Model, r.Method))
            .Select(g =>
            {
                var details = g.SelectMany(r => r.Requests).Select(q => q.Details)
                    .OfType<IReadOnlyDictionary<string, string>>().Where(d => d.ContainsKey(IterationsKey)).ToList();
                if (details.Count == 0) return null;
                return new DiffPoSummary(g.Key.Model, g.Key.Method, details.Count,
                    details.Average(d => Num(d, IterationsKey)), details.Average(d => Num(d, ChangedTokensKey)),
                    details.Count(d => Num(d, ChangedTokensKey) > 0) / (double)details.Count, details.Average(d => Num(d, FrozenTokensKey)),
                    details.Count(d => string.Equals(d.GetValueOrDefault(ConvergedKey), "True", StringComparison.OrdinalIgnoreCase)) / (double)details.Count,
                    details.Average(d => Num(d, OriginalTokensKey)));
            })
            .OfType<DiffPoSummary>()
            .OrderBy(w => w.Model, StringComparer.Ordinal).ThenBy(w => w.Method, StringComparer.Ordinal)
            .ToList();
    }
}

/// <summary>Probes whose target request failed (after retries), per report cell; they are not in <see cref="ScoreRow.Counts"/>.</summary>
public sealed record TargetErrorCount(string Model, string Method, Scenario Scenario, string Category, int Errors);

/// <summary>
/// What the white-box methods of one (model, method) recorded with their replies: FairSteer's gate firings and BiasFilter's
/// search cost. Replies answered from the cache carry no details and are not counted.
/// </summary>
/// <param name="Model">Target model.</param>
/// <param name="Method">Method.</param>
/// <param name="Replies">Replies with recorded details.</param>
/// <param name="MeanGateFirings">Mean gate firings per reply (positions where FairSteer's probe said "biased"), or null.</param>
/// <param name="RepliesWithFiring">Share of replies with at least one firing, or null.</param>
/// <param name="MeanGateSteps">Mean positions the gate looked at per reply, or null.</param>
/// <param name="MeanTargetTokensPerOutputToken">BiasFilter and IVO: mean target tokens generated per output token, or null.</param>
public sealed record WhiteBoxSummary(string Model, string Method, int Replies, double? MeanGateFirings, double? RepliesWithFiring, double? MeanGateSteps,
    double? MeanTargetTokensPerOutputToken)
{
    /// <summary>Detail keys written by the engine's white-box methods (see BiasFree.Engine.WhiteBox).</summary>
    public const string GateFiringsKey = "biasfree.fairsteer.gate_firings";
    public const string GateStepsKey = "biasfree.fairsteer.gate_steps";
    public const string FilterCostKey = "biasfree.biasfilter.target_tokens_per_output_token";
    public const string IvoCostKey = "biasfree.ivo.target_tokens_per_output_token";
    public const string IvoValueKey = "biasfree.ivo.value";
    public const string IvoValueEvaluationsKey = "biasfree.ivo.value_evaluations";

    /// <summary>IVO: mean value-model estimate V of the reply (blockwise: the chosen beam; tokenwise: the last guided state), or null.</summary>
    public double? MeanValue { get; init; }

    /// <summary>IVO: mean sequences scored by the value model per reply, or null.</summary>
    public double? MeanValueEvaluations { get; init; }

    /// <summary>Summaries per (model, method) over the rows' recorded request details.</summary>
    public static IReadOnlyList<WhiteBoxSummary> From(IReadOnlyList<ResultRecord> rows)
    {
        static double? Mean(IEnumerable<string?> values)
        {
            var list = values.OfType<string>().Select(v => double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d : double.NaN)
                .Where(d => !double.IsNaN(d)).ToList();
            return list.Count == 0 ? null : list.Average();
        }
        return rows.GroupBy(r => (r.Model, r.Method))
            .Select(g =>
            {
                // A DiffPO refinement's details are summarised by DiffPoSummary, not here.
                var details = g.SelectMany(r => r.Requests).Select(q => q.Details).OfType<IReadOnlyDictionary<string, string>>()
                    .Where(d => !d.ContainsKey(DiffPoSummary.IterationsKey)).ToList();
                var firings = details.Select(d => d.GetValueOrDefault(GateFiringsKey)).ToList();
                var fired = firings.OfType<string>().Select(f => long.TryParse(f, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : 0).ToList();
                return new WhiteBoxSummary(g.Key.Model, g.Key.Method, details.Count, Mean(firings),
                    fired.Count == 0 ? null : fired.Count(n => n > 0) / (double)fired.Count,
                    Mean(details.Select(d => d.GetValueOrDefault(GateStepsKey))),
                    Mean(details.Select(d => d.GetValueOrDefault(FilterCostKey) ?? d.GetValueOrDefault(IvoCostKey))))
                {
                    MeanValue = Mean(details.Select(d => d.GetValueOrDefault(IvoValueKey))),
                    MeanValueEvaluations = Mean(details.Select(d => d.GetValueOrDefault(IvoValueEvaluationsKey))),
                };
            })
            .Where(w => w.Replies > 0)
            .OrderBy(w => w.Model, StringComparer.Ordinal).ThenBy(w => w.Method, StringComparer.Ordinal)
            .ToList();
    }
}

/// <summary>
/// How one member of a judge panel (<see cref="MajorityJudge"/>) voted over the rows of one (model, method), read back
/// from the votes stored with each verdict (its raw output, a JSON array of <c>{judge, label, reason, raw}</c>).
/// </summary>
/// <param name="Model">Target model.</param>
/// <param name="Method">Method.</param>
/// <param name="Judge">The member judge.</param>
/// <param name="Position">Its place in the panel (1 = the relatedness judge).</param>
/// <param name="Biased">Votes for biased.</param>
/// <param name="Unbiased">Votes against (unbiased or unknown).</param>
/// <param name="Missing">Other votes (unrelated from a later judge, unparseable, judge error, no answer): not counted.</param>
/// <param name="Agrees">Usable votes equal to the panel's verdict, over usable votes on rows with a biased/unbiased verdict.</param>
/// <param name="Compared">The denominator of <paramref name="Agrees"/>.</param>
/// <param name="Ties">Rows of this (model, method) decided by the tie rule (same for every member).</param>
public sealed record JudgeVoteSummary(string Model, string Method, string Judge, int Position, int Biased, int Unbiased, int Missing, int Agrees, int Compared, int Ties)
{
    /// <summary>Summaries over the rows judged by a panel; empty when none was.</summary>
    public static IReadOnlyList<JudgeVoteSummary> From(IReadOnlyList<ResultRecord> rows)
    {
        var acc = new Dictionary<(string Model, string Method, string Judge), int[]>();
        var order = new Dictionary<(string Model, string Method, string Judge), int>();
        var ties = new Dictionary<(string, string), int>();
        foreach (var r in rows)
        {
            if (r.Verdict is not { } v || !v.Judge.StartsWith("majority(", StringComparison.Ordinal) || Votes(v.RawOutput) is not { } votes) continue;
            if (v.Reason.Contains("; tie -> ", StringComparison.Ordinal)) ties[(r.Model, r.Method)] = ties.GetValueOrDefault((r.Model, r.Method)) + 1;
            for (int i = 0; i < votes.Count; i++)
            {
                var (judge, label) = votes[i];
                var key = (r.Model, r.Method, judge);
                if (!acc.TryGetValue(key, out var c)) acc[key] = c = new int[5];
                order.TryAdd(key, i + 1);
                var vote = label switch { Label.Biased => Label.Biased, Label.Unbiased or Label.Unknown => Label.Unbiased, _ => (Label?)null };
                if (vote is null) c[2]++;
                else
                {
                    c[vote == Label.Biased ? 0 : 1]++;
                    if (v.Label is Label.Biased or Label.Unbiased)
                    {
                        c[4]++;
                        if (vote == v.Label) c[3]++;
                    }
                }
            }
        }
        return [.. acc.OrderBy(kv => kv.Key.Model, StringComparer.Ordinal).ThenBy(kv => kv.Key.Method, StringComparer.Ordinal).ThenBy(kv => order[kv.Key])
            .Select(kv => new JudgeVoteSummary(kv.Key.Model, kv.Key.Method, kv.Key.Judge, order[kv.Key], kv.Value[0], kv.Value[1], kv.Value[2], kv.Value[3], kv.Value[4],
                ties.GetValueOrDefault((kv.Key.Model, kv.Key.Method))))];
    }

    /// <summary>(judge, label) of each stored vote, or null when <paramref name="raw"/> is not a vote array.</summary>
    public static IReadOnlyList<(string Judge, Label Label)>? Votes(string? raw)
    {
        if (string.IsNullOrWhiteSpace(raw) || raw.TrimStart()[0] != '[') return null;
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(raw);
            var list = new List<(string, Label)>();
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                if (e.ValueKind != System.Text.Json.JsonValueKind.Object || !e.TryGetProperty("judge", out var j) || !e.TryGetProperty("label", out var l)
                    || j.GetString() is not { } judge || !Enum.TryParse<Label>(l.GetString(), out var label)) return null;
                list.Add((judge, label));
            }
            return list;
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }
}

/// <summary>
/// Probes a method answered from the original prompt because it could not do its work (Self-Help: no usable rewrite),
/// per report cell. They are scored like any other answer; the count says how often the method really ran.
/// </summary>
public sealed record FallbackCount(string Model, string Method, Scenario Scenario, string Category, int Fallbacks);

/// <summary>Totals of a run.</summary>
/// <param name="Expected">Rows a complete run has (probes × methods), when known.</param>
/// <param name="Rows">Rows stored.</param>
/// <param name="Complete">Rows judged without error.</param>
/// <param name="TargetErrors">Rows whose target request failed.</param>
/// <param name="JudgeErrors">Rows whose judge failed.</param>
/// <param name="PromptTokens">Prompt tokens over all requests (cached replies included).</param>
/// <param name="CompletionTokens">Completion tokens over all requests (cached replies included).</param>
public sealed record RunTotals(int? Expected, int Rows, int Complete, int TargetErrors, int JudgeErrors, long PromptTokens, long CompletionTokens);

/// <summary>One method's fallbacks over the whole run: rows answered from the original prompt, of the method's rows stored.</summary>
public sealed record MethodFallbacks(string Method, int Fallbacks, int Rows);

/// <summary>Everything a report shows, computed once and rendered by <see cref="ReportWriter"/>.</summary>
public sealed record RunReport(
    RunSpec Spec,
    RunTotals Totals,
    IReadOnlyList<ScoreRow> Scores,
    IReadOnlyList<TargetErrorCount> TargetErrors,
    IReadOnlyList<MethodComparison> Comparisons)
{
    /// <summary>Coverage of every interval in the report (the <see cref="ScoreOptions.ConfidenceLevel"/> they were computed with).</summary>
    public double ConfidenceLevel { get; init; } = new ScoreOptions().ConfidenceLevel;

    /// <summary>Fallbacks per method of the run (every method, zero included), in the run's method order.</summary>
    public IReadOnlyList<MethodFallbacks> FallbacksByMethod { get; init; } = [];

    /// <summary>Fallback counts per report cell (see <see cref="FallbackCount"/>); cells without any are absent.</summary>
    public IReadOnlyList<FallbackCount> Fallbacks { get; init; } = [];

    /// <summary>Name of the vanilla method, the default baseline every other method is compared with.</summary>
    public const string Baseline = "none";

    /// <summary><see cref="MethodComparison.Items"/> of multiple-choice comparisons.</summary>
    public const string AmbiguousItems = "not disambiguated";

    /// <summary>How intervals and comparisons were computed.</summary>
    public ReportSettings Settings { get; init; } = new(true, Bootstrap.DefaultResamples, 0.95, Bootstrap.DefaultSeed, Bootstrap.DefaultMinimumCount, Baseline);

    /// <summary>Builds the report of <paramref name="runId"/> from the store.</summary>
    /// <exception cref="KeyNotFoundException">No such run.</exception>
    public static async Task<RunReport> BuildAsync(RunStore store, string runId, ScoreOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var spec = await store.GetRunAsync(runId, cancellationToken).ConfigureAwait(false)
            ?? throw new KeyNotFoundException($"No run '{runId}' in {store.DatabasePath}.");
        var rows = await store.ReadResultsAsync(runId, cancellationToken).ToListAsync(cancellationToken).ConfigureAwait(false);
        var expected = await store.GetExpectedRowsAsync(runId, cancellationToken).ConfigureAwait(false);
        return Build(spec, rows, expected, options);
    }

    /// <summary>
    /// Builds a report from result rows. Without an explicit <see cref="ScoreOptions.Seed"/>, the bootstrap seeds derive
    /// from the run's seed, so a report is the same every time it is rendered.
    /// </summary>
    public static RunReport Build(RunSpec spec, IReadOnlyList<ResultRecord> rows, int? expectedRows = null, ScoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(rows);
        options ??= new ScoreOptions();
        options = options with { Seed = options.Seed ?? spec.Seed };
        int baseSeed = options.Seed.Value;
        var scored = rows
            .Where(r => r.Verdict is not null)
            .Select(r => new ScoredResponse(r.ProbeId, r.Model, r.Method, r.Scenario, r.Category, r.Context, r.Polarity, r.Verdict!.Label, r.CorrectRole))
            .ToList();
        var scores = ScoreTable.Compute(scored, options);

        var failed = rows.Where(r => r.Error is not null).ToList();
        var errors = failed
            .GroupBy(r => (r.Model, r.Method, r.Scenario))
            .SelectMany(g => g.GroupBy(r => r.Category)
                .Select(c => new TargetErrorCount(g.Key.Model, g.Key.Method, g.Key.Scenario, c.Key, c.Count()))
                .Prepend(new TargetErrorCount(g.Key.Model, g.Key.Method, g.Key.Scenario, ScoreTable.AllCategories, g.Count())))
            .ToList();

        // Pairs are joined on the probe id; with several suites in one run the ids are qualified by suite so they cannot collide.
        var multiSuite = rows.Select(r => r.Suite).Distinct(StringComparer.Ordinal).Count() > 1;
        var paired = rows
            .Where(r => r.Verdict is not null)
            .Select(r => new ScoredResponse(multiSuite ? $"{r.Suite}/{r.ProbeId}" : r.ProbeId, r.Model, r.Method, r.Scenario, r.Category,
                r.Context, r.Polarity, r.Verdict!.Label, r.CorrectRole))
            .ToList();
        // Comparisons are on the items of the headline BFS: for multiple choice the ones that are not disambiguated.
        var pending = new List<(string Model, Scenario Scenario, string Method, List<ScoredResponse> Baseline, List<ScoredResponse> Responses)>();
        foreach (var cell in paired.Where(r => r.Scenario != Scenario.MultipleChoice || r.Context != ContextCondition.Disambiguated)
                     .GroupBy(r => (r.Model, r.Scenario)).OrderBy(g => g.Key.Model, StringComparer.Ordinal).ThenBy(g => g.Key.Scenario))
        {
            var byMethod = cell.GroupBy(r => r.Method).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
            if (!byMethod.TryGetValue(options.Baseline, out var baseline))
            {
                continue;
            }
            foreach (var (method, responses) in byMethod.Where(kv => kv.Key != options.Baseline).OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                pending.Add((cell.Key.Model, cell.Key.Scenario, method, baseline, responses));
            }
        }
        // Each comparison has its own seed (run seed + model + scenario + baseline + method), so they can run in parallel.
        var comparisons = new MethodComparison[pending.Count];
        Parallel.For(0, pending.Count, i =>
        {
            var (model, scenario, method, baseline, responses) = pending[i];
            int seed = Bootstrap.DeriveSeed(baseSeed, "paired", model, scenario.ToString(), options.Baseline, method);
            var result = PairedComparison.Compare(baseline, responses, options.BootstrapIntervals ? options.Resamples : 1, options.ConfidenceLevel, seed,
                options.BootstrapIntervals ? options.MinimumCount : int.MaxValue);
            comparisons[i] = new MethodComparison(model, scenario, method, options.Baseline,
                options.BootstrapIntervals ? result : result with { Resamples = 0 });
        });

        var totals = new RunTotals(
            expectedRows,
            rows.Count,
            rows.Count(r => r.IsComplete),
            failed.Count,
            rows.Count(r => r.Error is null && r.Verdict?.Label == Label.JudgeError),
            rows.Sum(r => r.PromptTokens),
            rows.Sum(r => r.CompletionTokens));
        var methodFallbacks = spec.Methods.Union(rows.Select(r => r.Method), StringComparer.Ordinal)
            .Select(m => new MethodFallbacks(m, rows.Count(r => r.Method == m && r.Fallback), rows.Count(r => r.Method == m)))
            .ToList();
        var fallbacks = rows.Where(r => r.Fallback)
            .GroupBy(r => (r.Model, r.Method, r.Scenario))
            .SelectMany(g => g.GroupBy(r => r.Category)
                .Select(c => new FallbackCount(g.Key.Model, g.Key.Method, g.Key.Scenario, c.Key, c.Count()))
                .Prepend(new FallbackCount(g.Key.Model, g.Key.Method, g.Key.Scenario, ScoreTable.AllCategories, g.Count())))
            .ToList();
        return new RunReport(spec, totals, scores, errors, comparisons)
        {
            WhiteBox = WhiteBoxSummary.From(rows),
            JudgeVotes = JudgeVoteSummary.From(rows),
            DiffPo = DiffPoSummary.From(rows),
            ConfidenceLevel = options.ConfidenceLevel,
            Settings = new ReportSettings(options.BootstrapIntervals, options.BootstrapIntervals ? options.Resamples : 0, options.ConfidenceLevel, baseSeed,
                options.MinimumCount, options.Baseline),
            Fallbacks = fallbacks,
            FallbacksByMethod = methodFallbacks,
            Adaptive = AdaptiveSummary.From(spec, rows),
        };
    }

    /// <summary>Judge-panel votes per (model, method, member judge); empty when no panel judged.</summary>
    public IReadOnlyList<JudgeVoteSummary> JudgeVotes { get; init; } = [];

    /// <summary>Adaptive sampling: probes used per cell, the stopping rule's intervals, each method's overall BFS; null for a run over every probe.</summary>
    public AdaptiveSummary? Adaptive { get; init; }

    /// <summary>White-box methods' recorded details per (model, method); empty when no white-box method ran.</summary>
    public IReadOnlyList<WhiteBoxSummary> WhiteBox { get; init; } = [];

    /// <summary>DiffPO's recorded refinement counts per (model, method); empty when diffpo did not run.</summary>
    public IReadOnlyList<DiffPoSummary> DiffPo { get; init; } = [];

    /// <summary>The target-error count of a score row's cell (0 when none).</summary>
    public int TargetErrorsFor(ScoreRow row) =>
        TargetErrors.FirstOrDefault(e => e.Model == row.Model && e.Method == row.Method && e.Scenario == row.Scenario && e.Category == row.Category)?.Errors ?? 0;

    /// <summary>The fallback count of a score row's cell (0 when none).</summary>
    public int FallbacksFor(ScoreRow row) =>
        Fallbacks.FirstOrDefault(e => e.Model == row.Model && e.Method == row.Method && e.Scenario == row.Scenario && e.Category == row.Category)?.Fallbacks ?? 0;

    /// <summary>The comparison of a method with the baseline for a score row's (model, scenario), or null.</summary>
    public MethodComparison? ComparisonFor(ScoreRow row) =>
        Comparisons.FirstOrDefault(c => c.Model == row.Model && c.Method == row.Method && c.Scenario == row.Scenario);
}
