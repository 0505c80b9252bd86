using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Runs;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.AI;

namespace BiasFree.Tests.Runs;

public class RunStoreTests
{
    private const string Hostile = "it's \"quoted\" '); DROP TABLE results; -- ; \u0000 end";

    internal static RunSpec Spec(string id = "r1") => new()
    {
        RunId = id,
        Suites = ["bbq"],
        Model = "m",
        TargetEndpoint = "http://127.0.0.1:1/v1",
        Methods = ["none"],
    };

    private static ResultRecord Row(string runId, string probeId, Label? label, string? error = null, string text = "answer") => new()
    {
        RunId = runId,
        Method = "none",
        Suite = "bbq-builtin",
        ProbeId = probeId,
        Scenario = Scenario.MultipleChoice,
        Category = "age",
        Context = ContextCondition.Ambiguous,
        Polarity = QuestionPolarity.Negative,
        CorrectRole = OptionRole.Unknown,
        Model = "m",
        Requests = [new RecordedRequest([new("system", "sys"), new("user", text)], text, Cached: false)],
        Response = text,
        Verdict = label is { } l ? new Verdict(l, "because " + text, "rule", text) : null,
        PromptTokens = 11,
        CompletionTokens = 3,
        LatencyMs = 42,
        Error = error,
        Started = DateTimeOffset.UtcNow,
        Completed = DateTimeOffset.UtcNow,
    };

    [Fact]
    public async Task RunAndResultRoundTrip()
    {
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, TestContext.Current.CancellationToken);
        var spec = Spec() with { Generation = new GenerationSettings(0.5f, 7, 64), Limit = 5, ApiKeyEnvironmentVariable = "MY_KEY" };
        await store.CreateRunAsync(spec, TestContext.Current.CancellationToken);
        var back = await store.GetRunAsync("r1", TestContext.Current.CancellationToken);
        Assert.NotNull(back);
        Assert.Equal(spec.Generation, back.Generation);
        Assert.Equal(["bbq"], back.Suites);
        Assert.Equal("MY_KEY", back.ApiKeyEnvironmentVariable);
        Assert.Equal(5, back.Limit);

        var row = Row("r1", "p1", Label.Biased);
        Assert.True(await store.SaveResultAsync(row, TestContext.Current.CancellationToken));
        var rows = await store.ReadResultsAsync("r1", TestContext.Current.CancellationToken).ToListAsync(TestContext.Current.CancellationToken);
        var r = Assert.Single(rows);
        Assert.Equal(row.Verdict, r.Verdict);
        Assert.Equal(row.Requests[0].Messages, r.Requests[0].Messages);
        Assert.Equal((11L, 3L, 42L), (r.PromptTokens, r.CompletionTokens, r.LatencyMs));
        Assert.Equal(OptionRole.Unknown, r.CorrectRole);
        Assert.True(r.IsComplete);

