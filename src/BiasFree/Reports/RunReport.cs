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
        ArgumentNullException.ThrowIfNull(rows);
        var acc = new Accumulator();
        foreach (var r in rows) acc.Add(r);
        return acc.Build();
    }

    /// <summary>
    /// The summaries built one row at a time (a report streams its rows). Each mean is a running sum divided by the count at
    /// the end, summed in row order as <see cref="Enumerable.Average{TSource}(IEnumerable{TSource}, Func{TSource, double})"/>
    /// over the rows in that order would: the same doubles.
    /// </summary>
    internal sealed class Accumulator
    {
        private sealed class Group
        {
            public int Replies, Changed, Converged;
            public double Iterations, ChangedTokens, Frozen, Original;
        }

        private readonly Dictionary<(string Model, string Method), Group> _groups = [];

        private static double Num(IReadOnlyDictionary<string, string> d, string key) =>
            double.TryParse(d.GetValueOrDefault(key), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : 0;

        public void Add(ResultRecord r)
        {
            foreach (var q in r.Requests)
            {
                if (q.Details is not { } d || !d.ContainsKey(IterationsKey)) continue;
                if (!_groups.TryGetValue((r.Model, r.Method), out var g)) _groups[(r.Model, r.Method)] = g = new Group();
                g.Replies++;
                g.Iterations += Num(d, IterationsKey);
                var changed = Num(d, ChangedTokensKey);
                g.ChangedTokens += changed;
                if (changed > 0) g.Changed++;
                g.Frozen += Num(d, FrozenTokensKey);
                if (string.Equals(d.GetValueOrDefault(ConvergedKey), "True", StringComparison.OrdinalIgnoreCase)) g.Converged++;
                g.Original += Num(d, OriginalTokensKey);
            }
        }

        public IReadOnlyList<DiffPoSummary> Build() =>
            [.. _groups.Select(kv =>
                {
                    var (g, n) = (kv.Value, (double)kv.Value.Replies);
                    return new DiffPoSummary(kv.Key.Model, kv.Key.Method, g.Replies, g.Iterations / n, g.ChangedTokens / n, g.Changed / n,
                        g.Frozen / n, g.Converged / n, g.Original / n);
                })
                .OrderBy(w => w.Model, StringComparer.Ordinal).ThenBy(w => w.Method, StringComparer.Ordinal)];
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
        ArgumentNullException.ThrowIfNull(rows);
        var acc = new Accumulator();
        foreach (var r in rows) acc.Add(r);
        return acc.Build();
    }

    /// <summary>
    /// The summaries built one row at a time (a report streams its rows). A mean is a running sum over the values that parse
    /// (NaN left out), in row order, divided by their count at the end: the same double as the average of that list.
    /// </summary>
    internal sealed class Accumulator
    {
        private struct Mean
        {
            private double _sum;
            private int _count;

            public void Add(string? value)
            {
                if (value is null || !double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) || double.IsNaN(d)) return;
                _sum += d;
                _count++;
            }

            public readonly double? Value => _count == 0 ? null : _sum / _count;
        }

        private sealed class Group
        {
            public int Replies, Fired, FiredPositive;
            public Mean Firings, Steps, Cost, Value, ValueEvaluations;
        }

        private readonly Dictionary<(string Model, string Method), Group> _groups = [];

        public void Add(ResultRecord r)
        {
            foreach (var q in r.Requests)
            {
                // A DiffPO refinement's details are summarised by DiffPoSummary, not here.
                if (q.Details is not { } d || d.ContainsKey(DiffPoSummary.IterationsKey)) continue;
                if (!_groups.TryGetValue((r.Model, r.Method), out var g)) _groups[(r.Model, r.Method)] = g = new Group();
                g.Replies++;
                var firing = d.GetValueOrDefault(GateFiringsKey);
                g.Firings.Add(firing);
                if (firing is not null)
                {
                    g.Fired++;
                    if (long.TryParse(firing, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n > 0) g.FiredPositive++;
                }
                g.Steps.Add(d.GetValueOrDefault(GateStepsKey));
                g.Cost.Add(d.GetValueOrDefault(FilterCostKey) ?? d.GetValueOrDefault(IvoCostKey));
                g.Value.Add(d.GetValueOrDefault(IvoValueKey));
                g.ValueEvaluations.Add(d.GetValueOrDefault(IvoValueEvaluationsKey));
            }
        }

        public IReadOnlyList<WhiteBoxSummary> Build() =>
            [.. _groups.Select(kv =>
                {
                    var g = kv.Value;
                    return new WhiteBoxSummary(kv.Key.Model, kv.Key.Method, g.Replies, g.Firings.Value,
                        g.Fired == 0 ? null : g.FiredPositive / (double)g.Fired, g.Steps.Value, g.Cost.Value)
                    {
                        MeanValue = g.Value.Value,
                        MeanValueEvaluations = g.ValueEvaluations.Value,
                    };
                })
                .OrderBy(w => w.Model, StringComparer.Ordinal).ThenBy(w => w.Method, StringComparer.Ordinal)];
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
        ArgumentNullException.ThrowIfNull(rows);
        var acc = new Accumulator();
        foreach (var r in rows) acc.Add(r);
        return acc.Build();
    }

    /// <summary>The summaries built one row at a time (a report streams its rows): counts only.</summary>
    internal sealed class Accumulator
    {
        private readonly Dictionary<(string Model, string Method, string Judge), int[]> _acc = [];
        private readonly Dictionary<(string Model, string Method, string Judge), int> _order = [];
        private readonly Dictionary<(string, string), int> _ties = [];

        public void Add(ResultRecord r)
        {
            if (r.Verdict is not { } v || !v.Judge.StartsWith("majority(", StringComparison.Ordinal) || Votes(v.RawOutput) is not { } votes) return;
            if (v.Reason.Contains("; tie -> ", StringComparison.Ordinal)) _ties[(r.Model, r.Method)] = _ties.GetValueOrDefault((r.Model, r.Method)) + 1;
            for (int i = 0; i < votes.Count; i++)
            {
                var (judge, label) = votes[i];
                var key = (r.Model, r.Method, judge);
                if (!_acc.TryGetValue(key, out var c)) _acc[key] = c = new int[5];
                _order.TryAdd(key, i + 1);
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

        public IReadOnlyList<JudgeVoteSummary> Build() =>
            [.. _acc.OrderBy(kv => kv.Key.Model, StringComparer.Ordinal).ThenBy(kv => kv.Key.Method, StringComparer.Ordinal).ThenBy(kv => _order[kv.Key])
                .Select(kv => new JudgeVoteSummary(kv.Key.Model, kv.Key.Method, kv.Key.Judge, _order[kv.Key], kv.Value[0], kv.Value[1], kv.Value[2], kv.Value[3], kv.Value[4],
                    _ties.GetValueOrDefault((kv.Key.Model, kv.Key.Method))))];
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

    /// <summary>Builds the report of <paramref name="runId"/> from the store, streaming its rows (see <see cref="Builder"/>).</summary>
    /// <exception cref="KeyNotFoundException">No such run.</exception>
    public static async Task<RunReport> BuildAsync(RunStore store, string runId, ScoreOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(store);
        var spec = await store.GetRunAsync(runId, cancellationToken).ConfigureAwait(false)
            ?? throw new KeyNotFoundException($"No run '{runId}' in {store.DatabasePath}.");
        var expected = await store.GetExpectedRowsAsync(runId, cancellationToken).ConfigureAwait(false);
        var builder = new Builder(spec, options);
        await foreach (var row in store.ReadResultsAsync(runId, cancellationToken).ConfigureAwait(false))
        {
            builder.Add(row);
        }
        return builder.Build(expected);
    }

    /// <summary>
    /// Builds a report from result rows. Without an explicit <see cref="ScoreOptions.Seed"/>, the bootstrap seeds derive
    /// from the run's seed, so a report is the same every time it is rendered.
    /// </summary>
    public static RunReport Build(RunSpec spec, IReadOnlyList<ResultRecord> rows, int? expectedRows = null, ScoreOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(rows);
        var builder = new Builder(spec, options);
        foreach (var row in rows)
        {
            builder.Add(row);
        }
        return builder.Build(expectedRows);
    }

    /// <summary>
    /// A report aggregated one row at a time, so that a report never holds the rows themselves (their messages, replies and
    /// judge outputs: most of a row's size). What it keeps per row is the few fields the bootstrap and the paired tests
    /// resample (<see cref="ScoredResponse"/>, with the model, method and category strings shared); everything else is a
    /// count per cell. Fed the rows in the store's order (method, suite, probe id), it gives the same report as the
    /// list-based implementation before it, byte for byte (ReportStreamingTests):
    /// <list type="bullet">
    /// <item>The percentile bootstrap (<see cref="Bootstrap.RatioInterval"/>) draws probe indices i ~ U[0, n) and counts
    /// kind[i]; its intervals are a function of the kinds in probe-id order and the seed. Counts alone have the same
    /// distribution (a multinomial draw with the cell's kind shares) but not the same draws, so the kinds are kept, one small
    /// record per judged row, to keep every printed interval the same.</item>
    /// <item>The paired bootstrap and McNemar tests need each probe's pair of answers, joined on the probe id: the same
    /// records, paired after the last row.</item>
    /// <item>Totals, target errors and fallbacks are counts per (model, method, scenario, category), kept in the order the
    /// cells first appear as the grouping of the rows did; the white-box, DiffPO, judge-vote and adaptive summaries use their
    /// own accumulators (running sums in row order, counts).</item>
    /// </list>
    /// </summary>
    internal sealed class Builder
    {
        private readonly RunSpec _spec;
        private readonly ScoreOptions _options;
        private readonly Dictionary<string, string> _strings = new(StringComparer.Ordinal);
        private readonly List<ScoredResponse> _scored = [];
        private readonly List<string> _scoredSuites = [];
        private readonly HashSet<string> _suites = new(StringComparer.Ordinal);
        private readonly CellCounts _errors = new(), _fallbacks = new();
        private readonly List<string> _methods = [];
        private readonly Dictionary<string, (int Fallbacks, int Rows)> _byMethod = new(StringComparer.Ordinal);
        private readonly WhiteBoxSummary.Accumulator _whiteBox = new();
        private readonly JudgeVoteSummary.Accumulator _votes = new();
        private readonly DiffPoSummary.Accumulator _diffPo = new();
        private readonly AdaptiveSummary.Accumulator? _adaptive;
        private int _rows, _complete, _judgeErrors;
        private long _promptTokens, _completionTokens;

        public Builder(RunSpec spec, ScoreOptions? options)
        {
            ArgumentNullException.ThrowIfNull(spec);
            _spec = spec;
            options ??= new ScoreOptions();
            _options = options with { Seed = options.Seed ?? spec.Seed };
            _adaptive = AdaptiveSummary.Accumulator.For(spec);
            foreach (var m in spec.Methods)
            {
                if (!_byMethod.ContainsKey(m))
                {
                    _byMethod[m] = (0, 0);
                    _methods.Add(m);
                }
            }
        }

        private string Shared(string s)
        {
            if (_strings.TryGetValue(s, out var shared)) return shared;
            _strings[s] = s;
            return s;
        }

        public void Add(ResultRecord r)
        {
            ArgumentNullException.ThrowIfNull(r);
            _rows++;
            if (r.IsComplete) _complete++;
            if (r.Error is null && r.Verdict?.Label == Label.JudgeError) _judgeErrors++;
            _promptTokens += r.PromptTokens;
            _completionTokens += r.CompletionTokens;
            var (model, method, category, suite) = (Shared(r.Model), Shared(r.Method), Shared(r.Category), Shared(r.Suite));
            _suites.Add(suite);
            if (r.Verdict is { } v)
            {
                _scored.Add(new ScoredResponse(r.ProbeId, model, method, r.Scenario, category, r.Context, r.Polarity, v.Label, r.CorrectRole));
                _scoredSuites.Add(suite);
            }
            if (r.Error is not null) _errors.Add(model, method, r.Scenario, category);
            if (r.Fallback) _fallbacks.Add(model, method, r.Scenario, category);
            if (!_byMethod.TryGetValue(method, out var m)) _methods.Add(method);
            _byMethod[method] = (m.Fallbacks + (r.Fallback ? 1 : 0), m.Rows + 1);
            _whiteBox.Add(r);
            _votes.Add(r);
            _diffPo.Add(r);
            _adaptive?.Add(r);
        }

        public RunReport Build(int? expectedRows)
        {
            var options = _options;
            int baseSeed = options.Seed!.Value;
            var scores = ScoreTable.Compute(_scored, options);
            var errors = _errors.Rows().Select(c => new TargetErrorCount(c.Model, c.Method, c.Scenario, c.Category, c.Count)).ToList();

            // Pairs are joined on the probe id; with several suites in one run the ids are qualified by suite so they cannot collide.
            IReadOnlyList<ScoredResponse> paired = _suites.Count > 1
                ? [.. _scored.Select((r, i) => r with { ProbeId = $"{_scoredSuites[i]}/{r.ProbeId}" })]
                : _scored;
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

            var totals = new RunTotals(expectedRows, _rows, _complete, _errors.Total, _judgeErrors, _promptTokens, _completionTokens);
            var methodFallbacks = _methods.Select(m => new MethodFallbacks(m, _byMethod[m].Fallbacks, _byMethod[m].Rows)).ToList();
            var fallbacks = _fallbacks.Rows().Select(c => new FallbackCount(c.Model, c.Method, c.Scenario, c.Category, c.Count)).ToList();
            return new RunReport(_spec, totals, scores, errors, comparisons)
            {
                WhiteBox = _whiteBox.Build(),
                JudgeVotes = _votes.Build(),
                DiffPo = _diffPo.Build(),
                ConfidenceLevel = options.ConfidenceLevel,
                Settings = new ReportSettings(options.BootstrapIntervals, options.BootstrapIntervals ? options.Resamples : 0, options.ConfidenceLevel, baseSeed,
                    options.MinimumCount, options.Baseline),
                Fallbacks = fallbacks,
                FallbacksByMethod = methodFallbacks,
                Adaptive = _adaptive?.Build(),
            };
        }

        /// <summary>
        /// Rows counted per (model, method, scenario) and category, listed as grouping the rows did: cells in the order they
        /// first appear, each as its "all" row followed by its categories in the order they first appear.
        /// </summary>
        private sealed class CellCounts
        {
            private readonly List<(string Model, string Method, Scenario Scenario)> _order = [];
            private readonly Dictionary<(string Model, string Method, Scenario Scenario), (List<string> Categories, Dictionary<string, int> Counts)> _cells = [];

            public int Total { get; private set; }

            public void Add(string model, string method, Scenario scenario, string category)
            {
                Total++;
                if (!_cells.TryGetValue((model, method, scenario), out var cell))
                {
                    _cells[(model, method, scenario)] = cell = ([], new Dictionary<string, int>(StringComparer.Ordinal));
                    _order.Add((model, method, scenario));
                }
                if (!cell.Counts.TryGetValue(category, out var n)) cell.Categories.Add(category);
                cell.Counts[category] = n + 1;
            }

            public IEnumerable<(string Model, string Method, Scenario Scenario, string Category, int Count)> Rows()
            {
                foreach (var key in _order)
                {
                    var cell = _cells[key];
                    yield return (key.Model, key.Method, key.Scenario, ScoreTable.AllCategories, cell.Counts.Values.Sum());
                    foreach (var c in cell.Categories)
                    {
                        yield return (key.Model, key.Method, key.Scenario, c, cell.Counts[c]);
                    }
                }
            }
        }
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
