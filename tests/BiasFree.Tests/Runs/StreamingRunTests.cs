using BiasFree.Evaluations;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Probes.Loaders;
using BiasFree.Runs;
using BiasFree.Tests.Infrastructure;
using Microsoft.Extensions.AI;

namespace BiasFree.Tests.Runs;

/// <summary>
/// Runs never hold the whole suite (issue #11): the runner takes probes as workers free up, JSONL suites are read one line
/// at a time, and a malformed line still stops the run before its first request, with file and line.
/// </summary>
public class StreamingRunTests
{
    internal static Probe MakeProbe(int i) => new()
    {
        Id = $"p{i:D5}",
        Suite = "lazy",
        Scenario = Scenario.MultipleChoice,
        Category = i % 2 == 0 ? "age" : "religion",
        UserTurns = [MultipleChoiceQuery.Format($"Context {i}.", "Who did it?", $"Alpha {i}", $"Beta {i}")],
        Options = [new ProbeOption($"Alpha {i}", OptionRole.Stereotyped, "a"), new ProbeOption($"Beta {i}", OptionRole.AntiStereotyped, "b"), new ProbeOption("Unknown", OptionRole.Unknown, "unknown")],
        Context = ContextCondition.Ambiguous,
        Polarity = QuestionPolarity.Negative,
        CorrectOption = 2,
    };

    /// <summary>A suite of known size whose probes are made when the enumeration reaches them, counting how many were made.</summary>
    private sealed class CountingProbes(int count) : IReadOnlyCollection<Probe>
    {
        private int _made;

        public int Made => Volatile.Read(ref _made);

        public int Count => count;

        public IEnumerator<Probe> GetEnumerator()
        {
            for (var i = 0; i < count; i++)
            {
                Interlocked.Increment(ref _made);
                yield return MakeProbe(i);
            }
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    [Fact]
    public async Task RunnerMaterialisesAtMostOneProbePerWorkerAheadOfTheTarget()
    {
        const int n = 2000, concurrency = 4;
        var ct = TestContext.Current.CancellationToken;
        var probes = new CountingProbes(n);
        var ahead = new System.Collections.Concurrent.ConcurrentBag<int>();
        var answered = 0;
        var target = new ScriptedChatClient((_, _) =>
        {
            // Probes made so far minus requests answered: probes taken by the runner and not yet answered. Read in this
            // order, a race can only make the difference smaller, never larger than the truth.
            var made = probes.Made;
            ahead.Add(made - Volatile.Read(ref answered));
            Interlocked.Increment(ref answered);
            return "Unknown";
        }, "m");
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var spec = RunStoreTests.Spec("lazy") with { Concurrency = concurrency, NoCache = true };
        await store.CreateRunAsync(spec, ct);

        var outcome = await new EvaluationRunner(store, target, _ => new RuleBasedAnswerExtractor(), (c, _) => c).RunAsync(spec, probes, null, ct);

        Assert.True(outcome.IsComplete);
        Assert.Equal(n, outcome.Completed);
        Assert.Equal(n, target.Calls.Count);
        // A runner that listed its work first would have made all 2,000 before the first request.
        Assert.InRange(ahead.Max(), 1, concurrency);
    }

    [Fact]
    public async Task ResumeCountsStoredRowsWithoutHoldingTheSuite()
    {
        const int n = 300;
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        var spec = RunStoreTests.Spec("lazy-resume") with { Concurrency = 3, Methods = ["none", "again"] };
        await store.CreateRunAsync(spec, ct);
        // The first session fails every third probe's request; the resume redoes exactly those.
        var failing = new ScriptedChatClient((call, _) => call.User.Contains("Context 1", StringComparison.Ordinal) ? throw new HttpRequestException("503") : "Unknown", "m");
        var first = await new EvaluationRunner(store, failing, _ => new RuleBasedAnswerExtractor(), (c, _) => c).RunAsync(spec, new CountingProbes(n), null, ct);
        Assert.False(first.IsComplete);

        var probes = new CountingProbes(n);
        var ok = new ScriptedChatClient((_, _) => "Unknown", "m");
        var second = await new EvaluationRunner(store, ok, _ => new RuleBasedAnswerExtractor(), (c, _) => c).RunAsync(spec, probes, null, ct);

        Assert.True(second.IsComplete);
        Assert.Equal(first.Completed, second.Skipped);
        Assert.Equal(2 * n - first.Completed, second.Completed);
        // One pass to count the stored rows, then one per method: the suite is read, not held.
        Assert.Equal(3 * n, probes.Made);
    }

    [Fact]
    public void JsonlSuiteIsReadOneLineAtATime()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "suite.jsonl");
        ProbeJsonl.Write(path, Enumerable.Range(0, 3).Select(MakeProbe));
        File.AppendAllText(path, "{ not json\n");

        // The first three probes come without the fourth line ever being parsed...
        Assert.Equal(["p00000", "p00001", "p00002"], ProbeJsonl.Read(path).Take(3).Select(p => p.Id));
        // ...and reading the whole file still names the line.
        var e = Assert.Throws<ProbeFormatException>(() => ProbeJsonl.Load(path));
        Assert.Equal(4, e.Line);
    }

    [Fact]
    public async Task MalformedLineStopsTheRunBeforeItsFirstRequest()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "suite.jsonl");
        ProbeJsonl.Write(path, Enumerable.Range(0, 50).Select(MakeProbe));
        File.AppendAllText(path, "{\"id\": \"late\"}\n");
        var target = new ScriptedChatClient("Unknown");
        await using var store = await RunStore.OpenDirectoryAsync(Path.Combine(dir.Path, "runs"), ct);
        var evaluation = new Evaluation([$"jsonl:{path}"], EvaluationTarget.Custom(target, "m", cacheIdentity: "t", seedPerRequest: false)) { RunId = "bad" };

        var e = await Assert.ThrowsAsync<ProbeFormatException>(() => evaluation.RunAsync(store, cancellationToken: ct));

        Assert.Equal((path, 51), (e.File, e.Line));
        Assert.Empty(target.Calls);
        Assert.Null(await store.GetRunAsync("bad", ct));
    }

    [Fact]
    public void StreamedSourceEqualsTheLoadedSuiteWithAndWithoutALimit()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "suite.jsonl");
        ProbeJsonl.Write(path, Enumerable.Range(0, 120).Select(MakeProbe));
        foreach (var limit in new int?[] { null, 7, 60 })
        {
            foreach (var sampling in new[] { RunSpec.StratifiedSampling, null })
            {
                var spec = RunStoreTests.Spec("s") with { Suites = [$"jsonl:{path}"], Limit = limit, Sampling = sampling, Seed = 3 };
                var loaded = ProbeJsonl.Load(path);
                var expected = limit is int n
                    ? sampling is null ? ProbeSampling.UniformLegacy(loaded, n, 3) : ProbeSampling.Stratified(loaded, n, 3)
                    : loaded;
                var source = ProbeSource.Open(spec);
                Assert.Equal(expected.Count, source.Count);
                Assert.Equal(expected.Select(p => p.Id), source.Select(p => p.Id));
                // Enumerating twice reads the file twice and gives the same probes.
                Assert.Equal(expected.Select(p => p.Id), source.Select(p => p.Id));
            }
        }
    }
}
