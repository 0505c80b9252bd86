using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Runs;

namespace BiasFree.Tests.Runs;

/// <summary>The store's group-commit writer: every accepted write is committed, on dispose and on cancellation too.</summary>
public class GroupCommitWriterTests
{
    private static ResultRecord Row(string probeId) => new()
    {
        RunId = "r1",
        Method = "none",
        Suite = "bbq-builtin",
        ProbeId = probeId,
        Scenario = Scenario.MultipleChoice,
        Category = "age",
        Model = "m",
        Requests = [new RecordedRequest([new("user", "q " + probeId)], "a " + probeId, Cached: false)],
        Response = "a " + probeId,
        Verdict = new Verdict(Label.Unknown, "because", "rule"),
        Started = DateTimeOffset.UtcNow,
        Completed = DateTimeOffset.UtcNow,
    };

    [Fact]
    public async Task DisposeCommitsEveryQueuedWrite()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        const int n = 2000;
        var saves = new List<Task<bool>>();
        var puts = new List<Task>();
        var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        await store.CreateRunAsync(RunStoreTests.Spec(), ct);
        for (var i = 0; i < n; i++)
        {
            // Not awaited: the writes are queued when the store is closed.
            saves.Add(store.SaveResultAsync(Row($"p{i}"), ct));
            puts.Add(store.PutCachedAsync($"key{i}", new CachedResponse($"reply {i}", 1, 2), ct));
        }
        await store.DisposeAsync();

        // A caller's task completes through the thread pool (the writer never runs its callers' continuations itself), so on
        // a busy pool it can finish just after DisposeAsync returns: awaited here. The commits themselves are checked below.
        Assert.All(await Task.WhenAll(saves), Assert.True);
        await Task.WhenAll(puts);
        await using var reopened = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var rows = await reopened.ReadResultsAsync("r1", ct).ToListAsync(ct);
        Assert.Equal(Enumerable.Range(0, n).Select(i => $"p{i}").Order(StringComparer.Ordinal), rows.Select(r => r.ProbeId));
        Assert.Equal("a p1234", rows.Single(r => r.ProbeId == "p1234").Response);
        Assert.Equal("reply 1999", (await reopened.GetCachedAsync("key1999", ct))?.Text);
        Assert.Null(await reopened.GetCachedAsync("key2000", ct));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => store.SaveResultAsync(Row("late"), ct));
    }

    [Fact]
    public async Task SyncDisposeCommitsEveryQueuedWrite()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var saves = new List<Task<bool>>();
        using (var store = await RunStore.OpenDirectoryAsync(dir.Path, ct))
        {
            await store.CreateRunAsync(RunStoreTests.Spec(), ct);
            for (var i = 0; i < 500; i++)
            {
                saves.Add(store.SaveResultAsync(Row($"p{i}"), ct));
            }
        }
        Assert.All(await Task.WhenAll(saves), Assert.True); // completes through the thread pool (see above)
        await using var reopened = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        Assert.Equal(500, (await reopened.GetCompletedKeysAsync("r1", ct)).Count);
    }

    [Fact]
    public async Task CancellingTheWaitStillCommitsTheWrite()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        await using (var store = await RunStore.OpenDirectoryAsync(dir.Path, ct))
        {
            await store.CreateRunAsync(RunStoreTests.Spec(), ct);
            using var cts = new CancellationTokenSource();
            var waits = Enumerable.Range(0, 300).Select(i => store.SaveResultAsync(Row($"p{i}"), cts.Token)).ToList();
            await cts.CancelAsync();
            foreach (var wait in waits)
            {
                try
                {
                    await wait; // either committed already or the wait was cancelled: the write goes on
                }
                catch (OperationCanceledException)
                {
                }
            }

            // A token cancelled before the call writes nothing.
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => store.SaveResultAsync(Row("never"), cts.Token));
        }
        await using var reopened = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var keys = await reopened.GetCompletedKeysAsync("r1", ct);
        Assert.Equal(300, keys.Count);
        Assert.DoesNotContain(("none", "bbq-builtin", "never"), keys);
    }

    [Fact]
    public async Task ABadWriteFailsAloneNotItsBatch()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        await store.CreateRunAsync(RunStoreTests.Spec(), ct);
        // A row of a run that does not exist breaks the results table's foreign key; queued with good rows, so it
        // lands in their batch.
        var good = Enumerable.Range(0, 200).Select(i => store.SaveResultAsync(Row($"p{i}"), ct)).ToList();
        var bad = store.SaveResultAsync(Row("orphan") with { RunId = "no-such-run" }, ct);
        good.AddRange(Enumerable.Range(200, 200).Select(i => store.SaveResultAsync(Row($"p{i}"), ct)));

        await Assert.ThrowsAsync<Microsoft.Data.Sqlite.SqliteException>(() => bad);
        Assert.All(await Task.WhenAll(good), Assert.True);
        Assert.Equal(400, (await store.GetCompletedKeysAsync("r1", ct)).Count);
    }
}
