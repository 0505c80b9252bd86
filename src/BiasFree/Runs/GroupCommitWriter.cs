using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using BiasFree.Probes;
using Microsoft.Data.Sqlite;

namespace BiasFree.Runs;

/// <summary>
/// The store's one writer of result rows and cached replies, with group commit: callers enqueue a write and await
/// its commit; a background loop takes everything queued (up to <see cref="MaxBatch"/>), writes it in ONE transaction
/// with prepared statements that are reused for the life of the store, commits, and only then completes the callers'
/// tasks. A write therefore counts as persisted exactly when its caller's await returns, as before; what changed is
/// that the probes finishing while one commit is under way share the next commit instead of queueing for one each
/// (in a sampled profile of a 10k-probe run, four statements per probe, each its own transaction, were about a third
/// of the harness's CPU samples; docs/runs-and-reports.md#harness-performance has the before/after figures).
/// <para>
/// Crash window: a kill -9 loses only writes whose commit had not returned, i.e. work no caller has counted as done
/// (at most one batch in flight plus what queued behind it; in a run that is bounded by twice the run's concurrency: a
/// worker queues its row and takes its next probe, but at most one row per worker may wait for its commit, and a row
/// counts as done only once committed). A resume redoes exactly those probes; nothing committed is lost or duplicated.
/// </para>
/// </summary>
internal sealed class GroupCommitWriter : IAsyncDisposable
{
    /// <summary>Most writes in one transaction (bounds the time the store's lock is held by one commit).</summary>
    public const int MaxBatch = 1024;

    private const string InsertResultSql = """
        INSERT INTO results (run_id, method, suite, probe_id, scenario, category, context, polarity, correct_role, model,
            requests, response, label, reason, judge, judge_raw, prompt_tokens, completion_tokens, latency_ms, error,
            complete, attempts, started, completed, fallback, injection)
        VALUES ($run, $method, $suite, $probe, $scenario, $category, $context, $polarity, $correct, $model,
            $requests, $response, $label, $reason, $judge, $raw, $pt, $ct, $lat, $error, $complete, 1, $started, $completed, $fallback, $injection)
        ON CONFLICT (run_id, method, suite, probe_id) DO UPDATE SET
            requests = excluded.requests, response = excluded.response, label = excluded.label, reason = excluded.reason, fallback = excluded.fallback,
            judge = excluded.judge, judge_raw = excluded.judge_raw, injection = excluded.injection, prompt_tokens = excluded.prompt_tokens,
            completion_tokens = excluded.completion_tokens, latency_ms = excluded.latency_ms, error = excluded.error,
            complete = excluded.complete, attempts = results.attempts + 1, started = excluded.started, completed = excluded.completed
        WHERE results.complete = 0
        """;

    // Parameter order of InsertResultSql's command (bound by position, set per row).
    private static readonly string[] ResultParameters =
    [
        "$run", "$method", "$suite", "$probe", "$scenario", "$category", "$context", "$polarity", "$correct", "$model",
        "$requests", "$response", "$label", "$reason", "$judge", "$raw", "$pt", "$ct", "$lat", "$error", "$complete",
        "$started", "$completed", "$fallback", "$injection",
    ];

    private const string InsertCacheSql = """
        INSERT INTO response_cache (key, response, prompt_tokens, completion_tokens, created, details)
        VALUES ($key, $response, $pt, $ct, $created, $details) ON CONFLICT(key) DO NOTHING
        """;

    private static readonly string[] CacheParameters = ["$key", "$response", "$pt", "$ct", "$created", "$details"];

    /// <summary>
    /// One queued write: a result row, several result rows that commit together (a batch of cache answers), or a cache
    /// entry; and the task its caller awaits.
    /// </summary>
    private sealed class Pending(ResultRecord? row, string? key, CachedResponse? value, IReadOnlyList<ResultRecord>? rows = null)
    {
        public ResultRecord? Row { get; } = row;
        public IReadOnlyList<ResultRecord>? Rows { get; } = rows;
        public string? Key { get; } = key;
        public CachedResponse? Value { get; } = value;
        public TaskCompletionSource<bool> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Statements this write runs (what <see cref="MaxBatch"/> counts).</summary>
        public int Size => Rows?.Count ?? 1;
    }

