using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using BiasFree.Judges;
using BiasFree.Judges.Defences;
using BiasFree.Probes;
using BiasFree.Scoring;
using Microsoft.Data.Sqlite;

namespace BiasFree.Runs;

/// <summary>A cached target reply.</summary>
public sealed record CachedResponse(string Text, long PromptTokens, long CompletionTokens, IReadOnlyDictionary<string, string>? Details = null);

/// <summary>A run as listed by the store.</summary>
public sealed record RunInfo(string RunId, DateTimeOffset Created, RunSpec Spec, int Results, int Complete, int Errors);

/// <summary>
/// SQLite store of runs, per-probe results and the response cache (one file, <c>biasfree.db</c>, per runs folder).
/// <para>
/// Durability: the database is in WAL mode with <c>synchronous=NORMAL</c>. Result rows and cached replies go through
/// one writer with group commit (<see cref="GroupCommitWriter"/>): <see cref="SaveResultAsync"/> returns once the
/// transaction holding the row has committed, and the rows of probes finishing together share that transaction. A
/// committed WAL transaction has been written to the operating system before the commit returns, so a killed process
/// (kill -9) loses nothing whose save had returned; what it loses is at most the batch being committed and the writes
/// queued behind it, which no caller had counted as done (bounded by the run's concurrency), and a resume redoes
/// exactly those probes. <c>FULL</c> adds an fsync per commit, which only matters for power loss or an OS crash; there
/// NORMAL can drop the last few commits but never corrupts the database, and a resume simply redoes those probes.
/// </para>
/// <para>
/// Cache lookups run on pooled read-only connections (WAL readers do not wait for the writer) with a prepared
/// statement, behind an in-memory index of the cached keys' hashes, so a key that was never cached (every request of a
/// first run) costs no SQL at all. The index holds what this store committed or found at its first lookup: an entry
/// another process adds to the same file later is not seen, so such a request goes to the target (its own reply is
/// then used; the cache keeps the first).
/// </para>
/// All SQL is parameterised. The store is thread-safe: one connection for writes and listings, guarded by a lock, and
/// pooled read-only ones for cache lookups.
/// </summary>
public sealed class RunStore : IAsyncDisposable, IDisposable
{
    public const string FileName = "biasfree.db";

    private readonly SqliteConnection _connection;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly GroupCommitWriter _writer;
    private readonly string _connectionString;
    // Read-only connections for cache lookups, each with its prepared lookup; a lookup takes a free one (or opens one), so
    // lookups on different threads neither share a connection nor wait for each other or for the writer (WAL readers).
    private readonly System.Collections.Concurrent.ConcurrentBag<CacheReader> _readers = [];
    // The cached keys' hashes as one bit each (2^24 bits, 2 MB, whatever the cache's size): those committed by this
    // store's writer, plus those in the file at the first lookup. A bit set by another key only costs the SQL lookup.
    private readonly int[] _cachedKeyBits = new int[1 << 19];
    private int _cachedKeyCount;
    private readonly Lazy<bool> _cachedKeysLoaded;
    // The background load of the cached keys (BeginLoadingCachedKeys); Closed once the store is closing, so that no load
    // starts after Dispose has looked for one to wait for (it would open a reader the close never disposes).
    private Task? _cachedKeysLoading;
    private static readonly Task Closed = Task.FromResult(false);

    private RunStore(SqliteConnection connection, CacheReader reader, string connectionString, string path)
    {
        _connection = connection;
        _connectionString = connectionString;
        _readers.Add(reader);
        DatabasePath = path;
        _cachedKeysLoaded = new Lazy<bool>(LoadCachedKeys, LazyThreadSafetyMode.ExecutionAndPublication);
        _writer = new GroupCommitWriter(connection, _lock, CacheKeyCommitted);
    }

