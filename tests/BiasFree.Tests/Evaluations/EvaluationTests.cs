using System.Collections.Concurrent;
using BiasFree.Engine.Evaluations;
using BiasFree.Evaluations;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Reports;
using BiasFree.Runs;
using BiasFree.Tests.Cli;
using BiasFree.Tests.Infrastructure;
using BiasFree.Tests.Runs;
using Microsoft.Extensions.AI;

namespace BiasFree.Tests.Evaluations;

/// <summary>The library's composition API: cache identity, per-request seeds, a spec derived from what runs, resume.</summary>
public class EvaluationTests
{
    /// <summary>A client that answers with a fixed text and records the seed of every request, keyed by its last user message.</summary>
    private sealed class FixedReplyClient(string reply) : IChatClient
    {
        public ConcurrentBag<(string User, long? Seed)> Requests { get; } = [];

        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            Requests.Add((messages.Last(m => m.Role == ChatRole.User).Text, options?.Seed));
            return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, reply)));
        }

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }

    private static async Task<List<ResultRecord>> Rows(RunStore store, string runId, CancellationToken ct)
    {
        var rows = new List<ResultRecord>();
        await foreach (var r in store.ReadResultsAsync(runId, ct))
        {
            rows.Add(r);
        }
        return rows;
    }

    [Fact]
    public async Task TwoClientsUnderOneModelNameNeverShareCacheEntries()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var first = new FixedReplyClient("The answer is (a).");
        var second = new FixedReplyClient("The answer is (b).");

        // Without identities: nothing is cached, each run hears its own client, and the evaluation says why.
        var a = new Evaluation(["bbq"], EvaluationTarget.Custom(first, "same-name")) { RunId = "a", Limit = 6 };
        var b = new Evaluation(["bbq"], EvaluationTarget.Custom(second, "same-name")) { RunId = "b", Limit = 6 };
        Assert.Contains(a.Warnings, w => w.Contains("not cached", StringComparison.Ordinal));
        Assert.True(a.Spec.CacheDisabled);
        Assert.True((await a.RunAsync(store, cancellationToken: ct)).IsComplete);
        Assert.True((await b.RunAsync(store, cancellationToken: ct)).IsComplete);
        Assert.All(await Rows(store, "a", ct), r => Assert.Equal("The answer is (a).", r.Response));
        Assert.All(await Rows(store, "b", ct), r => Assert.Equal("The answer is (b).", r.Response));
        Assert.Equal(6, second.Requests.Count);

        // With different identities: cached, still apart. With the same identity the cache answers (so it is on).
        var c = new Evaluation(["bbq"], EvaluationTarget.Custom(first, "same-name", cacheIdentity: "first-v1")) { RunId = "c", Limit = 6 };
        var d = new Evaluation(["bbq"], EvaluationTarget.Custom(second, "same-name", cacheIdentity: "second-v1")) { RunId = "d", Limit = 6 };
        var e = new Evaluation(["bbq"], EvaluationTarget.Custom(second, "same-name", cacheIdentity: "first-v1")) { RunId = "e", Limit = 6 };
        Assert.Empty(c.Warnings);
        await c.RunAsync(store, cancellationToken: ct);
        await d.RunAsync(store, cancellationToken: ct);
        Assert.All(await Rows(store, "d", ct), r => Assert.Equal("The answer is (b).", r.Response));
        var before = second.Requests.Count;
        await e.RunAsync(store, cancellationToken: ct);
        Assert.Equal(before, second.Requests.Count);
        Assert.All(await Rows(store, "e", ct), r => Assert.Equal("The answer is (a).", r.Response));
    }

    [Fact]
    public async Task ARunnerGivenASpecWithoutAnyTargetIdentityDoesNotCache()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var probes = Evaluation.LoadProbes(new RunSpec { RunId = "x", Suites = ["bbq"], Limit = 4, Sampling = RunSpec.StratifiedSampling, Model = "m", Methods = ["none"] });
        foreach (var (id, reply) in new[] { ("one", "(a)"), ("two", "(b)") })
        {
            var spec = new RunSpec { RunId = id, Suites = ["bbq"], Model = "same-name", Methods = ["none"] }; // no TargetKey, no endpoint
            await store.CreateRunAsync(spec, ct);
            await new EvaluationRunner(store, new FixedReplyClient(reply), _ => new RuleBasedAnswerExtractor()).RunAsync(spec, probes, cancellationToken: ct);
            Assert.All(await Rows(store, id, ct), r => Assert.Equal(reply, r.Response));
        }
    }

    [Fact]
    public void LocalModelsAreIdentifiedByContentAndLoadSettingsNotByNameOrPath()
    {
        using var dir = new TempDir();
        var one = TinyModelFolder.Create(Path.Combine(dir.Path, "one"));
        var copy = Path.Combine(dir.Path, "copy");
        Directory.CreateDirectory(copy);
        foreach (var f in Directory.GetFiles(one))
        {
            File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
        }
        var idOne = LocalTargets.ModelFolder(one, "tiny").CacheIdentity;
        Assert.Equal(idOne, LocalTargets.ModelFolder(copy, "tiny").CacheIdentity); // moved copy keeps its cache
        Assert.NotEqual(idOne, LocalTargets.ModelFolder(one, "tiny", new LocalTargetSettings(DType: "bfloat16")).CacheIdentity);

        // Same folder name and model name, other weights: another identity.
        var weights = Path.Combine(copy, "model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        bytes[^1] ^= 0x01;
        File.WriteAllBytes(weights, bytes);
        Assert.NotEqual(idOne, LocalTargets.ModelFolder(copy, "tiny").CacheIdentity);
    }

    [Theory]
    [InlineData("chat_template.jinja", "{{ messages[0]['content'] }}")]
    [InlineData("chat_template.json", "{\"chat_template\": \"{{ messages[0]['content'] }}\"}")]
    [InlineData("special_tokens_map.json", "{\"eos_token\": \"</s>\"}")]
    public void AChatTemplateOrSpecialTokensFileChangesTheCacheIdentity(string file, string content)
    {
        // The engine reads these files (a separate chat template overrides tokenizer_config.json's), so replies cached
        // without them, or with other contents, were produced from other prompts.
        using var dir = new TempDir();
        var folder = TinyModelFolder.Create(Path.Combine(dir.Path, "m"));
        File.Delete(Path.Combine(folder, file));
        var before = LocalTargets.ContentHash(folder);
        File.WriteAllText(Path.Combine(folder, file), content);
        var with = LocalTargets.ContentHash(folder);
        Assert.NotEqual(before, with);
        File.WriteAllText(Path.Combine(folder, file), content + " ");
        Assert.NotEqual(with, LocalTargets.ContentHash(folder));
    }

    [Fact]
    public async Task ASeededSampledRunGivesEachRequestItsOwnSeedAndIsReproducible()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);

        async Task<Dictionary<string, long?>> RunOnce(string runId, int seed)
        {
            var client = new FixedReplyClient("(a)");
            var evaluation = new Evaluation(["bbq"], EvaluationTarget.Custom(client, "sampler"))
            {
                RunId = runId, Seed = seed, Limit = 20, Settings = new EvaluationSettings { Temperature = 1f },
            };
            await evaluation.RunAsync(store, cancellationToken: ct);
            return client.Requests.ToDictionary(r => r.User, r => r.Seed);
        }

        var first = await RunOnce("s1", seed: 4);
        var again = await RunOnce("s2", seed: 4);
        var other = await RunOnce("s3", seed: 5);
        Assert.Equal(20, first.Count);
        Assert.Equal(20, first.Values.Distinct().Count()); // no two requests share a seed
        Assert.All(first.Values, s => Assert.NotEqual(4, s));
        Assert.Equal(first, again);                        // the same run seed: the same seed per request
        Assert.NotEqual(first.Values.Order(), other.Values.Order());

        // Opting out sends the run's seed as it is.
        var plain = new FixedReplyClient("(a)");
        await new Evaluation(["bbq"], EvaluationTarget.Custom(plain, "sampler", seedPerRequest: false))
        {
            RunId = "s4", Seed = 4, Limit = 5, Settings = new EvaluationSettings { Temperature = 1f },
        }.RunAsync(store, cancellationToken: ct);
        Assert.All(plain.Requests, r => Assert.Equal(4, r.Seed));
    }

    [Fact]
    public async Task TheReportedSpecIsWhatRan()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var target = new FixedReplyClient("Sure, let's keep talking.");
        using var judgeModel = new ScriptedChatClient((call, _) =>
            call.Prompt.Contains("Options", StringComparison.OrdinalIgnoreCase) ? "C" : "{\"label\": \"unbiased\", \"reason\": \"fine\"}");
        using var judges = EvaluationJudges.Llm(judgeModel, "my-judge", "judge-model-1", votes: 1);
        var evaluation = new Evaluation(["bbq", "fairmt"], EvaluationTarget.Custom(target, "my-model", cacheIdentity: "my-model-v1"))
        {
            RunId = "spec", Seed = 2, Limit = 7, Methods = ["none", "self-awareness", "none"], Judges = judges,
        };
        var outcome = await evaluation.RunAsync(store, cancellationToken: ct);

        var rows = await Rows(store, "spec", ct);
        var report = await RunReport.BuildAsync(store, "spec", cancellationToken: ct);
        var s = report.Spec;
        Assert.Equal(["bbq", "fairmt"], s.Suites);
        Assert.Equal(7, s.Limit);
        Assert.Equal(RunSpec.StratifiedSampling, s.Sampling);
        Assert.Equal(["none", "self-awareness"], s.Methods);
        Assert.Equal("my-judge", s.Judge);
        Assert.Equal("judge-model-1", s.JudgeModel);
        Assert.Equal(1, s.JudgeVotes);
        Assert.Equal("my-model", s.Model);
        Assert.Equal(EvaluationTarget.CustomKind, s.TargetKind);
        Assert.Equal("custom|my-model-v1", s.TargetKey);

        // What ran: 7 probes per suite, each under both methods, judged by the given judges.
        Assert.Equal(2 * 2 * 7, rows.Count);
        Assert.Equal(outcome.Total, rows.Count);
        Assert.Equal(7, rows.Count(r => r.Method == "none" && r.Scenario == Scenario.MultiTurn));
        Assert.All(rows, r => Assert.Equal("my-model", r.Model));
        Assert.All(rows, r => Assert.StartsWith(r.Scenario == Scenario.MultiTurn ? "llm-dialogue" : "llm-mc", r.Verdict!.Judge, StringComparison.Ordinal));
        Assert.True(judgeModel.Calls.Count >= rows.Count); // every reply went to the given judge model

        var markdown = ReportWriter.Render(report, ReportFormat.Markdown);
        Assert.Contains("| Target | custom client (custom|my-model-v1) |", markdown.Replace("\\|", "|", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.Contains("| Limit | 7 |", markdown, StringComparison.Ordinal);
        Assert.Contains("| Judge | my-judge (judge-model-1) |", markdown, StringComparison.Ordinal);
        Assert.DoesNotContain("embedded", markdown, StringComparison.Ordinal);

        // The per-row log is a report format too.
        Assert.True(ReportWriter.TryParseFormat("jsonl", out var jsonl));
        using var lines = new StringWriter();
        await ReportWriter.WriteAsync(store, "spec", jsonl, lines, cancellationToken: ct);
        Assert.Equal(rows.Count, lines.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public async Task StartRunsTheProbesOpenProbesValidatedInsteadOfReadingTheSuitesAgain()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var checkedFirst = new Evaluation(["bbq"], EvaluationTarget.Custom(new FixedReplyClient("The answer is (a)."), "m")) { RunId = "checked", Limit = 6 };
        var probes = checkedFirst.OpenProbes();
        using (var session = await checkedFirst.StartAsync(store, ct))
        {
            Assert.Same(probes, session.Probes);
        }

        // Without a check first, the session opens (and validates) the suites itself: the same probes.
        var fresh = new Evaluation(["bbq"], EvaluationTarget.Custom(new FixedReplyClient("The answer is (a)."), "m")) { RunId = "unchecked", Limit = 6 };
        using var own = await fresh.StartAsync(store, ct);
        Assert.NotSame(probes, own.Probes);
        Assert.Equal(probes.Select(p => p.Id), own.Probes.Select(p => p.Id));
    }

    [Fact]
    public async Task FromSpecRebuildsTheSameEvaluationAndAMismatchedRunIsRefused()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var folder = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny"));
        var evaluation = new Evaluation(["bbq"], LocalTargets.ModelFolder(folder, settings: new LocalTargetSettings(ChatTemplate: "llama3")))
        {
            RunId = "r", Seed = 3, Limit = 4, Methods = ["none", "cot+self-awareness"],
            Settings = new EvaluationSettings { MaxTokens = 3, Concurrency = 2 },
        };
        var spec = evaluation.Spec;
        Assert.Equal(spec.ToJson(), Evaluation.FromSpec(RunSpec.FromJson(spec.ToJson()), LocalTargets.FromSpec).Spec.ToJson());
        Assert.Equal(0f, spec.Generation.Temperature); // a model folder decodes greedily by default
        Assert.Equal(["none", "cot+self-awareness"], spec.Methods);

        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        Assert.True((await evaluation.RunAsync(store, cancellationToken: ct)).IsComplete);
        var resumed = await Evaluation.FromSpec((await store.GetRunAsync("r", ct))!, LocalTargets.FromSpec).RunAsync(store, cancellationToken: ct);
        Assert.Equal(8, resumed.Skipped);

        var other = new Evaluation(["bbq"], LocalTargets.ModelFolder(folder, settings: new LocalTargetSettings(ChatTemplate: "llama3")))
        {
            RunId = "r", Seed = 4, Limit = 4,
        };
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => other.RunAsync(store, cancellationToken: ct));
        Assert.Contains("seed: stored 3, now 4", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ACustomTargetOrJudgeCannotBeRebuiltFromASpec()
    {
        var spec = new Evaluation(["bbq"], EvaluationTarget.Custom(new FixedReplyClient("x"), "m")).Spec;
        Assert.Contains("pass the same client", Assert.Throws<ArgumentException>(() => Evaluation.FromSpec(spec)).Message, StringComparison.Ordinal);
        var judged = spec with { TargetKind = null, TargetEndpoint = "http://127.0.0.1:9/v1", Judge = "mine" };
        Assert.Contains("pass them again", Assert.Throws<ArgumentException>(() => Evaluation.FromSpec(judged)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MultiTurnProbesWithOnlyTheRuleJudgeAreRefusedBeforeAnythingRuns()
    {
        var evaluation = new Evaluation(["fairmt"], EvaluationTarget.Custom(new FixedReplyClient("x"), "m")) { Limit = 2 };
        var ex = Assert.Throws<ArgumentException>(() => evaluation.Judges.EnsureCovers(evaluation.LoadProbes()));
        Assert.Contains("multi-turn probes need an LLM judge", ex.Message, StringComparison.Ordinal);
    }
}