    private readonly SqliteConnection _connection;
    private readonly SemaphoreSlim _lock;
    private readonly Action<string> _committedCacheKey;
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly RawStatement _insertResult;
    private readonly RawStatement _insertCache;
    private readonly Task _loop;

    /// <param name="connection">The store's connection (shared with its other statements).</param>
    /// <param name="connectionLock">The store's lock over <paramref name="connection"/>; held for each batch.</param>
    /// <param name="committedCacheKey">Told each cache key once its entry is committed (the store's in-memory key index).</param>
    public GroupCommitWriter(SqliteConnection connection, SemaphoreSlim connectionLock, Action<string> committedCacheKey)
    {
        _connection = connection;
        _lock = connectionLock;
        _committedCacheKey = committedCacheKey;
        // Stepped through SQLitePCLRaw (RawStatement): a SqliteCommand execution per row cost a data reader, a statement
        // iterator and a type inference per parameter, about half of this writer's CPU samples in a cache-only rerun.
        _insertResult = new RawStatement(connection, InsertResultSql, ResultParameters);
        try
        {
            _insertCache = new RawStatement(connection, InsertCacheSql, CacheParameters);
        }
        catch
        {
            _insertResult.Dispose();
            throw;
        }
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>Queues a result row; completes when it is committed (true: written; false: a complete row was already there).</summary>
    /// <remarks>Cancelling after the call returned stops the wait, not the write: the row is still committed.</remarks>
    public Task<bool> SaveResultAsync(ResultRecord row, CancellationToken cancellationToken) => Enqueue(new Pending(row, null, null), cancellationToken);

    /// <summary>
    /// Queues several result rows that are written in ONE transaction, all or none; completes when it is committed (true
    /// when every row was written). The rows of a batch of cache answers (<see cref="EvaluationRunner"/>): one queued write and
    /// one wake-up of the caller for the whole batch instead of one each, and a crash loses all of them or none.
    /// </summary>
    public Task<bool> SaveResultsAsync(IReadOnlyList<ResultRecord> rows, CancellationToken cancellationToken) => Enqueue(new Pending(null, null, null, rows), cancellationToken);

    /// <summary>Queues a cache entry (first writer wins); completes when it is committed.</summary>
    public Task PutCachedAsync(string key, CachedResponse value, CancellationToken cancellationToken) => Enqueue(new Pending(null, key, value), cancellationToken);

    private Task<bool> Enqueue(Pending write, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!_queue.Writer.TryWrite(write))
        {
            throw new ObjectDisposedException(nameof(RunStore), "the store is closed.");
        }
        return cancellationToken.CanBeCanceled ? write.Done.Task.WaitAsync(cancellationToken) : write.Done.Task;
    }

