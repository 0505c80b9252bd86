using System.Globalization;
using BiasFree.Runs;
using BiasFree.Scoring;

/// <summary>
/// <c>decoding-costs</c>: per method of a stored run, target tokens per answer and decoding speed, with 95 % percentile
/// bootstrap intervals over probes (10,000 resamples, seeded). Run the methods with <c>--concurrency 1</c> so each row's
/// latency is its own decoding time, not time spent queueing behind others.
/// <list type="bullet">
/// <item>target tokens per answer = mean over probes of the completion tokens of every request the probe sent to the
/// target (a DiffPO refinement's tokens, written by the in-process aligner, are left out and shown as aligner tokens);</item>
/// <item>tokens/s = Σ completion tokens (target and aligner) / Σ latency seconds (a ratio of sums, resampled by probe);</item>
/// <item>cached rows are left out (their latency is not a decoding time).</item>
/// </list>
/// Usage: dotnet run -c Release --project bench/BiasFree.Bench -- decoding-costs --runs-dir DIR --run-id ID
/// </summary>
internal static class DecodingCostsBench
{
    private const int Resamples = 10_000;

    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        string? Arg(string name)
        {
            int i = args.ToList().IndexOf(name);
            return i >= 0 && i + 1 < args.Count ? args[i + 1] : null;
        }
        var runsDir = Arg("--runs-dir") ?? "runs";
        var runId = Arg("--run-id") ?? throw new ArgumentException("--run-id ID is required");
        await using var store = await RunStore.OpenDirectoryAsync(runsDir);
        var rows = new List<ResultRecord>();
        await foreach (var r in store.ReadResultsAsync(runId)) rows.Add(r);
        Console.WriteLine("| method | answers timed | target tokens per answer | aligner tokens per answer | tokens/s |");
        Console.WriteLine("|---|---:|---|---:|---|");
        foreach (var group in rows.Where(r => r.Error is null && r.Requests.Count > 0 && r.Requests.All(q => !q.Cached)).GroupBy(r => r.Method))
        {
            // DiffPO's refinement request records how many tokens its aligner wrote (BiasFree.Reports.DiffPoSummary).
            static double AlignerTokens(ResultRecord r) => r.Requests.Sum(q =>
                q.Details?.GetValueOrDefault(BiasFree.Reports.DiffPoSummary.AlignerOutputTokensKey) is { } v
                    ? double.Parse(v, CultureInfo.InvariantCulture) : 0);
            var tokens = group.Select(r => (double)r.CompletionTokens).ToArray();
            var aligner = group.Select(AlignerTokens).ToArray();
            var targetTokens = tokens.Zip(aligner, (t, a) => t - a).ToArray();
            var seconds = group.Select(r => r.LatencyMs / 1000.0).ToArray();
            double meanTokens = targetTokens.Average();
            double speed = tokens.Sum() / Math.Max(seconds.Sum(), 1e-9);
            var random = new Random(Bootstrap.DeriveSeed(0, runId, group.Key));
            var meanStats = new double[Resamples];
            var speedStats = new double[Resamples];
            int n = tokens.Length;
            for (int b = 0; b < Resamples; b++)
            {
                double t = 0, tt = 0, s = 0;
                for (int i = 0; i < n; i++)
                {
                    int k = random.Next(n);
                    t += tokens[k];
                    tt += targetTokens[k];
                    s += seconds[k];
                }
                meanStats[b] = tt / n;
                speedStats[b] = t / Math.Max(s, 1e-9);
            }
            var ciTokens = Bootstrap.Percentile(meanStats, 0.95);
            var ciSpeed = Bootstrap.Percentile(speedStats, 0.95);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {group.Key} | {n} | {meanTokens:0.00} [{ciTokens?.Low:0.00}, {ciTokens?.High:0.00}] | {aligner.Average():0.00} | {speed:0.0} [{ciSpeed?.Low:0.0}, {ciSpeed?.High:0.0}] |"));
        }
        return 0;
    }
}
