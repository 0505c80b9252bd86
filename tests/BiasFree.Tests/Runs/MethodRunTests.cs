using System.Collections.Concurrent;
using BiasFree.Judges;
using BiasFree.Mitigations;
using BiasFree.Probes;
using BiasFree.Probes.BuiltIn;
using BiasFree.Reports;
using BiasFree.Runs;
using BiasFree.Targets;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.AI;

namespace BiasFree.Tests.Runs;

/// <summary>What a run records about its methods: the wording used, the options protocol, Self-Help fallbacks.</summary>
public class MethodRunTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The model boundary: answers with a function of the messages and options, records every call.</summary>
    private sealed class Model(Func<IReadOnlyList<ChatMessage>, string> answer) : IChatClient
    {
        public ConcurrentQueue<(IReadOnlyList<ChatMessage> Messages, ChatOptions? Options)> Calls { get; } = new();

        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            var list = messages.Select(m => new ChatMessage(m.Role, m.Text)).ToList();
            Calls.Enqueue((list, options));
            return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, answer(list))));
        }

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }

    private static RunSpec Spec(string id, params string[] methods) => new()
    {
        RunId = id, Suites = ["bbq"], Model = "m", Methods = methods, Concurrency = 4, Prompts = MethodPrompts.Default.Templates,
    };

    [Fact]
    public async Task SelfHelpFallbacksAreStoredPerRowAndCountedPerMethod()
    {
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, Ct);
        var probes = new BbqBuiltInSuite(seed: 1).Load().Take(10).ToList();
        // The rewrite request of every other probe (positions 0, 2, ...) gets no sections: those 5 fall back.
        var noRewrite = probes.Where((_, i) => i % 2 == 0).Select(p => p.UserTurns[0]).ToHashSet();
        var model = new Model(m =>
        {
            var last = m[^1].Text;
            if (!last.Contains("**QUERY**:", StringComparison.Ordinal))
            {
                return "unknown";
            }
            return noRewrite.Any(q => last.Contains(q, StringComparison.Ordinal)) ? "no" : $"**SYSTEM PROMPT**: s\n**QUERY**: {last[(last.LastIndexOf("**QUERY**:", StringComparison.Ordinal) + 10)..].Trim()}";
        });
        var spec = Spec("fb", "none", "self-help");
        await store.CreateRunAsync(spec, Ct);
        await new EvaluationRunner(store, model, _ => new RuleBasedAnswerExtractor()).RunAsync(spec, probes, cancellationToken: Ct);

        var rows = await store.ReadResultsAsync("fb", Ct).ToListAsync(Ct);
        Assert.Equal(5, rows.Count(r => r.Method == "self-help" && r.Fallback));
        Assert.All(rows.Where(r => r.Fallback), r => Assert.Contains(r.ProbeId, probes.Where(p => noRewrite.Contains(p.UserTurns[0])).Select(p => p.Id)));
        Assert.DoesNotContain(rows, r => r.Method == "none" && r.Fallback);

        var report = await RunReport.BuildAsync(store, "fb", cancellationToken: Ct);
        Assert.Equal([new MethodFallbacks("none", 0, 10), new MethodFallbacks("self-help", 5, 10)], report.FallbacksByMethod);
    }

    [Fact]
    public async Task LetteredQuestionsAreMarkedSoMethodsUseTheirLetteredWording()
    {
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, Ct);
        var three = new BbqBuiltInSuite(seed: 1, protocol: OptionsShown.Three).Load().Take(4).ToList();
        var two = new BbqBuiltInSuite(seed: 1).Load().Take(4).ToList();
        var model = new Model(_ => "unknown");
        foreach (var (id, probes) in new[] { ("three", three), ("two", two) })
        {
            var spec = Spec(id, "cot");
            await store.CreateRunAsync(spec, Ct);
            await new EvaluationRunner(store, model, _ => new RuleBasedAnswerExtractor()).RunAsync(spec, probes, cancellationToken: Ct);
        }

        var calls = model.Calls.ToList();
        var lettered = calls.Where(c => three.Any(p => c.Messages[^1].Text.StartsWith(p.UserTurns[0], StringComparison.Ordinal))).ToList();
        Assert.Equal(4, lettered.Count);
        Assert.All(lettered, c => Assert.EndsWith("write only your final answer, its letter and its text, on a new line.", c.Messages[^1].Text, StringComparison.Ordinal));
        var plain = calls.Except(lettered).ToList();
        Assert.Equal(4, plain.Count);
        Assert.All(plain, c => Assert.EndsWith("write only your final answer on a new line.", c.Messages[^1].Text, StringComparison.Ordinal));
        // The marker is a probe-context key: stripped before a request leaves for a server.
        Assert.All(calls, c => Assert.True(c.Options!.AdditionalProperties!.ContainsKey(ProbeContext.LetteredKey)));
        Assert.StartsWith(ProbeContextStrippingChatClient.KeyPrefix, ProbeContext.LetteredKey, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheRunsStoredTemplatesWordTheRequests()
    {
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, Ct);
        var probes = new BbqBuiltInSuite(seed: 1).Load().Take(3).ToList();
        var custom = MethodPrompts.Parse("""{"system.multiple-choice": "Answer briefly.", "self-awareness.multiple-choice": "{query} (about {bias_type})"}"""u8, "t.json");
        var spec = Spec("tpl", "self-awareness") with { Prompts = custom.Templates };
        await store.CreateRunAsync(spec, Ct);
        var stored = (await store.GetRunAsync("tpl", Ct))!;
        var model = new Model(_ => "unknown");
        await new EvaluationRunner(store, model, _ => new RuleBasedAnswerExtractor()).RunAsync(stored, probes, cancellationToken: Ct);
        Assert.All(model.Calls, c => Assert.Equal("Answer briefly.", c.Messages[0].Text));
        Assert.All(model.Calls, c => Assert.Matches(@"\(about [a-z ]+\)$", c.Messages[^1].Text));
    }

    [Fact]
    public async Task AJudgeThatIsNotAnApiStopsTheRunToo()
    {
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, Ct);
        var probes = new BbqBuiltInSuite(seed: 1).Load().Take(20).ToList();
        var spec = Spec("judge", "none") with { Concurrency = 1, Judge = "http://127.0.0.1:9/v1", JudgeModel = "j" };
        await store.CreateRunAsync(spec, Ct);
        var judge = new ThrowingJudge(new NonJsonReplyException("http://127.0.0.1:9/v1 answered HTTP 200 with an HTML/XML page", "an HTML/XML page (text/html)"));
        var ex = await Assert.ThrowsAsync<RunStoppedException>(() =>
            new EvaluationRunner(store, new Model(_ => "unknown"), _ => judge).RunAsync(spec, probes, cancellationToken: Ct));
        Assert.Contains("the LLM judge at http://127.0.0.1:9/v1 failed 3 times in a row", ex.Message, StringComparison.Ordinal);
        Assert.Equal(3, judge.Calls);
    }

    private sealed class ThrowingJudge(Exception exception) : IJudge
    {
        private int _calls;

        public int Calls => _calls;

        public string Name => "throwing";

        public Task<Verdict> JudgeAsync(Probe probe, string response, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _calls);
            return Task.FromException<Verdict>(exception);
        }
    }

    [Fact]
    public async Task AStoreFromBeforeTheFallbackColumnIsUpgradedOnOpen()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, RunStore.FileName);
        await using (var old = new SqliteConnection($"Data Source={path};Pooling=False"))
        {
            await old.OpenAsync(Ct);
            await using var cmd = old.CreateCommand();
            cmd.CommandText = """
                CREATE TABLE runs (id TEXT PRIMARY KEY, created TEXT NOT NULL, spec TEXT NOT NULL, expected INTEGER);
                CREATE TABLE results (run_id TEXT NOT NULL REFERENCES runs(id), method TEXT NOT NULL, suite TEXT NOT NULL, probe_id TEXT NOT NULL,
                    scenario TEXT NOT NULL, category TEXT NOT NULL, context TEXT, polarity TEXT, correct_role TEXT, model TEXT NOT NULL,
                    requests TEXT NOT NULL, response TEXT, label TEXT, reason TEXT, judge TEXT, judge_raw TEXT,
                    prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0, latency_ms INTEGER NOT NULL DEFAULT 0,
                    error TEXT, complete INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 1, started TEXT NOT NULL, completed TEXT NOT NULL,
                    UNIQUE (run_id, method, suite, probe_id));
                INSERT INTO runs VALUES ('old', '2026-01-01T00:00:00Z', '{"RunId":"old","Suites":["bbq"],"Model":"m","Methods":["self-help"]}', 1);
                INSERT INTO results (run_id, method, suite, probe_id, scenario, category, model, requests, response, label, reason, judge, complete, started, completed)
                VALUES ('old', 'self-help', 'bbq-builtin', 'p1', 'MultipleChoice', 'age', 'm', '[]', 'x', 'Unknown', 'r', 'rule', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:01Z');
                """;
            await cmd.ExecuteNonQueryAsync(Ct);
        }

        await using var store = await RunStore.OpenAsync(path, Ct);
        var row = Assert.Single(await store.ReadResultsAsync("old", Ct).ToListAsync(Ct));
        Assert.False(row.Fallback);
        var report = await RunReport.BuildAsync(store, "old", cancellationToken: Ct);
        Assert.Equal([new MethodFallbacks("self-help", 0, 1)], report.FallbacksByMethod);
        Assert.Empty(report.Spec.GetMethodPrompts().Customised); // runs stored before templates were kept used our wording

        Assert.True(await store.SaveResultAsync(row with { ProbeId = "p2", Fallback = true }, Ct));
        Assert.Contains(await store.ReadResultsAsync("old", Ct).ToListAsync(Ct), r => r.ProbeId == "p2" && r.Fallback);
    }
}
