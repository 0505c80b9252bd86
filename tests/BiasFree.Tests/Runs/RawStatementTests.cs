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
        insert.Bind(1, null);
        Assert.Equal(1, insert.Execute());
    }
}
