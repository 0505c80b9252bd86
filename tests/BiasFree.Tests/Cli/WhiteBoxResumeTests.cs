using BiasFree.Engine.WhiteBox;
using BiasFree.Runs;
using BiasFree.Tests.Runs;
using Microsoft.Data.Sqlite;

namespace BiasFree.Tests.Cli;

/// <summary>
/// <c>run --resume</c> and the response cache with white-box methods (FairSteer, its random-vector ablation, BiasFilter)
/// on a tiny model folder, sampled with per-request seeds so a reply is a function of its request.
/// </summary>
public class WhiteBoxResumeTests
{
    private const int Limit = 4;
    private static readonly string[] Methods = ["none", "fairsteer", "fairsteer-random", "biasfilter"];

    /// <summary>A FairSteer folder for the tiny model (hidden 32, 1 layer): a seeded probe that fires at some positions.</summary>
    private static string SteeringFolder(string dir, string name, double alpha)
    {
        var rng = new Random(4);
        var vector = Enumerable.Range(0, 32).Select(_ => (float)(rng.NextDouble() * 8 - 4)).ToArray();
        var weight = Enumerable.Range(0, 32).Select(_ => rng.NextDouble() - 0.5).ToArray();
        var model = new FairSteerModel(new FairSteerInfo { Model = "tiny-llama", HiddenSize = 32, NumLayers = 1, Layer = 0, Alpha = alpha },
            [new LogisticProbe(weight, 0)], [vector]);
        var folder = Path.Combine(dir, name);
        model.Save(folder);
        return folder;
    }

    private static List<string> RunArgs(string target, string steering, string fair, string runsDir, string runId) =>
    [
        "run", "--target", target, "--suite", "bbq", "--limit", Limit.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "--max-tokens", "6", "--temperature", "1", "--method", string.Join(",", Methods), "--steering", steering,
        "--reward-model", fair, "--reward-ref", target, "--filter-keep", "2", "--filter-children", "2", "--segment-tokens", "3",
        "--runs-dir", runsDir, "--run-id", runId,
    ];

    private static async Task<List<ResultRecord>> ReadAsync(string runsDir, string runId, CancellationToken ct)
    {
        await using var store = await RunStore.OpenDirectoryAsync(runsDir, ct);
        return (await store.ReadResultsAsync(runId, ct).ToListAsync(ct)).OrderBy(r => r.Method, StringComparer.Ordinal).ThenBy(r => r.ProbeId, StringComparer.Ordinal).ToList();
    }

