using System.Reflection;
using BiasFree.Evaluations;
using BiasFree.Probes;
using BiasFree.Probes.Loaders;
using BiasFree.Runs;
using BiasFree.Tests.Infrastructure;

namespace BiasFree.Tests.Runs;

/// <summary>
/// A JSONL suite's validation pass is recorded in the store under the file's content and the build (<see cref="SuiteCheck"/>),
/// and a later run of the same bytes starts without it; anything else is checked as before.
/// </summary>
public class SuiteCheckTests
{
    // StreamingRunTests' probes: multiple choice, two categories, answered "Unknown" correctly.
    private static Probe MakeProbe(int i) => StreamingRunTests.MakeProbe(i);

    private static Evaluation Run(string path, string runId, ScriptedChatClient target) =>
        new([$"jsonl:{path}"], EvaluationTarget.Custom(target, "m", cacheIdentity: "t", seedPerRequest: false)) { RunId = runId };

    [Fact]
    public async Task ASecondRunOfTheSameFileStartsFromTheRecordedCheckWithTheSameProbesAndRows()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "suite.jsonl");
        ProbeJsonl.Write(path, Enumerable.Range(0, 40).Select(MakeProbe));
        await using var store = await RunStore.OpenDirectoryAsync(Path.Combine(dir.Path, "runs"), ct);
        var spec = RunStoreTests.Spec("x") with { Suites = [$"jsonl:{path}"] };

        // Nothing recorded yet: the pass runs, and the first run records what it found.
        var before = await SuiteCheck.FindAsync(spec, store, ct);
        Assert.NotNull(before);
        Assert.Null(before.Recorded);
        Assert.False(ProbeSource.Open(spec, null, before).FromRecordedCheck);
        var first = await Run(path, "first", new ScriptedChatClient((call, _) => call.User.Contains("Context 1", StringComparison.Ordinal) ? "(a) Alpha" : "(c) Unknown", "m")).RunAsync(store, cancellationToken: ct);
        Assert.True(first.IsComplete);

        var after = await SuiteCheck.FindAsync(spec, store, ct);
        Assert.Equal((40, (IReadOnlySet<Scenario>)new HashSet<Scenario> { Scenario.MultipleChoice }), (after!.Recorded!.Value.Probes, after.Recorded.Value.Scenarios), new RecordComparer());
        var source = ProbeSource.Open(spec, null, after);
        Assert.True(source.FromRecordedCheck);
        Assert.Equal(40, source.Count);
        Assert.Equal(ProbeJsonl.Load(path).Select(p => p.Id), source.Select(p => p.Id));

        // A second run in the same store (which takes that path) stores the same rows as the first.
        var second = await Run(path, "second", new ScriptedChatClient((call, _) => call.User.Contains("Context 1", StringComparison.Ordinal) ? "(a) Alpha" : "(c) Unknown", "m")).RunAsync(store, cancellationToken: ct);
        Assert.True(second.IsComplete);
        Assert.Equal(40, second.Completed);
        static async Task<List<string>> Rows(RunStore s, string run, CancellationToken ct) =>
            [.. (await s.ReadResultsAsync(run, ct).ToListAsync(ct)).Select(r => $"{r.ProbeId} {r.Verdict?.Label} {r.Response}").Order(StringComparer.Ordinal)];
        Assert.Equal(await Rows(store, "first", ct), await Rows(store, "second", ct));
    }

    [Fact]
    public async Task AnEditedFileIsCheckedAgainAndItsNewErrorStopsTheRun()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "suite.jsonl");
        ProbeJsonl.Write(path, Enumerable.Range(0, 20).Select(MakeProbe));
        await using var store = await RunStore.OpenDirectoryAsync(Path.Combine(dir.Path, "runs"), ct);
        var spec = RunStoreTests.Spec("x") with { Suites = [$"jsonl:{path}"] };
        Assert.True((await Run(path, "first", new ScriptedChatClient("(c) Unknown")).RunAsync(store, cancellationToken: ct)).IsComplete);
        Assert.NotNull((await SuiteCheck.FindAsync(spec, store, ct))!.Recorded);

        // One more probe: a new content, checked again (21 probes), and recorded for itself.
        File.AppendAllText(path, ProbeJsonl.Serialize(MakeProbe(20)) + "\n");
        var grown = await SuiteCheck.FindAsync(spec, store, ct);
        Assert.Null(grown!.Recorded);
        var source = ProbeSource.Open(spec, null, grown);
        Assert.False(source.FromRecordedCheck);
        Assert.Equal(21, source.Count);

        // A malformed line added to a file whose earlier content was recorded fails before any request, with its line,
        // and records nothing under the new content.
        File.AppendAllText(path, "{\"id\": \"late\"}\n");
        var target = new ScriptedChatClient("(c) Unknown");
        var e = await Assert.ThrowsAsync<ProbeFormatException>(() => Run(path, "bad", target).RunAsync(store, cancellationToken: ct));
        Assert.Equal((path, 22), (e.File, e.Line));
        Assert.Empty(target.Calls);
        Assert.Null((await SuiteCheck.FindAsync(spec, store, ct))!.Recorded);
    }

    [Fact]
    public async Task OnlyARunOfOneJsonlSuiteWithoutALimitUsesARecord()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "suite.jsonl");
        var other = Path.Combine(dir.Path, "other.jsonl");
        ProbeJsonl.Write(path, Enumerable.Range(0, 20).Select(MakeProbe));
        ProbeJsonl.Write(other, Enumerable.Range(100, 5).Select(MakeProbe));
        await using var store = await RunStore.OpenDirectoryAsync(Path.Combine(dir.Path, "runs"), ct);
        var spec = RunStoreTests.Spec("x") with { Suites = [$"jsonl:{path}"] };
        var check = await SuiteCheck.FindAsync(spec, store, ct);
        await store.RecordSuiteCheckAsync(check!.Key, 20, [Scenario.MultipleChoice], ct);
        Assert.NotNull((await SuiteCheck.FindAsync(spec, store, ct))!.Recorded);

        // A limit (the sample needs every probe's stratum), a second suite (the pass checks ids across suites), a
        // built-in suite (no file): no record is looked up.
        Assert.Null(await SuiteCheck.FindAsync(spec with { Limit = 5 }, store, ct));
        Assert.Null(await SuiteCheck.FindAsync(spec with { Suites = [$"jsonl:{path}", $"jsonl:{other}"] }, store, ct));
        Assert.Null(await SuiteCheck.FindAsync(spec with { Suites = ["bbq-builtin"] }, store, ct));
        // The same file with a limit is read by the pass and sampled as before.
        var limited = ProbeSource.Open(spec with { Limit = 5 }, null, check: null);
        Assert.False(limited.FromRecordedCheck);
        Assert.Equal(5, limited.Count);
    }

    [Fact]
    public void TheKeyIsTheFilesContentAndThisBuild()
    {
        using var dir = new TempDir();
        var a = Path.Combine(dir.Path, "a.jsonl");
        var b = Path.Combine(dir.Path, "b.jsonl");
        ProbeJsonl.Write(a, Enumerable.Range(0, 3).Select(MakeProbe));
        File.Copy(a, b);
        var build = typeof(SuiteCheck).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;

        Assert.Equal(SuiteCheck.KeyOf(a), SuiteCheck.KeyOf(b)); // the same bytes under another name
        Assert.Contains(build, SuiteCheck.KeyOf(a), StringComparison.Ordinal);
        File.AppendAllText(b, "\n");
        Assert.NotEqual(SuiteCheck.KeyOf(a), SuiteCheck.KeyOf(b));
    }

    private sealed class RecordComparer : IEqualityComparer<(int, IReadOnlySet<Scenario>)>
    {
        public bool Equals((int, IReadOnlySet<Scenario>) x, (int, IReadOnlySet<Scenario>) y) => x.Item1 == y.Item1 && x.Item2.SetEquals(y.Item2);

        public int GetHashCode((int, IReadOnlySet<Scenario>) obj) => obj.Item1;
    }
}
