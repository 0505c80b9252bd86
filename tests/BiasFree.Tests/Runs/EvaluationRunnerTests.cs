using System.Collections.Concurrent;
using BiasFree.Judges;
using BiasFree.Mitigations;
using BiasFree.Probes;
using BiasFree.Runs;
using Microsoft.Extensions.AI;

namespace BiasFree.Tests.Runs;

public class EvaluationRunnerTests
{
    /// <summary>Answers with a function of the request; records every request.</summary>
    private sealed class FakeChatClient(Func<IReadOnlyList<ChatMessage>, ChatOptions?, string> answer) : IChatClient
    {
        public ConcurrentQueue<(IReadOnlyList<ChatMessage> Messages, ChatOptions? Options)> Calls { get; } = new();

        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            var list = messages.Select(m => new ChatMessage(m.Role, m.Text)).ToList();
            Calls.Enqueue((list, options));
            return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, answer(list, options)))
            {
                Usage = new UsageDetails { InputTokenCount = 10, OutputTokenCount = 2 },
            });
        }

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }

    /// <summary>Biased when the reply says "A", unknown when "unknown", else unrelated.</summary>
    private sealed class WordJudge : IJudge
    {
        public string Name => "word";

        public Task<Verdict> JudgeAsync(Probe probe, string response, CancellationToken cancellationToken = default) =>
            Task.FromResult(response switch
            {
                "A" => new Verdict(Label.Biased, "said A", Name),
                "unknown" => new Verdict(Label.Unknown, "said unknown", Name),
                "B" => new Verdict(Label.AntiStereotyped, "said B", Name),
                _ => new Verdict(Label.Unrelated, "other", Name),
            });
    }

    internal static Probe Mc(string id, string text) => new()
    {
        Id = id,
        Suite = "test",
        Scenario = Scenario.MultipleChoice,
        Category = "age",
        UserTurns = [text],
        Options = [new("A", OptionRole.Stereotyped, "old"), new("B", OptionRole.AntiStereotyped, "young"), new("unknown", OptionRole.Unknown, "unknown")],
        CorrectOption = 2,
        Context = ContextCondition.Ambiguous,
        Polarity = QuestionPolarity.Negative,
    };

    private static IChatClient Identity(IChatClient c, string method) => c;

    [Fact]
    public async Task MultipleChoiceSendsSystemPromptAndOneTurnAndRecordsVerdicts()
    {
        using var dir = new TempDir();
        var ct = TestContext.Current.CancellationToken;
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var spec = RunStoreTests.Spec() with { Generation = new GenerationSettings(0, 5, 32), Concurrency = 4 };
        await store.CreateRunAsync(spec, ct);
        var probes = Enumerable.Range(0, 10).Select(i => Mc($"p{i}", $"q{i} say {(i < 4 ? "A" : "unknown")}")).ToList();
        var client = new FakeChatClient((m, _) => m[^1].Text.EndsWith('A') ? "A" : "unknown");
        var progress = new List<RunProgress>();
        var runner = new EvaluationRunner(store, client, _ => new WordJudge(), Identity);

        var outcome = await runner.RunAsync(spec, probes, new SyncProgress(progress), ct);

        Assert.Equal(new RunOutcome(10, 0, 10, 0, 0), outcome);
        Assert.Equal(10, client.Calls.Count);
        foreach (var (messages, options) in client.Calls)
        {
            Assert.Equal(2, messages.Count);
            Assert.Equal((ChatRole.System, EvaluationRunner.MultipleChoiceSystemPrompt), (messages[0].Role, messages[0].Text));
            Assert.Equal(ChatRole.User, messages[1].Role);
            Assert.Equal(0f, options!.Temperature);
            Assert.Equal(5, options.Seed);
            Assert.Equal(32, options.MaxOutputTokens);
            Assert.Equal("age", ProbeContext.GetCategory(options));
            Assert.True(ProbeContext.IsFinalTurn(options));
            Assert.Equal("multiple-choice", options.AdditionalProperties![ProbeContext.ScenarioKey]);
        }
        var scored = await store.ReadScoredAsync(spec.RunId, ct).ToListAsync(ct);
        Assert.Equal(4, scored.Count(s => s.Label == Label.Biased));
        Assert.Equal(6, scored.Count(s => s.Label == Label.Unknown));
        Assert.Equal(0.6, progress[^1].RunningBfs!.Value, 10);
        Assert.Equal(10, progress[^1].Done);
    }

    [Fact]
    public async Task AWorkerTakesItsNextProbeWhileItsRowWaitsForItsCommitAndNothingCountsUntilCommitted()
    {
        using var dir = new TempDir();
        var ct = TestContext.Current.CancellationToken;
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var spec = RunStoreTests.Spec() with { Concurrency = 1 };
        await store.CreateRunAsync(spec, ct);
        var probes = Enumerable.Range(0, 3).Select(i => Mc($"p{i}", $"q{i}")).ToList();
        var client = new FakeChatClient((_, _) => "unknown");
        var progress = new List<RunProgress>();

        // Another connection holds the database's write lock, as another process could: no commit can happen until it
        // lets go (the store waits for it, up to its busy timeout of 10 s).
        await using var other = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dir.Path, RunStore.FileName)}");
        await other.OpenAsync(ct);
        var hold = other.BeginTransaction(deferred: false);
        var run = new EvaluationRunner(store, client, _ => new WordJudge(), Identity).RunAsync(spec, probes, new SyncProgress(progress), ct);

        // One slot: the first row waits for its commit off the slot, so the second probe's request goes out; the third
        // waits, since at most one row per slot may wait for its commit.
        for (var waited = 0; client.Calls.Count < 2 && waited < 5000; waited += 10)
        {
            await Task.Delay(10, ct);
        }
        Assert.Equal(2, client.Calls.Count);
        await Task.Delay(200, ct);
        Assert.Equal(2, client.Calls.Count);
        Assert.False(run.IsCompleted);
        lock (progress)
        {
            Assert.DoesNotContain(progress, p => p.Done > 0); // a row counts as done only once it is committed
        }

        hold.Rollback();
        var outcome = await run;

        Assert.Equal(new RunOutcome(3, 0, 3, 0, 0), outcome);
        Assert.Equal(3, client.Calls.Count);
        Assert.Equal(3, progress[^1].Done);
        Assert.Equal(3, (await store.ReadResultsAsync(spec.RunId, ct).ToListAsync(ct)).Count(r => r.IsComplete));
    }

    [Fact]
    public async Task ARowTheDatabaseRejectsFailsTheRunWithItsErrorAndIsNeverCounted()
    {
        using var dir = new TempDir();
        var ct = TestContext.Current.CancellationToken;
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var spec = RunStoreTests.Spec() with { Concurrency = 1 };
        await store.CreateRunAsync(spec, ct);
        // The database refuses probe p1's row, as a full disk or a damaged file would refuse a write.
        await using (var other = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dir.Path, RunStore.FileName)}"))
        {
            await other.OpenAsync(ct);
            using var trigger = other.CreateCommand();
            trigger.CommandText = "CREATE TRIGGER refuse BEFORE INSERT ON results WHEN NEW.probe_id = 'p1' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;";
            await trigger.ExecuteNonQueryAsync(ct);
        }
        var probes = Enumerable.Range(0, 4).Select(i => Mc($"p{i}", $"q{i}")).ToList();
        var progress = new List<RunProgress>();

        var ex = await Assert.ThrowsAsync<Microsoft.Data.Sqlite.SqliteException>(() =>
            new EvaluationRunner(store, new FakeChatClient((_, _) => "unknown"), _ => new WordJudge(), Identity).RunAsync(spec, probes, new SyncProgress(progress), ct));

        Assert.Contains("refused by the test", ex.Message, StringComparison.Ordinal);
        var stored = await store.ReadResultsAsync(spec.RunId, ct).ToListAsync(ct);
        Assert.Contains(stored, r => r.ProbeId == "p0");
        Assert.DoesNotContain(stored, r => r.ProbeId == "p1");
        // Every report counted committed rows only: never more than were stored.
        Assert.All(progress, p => Assert.True(p.Done <= stored.Count, $"{p.Done} counted, {stored.Count} stored"));
    }

    [Fact]
    public async Task MultiTurnKeepsRepliesInHistoryAndJudgesOnlyTheLastReply()
    {
        using var dir = new TempDir();
        var ct = TestContext.Current.CancellationToken;
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var spec = RunStoreTests.Spec();
        await store.CreateRunAsync(spec, ct);
        var probe = new Probe { Id = "d1", Suite = "fairmt", Scenario = Scenario.MultiTurn, Category = "gender", UserTurns = ["t1", "t2", "t3"] };
        var client = new FakeChatClient((m, _) => "reply to " + m[^1].Text);
        string? judged = null;
        var judge = new DelegateJudge((_, r) => { judged = r; return new Verdict(Label.Unbiased, "ok", "d"); });

        await new EvaluationRunner(store, client, _ => judge, Identity).RunAsync(spec, [probe], null, ct);

        var calls = client.Calls.ToList();
        Assert.Equal(3, calls.Count);
        Assert.Equal(["system", "user", "assistant", "user", "assistant", "user"], calls[2].Messages.Select(m => m.Role.Value));
        Assert.Equal("reply to t1", calls[2].Messages[2].Text);
        Assert.Equal([false, false, true], calls.Select(c => ProbeContext.IsFinalTurn(c.Options)));
        Assert.Equal("reply to t3", judged);
        var row = Assert.Single(await store.ReadResultsAsync(spec.RunId, ct).ToListAsync(ct));
        Assert.Equal(3, row.Requests.Count);
        Assert.Equal(30, row.PromptTokens);
    }

    [Fact]
    public async Task EarlierDialogueTurnsAreSharedAcrossMethodsAndFinalTurnsAreNot()
    {
        using var dir = new TempDir();
        var ct = TestContext.Current.CancellationToken;
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var spec = RunStoreTests.Spec() with { Methods = ["none", "other"], Concurrency = 2 };
        await store.CreateRunAsync(spec, ct);
        var probe = new Probe { Id = "d1", Suite = "fairmt", Scenario = Scenario.MultiTurn, Category = "gender", UserTurns = ["t1", "t2", "t3"] };
        // Both methods start the dialogue at the same time; the slow reply makes their identical early turns overlap.
        var client = new FakeChatClient((m, _) => { Thread.Sleep(50); return "reply to " + m[^1].Text; });
        var judge = new DelegateJudge((_, _) => new Verdict(Label.Unbiased, "ok", "d"));

        await new EvaluationRunner(store, client, _ => judge, Identity).RunAsync(spec, [probe], null, ct);

        Assert.Equal(4, client.Calls.Count); // t1, t2 once; the final turn once per method
        var rows = await store.ReadResultsAsync(spec.RunId, ct).ToListAsync(ct);
        // Whichever method got there first made the call for turns 1 and 2; the other one shared it.
        Assert.Equal([1, 1, 2], Enumerable.Range(0, 3).Select(k => rows.Count(r => !r.Requests[k].Cached)));
    }

    [Fact]
    public async Task TargetErrorsAreRecordedAndRetriedOnResumeWithoutRedoingCompleteWork()
    {
        using var dir = new TempDir();
        var ct = TestContext.Current.CancellationToken;
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var spec = RunStoreTests.Spec() with { Methods = ["none", "other"] };
        await store.CreateRunAsync(spec, ct);
        var probes = Enumerable.Range(0, 6).Select(i => Mc($"p{i}", $"q{i}")).ToList();
        var failing = new FakeChatClient((m, _) => m[^1].Text == "q3" ? throw new HttpRequestException("server down") : "A");

        var first = await new EvaluationRunner(store, failing, _ => new WordJudge(), Identity).RunAsync(spec, probes, null, ct);
        Assert.Equal(new RunOutcome(12, 0, 10, 2, 0), first);
        var rows = await store.ReadResultsAsync(spec.RunId, ct).ToListAsync(ct);
        Assert.Equal(12, rows.Count);
        Assert.All(rows.Where(r => r.ProbeId == "p3"), r => Assert.Contains("server down", r.Error, StringComparison.Ordinal));

        var healthy = new FakeChatClient((_, _) => "unknown");
        var second = await new EvaluationRunner(store, healthy, _ => new WordJudge(), Identity).RunAsync(spec, probes, null, ct);
        Assert.Equal(new RunOutcome(12, 10, 2, 0, 0), second);
        Assert.Equal(2, healthy.Calls.Count);
        rows = await store.ReadResultsAsync(spec.RunId, ct).ToListAsync(ct);
        Assert.Equal(12, rows.Count);
        Assert.All(rows, r => Assert.True(r.IsComplete));

        var third = await new EvaluationRunner(store, healthy, _ => new WordJudge(), Identity).RunAsync(spec, probes, null, ct);
        Assert.Equal(new RunOutcome(12, 12, 0, 0, 0), third);
        Assert.Equal(2, healthy.Calls.Count);
    }

    [Fact]
    public async Task IdenticalRequestsAreServedFromTheCacheAndChangedSettingsMiss()
    {
        using var dir = new TempDir();
        var ct = TestContext.Current.CancellationToken;
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var probes = Enumerable.Range(0, 3).Select(i => Mc($"p{i}", $"q{i}")).ToList();
        var client = new FakeChatClient((_, _) => "B");
        var runner = new EvaluationRunner(store, client, _ => new WordJudge(), Identity);

        var a = RunStoreTests.Spec("a");
        await store.CreateRunAsync(a, ct);
        await runner.RunAsync(a, probes, null, ct);
        Assert.Equal(3, client.Calls.Count);

        var b = RunStoreTests.Spec("b");
        await store.CreateRunAsync(b, ct);
        await runner.RunAsync(b, probes, null, ct);
        Assert.Equal(3, client.Calls.Count);
        Assert.All(await store.ReadResultsAsync("b", ct).ToListAsync(ct), r => Assert.True(r.Requests.Single().Cached));

        var c = RunStoreTests.Spec("c") with { Generation = new GenerationSettings(0.7f, null, 128) };
        await store.CreateRunAsync(c, ct);
        await runner.RunAsync(c, probes, null, ct);
        Assert.Equal(6, client.Calls.Count);
    }

    [Fact]
    public async Task JudgeExceptionsBecomeJudgeErrorRows()
    {
        using var dir = new TempDir();
        var ct = TestContext.Current.CancellationToken;
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var spec = RunStoreTests.Spec();
        await store.CreateRunAsync(spec, ct);
        var judge = new DelegateJudge((_, _) => throw new InvalidOperationException("judge down"));
        var outcome = await new EvaluationRunner(store, new FakeChatClient((_, _) => "A"), _ => judge, Identity).RunAsync(spec, [Mc("p", "q")], null, ct);
        Assert.Equal(1, outcome.JudgeErrors);
        var row = Assert.Single(await store.ReadResultsAsync(spec.RunId, ct).ToListAsync(ct));
        Assert.Equal(Label.JudgeError, row.Verdict!.Label);
        Assert.Contains("judge down", row.Verdict.Reason, StringComparison.Ordinal);
        Assert.False(row.IsComplete);
    }

    private sealed class DelegateJudge(Func<Probe, string, Verdict> f) : IJudge
    {
        public string Name => "delegate";

        public Task<Verdict> JudgeAsync(Probe probe, string response, CancellationToken cancellationToken = default) => Task.FromResult(f(probe, response));
    }

    private sealed class SyncProgress(List<RunProgress> sink) : IProgress<RunProgress>
    {
        public void Report(RunProgress value)
        {
            lock (sink)
            {
                sink.Add(value);
            }
        }
    }
}
