using BiasFree.Engine.Evaluations;
using BiasFree.Evaluations;
using BiasFree.Probes;
using BiasFree.Reports;
using BiasFree.Runs;
using BiasFree.Scoring;
using Microsoft.Extensions.AI;

// Usage: LibraryExample [RUNS_DIR] [LIMIT]
var runsDir = args.Length > 0 ? args[0] : "runs";
var limit = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 60;
string[] methods = ["none", "self-awareness", "cot"];

await using var store = await RunStore.OpenDirectoryAsync(runsDir);

// Two targets: the demo model that ships with BiasFree.Engine, and any IChatClient of your own.
// A custom client gets a cache identity that changes whenever its replies could; without one, nothing is cached.
EvaluationTarget[] targets =
[
    LocalTargets.Demo(),
    EvaluationTarget.Custom(new CautiousClient(), model: "cautious", cacheIdentity: "cautious-v1"),
];

foreach (var target in targets)
{
    // suites + target + methods (+ judges, default: the rule-based multiple-choice judge) + settings.
    var evaluation = new Evaluation(["bbq"], target)
    {
        Methods = methods,
        Limit = limit,   // a seeded, stratified sample: every category keeps its share
        Seed = 1,
    };
    foreach (var warning in evaluation.Warnings)
    {
        Console.Error.WriteLine($"warning: {warning}");
    }
    var outcome = await evaluation.RunAsync(store);
    Console.WriteLine($"{target.Model}: {outcome.Completed} rows run, {outcome.Skipped} already done, {outcome.Errors} errors");

    // BFS with its 95% bootstrap interval, beside disambiguated accuracy (BFS alone rewards refusing).
    var report = await RunReport.BuildAsync(store, evaluation.RunId);
    foreach (var row in report.Scores.Where(r => r.Category == ScoreTable.AllCategories))
    {
        Console.WriteLine($"  {row.Method,-15} BFS {Percent(row.Bfs)} [{Percent(row.BfsLow)}, {Percent(row.BfsHigh)}]  accuracy {Percent(row.Accuracy)}  n={row.Responses}");
    }

    // A paired test: each method against the vanilla prompt on the same probes (exact McNemar, paired bootstrap CI).
    var scored = new List<ScoredResponse>();
    await foreach (var r in store.ReadScoredAsync(evaluation.RunId))
    {
        scored.Add(r);
    }
    var vanilla = scored.Where(r => r.Method == methods[0]).ToList();
    foreach (var method in methods.Skip(1))
    {
        var c = PairedComparison.Compare(vanilla, [.. scored.Where(r => r.Method == method)]);
        Console.WriteLine($"  {method} vs {methods[0]}: ΔBFS {Points(c.Difference)} pp [{Points(c.DifferenceInterval?.Low)}, {Points(c.DifferenceInterval?.High)}], p = {c.PValue:0.0000} over {c.Probes} probes");
    }

    // The full report: every category, CIs, BBQ bias scores, errors, the settings that ran.
    var path = Path.Combine(runsDir, $"{evaluation.RunId}.md");
    await File.WriteAllTextAsync(path, ReportWriter.Render(report, ReportFormat.Markdown));
    Console.WriteLine($"  report: {path}");
}

static string Percent(double? v) => v is { } x ? (100 * x).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture) : "-";
static string Points(double? v) => v is { } x ? (100 * x).ToString("+0.0;-0.0;0.0", System.Globalization.CultureInfo.InvariantCulture) : "-";

/// <summary>A stand-in for your own model: it never picks a person ("cannot be determined").</summary>
internal sealed class CautiousClient : IChatClient
{
    public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, "It cannot be determined from the information given.")));

    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException();

    public object? GetService(Type serviceType, object? serviceKey = null) => null;

    public void Dispose()
    {
    }
}
