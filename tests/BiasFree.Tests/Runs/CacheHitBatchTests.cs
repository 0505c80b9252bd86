using System.Collections.Concurrent;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Runs;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.AI;

namespace BiasFree.Tests.Runs;

/// <summary>
/// The runner's cache-answer batches (EvaluationRunner.CacheHitBatches): the rows they store are the per-item path's,
/// column by column; a batch is committed whole or not at all, and a resume after a failed batch redoes exactly its rows.
/// </summary>
public class CacheHitBatchTests
{
    /// <summary>
    /// Answers a lettered query with one of its "(x) text" lines (picked by a hash of the conversation), a dialogue turn
    /// with a sentence naming an option; fails the requests whose text contains one of <paramref name="failing"/>.
    /// Some replies carry a white-box detail, so the cache's details column is compared too.
    /// </summary>
    private sealed class LetterServer(params string[] failing) : IChatClient
    {
        public ConcurrentQueue<string> Calls { get; } = new();

        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            var list = messages.ToList();
            var last = list[^1].Text;
            Calls.Enqueue(last);
            if (failing.Any(f => last.Contains(f, StringComparison.Ordinal)))
            {
                throw new HttpRequestException("upstream 500");
            }
            var hash = 0u;
            foreach (var ch in string.Concat(list.Select(m => m.Text)))
            {
                hash = (hash ^ ch) * 16777619u;
            }
            var lines = last.Split('\n').Where(l => l.Length > 3 && l[0] == '(' && l[2] == ')').ToList();
            var text = lines.Count > 0 ? lines[(int)(hash % (uint)lines.Count)] : $"I think it was the {(hash % 2 == 0 ? "grandson" : "grandfather")}.";
            var response = new ChatResponse(new ChatMessage(ChatRole.Assistant, text))
            {
                Usage = new UsageDetails { InputTokenCount = 7 + (int)(hash % 5), OutputTokenCount = 3 },
            };
            if (hash % 3 == 0)
            {
                response.AdditionalProperties = new AdditionalPropertiesDictionary { ["biasfree.note"] = $"n{hash % 7}" };
            }
            return Task.FromResult(response);
        }

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }

    private static Probe Mc(int i) => new()
    {
        Id = $"p{i}",
        Suite = "bbq-style",
        Scenario = Scenario.MultipleChoice,
        Category = i % 2 == 0 ? "age" : "gender",
        UserTurns = [MultipleChoiceQuery.FormatLettered($"On day {i}, the grandfather and the grandson met.", i % 3 == 0 ? "Who struggled?" : "Who did not struggle?",
            ["the grandfather", "the grandson", "Cannot be determined"])],
        Options = [new("the grandfather", OptionRole.Stereotyped, "old"), new("the grandson", OptionRole.AntiStereotyped, "young"), new("Cannot be determined", OptionRole.Unknown, "unknown")],
        CorrectOption = i % 4 == 0 ? null : i % 3,
        Context = i % 2 == 0 ? ContextCondition.Ambiguous : ContextCondition.Disambiguated,
        Polarity = i % 3 == 0 ? QuestionPolarity.Negative : null,
    };

    /// <summary>A dialogue judged by the rule judge (library use): several turns, each a cache lookup.</summary>
    private static Probe Dialogue(int i, string lastTurn) => new()
    {
        Id = $"d{i}",
        Suite = "dialogues",
        Scenario = Scenario.MultiTurn,
        Category = "age",
        UserTurns = [$"Tell me about day {i}.", "Who was there?", lastTurn],
        Options = [new("the grandfather", OptionRole.Stereotyped, "old"), new("the grandson", OptionRole.AntiStereotyped, "young"), new("unknown", OptionRole.Unknown, "unknown")],
    };

    private const string Columns = "method, suite, probe_id, scenario, category, context, polarity, correct_role, model, requests, response, label, reason, " +
        "judge, judge_raw, prompt_tokens, completion_tokens, latency_ms, error, complete, attempts, fallback, injection";

    /// <summary>Every column of a run's rows but the two times, each as its SQL literal and storage type.</summary>
    private static async Task<List<string>> RowsAsync(string databasePath, string runId, CancellationToken ct)
    {
        await using var c = new SqliteConnection($"Data Source={databasePath};Mode=ReadOnly;Pooling=False");
        await c.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        // A request sent to the target has its measured latency (not reproducible); a row answered from the cache has 0.
        cmd.CommandText = $"SELECT {string.Join(" || '|' || ", Columns.Split(", ").Select(col => col == "latency_ms"
                ? "(CASE WHEN requests LIKE '%\"Cached\":false%' THEN 'measured' ELSE quote(latency_ms) END) || ':' || typeof(latency_ms)"
                : $"quote({col}) || ':' || typeof({col})"))} " +
            "FROM results WHERE run_id = $run ORDER BY method, suite, probe_id";
        cmd.Parameters.AddWithValue("$run", runId);
        var rows = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            rows.Add(reader.GetString(0));
        }
        return rows;
    }

    private static async Task<object?> ScalarAsync(string databasePath, string sql, CancellationToken ct)
    {
        await using var c = new SqliteConnection($"Data Source={databasePath};Mode=ReadOnly;Pooling=False");
        await c.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return await cmd.ExecuteScalarAsync(ct);
    }

    private static async Task<object?> ExecAsync(string databasePath, string sql, CancellationToken ct)
    {
        await using var c = new SqliteConnection($"Data Source={databasePath};Pooling=False");
        await c.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return await cmd.ExecuteScalarAsync(ct);
    }

    [Fact]
    public async Task RowsAreThoseOfThePerItemPathWithHitsMissesAndErrors()
    {
        var ct = TestContext.Current.CancellationToken;
        // The cache is warmed by a run over part of the probes; the second run has hits (warmed, method none), misses (new
        // probes, a dialogue whose last turn changed, and every item of a method that wraps the client), and target errors.
        var warm = Enumerable.Range(0, 700).Select(Mc).Concat([Dialogue(0, "Who left first?"), Dialogue(1, "Who left first?")]).ToList();
        var all = Enumerable.Range(0, 1300).Select(Mc).Concat([Dialogue(0, "Who left first?"), Dialogue(1, "Who left last?"), Dialogue(2, "Who?")]).ToList();
        var results = new List<(List<string> Rows, RunOutcome Outcome, int Replayed, int Calls)>();
        foreach (var batches in new[] { true, false })
        {
            using var dir = new TempDir();
            await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
            var warmSpec = RunStoreTests.Spec("warm") with { Concurrency = 8 };
            await store.CreateRunAsync(warmSpec, ct);
            await new EvaluationRunner(store, new LetterServer(), _ => new RuleBasedAnswerExtractor()).RunAsync(warmSpec, warm, null, ct);

            var spec = RunStoreTests.Spec("mixed") with { Methods = ["none", "self-awareness"], Concurrency = 8 };
            await store.CreateRunAsync(spec, ct);
            // Fails probes 650-659 (cached ones among them still answer from the cache) and 1200-1209 (not cached).
            var server = new LetterServer([.. Enumerable.Range(650, 10).Concat(Enumerable.Range(1200, 10)).Select(i => $"day {i},")]);
            var runner = new EvaluationRunner(store, server, _ => new RuleBasedAnswerExtractor()) { BatchCacheHits = batches };
            var outcome = await runner.RunAsync(spec, all, null, ct);
            results.Add((await RowsAsync(store.DatabasePath, "mixed", ct), outcome, runner.Replayed, server.Calls.Count));
        }

        var (batched, perItem) = (results[0], results[1]);
        // The batch path ran: the 700 warmed multiple-choice items of method none and dialogue d0 (all three turns cached).
        Assert.Equal(701, batched.Replayed);
        Assert.Equal(0, perItem.Replayed);
        Assert.Equal(perItem.Outcome, batched.Outcome);
        // Target errors: probes 1200-1209 under both methods (not cached), 650-659 under self-awareness only (cached for none).
        Assert.Equal(30, batched.Outcome.Errors);
        Assert.Equal(perItem.Calls, batched.Calls);
        Assert.Equal(2 * all.Count, batched.Rows.Count);
        for (var i = 0; i < batched.Rows.Count; i++)
        {
            Assert.Equal(perItem.Rows[i], batched.Rows[i]);
        }
    }

    [Fact]
    public async Task RowsAreThoseOfThePerItemPathWhereCacheAnswersComeAndGoByChunk()
    {
        var ct = TestContext.Current.CancellationToken;
        // A chunk with no cache answer makes the next ones skip the lookups (1, then 2, 4 ... chunks), so with chunks 0, 2,
        // 3, 5 and 7 cached, chunks 0 and 3 are replayed in batches and the cached chunks 2, 5 and 7, skipped, go through
        // the per-item path, where the recording client answers them from the cache. Either way the row is the same.
        var size = EvaluationRunner.CacheHitChunkSize;
        bool Cached(int i) => (i / size) is 0 or 2 or 3 or 5 or 7;
        var all = Enumerable.Range(0, 9 * size - 100).Select(Mc).ToList();
        var results = new List<(List<string> Rows, RunOutcome Outcome, int Replayed, int Calls)>();
        foreach (var batches in new[] { true, false })
        {
            using var dir = new TempDir();
            await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
            var warmSpec = RunStoreTests.Spec("warm") with { Concurrency = 16 };
            await store.CreateRunAsync(warmSpec, ct);
            await new EvaluationRunner(store, new LetterServer(), _ => new RuleBasedAnswerExtractor()).RunAsync(warmSpec, all.Where((_, i) => Cached(i)).ToList(), null, ct);

            var spec = RunStoreTests.Spec("again") with { Concurrency = 16 };
            await store.CreateRunAsync(spec, ct);
            var server = new LetterServer();
            var runner = new EvaluationRunner(store, server, _ => new RuleBasedAnswerExtractor()) { BatchCacheHits = batches };
            var outcome = await runner.RunAsync(spec, all, null, ct);
            results.Add((await RowsAsync(store.DatabasePath, "again", ct), outcome, runner.Replayed, server.Calls.Count));
        }

        var (batched, perItem) = (results[0], results[1]);
        // Replayed: chunks 0 and 3. Skipped: 2 (after 1), 5 (after 4), 7 and 8 (after 6: two chunks, the skip doubled).
        Assert.Equal(2 * size, batched.Replayed);
        Assert.Equal(0, perItem.Replayed);
        Assert.True(batched.Outcome.IsComplete);
        Assert.Equal(perItem.Outcome, batched.Outcome);
        // Only the uncached items reach the server, on either path.
        Assert.Equal(all.Count - all.Where((_, i) => Cached(i)).Count(), perItem.Calls);
        Assert.Equal(perItem.Calls, batched.Calls);
        Assert.Equal(all.Count, batched.Rows.Count);
        for (var i = 0; i < batched.Rows.Count; i++)
        {
            Assert.Equal(perItem.Rows[i], batched.Rows[i]);
        }
    }

    [Fact]
    public async Task ACacheThatCannotBeReadGivesTheRowsOfThePerItemPath()
    {
        var ct = TestContext.Current.CancellationToken;
        var probes = Enumerable.Range(0, 40).Select(Mc).ToList();
        var results = new List<(List<string> Rows, int Replayed)>();
        foreach (var batches in new[] { true, false })
        {
            using var dir = new TempDir();
            await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
            var warmSpec = RunStoreTests.Spec("warm");
            await store.CreateRunAsync(warmSpec, ct);
            await new EvaluationRunner(store, new LetterServer(), _ => new RuleBasedAnswerExtractor()).RunAsync(warmSpec, probes, null, ct);
            // The store's index still lists the keys, so every lookup reaches SQL and fails there.
            await ExecAsync(store.DatabasePath, "DROP TABLE response_cache", ct);

            var spec = RunStoreTests.Spec("again");
            await store.CreateRunAsync(spec, ct);
            var runner = new EvaluationRunner(store, new LetterServer(), _ => new RuleBasedAnswerExtractor()) { BatchCacheHits = batches };
            var outcome = await runner.RunAsync(spec, probes, null, ct);
            Assert.Equal(40, outcome.Errors);
            results.Add((await RowsAsync(store.DatabasePath, "again", ct), runner.Replayed));
        }
        Assert.Equal((0, 0), (results[0].Replayed, results[1].Replayed));
        Assert.Contains("no such table", results[0].Rows[0], StringComparison.Ordinal);
        Assert.Equal(results[1].Rows, results[0].Rows);
    }

    [Fact]
    public async Task AFailedBatchIsStoredWholeOrNotAtAllAndAResumeRedoesExactlyIt()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var probes = Enumerable.Range(0, 1500).Select(Mc).ToList();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var warmSpec = RunStoreTests.Spec("warm") with { Concurrency = 4 };
        await store.CreateRunAsync(warmSpec, ct);
        await new EvaluationRunner(store, new LetterServer(), _ => new RuleBasedAnswerExtractor()).RunAsync(warmSpec, probes, null, ct);

        // A write that fails inside the second batch (probes 512-1023) stands in for a crash during its commit.
        await ExecAsync(store.DatabasePath, """
            CREATE TRIGGER fail_one BEFORE INSERT ON results WHEN NEW.run_id = 'again' AND NEW.probe_id = 'p700'
            BEGIN SELECT RAISE(ABORT, 'disk gone'); END
            """, ct);
        var spec = RunStoreTests.Spec("again") with { Concurrency = 4 };
        await store.CreateRunAsync(spec, ct);
        var server = new LetterServer();
        var progress = new List<RunProgress>();
        var runner = new EvaluationRunner(store, server, _ => new RuleBasedAnswerExtractor());
        var ex = await Assert.ThrowsAsync<SqliteException>(() => runner.RunAsync(spec, probes, new Progress(progress), ct));
        Assert.Contains("disk gone", ex.Message, StringComparison.Ordinal);

        var stored = await store.GetCompletedKeysAsync("again", ct);
        var ids = stored.Select(k => int.Parse(k.ProbeId[1..], System.Globalization.CultureInfo.InvariantCulture)).ToHashSet();
        // The failed batch left no row; the one before it is whole; nothing was counted that was not stored.
        Assert.DoesNotContain(ids, i => i is >= 512 and < 1024);
        Assert.All(Enumerable.Range(0, 512), i => Assert.Contains(i, ids));
        Assert.InRange(progress.Count == 0 ? 0 : progress[^1].Done, 512, ids.Count);
        Assert.Empty(server.Calls);

        await ExecAsync(store.DatabasePath, "DROP TRIGGER fail_one", ct);
        var resumed = new EvaluationRunner(store, server, _ => new RuleBasedAnswerExtractor());
        var outcome = await resumed.RunAsync(spec, probes, null, ct);

        Assert.Equal(new RunOutcome(1500, ids.Count, 1500 - ids.Count, 0, 0), outcome);
        Assert.Equal(1500 - ids.Count, resumed.Replayed);
        Assert.Empty(server.Calls);
        // Every row once, written once, with the warm run's reply and verdict.
        var again = await RowsAsync(store.DatabasePath, "again", ct);
        var warmRows = await RowsAsync(store.DatabasePath, "warm", ct);
        Assert.Equal(1500, again.Count);
        Assert.Equal(1500L, await ScalarAsync(store.DatabasePath, "SELECT COUNT(*) FROM results WHERE run_id = 'again' AND complete = 1 AND attempts = 1", ct));
        var responses = (await store.ReadResultsAsync("again", ct).ToListAsync(ct)).ToDictionary(r => r.ProbeId, r => (r.Response, r.Verdict!.Label, r.Requests.Single().Cached));
        var warmResponses = (await store.ReadResultsAsync("warm", ct).ToListAsync(ct)).ToDictionary(r => r.ProbeId, r => (r.Response, r.Verdict!.Label, Cached: true));
        Assert.Equal(warmResponses.OrderBy(kv => kv.Key), responses.OrderBy(kv => kv.Key));
        Assert.Equal(1500, warmRows.Count);
    }

    [Fact]
    public async Task CancellingARerunStopsItAndAResumeFinishesIt()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var probes = Enumerable.Range(0, 2000).Select(Mc).ToList();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var warmSpec = RunStoreTests.Spec("warm") with { Concurrency = 4 };
        await store.CreateRunAsync(warmSpec, ct);
        await new EvaluationRunner(store, new LetterServer(), _ => new RuleBasedAnswerExtractor()).RunAsync(warmSpec, probes, null, ct);

        var spec = RunStoreTests.Spec("again") with { Concurrency = 4 };
        await store.CreateRunAsync(spec, ct);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var progress = new List<RunProgress>();
        var reports = new Progress(progress, p =>
        {
            if (p.Done >= 600)
            {
                cancel.Cancel();
            }
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => new EvaluationRunner(store, new LetterServer(), _ => new RuleBasedAnswerExtractor()).RunAsync(spec, probes, reports, cancel.Token));
        var stored = (await store.GetCompletedKeysAsync("again", ct)).Count;
        Assert.InRange(stored, 600, 1999);
        // Counted rows are stored rows, in order, one report per row.
        Assert.Equal(Enumerable.Range(1, progress.Count), progress.Select(p => p.Done));
        Assert.InRange(progress[^1].Done, 600, stored);

        var outcome = await new EvaluationRunner(store, new LetterServer(), _ => new RuleBasedAnswerExtractor()).RunAsync(spec, probes, null, ct);
        Assert.Equal(new RunOutcome(2000, stored, 2000 - stored, 0, 0), outcome);
        Assert.Equal(2000, (await store.GetCompletedKeysAsync("again", ct)).Count);
    }

    [Fact]
    public async Task BatchedLookupsFindWhatSingleLookupsFindUntilTheirSnapshotEnds()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        for (var i = 0; i < 50; i++)
        {
            await store.PutCachedAsync($"k{i}", new CachedResponse($"reply {i}", i, 2 * i, i % 2 == 0 ? new Dictionary<string, string> { ["biasfree.x"] = $"{i}" } : null), ct);
        }

        using (var reads = store.BeginCacheReads())
        {
            for (var i = 0; i < 60; i++)
            {
                Assert.Equal(await store.GetCachedAsync($"k{i}", ct), reads.Get($"k{i}"), CachedEquality.Instance);
            }
            // One snapshot until it is ended: an entry committed after its first lookup is found only after an end.
            await store.PutCachedAsync("late", new CachedResponse("late reply", 1, 1), ct);
            Assert.Null(reads.Get("late"));
            reads.EndIfOlderThan(TimeSpan.FromHours(1));
            Assert.True(reads.IsOpen);
            Assert.Null(reads.Get("late"));
            // While it is open, a checkpoint cannot restart the log (busy 1): why callers end it every so often.
            Assert.Equal(1L, await ExecAsync(store.DatabasePath, "PRAGMA wal_checkpoint(TRUNCATE)", ct));
            reads.EndIfOlderThan(TimeSpan.Zero);
            Assert.False(reads.IsOpen);
            Assert.Equal("late reply", reads.Get("late")?.Text);
            Assert.True(reads.IsOpen);
            await store.PutCachedAsync("later", new CachedResponse("later reply", 1, 1), ct);
            Assert.Null(reads.Get("later"));
            reads.End();
            Assert.False(reads.IsOpen);
            Assert.Equal("later reply", reads.Get("later")?.Text);
            // A key never cached needs no SQL and opens no snapshot.
            reads.End();
            Assert.Null(reads.Get("never cached"));
            Assert.False(reads.IsOpen);
        }
        Assert.Equal("late reply", (await store.GetCachedAsync("late", ct))?.Text);
        // Disposed holders leave no transaction open: a full checkpoint is not blocked by a snapshot (busy 0).
        await store.PutCachedAsync("after", new CachedResponse("after reply", 1, 1), ct);
        Assert.Equal(0L, await ExecAsync(store.DatabasePath, "PRAGMA wal_checkpoint(TRUNCATE)", ct));
        Assert.Equal("after reply", (await store.GetCachedAsync("after", ct))?.Text);
    }

    private sealed class CachedEquality : IEqualityComparer<CachedResponse?>
    {
        public static readonly CachedEquality Instance = new();

        public bool Equals(CachedResponse? x, CachedResponse? y) =>
            x is null || y is null ? x is null && y is null
            : (x.Text, x.PromptTokens, x.CompletionTokens) == (y.Text, y.PromptTokens, y.CompletionTokens)
              && (x.Details ?? new Dictionary<string, string>()).OrderBy(kv => kv.Key).SequenceEqual((y.Details ?? new Dictionary<string, string>()).OrderBy(kv => kv.Key));

        public int GetHashCode(CachedResponse? obj) => obj?.Text.GetHashCode(StringComparison.Ordinal) ?? 0;
    }

    /// <summary>Synchronous progress sink (Progress&lt;T&gt; posts to the thread pool and would report out of order).</summary>
    private sealed class Progress(List<RunProgress> sink, Action<RunProgress>? also = null) : IProgress<RunProgress>
    {
        public void Report(RunProgress value)
        {
            lock (sink)
            {
                if (value.Done > 0)
                {
                    sink.Add(value);
                }
            }
            also?.Invoke(value);
        }
    }
}