    private async Task LoopAsync()
    {
        var reader = _queue.Reader;
        var batch = new List<Pending>(64);
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            // Counted in statements: a batch of rows counts as its rows. One write larger than MaxBatch goes alone.
            var size = 0;
            while (size < MaxBatch && reader.TryPeek(out var next) && (size == 0 || size + next.Size <= MaxBatch) && reader.TryRead(out var write))
            {
                batch.Add(write);
                size += write.Size;
            }

            await _lock.WaitAsync().ConfigureAwait(false);
            bool[]? written = null;
            try
            {
                written = Commit(batch);
            }
            catch (Exception)
            {
                // One bad write must not fail its batch-mates: fall back to one transaction each, so each caller gets
                // its own outcome (as when every write was its own transaction).
            }
            finally
            {
                _lock.Release();
            }

            if (written is not null)
            {
                Completed(batch, written);
            }
            else
            {
                foreach (var write in batch)
                {
                    await _lock.WaitAsync().ConfigureAwait(false);
                    try
                    {
                        var one = Commit([write]);
                        _lock.Release();
                        Completed([write], one);
                    }
                    catch (Exception ex)
                    {
                        _lock.Release();
                        write.Done.TrySetException(ex);
                    }
                }
            }
            batch.Clear();
        }
    }

    private void Completed(List<Pending> batch, bool[] written)
    {
        for (var i = 0; i < batch.Count; i++)
        {
            if (batch[i].Key is { } key)
            {
                _committedCacheKey(key);
            }
            batch[i].Done.TrySetResult(written[i]);
        }
    }

    /// <summary>Writes the batch in one transaction and commits it (rolled back, and the exception thrown, on failure).</summary>
    private bool[] Commit(List<Pending> batch)
    {
        var written = new bool[batch.Count];
        // The raw statements run on the same connection, so they are inside this transaction.
        using var transaction = _connection.BeginTransaction();
        for (var i = 0; i < batch.Count; i++)
        {
            var w = batch[i];
            if (w.Rows is { } rows)
            {
                var all = true;
                foreach (var r in rows)
                {
                    all &= InsertResult(r);
                }
                written[i] = all;
            }
            else
            {
                written[i] = w.Row is { } row ? InsertResult(row) : InsertCache(w.Key!, w.Value!);
            }
        }
        transaction.Commit();
        return written;
    }

    // The requests column of the row being written (one writer, one row at a time).
    private readonly RequestsJson _requestsJson = new();

    /// <summary>Inserts result row <paramref name="r"/>; true when a row was added. Bound value by value in the
    /// statement's parameter order (no array of boxed values per row).</summary>
    private bool InsertResult(ResultRecord r)
    {
        var s = _insertResult;
        s.Bind(0, r.RunId);
        s.Bind(1, r.Method);
        s.Bind(2, r.Suite);
        s.Bind(3, r.ProbeId);
        s.Bind(4, ScenarioNames.Name(r.Scenario));
        s.Bind(5, r.Category);
        s.Bind(6, r.Context?.ToString());
        s.Bind(7, r.Polarity?.ToString());
        s.Bind(8, r.CorrectRole?.ToString());
        s.Bind(9, r.Model);
        s.Bind(10, _requestsJson.Write(r.Requests));
        s.Bind(11, r.Response);
        s.Bind(12, r.Verdict?.Label.ToString());
        s.Bind(13, r.Verdict?.Reason);
        s.Bind(14, r.Verdict?.Judge);
        s.Bind(15, r.Verdict?.RawOutput);
        s.Bind(16, r.PromptTokens);
        s.Bind(17, r.CompletionTokens);
        s.Bind(18, r.LatencyMs);
        s.Bind(19, r.Error);
        s.Bind(20, r.IsComplete ? 1 : 0);
        s.Bind(21, Time(r.Started));
        s.Bind(22, Time(r.Completed));
        s.Bind(23, r.Fallback ? 1 : 0);
        s.Bind(24, r.Verdict?.Injection?.ToJson());
        return s.Execute() > 0;
    }

    /// <summary>Inserts a cache entry; true when one was added.</summary>
    private bool InsertCache(string key, CachedResponse value)
    {
        var s = _insertCache;
        s.Bind(0, key);
        s.Bind(1, value.Text);
        s.Bind(2, value.PromptTokens);
        s.Bind(3, value.CompletionTokens);
        s.Bind(4, Time(DateTimeOffset.UtcNow));
        s.Bind(5, value.Details is null ? null : JsonSerializer.Serialize(value.Details, StoreJson.Default.IReadOnlyDictionaryStringString));
        return s.Execute() > 0;
    }

    internal static string Time(DateTimeOffset t) => t.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture);

    /// <summary>Commits everything queued, then stops; later writes throw <see cref="ObjectDisposedException"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
        _insertResult.Dispose();
        _insertCache.Dispose();
    }
}
