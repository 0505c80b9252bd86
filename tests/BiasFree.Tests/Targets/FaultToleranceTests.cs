using System.ClientModel;
using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Probes.BuiltIn;
using BiasFree.Runs;
using BiasFree.Targets;
using BiasFree.Tests.Infrastructure;
using BiasFree.Tests.Runs;
using Microsoft.Extensions.AI;

namespace BiasFree.Tests.Targets;

/// <summary>
/// Faults a real server produces under load (malformed 200 bodies, replies that stall half-way, 5xx, 429) are
/// retried; failures every request would repeat (401/403, an HTML page) are not retried and stop a run.
/// </summary>
public class FaultToleranceTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static OpenAICompatibleTargetOptions Options(LoopbackChatServer server, int maxRetries = 3, TimeSpan? timeout = null) => new()
    {
        Endpoint = server.BaseUrl,
        Model = "tiny-model",
        ApiKeyEnvironmentVariable = null,
        MaxRetries = maxRetries,
        BaseDelay = TimeSpan.FromMilliseconds(5),
        MaxDelay = TimeSpan.FromMilliseconds(50),
        Timeout = timeout ?? TimeSpan.FromSeconds(10),
    };

    private static Func<LoopbackRequest, LoopbackReply> Script(params LoopbackReply[] replies)
    {
        var n = 0;
        return _ => replies[Math.Min(Interlocked.Increment(ref n) - 1, replies.Length - 1)];
    }

    private static readonly LoopbackReply Good = new(Content: "fine");

    public static TheoryData<string> MalformedBodies => new()
    {
        "{\"id\":\"x\",\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"trunc", // cut off mid-string
        "{\"id\":\"x\",\"object\":\"chat.completion\"}", // JSON, but no choices
        "", // empty body
        "null",
    };

    [Theory]
    [MemberData(nameof(MalformedBodies))]
    public async Task AMalformed200BodyIsRetried(string body)
    {
        await using var server = LoopbackChatServer.Start(Script(new LoopbackReply(RawBody: body), Good));
        using var chat = OpenAICompatibleTarget.Create(Options(server));
        Assert.Equal("fine", (await chat.GetResponseAsync("hi", cancellationToken: Ct)).Text);
        Assert.Equal(2, server.Requests.Count);
    }

    [Fact]
    public async Task MalformedBodiesExhaustTheRetriesWithAClearError()
    {
        await using var server = LoopbackChatServer.Start(_ => new LoopbackReply(RawBody: "{\"choices\": ["));
        using var chat = OpenAICompatibleTarget.Create(Options(server, maxRetries: 2));
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => chat.GetResponseAsync("hi", cancellationToken: Ct));
        Assert.Equal(3, server.Requests.Count);
        Assert.Contains("malformed JSON", Flatten(ex), StringComparison.Ordinal);
        Assert.Null(TargetFailure.Persistent(ex)); // may not repeat: recorded per probe, does not stop a run
    }

    [Fact]
    public async Task AReplyThatStallsHalfWayIsRetried()
    {
        await using var server = LoopbackChatServer.Start(Script(new LoopbackReply(Content: "never finished", StallBody: TimeSpan.FromMinutes(2)), Good));
        using var chat = OpenAICompatibleTarget.Create(Options(server, timeout: TimeSpan.FromMilliseconds(400)));
        Assert.Equal("fine", (await chat.GetResponseAsync("hi", cancellationToken: Ct)).Text);
        Assert.Equal(2, server.Requests.Count);
    }

    [Theory]
    [InlineData(401)]
    [InlineData(403)]
    public async Task ARefusedKeyIsNotRetriedAndIsPersistent(int status)
    {
        await using var server = LoopbackChatServer.Start(_ => new LoopbackReply(status, "Incorrect API key provided"));
        using var chat = OpenAICompatibleTarget.Create(Options(server));
        var ex = await Assert.ThrowsAsync<ClientResultException>(() => chat.GetResponseAsync("hi", cancellationToken: Ct));
        Assert.Equal(status, ex.Status);
        Assert.Single(server.Requests);
        Assert.Equal(TargetFailure.Kind.Refused, TargetFailure.Persistent(ex)?.Kind);
    }

    [Fact]
    public async Task AnHtmlPageIsNotRetriedAndIsPersistent()
    {
        await using var server = LoopbackChatServer.Start(_ => new LoopbackReply(RawBody: "<!DOCTYPE html><html><body>Welcome</body></html>", ContentType: "text/html"));
        using var chat = OpenAICompatibleTarget.Create(Options(server));
        var ex = await Assert.ThrowsAnyAsync<Exception>(() => chat.GetResponseAsync("hi", cancellationToken: Ct));
        Assert.Single(server.Requests);
        Assert.Equal(TargetFailure.Kind.NotAnApi, TargetFailure.Persistent(ex)?.Kind);
        Assert.Contains("HTML", Flatten(ex), StringComparison.Ordinal);
    }

    [Fact]
    public void ReplyCheckAcceptsACompletionAndNamesWhatIsWrongOtherwise()
    {
        static (bool, string)? Check(string body, string? type = "application/json") => ReplyCheckingHandler.Check(Encoding.UTF8.GetBytes(body), type);
        Assert.Null(Check("{\"choices\":[]}"));
        Assert.Null(Check("\uFEFF {\"choices\":[{\"message\":{\"content\":\"x\"}}]}", null));
        Assert.Equal(false, Check("{\"choices\":")?.Item1);
        Assert.Equal(false, Check("[1,2]")?.Item1);
        Assert.Equal(true, Check("  <html></html>", "text/html")?.Item1);
        Assert.Equal(true, Check("Service starting", "text/plain")?.Item1);
        Assert.Equal(false, Check("Service starting")?.Item1); // claims JSON: a broken JSON reply, retried
    }

    /// <summary>
    /// Deterministic 20% faults: whether attempt k of a request fails is drawn from a hash of its body and k, so
    /// the outcome does not depend on arrival order. Faults cycle through 500, 429, a malformed 200 body, a 200
    /// without choices and a reply that stalls half-way.
    /// </summary>
    private sealed class FaultyServer
    {
        private readonly ConcurrentDictionary<string, int> _attempts = new(StringComparer.Ordinal);
        private readonly ConcurrentDictionary<string, int> _faultsInARow = new(StringComparer.Ordinal);
        private int _faults;

        public int Faults => _faults;

        /// <summary>Requests whose every attempt so far faulted, with at least <paramref name="attempts"/> attempts.</summary>
        public int FaultedInARow(int attempts) => _faultsInARow.Values.Count(n => n >= attempts);

        public LoopbackReply Reply(LoopbackRequest request)
        {
            var attempt = _attempts.AddOrUpdate(request.Body, 0, (_, n) => n + 1);
            var hash = SHA256.HashData(Encoding.UTF8.GetBytes(request.Body + "#" + attempt.ToString(CultureInfo.InvariantCulture)));
            var draw = BitConverter.ToUInt32(hash, 0);
            if (draw % 5 != 0)
            {
                _faultsInARow[request.Body] = int.MinValue; // answered: no longer a run of faults
                return new LoopbackReply(Content: "unknown");
            }

            Interlocked.Increment(ref _faults);
            _faultsInARow.AddOrUpdate(request.Body, 1, (_, n) => n + 1);
            return (draw / 5 % 5) switch
            {
                0 => new LoopbackReply(500, "overloaded"),
                1 => new LoopbackReply(429, "slow down"),
                2 => new LoopbackReply(RawBody: "{\"id\":\"c\",\"choices\":[{\"message\":{\"content\":\"unkn"),
                3 => new LoopbackReply(RawBody: "{\"object\":\"chat.completion\"}"),
                _ => new LoopbackReply(Content: "unknown", StallBody: TimeSpan.FromMinutes(2)),
            };
        }
    }

    private static async Task<RunOutcome> RunWithFaultsAsync(int retries, IReadOnlyList<Probe> probes, FaultyServer faults)
    {
        await using var server = LoopbackChatServer.Start(faults.Reply);
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, Ct);
        // The attempt timeout only has to end the stalled replies; it is generous so a busy machine never trips it.
        using var target = OpenAICompatibleTarget.Create(Options(server, maxRetries: retries, timeout: TimeSpan.FromSeconds(2)));
        var spec = new RunSpec { RunId = "faults", Suites = ["bbq"], Model = "tiny-model", Methods = ["none"], Concurrency = 32, Retries = retries };
        await store.CreateRunAsync(spec, Ct);
        var runner = new EvaluationRunner(store, target, _ => new RuleBasedAnswerExtractor());
        return await runner.RunAsync(spec, probes, cancellationToken: Ct);
    }

    [Fact]
    public async Task WithTwentyPercentFaultsAndTheDefaultRetriesAtMostHalfAPercentOfProbesFail()
    {
        // 1,000 probes: a probe fails only when 4 attempts in a row fault (0.2^4 = 0.16%, about 1.6 probes expected);
        // the bound is 0.5% (5 probes).
        var probes = new BbqBuiltInSuite(seed: 3).Load().Take(1000).ToList();
        var defaultRetries = new RunSpec { RunId = "x", Suites = [], Model = "m", Methods = [] }.Retries;

        // Without retries the injected fault rate shows through, so the faults are real...
        var noRetry = new FaultyServer();
        var bare = await RunWithFaultsAsync(0, probes, noRetry);
        Assert.InRange((double)bare.Errors / probes.Count, 0.12, 0.28);

        // ...and with the default retries (3) they are absorbed: a probe fails only when 4 attempts in a row fault.
        var faults = new FaultyServer();
        var outcome = await RunWithFaultsAsync(defaultRetries, probes, faults);
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"no retries: {bare.Errors} of {probes.Count} probes failed; {defaultRetries} retries: {outcome.Errors} failed, {faults.Faults} faulted attempts");
        Assert.True(faults.Faults >= probes.Count / 10, $"only {faults.Faults} faults injected");
        Assert.True(outcome.Errors <= probes.Count * 0.005, $"{outcome.Errors} of {probes.Count} probes failed");
        // Every probe that failed had all its 4 attempts faulted: no fault of any kind went unretried.
        Assert.Equal(faults.FaultedInARow(defaultRetries + 1), outcome.Errors);
        Assert.Equal(probes.Count, outcome.Completed + outcome.Errors);
    }

    [Theory]
    [InlineData(401, "OPENAI_TEST_KEY_VAR")]
    [InlineData(403, "OPENAI_TEST_KEY_VAR")]
    public async Task ARunStopsAfterAFewIdenticalRefusalsWithOneClearMessage(int status, string keyVar)
    {
        await using var server = LoopbackChatServer.Start(_ => new LoopbackReply(status, "Incorrect API key provided"));
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, Ct);
        using var target = OpenAICompatibleTarget.Create(Options(server) with { ApiKeyEnvironmentVariable = keyVar });
        var probes = new BbqBuiltInSuite().Load().Take(200).ToList();
        var spec = new RunSpec
        {
            RunId = "refused", Suites = ["bbq"], Model = "tiny-model", Methods = ["none"], Concurrency = 1,
            TargetEndpoint = server.BaseUrl.AbsoluteUri, ApiKeyEnvironmentVariable = keyVar,
        };
        await store.CreateRunAsync(spec, Ct);
        var runner = new EvaluationRunner(store, target, _ => new RuleBasedAnswerExtractor());

        var ex = await Assert.ThrowsAsync<RunStoppedException>(() => runner.RunAsync(spec, probes, cancellationToken: Ct));
        Assert.Contains($"HTTP {status}", ex.Message, StringComparison.Ordinal);
        Assert.Contains(keyVar, ex.Message, StringComparison.Ordinal);
        Assert.Equal(EvaluationRunner.PersistentFailuresBeforeStop, server.Requests.Count);
        var rows = await store.ReadResultsAsync("refused", Ct).ToListAsync(Ct);
        Assert.Equal(EvaluationRunner.PersistentFailuresBeforeStop, rows.Count);
        Assert.All(rows, r => Assert.NotNull(r.Error));
    }

    [Fact]
    public async Task ARefusedKeyStopsARunWithManyRequestsInFlight()
    {
        await using var server = LoopbackChatServer.Start(_ => new LoopbackReply(401, "Incorrect API key provided", Delay: TimeSpan.FromMilliseconds(20)));
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, Ct);
        using var target = OpenAICompatibleTarget.Create(Options(server));
        var probes = new BbqBuiltInSuite().Load().Take(300).ToList();
        var spec = new RunSpec { RunId = "busy", Suites = ["bbq"], Model = "tiny-model", Methods = ["none"], Concurrency = 16 };
        await store.CreateRunAsync(spec, Ct);
        var runner = new EvaluationRunner(store, target, _ => new RuleBasedAnswerExtractor());
        var ex = await Assert.ThrowsAsync<RunStoppedException>(() => runner.RunAsync(spec, probes, cancellationToken: Ct));
        Assert.Contains("HTTP 401", ex.Message, StringComparison.Ordinal);
        Assert.True(server.Requests.Count < probes.Count, $"{server.Requests.Count} requests");
    }

    [Fact]
    public async Task ScatteredRefusalsBetweenSuccessesDoNotStopARun()
    {
        // Every other request is refused: never 3 in a row, so the run goes on and records them per probe.
        var n = 0;
        await using var server = LoopbackChatServer.Start(_ => Interlocked.Increment(ref n) % 2 == 0 ? new LoopbackReply(401, "no") : new LoopbackReply(Content: "unknown"));
        using var dir = new TempDir();
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, Ct);
        using var target = OpenAICompatibleTarget.Create(Options(server));
        var probes = new BbqBuiltInSuite().Load().Take(20).ToList();
        var spec = new RunSpec { RunId = "scattered", Suites = ["bbq"], Model = "tiny-model", Methods = ["none"], Concurrency = 1 };
        await store.CreateRunAsync(spec, Ct);
        var outcome = await new EvaluationRunner(store, target, _ => new RuleBasedAnswerExtractor()).RunAsync(spec, probes, cancellationToken: Ct);
        Assert.Equal(10, outcome.Errors);
        Assert.Equal(10, outcome.Completed);
    }

    private static string Flatten(Exception ex)
    {
        var sb = new StringBuilder();
        for (var e = (Exception?)ex; e is not null; e = e.InnerException)
        {
            sb.Append(e.Message).Append(" | ");
        }

        return sb.ToString();
    }
}