        var scored = Assert.Single(await store.ReadScoredAsync("r1", TestContext.Current.CancellationToken).ToListAsync(TestContext.Current.CancellationToken));
        Assert.Equal(Label.Biased, scored.Label);
        Assert.Equal(ContextCondition.Ambiguous, scored.Context);
    }

    [Fact]
    public async Task DuplicateRunIdIsRejected()
    {
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, TestContext.Current.CancellationToken);
        await store.CreateRunAsync(Spec(), TestContext.Current.CancellationToken);
        await Assert.ThrowsAsync<InvalidOperationException>(() => store.CreateRunAsync(Spec(), TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task CompleteRowIsNeverOverwrittenAndErrorRowIsReplaced()
    {
        using var dir = new TempDir();
        var ct = TestContext.Current.CancellationToken;
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        await store.CreateRunAsync(Spec(), ct);

        Assert.True(await store.SaveResultAsync(Row("r1", "p1", null, error: "HttpRequestException: boom"), ct));
        Assert.Empty(await store.GetCompletedKeysAsync("r1", ct));
        Assert.True(await store.SaveResultAsync(Row("r1", "p1", Label.Unknown), ct));
        Assert.False(await store.SaveResultAsync(Row("r1", "p1", Label.Biased), ct));

        var rows = await store.ReadResultsAsync("r1", ct).ToListAsync(ct);
        var r = Assert.Single(rows);
        Assert.Equal(Label.Unknown, r.Verdict!.Label);
        Assert.Null(r.Error);
        Assert.Equal([("none", "bbq-builtin", "p1")], await store.GetCompletedKeysAsync("r1", ct));

        // The unique constraint itself holds against a raw duplicate insert.
        await using var raw = new SqliteConnection($"Data Source={store.DatabasePath}");
        await raw.OpenAsync(ct);
        await using var cmd = raw.CreateCommand();
        cmd.CommandText = """
            INSERT INTO results (run_id, method, suite, probe_id, scenario, category, model, requests, complete, started, completed)
            VALUES ('r1', 'none', 'bbq-builtin', 'p1', 'MultipleChoice', 'age', 'm', '[]', 1, 'x', 'x')
            """;
        var ex = await Assert.ThrowsAsync<SqliteException>(() => cmd.ExecuteNonQueryAsync(ct));
        Assert.Contains("UNIQUE", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostileStringsAreStoredVerbatim()
    {
        using var dir = new TempDir();
        var ct = TestContext.Current.CancellationToken;
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var id = "run'); DROP TABLE runs; --";
        await store.CreateRunAsync(Spec(id) with { Model = Hostile, Methods = [Hostile] }, ct);
        await store.SaveResultAsync(Row(id, Hostile, Label.Biased, text: Hostile) with { Method = Hostile, Category = Hostile }, ct);
        await store.PutCachedAsync(Hostile, new CachedResponse(Hostile, 1, 2), ct);

        var spec = await store.GetRunAsync(id, ct);
        Assert.Equal(Hostile, spec!.Model);
        var r = Assert.Single(await store.ReadResultsAsync(id, ct).ToListAsync(ct));
        Assert.Equal((Hostile, Hostile, Hostile, Hostile), (r.ProbeId, r.Method, r.Category, r.Response));
        Assert.Equal(Hostile, r.Requests[0].Messages[1].Text);
        Assert.Equal(Hostile, (await store.GetCachedAsync(Hostile, ct))!.Text);
        Assert.Single(await store.ListRunsAsync(ct));
    }

    [Fact]
    public void CacheKeyChangesWithSettingsTurnsMethodAndProbe()
    {
        IReadOnlyList<RecordedMessage> turns = [new("system", "s"), new("user", "q")];
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 128, Seed = 1 };
        var key = RecordingChatClient.CacheKey("t", "none", "bbq", "p1", turns, options);
        Assert.Equal(key, RecordingChatClient.CacheKey("t", "none", "bbq", "p1", [new("system", "s"), new("user", "q")], options.Clone()));
        Assert.NotEqual(key, RecordingChatClient.CacheKey("t", "none", "bbq", "p1", turns, new ChatOptions { Temperature = 0.7f, MaxOutputTokens = 128, Seed = 1 }));
        Assert.NotEqual(key, RecordingChatClient.CacheKey("t", "none", "bbq", "p1", turns, new ChatOptions { Temperature = 0, MaxOutputTokens = 64, Seed = 1 }));
        // Every generation setting that can change the reply is part of the key: another seed must not be answered from the cache.
        Assert.NotEqual(key, RecordingChatClient.CacheKey("t", "none", "bbq", "p1", turns, new ChatOptions { Temperature = 0, MaxOutputTokens = 128, Seed = 2 }));
        Assert.NotEqual(key, RecordingChatClient.CacheKey("t", "none", "bbq", "p1", turns, new ChatOptions { Temperature = 0, MaxOutputTokens = 128 }));
        Assert.NotEqual(key, RecordingChatClient.CacheKey("t", "none", "bbq", "p1", turns, new ChatOptions { Temperature = 0, MaxOutputTokens = 128, Seed = 1, TopP = 0.9f }));
        Assert.NotEqual(key, RecordingChatClient.CacheKey("t", "none", "bbq", "p1", turns, new ChatOptions { Temperature = 0, MaxOutputTokens = 128, Seed = 1, TopK = 40 }));
        Assert.NotEqual(key, RecordingChatClient.CacheKey("t", "none", "bbq", "p1", turns, new ChatOptions { Temperature = 0, MaxOutputTokens = 128, Seed = 1, StopSequences = ["\n"] }));
        Assert.NotEqual(key, RecordingChatClient.CacheKey("t", "none", "fairmt", "p1", turns, options));
        Assert.NotEqual(key, RecordingChatClient.CacheKey("t", "cot", "bbq", "p1", turns, options));
        Assert.NotEqual(key, RecordingChatClient.CacheKey("t", "none", "bbq", "p2", turns, options));
        Assert.NotEqual(key, RecordingChatClient.CacheKey("t2", "none", "bbq", "p1", turns, options));
        Assert.NotEqual(key, RecordingChatClient.CacheKey("t", "none", "bbq", "p1", [new("system", "s"), new("user", "q2")], options));
    }

    /// <summary>The key the store used before the key was written by hand: JsonSerializer over an anonymous object.</summary>
    private static string SerializerCacheKey(string target, string method, string? suite, string? probe, IReadOnlyList<RecordedMessage> messages, ChatOptions? options) =>
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(new
        {
            target,
            method,
            suite,
            probe,
            messages = messages.Select(m => new[] { m.Role, m.Text }),
            temperature = options?.Temperature,
            seed = options?.Seed,
            maxTokens = options?.MaxOutputTokens,
            topP = options?.TopP,
            topK = options?.TopK,
            stop = options?.StopSequences,
        }))));

    [Fact]
    public void CacheKeyIsTheKeyEarlierStoresWrote()
    {
        // Stores written before keep their cache only if every key is byte-for-byte the same: escaping (HTML-sensitive
        // characters, non-ASCII, control characters, quotes), nulls, float formatting and stop sequences included.
        IReadOnlyList<RecordedMessage> turns = [new("system", "You are <helpful> & \"kind\"."), new("user", "Qui a lu le dossier ? \u00e9\u4e2d\ud83d\ude00\n\t\u0001 'x' +")];
        ChatOptions?[] settings =
        [
            null,
            new ChatOptions(),
            new ChatOptions { Temperature = 0, MaxOutputTokens = 128, Seed = 1 },
            new ChatOptions { Temperature = 0.7f, TopP = 0.95f, TopK = 40, Seed = -5, StopSequences = ["\n", "</s>", "é"] },
            new ChatOptions { Temperature = 1e-5f, MaxOutputTokens = int.MaxValue, Seed = long.MaxValue, StopSequences = [] },
        ];
        foreach (var options in settings)
        {
            foreach (var (suite, probe) in new (string?, string?)[] { ("bbq", "p1"), (null, null), ("fair\"mt", "<id>") })
            {
                Assert.Equal(SerializerCacheKey("openai:http://x/v1|m", "self-reflection", suite, probe, turns, options),
                    RecordingChatClient.CacheKey("openai:http://x/v1|m", "self-reflection", suite, probe, turns, options));
            }
        }
        // A long conversation (past the reused buffer's first size) and an empty one.
        var longTurns = Enumerable.Range(0, 200).Select(i => new RecordedMessage(i % 2 == 0 ? "user" : "assistant", new string((char)('a' + i % 26), 500))).ToList();
        Assert.Equal(SerializerCacheKey("t", "none", "s", "p", longTurns, settings[2]), RecordingChatClient.CacheKey("t", "none", "s", "p", longTurns, settings[2]));
        Assert.Equal(SerializerCacheKey("t", "none", "s", "p", [], settings[2]), RecordingChatClient.CacheKey("t", "none", "s", "p", [], settings[2]));
    }

    [Fact]
    public async Task CacheHitOnIdenticalKeyAndMissOtherwise()
    {
        using var dir = new TempDir();
        var ct = TestContext.Current.CancellationToken;
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        await store.PutCachedAsync("k1", new CachedResponse("hello", 5, 1), ct);
        Assert.Equal(new CachedResponse("hello", 5, 1), await store.GetCachedAsync("k1", ct));
        Assert.Null(await store.GetCachedAsync("k2", ct));
        await store.PutCachedAsync("k1", new CachedResponse("other", 0, 0), ct);
        Assert.Equal("hello", (await store.GetCachedAsync("k1", ct))!.Text);
    }

    [Fact]
    public async Task CachedKeysLoadedInTheBackgroundAreFoundAndClosingWaitsForTheLoad()
    {
        // Evaluation.StartAsync starts the index's load on a pool thread; lookups that come before it ends wait for it,
        // and a store closed while it runs closes after it (the load holds one of the store's read connections).
        using var dir = new TempDir();
        var ct = TestContext.Current.CancellationToken;
        var keys = Enumerable.Range(0, 3_000).Select(i => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(i)))).ToArray();
        await using (var store = await RunStore.OpenDirectoryAsync(dir.Path, ct))
        {
            foreach (var key in keys)
            {
                _ = store.PutCachedAsync(key, new CachedResponse($"reply to {key}", 1, 2), ct);
            }
        }
        for (var round = 0; round < 3; round++)
        {
            // Closed at once, by each of the two ways to close.
            var closing = await RunStore.OpenDirectoryAsync(dir.Path, ct);
            closing.BeginLoadingCachedKeys();
            if (round % 2 == 0)
            {
                await closing.DisposeAsync();
            }
            else
            {
                closing.Dispose();
            }
            if (OperatingSystem.IsLinux())
            {
                // Nothing of the closed store is left open: a load that outlived the close would put its connection back.
                var open = Directory.GetFiles("/proc/self/fd").Select(fd => new FileInfo(fd).LinkTarget).Where(t => t is not null && t.StartsWith(dir.Path + Path.DirectorySeparatorChar, StringComparison.Ordinal)).ToList();
                Assert.Empty(open);
            }
            // A closed store starts no load (it would open a reader that nothing closes).
            Assert.Throws<ObjectDisposedException>(closing.BeginLoadingCachedKeys);
        }
        await using (var store = await RunStore.OpenDirectoryAsync(dir.Path, ct))
        {
            // Started from several threads at once: one load.
            await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(store.BeginLoadingCachedKeys, ct)));
            Assert.True(store.MayHaveCachedReplies);
            foreach (var key in keys)
            {
                Assert.Equal($"reply to {key}", (await store.GetCachedAsync(key, ct))?.Text);
            }
            Assert.Null(await store.GetCachedAsync("not cached", ct));
        }
    }

    [Fact]
    public async Task CachedKeysOfEveryKindAreFoundAfterReopening()
    {
        // The keys in the file are indexed from SQLite's bytes at the first lookup, the keys committed since from their
        // strings: both must give the same bit, for hex digests (what RecordingChatClient writes) and for any other text.
        using var dir = new TempDir();
        var ct = TestContext.Current.CancellationToken;
        string[] keys = [RecordingChatClient.CacheKey("t", "none", "s", "p", [new RecordedMessage("user", "q")], null), "k1", "", "ключ-é-😀", Hostile];
        await using (var store = await RunStore.OpenDirectoryAsync(dir.Path, ct))
        {
            foreach (var key in keys)
            {
                await store.PutCachedAsync(key, new CachedResponse($"reply to {key}", 1, 2), ct);
            }
        }
        await using (var store = await RunStore.OpenDirectoryAsync(dir.Path, ct))
        {
            Assert.True(store.MayHaveCachedReplies);
            foreach (var key in keys)
            {
                Assert.Equal($"reply to {key}", (await store.GetCachedAsync(key, ct))?.Text);
            }
            Assert.Null(await store.GetCachedAsync("k2", ct));
        }
        await using (var empty = await RunStore.OpenDirectoryAsync(Path.Combine(dir.Path, "empty"), ct))
        {
            Assert.False(empty.MayHaveCachedReplies);
        }
        foreach (var key in keys)
        {
            Assert.Equal(RunStore.KeyHash(key), RunStore.KeyHash(System.Text.Encoding.UTF8.GetBytes(key)));
            Assert.InRange(RunStore.KeyHash(key), 0u, (1u << 24) - 1);
        }
        // The bits spread: 10,000 digests set nearly as many distinct bits (a hash of a few bits would not).
        var bits = Enumerable.Range(0, 10_000).Select(i => RunStore.KeyHash(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(i))))).Distinct().Count();
        Assert.InRange(bits, 9_990, 10_000);
    }
}