    /// <summary>What must not change between two runs of the same work: reply, verdict and what the method recorded.</summary>
    private static (string, string, string?, string?, string) Row(ResultRecord r) =>
        (r.Method, r.ProbeId, r.Response, r.Verdict?.Label.ToString(),
         string.Join(";", (r.Requests[^1].Details ?? new Dictionary<string, string>()).OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}")));

    private static async Task<int> ExecAsync(string databasePath, string sql)
    {
        await using var db = new SqliteConnection($"Data Source={databasePath}");
        await db.OpenAsync();
        await using var cmd = db.CreateCommand();
        cmd.CommandText = sql;
        return await cmd.ExecuteNonQueryAsync();
    }

    [Fact]
    public async Task AWhiteBoxRunResumedFromPartialResultsLosesAndRepeatsNothingAndEndsAsAStraightRun()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var target = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-llama"));
        var fair = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-fair"), seed: 9);
        var steering = SteeringFolder(dir.Path, "steer", 3);
        int total = Methods.Length * Limit;

        var straightDir = Path.Combine(dir.Path, "straight");
        var straight = await CliProcess.RunAsync(RunArgs(target, steering, fair, straightDir, "k"), dir.Path, ct, TimeSpan.FromSeconds(240));
        Assert.True(straight.ExitCode == 0, straight.ToString());
        var expected = (await ReadAsync(straightDir, "k", ct)).Select(Row).ToList();
        Assert.Equal(total, expected.Count);
        Assert.Contains(expected, r => r.Item5.Contains(FairSteerChatClient.GateFiringsKey, StringComparison.Ordinal));
        Assert.Contains(expected, r => r.Item5.Contains(BiasFilterChatClient.CandidatesKey, StringComparison.Ordinal));

        // A run interrupted after part of its work: the same run with every other row (of every method) removed, and with
        // an empty response cache, so the resumed rows are generated again by the white-box methods themselves.
        var partialDir = Path.Combine(dir.Path, "partial");
        var first = await CliProcess.RunAsync(RunArgs(target, steering, fair, partialDir, "k"), dir.Path, ct, TimeSpan.FromSeconds(240));
        Assert.True(first.ExitCode == 0, first.ToString());
        var db = Path.Combine(partialDir, RunStore.FileName);
        int removed = await ExecAsync(db, "DELETE FROM results WHERE rowid % 2 = 0");
        Assert.InRange(removed, 1, total - 1);
        await ExecAsync(db, "DELETE FROM response_cache");
        var kept = await ReadAsync(partialDir, "k", ct);

        var resumed = await CliProcess.RunAsync(["run", "--resume", "k", "--runs-dir", partialDir], dir.Path, ct, TimeSpan.FromSeconds(240));
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Contains($"resumed {total - removed}", resumed.StdOut, StringComparison.Ordinal);
        var rows = await ReadAsync(partialDir, "k", ct);
        Assert.Equal(total, rows.Count);
        Assert.Equal(total, rows.Select(r => (r.Method, r.ProbeId)).Distinct().Count());
        Assert.All(rows, r => Assert.True(r.IsComplete));
        Assert.Equal(expected, rows.Select(Row));
        // Nothing redone: the rows the first session completed are untouched (same completion time), and the removed
        // ones were generated again (the cache was empty, so their requests reached the model).
        var keptKeys = kept.Select(r => (r.Method, r.ProbeId)).ToHashSet();
        Assert.Equal(kept.Select(r => (r.Method, r.ProbeId, r.Completed)), rows.Where(r => keptKeys.Contains((r.Method, r.ProbeId))).Select(r => (r.Method, r.ProbeId, r.Completed)));
        Assert.All(rows.Where(r => !keptKeys.Contains((r.Method, r.ProbeId))), r => Assert.All(r.Requests, q => Assert.False(q.Cached)));

        var a = await EndToEndTests.JsonReport(straightDir, "k", ct);
        var b = await EndToEndTests.JsonReport(partialDir, "k", ct);
        Assert.Equal(a.GetProperty("scores").GetRawText(), b.GetProperty("scores").GetRawText());
        Assert.Equal(a.GetProperty("whiteBox").GetRawText(), b.GetProperty("whiteBox").GetRawText());
    }

    [Fact]
    public async Task WhiteBoxRepliesComeFromTheCacheOnlyWhileTheirArtefactsAreUnchanged()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var target = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-llama"));
        var fairFolder = Path.Combine(dir.Path, "tiny-fair");
        var fair = TinyModelFolder.Create(fairFolder, seed: 9);
        var steering = SteeringFolder(dir.Path, "steer", 3);

        async Task<List<ResultRecord>> Run(string runId)
        {
            var run = await CliProcess.RunAsync(RunArgs(target, steering, fair, dir.Path, runId), dir.Path, ct, TimeSpan.FromSeconds(240));
            Assert.True(run.ExitCode == 0, run.ToString());
            return await ReadAsync(dir.Path, runId, ct);
        }
        static ISet<string> CachedMethods(List<ResultRecord> rows) =>
            rows.GroupBy(r => r.Method).Where(g => g.All(r => r.Requests.All(q => q.Cached))).Select(g => g.Key).ToHashSet();

        var first = await Run("a");
        Assert.Empty(CachedMethods(first));

        // The same run again: every reply, white-box ones included, is read back, with what the method recorded.
        var again = await Run("b");
        Assert.Equal(Methods.ToHashSet(), CachedMethods(again));
        Assert.Equal(first.Select(Row), again.Select(Row));

        // A refit into the same folder (another α): FairSteer's replies are generated again, the others still cached.
        SteeringFolder(dir.Path, "steer", 5);
        var refit = await Run("c");
        Assert.Equal(new HashSet<string> { "none", "biasfilter" }, CachedMethods(refit));
        Assert.All(refit.Where(r => r.Method.StartsWith("fairsteer", StringComparison.Ordinal)), r => Assert.All(r.Requests, q => Assert.False(q.Cached)));

        // A retrained π_fair in the same folder: BiasFilter's replies are generated again.
        Directory.Delete(fairFolder, recursive: true);
        TinyModelFolder.Create(fairFolder, seed: 10);
        var retrained = await Run("d");
        Assert.Equal(new HashSet<string> { "none", "fairsteer", "fairsteer-random" }, CachedMethods(retrained));
        Assert.All(retrained.Where(r => r.Method == "biasfilter"), r => Assert.All(r.Requests, q => Assert.False(q.Cached)));
    }
}