    /// <summary>A read-only connection and its prepared cache lookup.</summary>
    private sealed class CacheReader : IDisposable
    {
        /// <param name="connectionString">The store's file.</param>
        /// <param name="pageCacheKib">SQLite's page cache for this connection (its <c>cache_size</c>); null: SQLite's
        /// default (2 MiB), enough for point lookups that each run in their own read transaction.</param>
        public CacheReader(string connectionString, int? pageCacheKib = null)
        {
            Connection = new SqliteConnection(connectionString);
            try
            {
                Connection.Open();
                using (var pragma = Connection.CreateCommand())
                {
                    pragma.CommandText = "PRAGMA busy_timeout = 10000; PRAGMA query_only = 1;"
                        + (pageCacheKib is { } kib ? string.Create(CultureInfo.InvariantCulture, $" PRAGMA cache_size = -{kib};") : "");
                    pragma.ExecuteNonQuery();
                }
                // Stepped through SQLitePCLRaw (RawStatement): one lookup per request, where a SqliteCommand built a data reader each time.
                Lookup = new RawStatement(Connection, "SELECT response, prompt_tokens, completion_tokens, details FROM response_cache WHERE key = $key", "$key");
            }
            catch
            {
                Connection.Dispose();
                throw;
            }
        }

        public SqliteConnection Connection { get; }
        public RawStatement Lookup { get; }

        // Batches of lookups (CacheReads) run in one read transaction: one WAL snapshot for all of them instead of one each.
        public RawStatement Begin => _begin ??= new RawStatement(Connection, "BEGIN");
        public RawStatement End => _end ??= new RawStatement(Connection, "COMMIT");
        private RawStatement? _begin, _end;

        public void Dispose()
        {
            _begin?.Dispose();
            _end?.Dispose();
            Lookup.Dispose();
            Connection.Dispose();
        }
    }

    /// <summary>Path of the database file.</summary>
    public string DatabasePath { get; }

    /// <summary>Opens (creating if needed) the store in <paramref name="runsDirectory"/>.</summary>
    public static Task<RunStore> OpenDirectoryAsync(string runsDirectory, CancellationToken cancellationToken = default)
    {
        Directory.CreateDirectory(runsDirectory);
        return OpenAsync(Path.Combine(runsDirectory, FileName), cancellationToken);
    }

