using BiasFree.Evaluations;
using BiasFree.Probes;
using BiasFree.Runs;
using BiasFree.Targets;
using BiasFree.Tests.Cli;
using BiasFree.Tests.Infrastructure;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Targets;

/// <summary>Several endpoints of one model (--target URL1 --target URL2), against loopback servers.</summary>
public class EndpointBalancingTests
{
    private static readonly IReadOnlyList<Probe> Probes = EndToEndTests.Probes(60);

    private static Evaluation Run(string runId, Uri first, IReadOnlyList<Uri> more, int concurrency = 8, int? perEndpoint = null, TimeSpan? cooldown = null) =>
        new(["bbq"], EvaluationTarget.OpenAICompatible(new OpenAICompatibleTargetOptions
        {
            Endpoint = first,
            AdditionalEndpoints = more,
            EndpointConcurrency = perEndpoint,
            EndpointCooldown = cooldown ?? TimeSpan.FromSeconds(5),
            Model = "scripted",
            ApiKeyEnvironmentVariable = null,
            MaxRetries = 4,
            BaseDelay = TimeSpan.FromMilliseconds(5),
            Timeout = TimeSpan.FromSeconds(20),
        }))
        {
            RunId = runId,
            Seed = 3,
            Limit = 60,
            Settings = new EvaluationSettings { Concurrency = concurrency, Temperature = 0 },
        };

    private static async Task<Dictionary<string, string?>> Responses(RunStore store, string runId, CancellationToken ct)
    {
        var rows = new Dictionary<string, string?>();
        await foreach (var r in store.ReadResultsAsync(runId, ct))
        {
            rows[r.ProbeId] = r.Response;
        }
        return rows;
    }

