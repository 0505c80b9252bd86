using BiasFree.Runs;
using Microsoft.Data.Sqlite;

namespace BiasFree.Tests.Runs;

public class RawStatementTests
{
    private static SqliteConnection OpenWithTable()
    {
        var connection = new SqliteConnection("Data Source=:memory:");
        connection.Open();
        using var cmd = connection.CreateCommand();
        cmd.CommandText = "CREATE TABLE t (key TEXT PRIMARY KEY, value INTEGER); INSERT INTO t VALUES ('a', 1), ('b', 2);";
        cmd.ExecuteNonQuery();
        return connection;
    }

    [Fact]
    public void ALookupThatFindsNoRowLeavesTheStatementReadyForTheNext()
    {
        // The run store's cache lookup runs only when a key's hash is among the cached ones, so a hash collision makes
        // it miss; the same pooled statement then serves the next lookup. Before Step reset a statement that found no
        // row, that next Bind failed with SQLITE_MISUSE (error 21) and the probe was stored as a target error.
        using var connection = OpenWithTable();
        using var lookup = new RawStatement(connection, "SELECT value FROM t WHERE key = $key", "$key");
        foreach (var (key, expected) in new[] { ("missing", (long?)null), ("a", 1L), ("other", null), ("other2", null), ("b", 2L) })
        {
            lookup.Bind(0, key);
            if (lookup.Step())
            {
                Assert.Equal(expected, lookup.Int64(0));
                lookup.Reset();
            }
            else
            {
                Assert.Null(expected);
            }
        }
    }

    [Fact]
    public void ExecuteResetsAfterEveryRun()
    {
        using var connection = OpenWithTable();
        using var insert = new RawStatement(connection, "INSERT OR IGNORE INTO t VALUES ($key, $value)", "$key", "$value");
        insert.Bind(0, "c");
        insert.Bind(1, 3);
        Assert.Equal(1, insert.Execute());
        insert.Bind(0, "c");
        insert.Bind(1, 4);
        Assert.Equal(0, insert.Execute());
        insert.Bind(0, "d");
        insert.Bind(1, (string?)null);
        Assert.Equal(1, insert.Execute());
    }

    [Fact]
    public void StringsAreStoredAsMicrosoftDataSqliteStoresThem()
    {
        // The statement encodes a string into its own reused buffer; the stored bytes must be those of the library's own
        // parameter binding, for every kind of text a model or a dataset row can hold, in any order (the buffer grows for a
        // long value and is dropped after a very long one).
        using var connection = new SqliteConnection("Data Source=:memory:");
        connection.Open();
        using (var create = connection.CreateCommand())
        {
            create.CommandText = "CREATE TABLE s (id INTEGER PRIMARY KEY, raw TEXT, lib TEXT)";
            create.ExecuteNonQuery();
        }
        string[] values =
        [
            "", "a", "plain ascii", "caf\u00e9 \u4e2d\u6587 \U0001F600", "lone \ud800 high", "lone \udc00 low", "end \ud83d", "\0 nul inside", "line\nbreak\ttab",
            new string('x', 300), "short after long", new string('\u00e9', 700_000), "after a very long one", "\u2028\u2029\ufeff",
        ];
        using var insert = new RawStatement(connection, "INSERT INTO s (id, raw) VALUES ($id, $raw)", "$id", "$raw");
        for (var i = 0; i < values.Length; i++)
        {
            insert.Bind(0, i);
            insert.Bind(1, values[i]);
            Assert.Equal(1, insert.Execute());
            using var update = connection.CreateCommand();
            update.CommandText = "UPDATE s SET lib = $v WHERE id = $id";
            update.Parameters.AddWithValue("$v", values[i]);
            update.Parameters.AddWithValue("$id", i);
            update.ExecuteNonQuery();
        }
        using var read = connection.CreateCommand();
        read.CommandText = "SELECT id, CAST(raw AS BLOB), CAST(lib AS BLOB), typeof(raw) FROM s ORDER BY id";
        using var reader = read.ExecuteReader();
        var rows = 0;
        while (reader.Read())
        {
            Assert.Equal("text", reader.GetString(3));
            Assert.Equal((byte[])reader.GetValue(2), (byte[])reader.GetValue(1));
            rows++;
        }
        Assert.Equal(values.Length, rows);
    }
}