    /// <summary>Opens (creating if needed) the store at <paramref name="databasePath"/>.</summary>
    public static async Task<RunStore> OpenAsync(string databasePath, CancellationToken cancellationToken = default)
    {
        var cs = new SqliteConnectionStringBuilder
        {
            DataSource = databasePath,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
            DefaultTimeout = 30,
        }.ToString();
        var connection = new SqliteConnection(cs);
        CacheReader? reads = null;
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await ExecAsync(connection, """
                PRAGMA busy_timeout = 10000;
                PRAGMA journal_mode = WAL;
                PRAGMA synchronous = NORMAL;
                PRAGMA foreign_keys = ON;
                CREATE TABLE IF NOT EXISTS runs (
                    id      TEXT PRIMARY KEY,
                    created TEXT NOT NULL,
                    spec    TEXT NOT NULL,
                    expected INTEGER
                );
                CREATE TABLE IF NOT EXISTS results (
                    run_id            TEXT NOT NULL REFERENCES runs(id),
                    method            TEXT NOT NULL,
                    suite             TEXT NOT NULL,
                    probe_id          TEXT NOT NULL,
                    scenario          TEXT NOT NULL,
                    category          TEXT NOT NULL,
                    context           TEXT,
                    polarity          TEXT,
                    correct_role      TEXT,
                    model             TEXT NOT NULL,
                    requests          TEXT NOT NULL,
                    response          TEXT,
                    label             TEXT,
                    reason            TEXT,
                    judge             TEXT,
                    judge_raw         TEXT,
                    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
                    completion_tokens INTEGER NOT NULL DEFAULT 0,
                    latency_ms        INTEGER NOT NULL DEFAULT 0,
                    error             TEXT,
                    complete          INTEGER NOT NULL,
                    attempts          INTEGER NOT NULL DEFAULT 1,
                    started           TEXT NOT NULL,
                    completed         TEXT NOT NULL,
                    fallback          INTEGER NOT NULL DEFAULT 0,
                    injection         TEXT,
                    UNIQUE (run_id, method, suite, probe_id)
                );
                CREATE TABLE IF NOT EXISTS suite_checks (
                    key      TEXT PRIMARY KEY,
                    probes   INTEGER NOT NULL,
                    scenarios TEXT NOT NULL,
                    checked  TEXT NOT NULL
                );
                CREATE TABLE IF NOT EXISTS response_cache (
                    key               TEXT PRIMARY KEY,
                    response          TEXT NOT NULL,
                    prompt_tokens     INTEGER NOT NULL,
                    completion_tokens INTEGER NOT NULL,
                    created           TEXT NOT NULL
                );
                """, cancellationToken).ConfigureAwait(false);
            await AddMissingColumnsAsync(connection, cancellationToken).ConfigureAwait(false);
            reads = new CacheReader(cs);
            return new RunStore(connection, reads, cs, databasePath);
        }
        catch
        {
            reads?.Dispose();
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Columns added after a store's first release; older files get them (with their default) on open.</summary>
    private static async Task AddMissingColumnsAsync(SqliteConnection c, CancellationToken ct)
    {
        var columns = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT name FROM pragma_table_info('results')";
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                columns.Add(reader.GetString(0));
            }
        }
        if (!columns.Contains("fallback"))
        {
            await ExecAsync(c, "ALTER TABLE results ADD COLUMN fallback INTEGER NOT NULL DEFAULT 0", ct).ConfigureAwait(false);
        }
        if (!columns.Contains("injection"))
        {
            // The judge's prompt-injection finding (JSON), stored with the verdict since the judges gained their defences.
            await ExecAsync(c, "ALTER TABLE results ADD COLUMN injection TEXT", ct).ConfigureAwait(false);
        }
        // What a white-box method reported with a reply (gate firings, BiasFilter's trace), so a reply read back from the
        // cache is recorded with the same details as when it was generated.
        var cacheColumns = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT name FROM pragma_table_info('response_cache')";
            await using var reader = await cmd.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                cacheColumns.Add(reader.GetString(0));
            }
        }
        if (!cacheColumns.Contains("details"))
        {
            await ExecAsync(c, "ALTER TABLE response_cache ADD COLUMN details TEXT", ct).ConfigureAwait(false);
        }
    }

    private static async Task ExecAsync(SqliteConnection c, string sql, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        await cmd.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private async Task<T> LockedAsync<T>(Func<SqliteConnection, Task<T>> action, CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await action(_connection).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    private static SqliteCommand Command(SqliteConnection c, string sql, params (string Name, object? Value)[] parameters)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            cmd.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }
        return cmd;
    }

    private static string Time(DateTimeOffset t) => t.ToUniversalTime().ToString("O", CultureInfo.InvariantCulture);

    private static DateTimeOffset ParseTime(string s) => DateTimeOffset.Parse(s, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind);

    // ---------------------------------------------------------------- runs

    /// <summary>Records a new run. Throws <see cref="InvalidOperationException"/> if the id is taken.</summary>
    public Task CreateRunAsync(RunSpec spec, CancellationToken cancellationToken = default) =>
        LockedAsync(async c =>
        {
            await using var cmd = Command(c, "INSERT INTO runs (id, created, spec) VALUES ($id, $created, $spec) ON CONFLICT(id) DO NOTHING",
                ("$id", spec.RunId), ("$created", Time(spec.Created)), ("$spec", spec.ToJson()));
            if (await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 0)
            {
                throw new InvalidOperationException($"Run '{spec.RunId}' already exists.");
            }
            return 0;
        }, cancellationToken);

    /// <summary>
    /// Replaces the stored spec of an existing run (adaptive sampling's precision, lowered to extend the run). Everything
    /// else a resume checks against the stored spec first, so the record stays the run's.
    /// </summary>
    public Task UpdateRunSpecAsync(RunSpec spec, CancellationToken cancellationToken = default) =>
        LockedAsync(async c =>
        {
            await using var cmd = Command(c, "UPDATE runs SET spec = $spec WHERE id = $id", ("$spec", spec.ToJson()), ("$id", spec.RunId));
            if (await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 0)
            {
                throw new InvalidOperationException($"Run '{spec.RunId}' does not exist.");
            }
            return 0;
        }, cancellationToken);

    // ---------------------------------------------------------------- suite checks

    /// <summary>What a suite file's recorded validation pass found (<see cref="BiasFree.Evaluations.SuiteCheck"/>), or null.</summary>
    internal Task<(int Probes, IReadOnlySet<Scenario> Scenarios)?> FindSuiteCheckAsync(string key, CancellationToken cancellationToken = default) =>
        LockedAsync(async c =>
        {
            await using var cmd = Command(c, "SELECT probes, scenarios FROM suite_checks WHERE key = $key", ("$key", key));
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return ((int, IReadOnlySet<Scenario>)?)null;
            }
            var scenarios = new HashSet<Scenario>();
            foreach (var name in reader.GetString(1).Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                // A name this build does not know: the record is not used (the file is checked again).
                if (ScenarioNames.TryParse(name) is not { } scenario)
                {
                    return null;
                }
                scenarios.Add(scenario);
            }
            return (checked((int)reader.GetInt64(0)), scenarios);
        }, cancellationToken);

    /// <summary>Records what a suite file's validation pass found, under <paramref name="key"/> (the file's content and this build).</summary>
    internal Task RecordSuiteCheckAsync(string key, int probes, IEnumerable<Scenario> scenarios, CancellationToken cancellationToken = default) =>
        LockedAsync(async c =>
        {
            await using var cmd = Command(c, "INSERT OR REPLACE INTO suite_checks (key, probes, scenarios, checked) VALUES ($key, $n, $s, $t)",
                ("$key", key), ("$n", probes), ("$s", string.Join(",", scenarios.Select(ScenarioNames.Name).Order(StringComparer.Ordinal))),
                ("$t", Time(DateTimeOffset.UtcNow)));
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }, cancellationToken);

    /// <summary>Records how many (method, probe) rows a complete run has.</summary>
    public Task SetExpectedRowsAsync(string runId, int expected, CancellationToken cancellationToken = default) =>
        LockedAsync(async c =>
        {
            await using var cmd = Command(c, "UPDATE runs SET expected = $n WHERE id = $id", ("$n", expected), ("$id", runId));
            return await cmd.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }, cancellationToken);

    /// <summary>How many rows a complete run has, if recorded.</summary>
    public Task<int?> GetExpectedRowsAsync(string runId, CancellationToken cancellationToken = default) =>
        LockedAsync(async c =>
        {
            await using var cmd = Command(c, "SELECT expected FROM runs WHERE id = $id", ("$id", runId));
            var v = await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
            return v is long n ? (int?)n : null;
        }, cancellationToken);

    /// <summary>The spec of a run, or null if there is no such run.</summary>
    public Task<RunSpec?> GetRunAsync(string runId, CancellationToken cancellationToken = default) =>
        LockedAsync(async c =>
        {
            await using var cmd = Command(c, "SELECT spec FROM runs WHERE id = $id", ("$id", runId));
            var json = await cmd.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
            return json is null ? null : RunSpec.FromJson(json);
        }, cancellationToken);

    /// <summary>All runs, newest first, with their row counts.</summary>
    public Task<IReadOnlyList<RunInfo>> ListRunsAsync(CancellationToken cancellationToken = default) =>
        LockedAsync<IReadOnlyList<RunInfo>>(async c =>
        {
            await using var cmd = Command(c, """
                SELECT r.id, r.created, r.spec,
                       (SELECT COUNT(*) FROM results x WHERE x.run_id = r.id),
                       (SELECT COUNT(*) FROM results x WHERE x.run_id = r.id AND x.complete = 1),
                       (SELECT COUNT(*) FROM results x WHERE x.run_id = r.id AND x.error IS NOT NULL)
                FROM runs r ORDER BY r.created DESC, r.id
                """);
            var list = new List<RunInfo>();
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                list.Add(new RunInfo(reader.GetString(0), ParseTime(reader.GetString(1)), RunSpec.FromJson(reader.GetString(2)),
                    reader.GetInt32(3), reader.GetInt32(4), reader.GetInt32(5)));
            }
            return list;
        }, cancellationToken);

    // ---------------------------------------------------------------- results

    /// <summary>
    /// Writes one result row; returns once the transaction holding it has committed (group commit: rows saved at the
    /// same time share one transaction, see <see cref="GroupCommitWriter"/>). A complete row is never overwritten
    /// (nothing is done twice); an incomplete one (target error, judge error) is replaced by the new attempt.
    /// Cancelling after the call stops the wait, not the write.
    /// </summary>
    /// <returns>True if the row was written, false if a complete row was already there.</returns>
    public Task<bool> SaveResultAsync(ResultRecord r, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(r);
        return _writer.SaveResultAsync(r, cancellationToken);
    }

    /// <summary>
    /// Writes several result rows in ONE transaction (all or none; see <see cref="GroupCommitWriter.SaveResultsAsync"/>);
    /// returns once it has committed. Each row is written as <see cref="SaveResultAsync"/> writes it.
    /// </summary>
    internal Task SaveResultsAsync(IReadOnlyList<ResultRecord> rows, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(rows);
        return _writer.SaveResultsAsync(rows, cancellationToken);
    }

    /// <summary>Keys (method, suite, probe id) of the complete rows of a run: the work a resume skips.</summary>
    public Task<IReadOnlySet<(string Method, string Suite, string ProbeId)>> GetCompletedKeysAsync(string runId, CancellationToken cancellationToken = default) =>
        LockedAsync<IReadOnlySet<(string, string, string)>>(async c =>
        {
            await using var cmd = Command(c, "SELECT method, suite, probe_id FROM results WHERE run_id = $run AND complete = 1", ("$run", runId));
            var set = new HashSet<(string, string, string)>();
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                set.Add((reader.GetString(0), reader.GetString(1), reader.GetString(2)));
            }
            return set;
        }, cancellationToken);

    /// <summary>Every result row of a run, in a stable order (method, suite, probe id), streamed.</summary>
    /// <remarks>
    /// Rows are read one at a time on a read-only connection of the enumeration's own, so a report over a 50,000-row run
    /// never holds every row, the caller may await anything (the store included) between rows, and in WAL mode the reader
    /// neither blocks nor is blocked by the writer: it sees the rows committed when the enumeration started.
    /// </remarks>
    public async IAsyncEnumerable<ResultRecord> ReadResultsAsync(string runId, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenReaderAsync(cancellationToken).ConfigureAwait(false);
        await using var cmd = Command(connection, """
            SELECT method, suite, probe_id, scenario, category, context, polarity, correct_role, model, requests, response,
                   label, reason, judge, judge_raw, prompt_tokens, completion_tokens, latency_ms, error, started, completed, fallback, injection
            FROM results WHERE run_id = $run ORDER BY method, suite, probe_id
            """, ("$run", runId));
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return ReadRow(reader, runId);
        }
    }

    /// <summary>A second, read-only connection to this store's file (WAL lets it read while the main connection writes).</summary>
    private async Task<SqliteConnection> OpenReaderAsync(CancellationToken ct)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = DatabasePath,
            Mode = SqliteOpenMode.ReadOnly,
            Pooling = false,
            DefaultTimeout = 30,
        }.ToString());
        try
        {
            await connection.OpenAsync(ct).ConfigureAwait(false);
            await ExecAsync(connection, "PRAGMA busy_timeout = 10000;", ct).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static ResultRecord ReadRow(SqliteDataReader reader, string runId)
    {
        string? S(int i) => reader.IsDBNull(i) ? null : reader.GetString(i);
        var label = S(11);
        return new ResultRecord
        {
            RunId = runId,
            Method = reader.GetString(0),
            Suite = reader.GetString(1),
            ProbeId = reader.GetString(2),
            Scenario = ScenarioNames.Parse(reader.GetString(3)), // older stores wrote "MultiTurn"
            Category = reader.GetString(4),
            Context = S(5) is { } cx ? Enum.Parse<ContextCondition>(cx) : null,
            Polarity = S(6) is { } po ? Enum.Parse<QuestionPolarity>(po) : null,
            CorrectRole = S(7) is { } cr ? Enum.Parse<OptionRole>(cr) : null,
            Model = reader.GetString(8),
            Requests = JsonSerializer.Deserialize(reader.GetString(9), StoreJson.Default.ListRecordedRequest) ?? [],
            Response = S(10),
            Verdict = label is null ? null : new Verdict(Enum.Parse<Label>(label), S(12) ?? "", S(13) ?? "", S(14)) { Injection = InjectionFinding.FromJson(S(22)) },
            PromptTokens = reader.GetInt64(15),
            CompletionTokens = reader.GetInt64(16),
            LatencyMs = reader.GetInt64(17),
            Error = S(18),
            Started = ParseTime(reader.GetString(19)),
            Completed = ParseTime(reader.GetString(20)),
            Fallback = reader.GetInt64(21) != 0,
        };
    }

    /// <summary>The judged rows of a run as scoring input (rows whose target request failed are left out; count them with <see cref="ReadResultsAsync"/>).</summary>
    public async IAsyncEnumerable<ScoredResponse> ReadScoredAsync(string runId, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var r in ReadResultsAsync(runId, cancellationToken).ConfigureAwait(false))
        {
            if (r.Verdict is { } v)
            {
                yield return new ScoredResponse(r.ProbeId, r.Model, r.Method, r.Scenario, r.Category, r.Context, r.Polarity, v.Label, r.CorrectRole);
            }
        }
    }

    // ---------------------------------------------------------------- cache

    /// <summary>The cached reply for <paramref name="key"/>, or null.</summary>
    public Task<CachedResponse?> GetCachedAsync(string key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(GetCached(key));
    }

    // A point lookup takes microseconds: done synchronously on a pooled read connection.
    private CachedResponse? GetCached(string key)
    {
        if (!MayBeCached(key))
        {
            return null;
        }
        var cache = RentReader();
        try
        {
            return Read(cache.Lookup, key);
        }
        finally
        {
            _readers.Add(cache);
        }
    }

    /// <summary>
    /// Opens a holder for batches of cache lookups: one read connection of its own, with a page cache large enough to keep
    /// a cache's index and rows between lookups, read in one read transaction (one snapshot of the file) until
    /// <see cref="CacheReads.End"/> or <see cref="CacheReads.EndIfOlderThan"/> ends it; an entry committed after the
    /// snapshot began is not seen, and the request that missed it takes the ordinary path, which looks again. Dispose it
    /// when done; its lookups are not thread-safe.
    /// </summary>
    internal CacheReads BeginCacheReads()
    {
        _ = _cachedKeysLoaded.Value;
        return new CacheReads(this);
    }

    /// <summary>True when the cache holds at least one key (as far as this store's index knows).</summary>
    internal bool MayHaveCachedReplies
    {
        get
        {
            _ = _cachedKeysLoaded.Value;
            return Volatile.Read(ref _cachedKeyCount) > 0;
        }
    }

    /// <summary>Batches of cache lookups in one held read transaction (<see cref="BeginCacheReads"/>).</summary>
    /// <remarks>
    /// <para><b>Why a snapshot is held across batches.</b> In WAL mode SQLite drops a connection's whole page cache when
    /// it begins a read transaction after any other connection committed. A cache-only rerun commits its replayed rows
    /// while it looks up the next batch, so a transaction per batch of 512 lookups re-read the cache's index and rows from
    /// the file for every batch: in a 50,000-probe rerun, 56,000 <c>pread</c>s and 31,000 page faults (SQLite's page
    /// buffers freed and allocated again), about a fifth of its CPU (docs/runs-and-reports.md, "Eleventh round"). Held
    /// across batches, and with a page cache that holds the index and rows (<see cref="PageCacheKib"/>; SQLite's default
    /// of 2 MiB does not), a page is read once per snapshot.</para>
    /// <para><b>Why that is safe.</b> Cache entries are never changed or deleted once written (the insert does nothing on
    /// a key already there), so an older snapshot finds the same replies as a newer one, and can only miss entries
    /// committed since, which the per-item path looks up again. What holding costs is the WAL: a checkpoint cannot copy
    /// frames newer than an open snapshot back into the file or restart the log, so the log grows while it is held.
    /// Callers therefore end it at least every so often (<see cref="EndIfOlderThan"/>) and before anything that may wait
    /// (<see cref="End"/>).</para>
    /// </remarks>
    internal sealed class CacheReads : IDisposable
    {
        /// <summary>The holder's page cache, KiB (an upper bound; SQLite allocates pages as it reads them). A cache of
        /// 50,000 short replies is 11.4 MB in the file (7.2 MB of rows, 4.2 MB of key index; measured with <c>dbstat</c>),
        /// so it stays cached whole; a larger one keeps its most recently read pages.</summary>
        internal const int PageCacheKib = 16 * 1024;

        private readonly RunStore _store;
        private CacheReader? _reader;
        private long _begun; // Stopwatch timestamp of the open snapshot's BEGIN; 0: none open

        public CacheReads(RunStore store) => _store = store;

        /// <summary>True while a snapshot is open (tests).</summary>
        internal bool IsOpen => _begun != 0;

        /// <summary>The cached reply for <paramref name="key"/>, or null: what <see cref="GetCachedAsync"/> returns, as of
        /// the open snapshot (begun by the first lookup that needs SQL after the last end).</summary>
        public CachedResponse? Get(string key)
        {
            if (!_store.MayBeCached(key))
            {
                return null; // never cached: no SQL, as in GetCached
            }
            if (_begun == 0)
            {
                _reader ??= new CacheReader(_store._connectionString, PageCacheKib);
                _reader.Begin.Execute();
                _begun = Math.Max(1, System.Diagnostics.Stopwatch.GetTimestamp());
            }
            return Read(_reader!.Lookup, key);
        }

        /// <summary>Ends the open snapshot when it began more than <paramref name="age"/> ago (a later lookup begins a new one).</summary>
        public void EndIfOlderThan(TimeSpan age)
        {
            if (_begun != 0 && System.Diagnostics.Stopwatch.GetElapsedTime(_begun) > age)
            {
                End();
            }
        }

        /// <summary>Ends the open snapshot, if any; the connection and its page cache are kept for the next one.</summary>
        public void End()
        {
            if (_begun == 0)
            {
                return;
            }
            _begun = 0;
            try
            {
                _reader!.End.Execute();
            }
            catch (Exception)
            {
                // A reader whose transaction could not be ended is closed (closing ends the transaction); a later lookup
                // opens a fresh one. Nothing was written, so nothing is lost.
                _reader!.Dispose();
                _reader = null;
            }
        }

        public void Dispose()
        {
            End();
            _reader?.Dispose();
            _reader = null;
        }
    }

    /// <summary>Binds, steps and reads one cache lookup; the statement is reset for its next use.</summary>
    private static CachedResponse? Read(RawStatement lookup, string key)
    {
        lookup.Bind(0, key);
        if (!lookup.Step())
        {
            return null;
        }
        try
        {
            return new CachedResponse(lookup.Text(0)!, lookup.Int64(1), lookup.Int64(2),
                lookup.Text(3) is { } details ? JsonSerializer.Deserialize(details, StoreJson.Default.DictionaryStringString) : null);
        }
        finally
        {
            lookup.Reset();
        }
    }

    /// <summary>A pooled read connection, or a new one when all are in use; give it back with <c>_readers.Add</c>.</summary>
    private CacheReader RentReader() => _readers.TryTake(out var free) ? free : new CacheReader(_connectionString);

    /// <summary>
    /// False when <paramref name="key"/> was certainly never cached (its hash is not among the cached keys' hashes), so
    /// a lookup needs no SQL; true when it may be (a hash can collide: the lookup then decides).
    /// </summary>
    private bool MayBeCached(string key)
    {
        _ = _cachedKeysLoaded.Value;
        var bit = KeyHash(key);
        return (Volatile.Read(ref _cachedKeyBits[bit >> 5]) & (1 << (int)(bit & 31))) != 0;
    }

    /// <summary>
    /// Starts reading the file's cached keys into the index on a pool thread, so that the first cache lookup does not
    /// wait for it (a 50,000-entry cache takes 40-60 ms on a 2-vCPU machine, on a run's critical path before its first
    /// row). <see cref="BiasFree.Evaluations.Evaluation.StartAsync"/> calls it before its own start-up work (validating the suites, creating
    /// the run), which the load then overlaps. Idempotent; closing the store waits for it. A failure is not reported
    /// here: the first lookup reads the same <see cref="Lazy{T}"/> and throws it there, as without this call.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The store is closed or closing.</exception>
    internal void BeginLoadingCachedKeys()
    {
        var current = Volatile.Read(ref _cachedKeysLoading);
        if (current is null)
        {
            var loading = new Task(() =>
            {
                try
                {
                    _ = _cachedKeysLoaded.Value;
                }
                catch (Exception)
                {
                    // Kept by the Lazy and thrown by the first lookup.
                }
            });
            current = Interlocked.CompareExchange(ref _cachedKeysLoading, loading, null);
            if (current is null)
            {
                loading.Start(TaskScheduler.Default);
                return;
            }
        }
        // Another caller's load (nothing to do), or the store is closing.
        ObjectDisposedException.ThrowIf(ReferenceEquals(current, Closed), this);
    }

    private bool LoadCachedKeys()
    {
        var cache = RentReader();
        try
        {
            // Hashed from the bytes SQLite holds (no string per key): a 50,000-entry cache made 7.7 MB of strings here.
            using var keys = new RawStatement(cache.Connection, "SELECT key FROM response_cache");
            while (keys.Step())
            {
                MarkCached(KeyHash(keys.Bytes(0)));
            }
            return true;
        }
        finally
        {
            _readers.Add(cache);
        }
    }

    // Added whether or not the file's keys are loaded yet, so that no commit can fall between the load and the index.
    private void CacheKeyCommitted(string key) => MarkCached(KeyHash(key));

    private void MarkCached(uint bit)
    {
        Interlocked.Or(ref _cachedKeyBits[bit >> 5], 1 << (int)(bit & 31));
        Interlocked.Increment(ref _cachedKeyCount);
    }

    /// <summary>
    /// A key's bit: FNV-1a over its UTF-16 code units, mixed (MurmurHash3's finaliser) and cut to 24 bits. The same
    /// number comes from the key's UTF-8 bytes when they are all ASCII (the keys this store writes are hex digests), so
    /// the file's keys are hashed without decoding them; any other key is decoded first.
    /// </summary>
    internal static uint KeyHash(ReadOnlySpan<char> key)
    {
        var h = 2166136261u;
        foreach (var c in key)
        {
            h = (h ^ c) * 16777619u;
        }
        return Mix(h);
    }

    /// <summary><see cref="KeyHash(ReadOnlySpan{char})"/> of the key whose UTF-8 bytes are <paramref name="utf8"/>.</summary>
    internal static uint KeyHash(ReadOnlySpan<byte> utf8)
    {
        if (!System.Text.Ascii.IsValid(utf8))
        {
            return KeyHash(System.Text.Encoding.UTF8.GetString(utf8));
        }
        var h = 2166136261u;
        foreach (var b in utf8)
        {
            h = (h ^ b) * 16777619u;
        }
        return Mix(h);
    }

    private static uint Mix(uint h)
    {
        h ^= h >> 16;
        h *= 0x85ebca6bu;
        h ^= h >> 13;
        h *= 0xc2b2ae35u;
        h ^= h >> 16;
        return h >> 8;
    }

    /// <summary>Stores a reply in the cache (first writer wins); returns once it is committed.</summary>
    public Task PutCachedAsync(string key, CachedResponse value, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        return _writer.PutCachedAsync(key, value, cancellationToken);
    }

    /// <summary>Commits every queued write, then closes the store.</summary>
    public async ValueTask DisposeAsync()
    {
        await _writer.DisposeAsync().ConfigureAwait(false);
        await EndCachedKeysLoading().ConfigureAwait(false);
        DisposeReaders();
        await _connection.DisposeAsync().ConfigureAwait(false);
        _lock.Dispose();
    }

    /// <summary>Commits every queued write, then closes the store.</summary>
    public void Dispose()
    {
        // The writer's loop runs on the thread pool, so waiting for it here cannot deadlock on a caller's context.
        _writer.DisposeAsync().AsTask().GetAwaiter().GetResult();
        EndCachedKeysLoading().GetAwaiter().GetResult();
        DisposeReaders();
        _connection.Dispose();
        _lock.Dispose();
    }

    /// <summary>Marks the store closing for <see cref="BeginLoadingCachedKeys"/> and gives the load to wait for, if one started.</summary>
    private Task EndCachedKeysLoading() => Interlocked.Exchange(ref _cachedKeysLoading, Closed) ?? Task.CompletedTask;

    private void DisposeReaders()
    {
        while (_readers.TryTake(out var reader))
        {
            reader.Dispose();
        }
    }
}
