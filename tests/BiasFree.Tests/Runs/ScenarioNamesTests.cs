using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Reports;
using BiasFree.Runs;
using Microsoft.Data.Sqlite;

namespace BiasFree.Tests.Runs;

/// <summary>One spelling of scenario names in the store and JSON lines; stores written with the enum names still load.</summary>
public class ScenarioNamesTests
{
    [Fact]
    public void BothSpellingsParseAndNamesAreKebabCase()
    {
        Assert.Equal("multi-turn", ScenarioNames.Name(Scenario.MultiTurn));
        Assert.Equal("multiple-choice", ScenarioNames.Name(Scenario.MultipleChoice));
        Assert.Equal(Scenario.MultiTurn, ScenarioNames.Parse("MultiTurn"));
        Assert.Equal(Scenario.MultiTurn, ScenarioNames.Parse("multi-turn"));
        Assert.Equal(Scenario.MultipleChoice, ScenarioNames.Parse("MultipleChoice"));
        Assert.Throws<FormatException>(() => ScenarioNames.Parse("dialogue"));
    }

    [Fact]
    public async Task RowsStoredWithTheOldSpellingStillLoadAndNewRowsUseTheNewOne()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        await store.CreateRunAsync(new RunSpec { RunId = "r", Suites = ["fairmt"], Model = "m", Methods = ["none"] }, ct);
        ResultRecord Row(string id) => new()
        {
            RunId = "r", Method = "none", Suite = "fairmt", ProbeId = id, Scenario = Scenario.MultiTurn, Category = "Gender", Model = "m",
            Response = "ok", Verdict = new Verdict(Label.Unbiased, "fine", "test"),
        };
        await store.SaveResultAsync(Row("old"), ct);
        await store.SaveResultAsync(Row("new"), ct);

        await using (var db = new SqliteConnection($"Data Source={store.DatabasePath}"))
        {
            await db.OpenAsync(ct);
            using var read = db.CreateCommand();
            read.CommandText = "SELECT scenario FROM results WHERE probe_id = 'new'";
            Assert.Equal("multi-turn", (string?)await read.ExecuteScalarAsync(ct));
            using var old = db.CreateCommand();
            old.CommandText = "UPDATE results SET scenario = 'MultiTurn' WHERE probe_id = 'old'"; // as older versions wrote it
            Assert.Equal(1, await old.ExecuteNonQueryAsync(ct));
        }

        var rows = new List<ResultRecord>();
        await foreach (var r in store.ReadResultsAsync("r", ct))
        {
            rows.Add(r);
        }
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.Equal(Scenario.MultiTurn, r.Scenario));
        Assert.Contains("\"scenario\":\"multi-turn\"", ReportWriter.ToJsonLine(rows[0]), StringComparison.Ordinal);
    }
}
