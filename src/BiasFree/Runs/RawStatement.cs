using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace BiasFree.Runs;

/// <summary>
/// One SQL statement prepared once on a store connection and run through SQLitePCLRaw (the SQLite binding under
/// Microsoft.Data.Sqlite) directly: bind, step, read, reset. The store's per-probe statements (the cache lookup, the
/// result and cache inserts) run tens of thousands of times a run, and each <see cref="SqliteCommand"/> execution builds a
/// data reader, walks a statement iterator and re-infers every parameter's type; a sampled profile of a cache-only rerun
/// put those layers at about a tenth of its CPU (docs/runs-and-reports.md, "Fourth round: cache path").
/// </summary>
/// <remarks>
/// Values bind as Microsoft.Data.Sqlite binds them for the types the store uses: a string as TEXT, an integer as INTEGER,
/// null as NULL, so the stored rows are the same. The connection's <c>busy_timeout</c> applies to every step. Not
/// thread-safe: each statement belongs to one connection and is used under that connection's discipline (the writer's
/// lock, or a pooled reader taken by one lookup at a time). Dispose before the connection closes.
/// </remarks>
internal sealed class RawStatement : IDisposable
{
    private readonly sqlite3 _db;
    private readonly sqlite3_stmt _statement;
    private readonly int[] _parameters;

    /// <param name="connection">An open connection.</param>
    /// <param name="sql">One statement.</param>
    /// <param name="parameters">Its parameter names, in the order the Bind methods take them.</param>
    public RawStatement(SqliteConnection connection, string sql, params string[] parameters)
    {
        _db = connection.Handle ?? throw new InvalidOperationException("the connection is not open.");
        var rc = raw.sqlite3_prepare_v2(_db, sql, out _statement);
        SqliteException.ThrowExceptionForRC(rc, _db);
        _parameters = new int[parameters.Length];
        for (var i = 0; i < parameters.Length; i++)
        {
            _parameters[i] = raw.sqlite3_bind_parameter_index(_statement, parameters[i]);
            if (_parameters[i] == 0)
            {
                _statement.Dispose();
                throw new ArgumentException($"the statement has no parameter '{parameters[i]}'.", nameof(parameters));
            }
        }
    }

    /// <summary>Binds the <paramref name="index"/>-th parameter (of the names given at construction) to a string as TEXT, or NULL.</summary>
    /// <remarks>
    /// The string is encoded as UTF-8 into a buffer this statement reuses and bound from there (SQLite copies bound text,
    /// <c>SQLITE_TRANSIENT</c>), which is the text SQLitePCLRaw's string overload binds (the same encoder, so a lone
    /// surrogate becomes U+FFFD either way; <c>RawStatementTests</c> compares the two) without its conversion per call:
    /// a result row binds about twenty strings.
    /// </remarks>
    public void Bind(int index, string? value)
    {
        var at = _parameters[index];
        int rc;
        if (value is null)
        {
            rc = raw.sqlite3_bind_null(_statement, at);
        }
        else
        {
            var most = System.Text.Encoding.UTF8.GetMaxByteCount(value.Length);
            if (_utf8.Length < most)
            {
                _utf8 = new byte[Math.Max(most, 2 * _utf8.Length)];
            }
            var length = System.Text.Encoding.UTF8.GetBytes(value, _utf8);
            rc = raw.sqlite3_bind_text(_statement, at, _utf8.AsSpan(0, length));
            if (_utf8.Length > 1 << 20)
            {
                _utf8 = new byte[256]; // one very long value: do not keep its buffer for the statement's life
            }
        }
        SqliteException.ThrowExceptionForRC(rc, _db);
    }

    private byte[] _utf8 = new byte[256];

    /// <summary>Binds the <paramref name="index"/>-th parameter to an integer.</summary>
    public void Bind(int index, long value) => SqliteException.ThrowExceptionForRC(raw.sqlite3_bind_int64(_statement, _parameters[index], value), _db);

    /// <summary>Binds the <paramref name="index"/>-th parameter to a <see cref="RequestsJson"/>'s UTF-8 text (copied by SQLite).</summary>
    public void Bind(int index, RequestsJson json) => SqliteException.ThrowExceptionForRC(raw.sqlite3_bind_text(_statement, _parameters[index], json.Utf8), _db);

    /// <summary>Runs a statement that returns no rows; returns the rows it changed. The statement is reset for the next use.</summary>
    public int Execute()
    {
        try
        {
            var rc = raw.sqlite3_step(_statement);
            if (rc is not (raw.SQLITE_DONE or raw.SQLITE_ROW))
            {
                SqliteException.ThrowExceptionForRC(rc, _db);
            }
            return raw.sqlite3_changes(_db);
        }
        finally
        {
            raw.sqlite3_reset(_statement);
        }
    }

    /// <summary>
    /// Steps to the first row; true when there is one (read it with the column getters, then <see cref="Reset"/>). With
    /// no row the statement is reset here: SQLite refuses to bind a statement that has run to its end and was not reset
    /// (SQLITE_MISUSE, error 21), so the next lookup on this statement would fail.
    /// </summary>
    public bool Step()
    {
        var rc = raw.sqlite3_step(_statement);
        if (rc == raw.SQLITE_ROW)
        {
            return true;
        }
        raw.sqlite3_reset(_statement);
        if (rc != raw.SQLITE_DONE)
        {
            SqliteException.ThrowExceptionForRC(rc, _db);
        }
        return false;
    }

    /// <summary>A TEXT column of the current row, or null for NULL.</summary>
    public string? Text(int column) =>
        raw.sqlite3_column_type(_statement, column) == raw.SQLITE_NULL ? null : raw.sqlite3_column_text(_statement, column).utf8_to_string();

    /// <summary>The bytes of a TEXT or BLOB column of the current row (UTF-8 for TEXT), valid until the next step or reset.</summary>
    public ReadOnlySpan<byte> Bytes(int column) => raw.sqlite3_column_blob(_statement, column);

    /// <summary>An INTEGER column of the current row.</summary>
    public long Int64(int column) => raw.sqlite3_column_int64(_statement, column);

    /// <summary>Ends the current use (after <see cref="Step"/>), so the statement can be bound and run again.</summary>
    public void Reset() => raw.sqlite3_reset(_statement);

    public void Dispose() => _statement.Dispose();
}