    [Fact]
    public async Task TwoEndpointsShareTheWorkAndGiveWhatOneGivesUnderTheSameCacheIdentity()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var script = new ScriptedTarget(Probes);
        // A small delay keeps requests outstanding, so balancing has something to balance.
        await using var a = LoopbackChatServer.Start(r => script.Answer(r, TimeSpan.FromMilliseconds(20)));
        await using var b = LoopbackChatServer.Start(r => script.Answer(r, TimeSpan.FromMilliseconds(20)));
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);

        var two = Run("two", a.BaseUrl, [b.BaseUrl]);
        Assert.Equal(Run("x", a.BaseUrl, []).Spec.TargetKey, two.Spec.TargetKey);
        Assert.True((await two.RunAsync(store, cancellationToken: ct)).IsComplete);
        Assert.Equal(Probes.Count, a.Requests.Count + b.Requests.Count);
        Assert.True(a.Requests.Count >= Probes.Count / 4 && b.Requests.Count >= Probes.Count / 4, $"A {a.Requests.Count}, B {b.Requests.Count}");
        Assert.Equal([b.BaseUrl.ToString()], (await store.GetRunAsync("two", ct))!.TargetReplicas);

        // A run over the first endpoint alone is answered from the same cache entries: nothing is asked, the replies agree.
        var before = a.Requests.Count;
        await Run("one", a.BaseUrl, []).RunAsync(store, cancellationToken: ct);
        Assert.Equal(before, a.Requests.Count);
        Assert.Equal(await Responses(store, "two", ct), await Responses(store, "one", ct));
    }

    [Fact]
    public async Task AFailingEndpointIsDrainedAndTriedAgainLater()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var script = new ScriptedTarget(Probes);
        var failuresLeft = 3;
        // A's latency makes the run (60 probes, 4 in flight: at least 600 ms) many times longer than B's longest cool-down
        // (10 ms doubled per failure in a row: at most 40 ms after three), so B is always back before the run ends; with
        // A as fast as B the run could finish inside the cool-down on an idle machine and B would never be retried.
        await using var a = LoopbackChatServer.Start(r => script.Answer(r, TimeSpan.FromMilliseconds(40)));
        await using var b = LoopbackChatServer.Start(r => Interlocked.Decrement(ref failuresLeft) >= 0
            ? new LoopbackReply(Status: 503, Content: "overloaded")
            : script.Answer(r, TimeSpan.FromMilliseconds(20)));
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);

        var outcome = await Run("f", a.BaseUrl, [b.BaseUrl], concurrency: 4, cooldown: TimeSpan.FromMilliseconds(10)).RunAsync(store, cancellationToken: ct);
        // Every probe completed: the requests B refused were retried, and went to A while B cooled down.
        Assert.True(outcome.IsComplete, $"{outcome}");
        Assert.Equal(0, outcome.Errors);
        // B failed three times, then was tried again and answered: it is back in the rotation.
        var bAnswered = b.Requests.Count - 3;
        Assert.True(bAnswered > 0, $"B got {b.Requests.Count} requests");
        Assert.Equal(Probes.Count + 3, a.Requests.Count + b.Requests.Count);
    }

    [Fact]
    public async Task EachEndpointHoldsAtMostItsOwnConcurrency()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var script = new ScriptedTarget(Probes);
        int inA = 0, inB = 0, maxA = 0, maxB = 0;
        LoopbackReply Counted(LoopbackRequest r, Func<int> enter, Action leave)
        {
            enter();
            try
            {
                Thread.Sleep(15); // blocking on purpose: the request stays open while it is counted
                return script.Answer(r);
            }
            finally
            {
                leave();
            }
        }
        static int Enter(ref int now, ref int max)
        {
            var n = Interlocked.Increment(ref now);
            int seen;
            while ((seen = Volatile.Read(ref max)) < n && Interlocked.CompareExchange(ref max, n, seen) != seen)
            {
            }
            return n;
        }
        await using var a = LoopbackChatServer.Start(r => Counted(r, () => Enter(ref inA, ref maxA), () => Interlocked.Decrement(ref inA)));
        await using var b = LoopbackChatServer.Start(r => Counted(r, () => Enter(ref inB, ref maxB), () => Interlocked.Decrement(ref inB)));
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);

        Assert.True((await Run("c", a.BaseUrl, [b.BaseUrl], concurrency: 8, perEndpoint: 2).RunAsync(store, cancellationToken: ct)).IsComplete);
        Assert.InRange(maxA, 1, 2);
        Assert.InRange(maxB, 1, 2);
    }

    [Fact]
    public async Task TheCliTakesTargetMoreThanOnce()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var probes = EndToEndTests.Probes(24);
        var script = new ScriptedTarget(probes);
        await using var a = LoopbackChatServer.Start(r => script.Answer(r, TimeSpan.FromMilliseconds(20)));
        await using var b = LoopbackChatServer.Start(r => script.Answer(r, TimeSpan.FromMilliseconds(20)));
        var args = EndToEndTests.RunArgs(a, dir.Path, "cli2", "none", 24);
        args.AddRange(["--target", b.BaseUrl.ToString(), "--endpoint-concurrency", "4"]);
        var result = await CliProcess.RunAsync(args, dir.Path, ct);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(probes.Count, a.Requests.Count + b.Requests.Count);
        Assert.True(a.Requests.Count > 0 && b.Requests.Count > 0, $"A {a.Requests.Count}, B {b.Requests.Count}");
        var report = await EndToEndTests.JsonReport(dir.Path, "cli2", ct);
        Assert.Equal(b.BaseUrl.ToString(), report.GetProperty("run").GetProperty("targetReplicas")[0].GetString());

        // Replicas are servers: a folder cannot be one.
        var refused = await CliProcess.RunAsync(["run", "--target", dir.Path, "--target", b.BaseUrl.ToString(), "--runs-dir", dir.Path], dir.Path, ct);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("replicas", refused.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public void ConcurrencyAbove256IsHonouredUpTo1024Connections()
    {
        static SocketsHttpHandler Sockets(OpenAICompatibleTargetOptions options)
        {
            HttpMessageHandler? h = OpenAICompatibleTarget.CreateTransport(options);
            while (h is DelegatingHandler d)
            {
                h = d.InnerHandler;
            }
            return Assert.IsType<SocketsHttpHandler>(h);
        }
        var options = new OpenAICompatibleTargetOptions { Endpoint = new Uri("http://127.0.0.1:9/v1"), Model = "m", MaxConnectionsPerServer = 512 };
        Assert.Equal(512, Sockets(options).MaxConnectionsPerServer);
        Assert.Equal(1024, Sockets(options with { MaxConnectionsPerServer = 1024, AdditionalEndpoints = [new Uri("http://127.0.0.1:10/v1")] }).MaxConnectionsPerServer);
        Assert.Throws<ArgumentOutOfRangeException>(() => (options with { MaxConnectionsPerServer = 1025 }).Validate());
    }
}
