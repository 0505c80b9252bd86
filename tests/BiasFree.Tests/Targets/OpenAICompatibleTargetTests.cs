using System.ClientModel;
using System.Diagnostics;
using BiasFree.Mitigations;
using BiasFree.Targets;
using BiasFree.Tests.Infrastructure;
using Microsoft.Extensions.AI;

namespace BiasFree.Tests.Targets;

public class OpenAICompatibleTargetTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static OpenAICompatibleTargetOptions Options(LoopbackChatServer server, string? keyVar = null, int maxRetries = 3,
        TimeSpan? timeout = null) => new()
    {
        Endpoint = server.BaseUrl,
        Model = "tiny-model",
        ApiKeyEnvironmentVariable = keyVar,
        MaxRetries = maxRetries,
        BaseDelay = TimeSpan.FromMilliseconds(5),
        MaxDelay = TimeSpan.FromMilliseconds(100),
        Timeout = timeout ?? TimeSpan.FromSeconds(10),
    };

    /// <summary>A replier that plays the given replies in order, then repeats the last one.</summary>
    private static Func<LoopbackRequest, LoopbackReply> Script(params LoopbackReply[] replies)
    {
        var n = 0;
        return _ => replies[Math.Min(Interlocked.Increment(ref n) - 1, replies.Length - 1)];
    }

    [Fact]
    public async Task SendsModelMessagesAndSamplingSettingsWithTheKeyFromTheEnvironment()
    {
        var keyVar = "BIASFREE_TEST_KEY_" + Guid.NewGuid().ToString("N");
        const string key = "sk-test-secret-4f1c9a";
        Environment.SetEnvironmentVariable(keyVar, key);
        try
        {
            await using var server = LoopbackChatServer.Start("the answer");
            var options = Options(server, keyVar);
            using var chat = OpenAICompatibleTarget.Create(options);
            var resp = await chat.GetResponseAsync(
                [new(ChatRole.System, "You are a helpful assistant."), new(ChatRole.User, "Q1"), new(ChatRole.Assistant, "A1"), new(ChatRole.User, "Q2")],
                new ChatOptions { Temperature = 0f, Seed = 42, MaxOutputTokens = 128 }, Ct);

            Assert.Equal("the answer", resp.Text);
            var req = Assert.Single(server.Requests);
            Assert.Equal("/v1/chat/completions", req.Path);
            Assert.Equal("Bearer " + key, req.Authorization);
            Assert.Equal("tiny-model", req.Model);
            Assert.Equal(["system", "user", "assistant", "user"], req.Messages.Select(m => m.Role));
            Assert.Equal(["You are a helpful assistant.", "Q1", "A1", "Q2"], req.Messages.Select(m => m.Content));
            Assert.Equal(0.0, req.Temperature);
            Assert.Equal(42L, req.Seed);
            Assert.Equal(128, req.MaxTokens);

            var descriptor = OpenAICompatibleTarget.Describe(options);
            Assert.Same(descriptor.GetType(), chat.GetService<TargetDescriptor>()!.GetType());
            Assert.Equal(descriptor, chat.GetService<TargetDescriptor>());
            Assert.DoesNotContain(key, descriptor.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain(key, descriptor.CacheKey, StringComparison.Ordinal);
            Assert.DoesNotContain(key, options.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain(key, chat.ToString() ?? "", StringComparison.Ordinal);
        }
        finally
        {
            Environment.SetEnvironmentVariable(keyVar, null);
        }
    }

    [Fact]
    public async Task UnsetKeyVariableSendsAPlaceholder()
    {
        await using var server = LoopbackChatServer.Start("ok");
        using var chat = OpenAICompatibleTarget.Create(Options(server, "BIASFREE_TEST_UNSET_" + Guid.NewGuid().ToString("N")));
        await chat.GetResponseAsync("hi", cancellationToken: Ct);
        var auth = Assert.Single(server.Requests).Authorization;
        Assert.StartsWith("Bearer ", auth, StringComparison.Ordinal);
        Assert.True(auth!.Length > "Bearer ".Length);
    }

    [Fact]
    public async Task RetriesRateLimitsThenSucceeds()
    {
        await using var server = LoopbackChatServer.Start(Script(
            new LoopbackReply(429, "rate limited"),
            new LoopbackReply(429, "rate limited", Headers: new Dictionary<string, string> { ["retry-after-ms"] = "20" }),
            new LoopbackReply(Content: "finally")));
        using var chat = OpenAICompatibleTarget.Create(Options(server));
        var resp = await chat.GetResponseAsync("hi", cancellationToken: Ct);
        Assert.Equal("finally", resp.Text);
        Assert.Equal(3, server.Requests.Count);
        Assert.All(server.Requests, r => Assert.Equal("hi", r.Messages[^1].Content)); // the body is re-sent intact
    }

    // The timeout only guards against a hang if the cap were lost (a 3600 s wait); the cap's value is checked exactly
    // by RetryAfterReadsSecondsMillisecondsAndCaps below.
    [Fact(Timeout = 120_000)]
    public async Task RetryAfterIsHonouredButCapped()
    {
        await using var server = LoopbackChatServer.Start(Script(
            new LoopbackReply(503, "busy", Headers: new Dictionary<string, string> { ["Retry-After"] = "3600" }),
            new LoopbackReply(Content: "ok")));
        using var chat = OpenAICompatibleTarget.Create(Options(server));
        Assert.Equal("ok", (await chat.GetResponseAsync("hi", cancellationToken: TestContext.Current.CancellationToken)).Text);
        Assert.Equal(2, server.Requests.Count);
    }

    [Fact]
    public void RetryAfterParsing()
    {
        var cap = TimeSpan.FromSeconds(30);
        using var seconds = new HttpResponseMessage(System.Net.HttpStatusCode.TooManyRequests);
        seconds.Headers.TryAddWithoutValidation("Retry-After", "7");
        Assert.Equal(TimeSpan.FromSeconds(7), OpenAICompatibleTarget.RetryAfter(seconds, cap));

        using var big = new HttpResponseMessage(System.Net.HttpStatusCode.TooManyRequests);
        big.Headers.TryAddWithoutValidation("Retry-After", "99999");
        Assert.Equal(cap, OpenAICompatibleTarget.RetryAfter(big, cap));

        using var ms = new HttpResponseMessage(System.Net.HttpStatusCode.TooManyRequests);
        ms.Headers.TryAddWithoutValidation("retry-after-ms", "250");
        Assert.Equal(TimeSpan.FromMilliseconds(250), OpenAICompatibleTarget.RetryAfter(ms, cap));

        using var none = new HttpResponseMessage(System.Net.HttpStatusCode.TooManyRequests);
        Assert.Null(OpenAICompatibleTarget.RetryAfter(none, cap));
    }

    [Fact]
    public async Task ServerErrorsExhaustTheRetriesAndThrowWithoutTheKey()
    {
        var keyVar = "BIASFREE_TEST_KEY_" + Guid.NewGuid().ToString("N");
        const string key = "sk-never-leak-77aa";
        Environment.SetEnvironmentVariable(keyVar, key);
        try
        {
            await using var server = LoopbackChatServer.Start(_ => new LoopbackReply(500, "boom"));
            using var chat = OpenAICompatibleTarget.Create(Options(server, keyVar, maxRetries: 2));
            var ex = await Assert.ThrowsAsync<ClientResultException>(() => chat.GetResponseAsync("hi", cancellationToken: Ct));
            Assert.Equal(500, ex.Status);
            Assert.Equal(3, server.Requests.Count);
            Assert.DoesNotContain(key, ex.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            Environment.SetEnvironmentVariable(keyVar, null);
        }
    }

    [Fact]
    public async Task BadRequestIsNotRetried()
    {
        await using var server = LoopbackChatServer.Start(_ => new LoopbackReply(400, "bad input"));
        using var chat = OpenAICompatibleTarget.Create(Options(server));
        var ex = await Assert.ThrowsAsync<ClientResultException>(() => chat.GetResponseAsync("hi", cancellationToken: Ct));
        Assert.Equal(400, ex.Status);
        Assert.Single(server.Requests);
    }

    [Fact]
    public async Task ATimedOutAttemptIsRetried()
    {
        await using var server = LoopbackChatServer.Start(Script(
            new LoopbackReply(Content: "too late", Delay: TimeSpan.FromSeconds(5)),
            new LoopbackReply(Content: "in time")));
        using var chat = OpenAICompatibleTarget.Create(Options(server, timeout: TimeSpan.FromMilliseconds(200)));
        // Only a timed-out first attempt leads to the second reply (the first would arrive, late, as "too late").
        Assert.Equal("in time", (await chat.GetResponseAsync("hi", cancellationToken: Ct)).Text);
        Assert.Equal(2, server.Requests.Count);
    }

    [Fact]
    public async Task TimeoutsExhaustedGiveATimeoutException()
    {
        // The attempt timeout leaves the loopback server ample time to record each request even on a loaded machine
        // (at 100 ms a second attempt could be cancelled before the server had read it).
        await using var server = LoopbackChatServer.Start(_ => new LoopbackReply(Content: "never", Delay: TimeSpan.FromSeconds(30)));
        using var chat = OpenAICompatibleTarget.Create(Options(server, maxRetries: 1, timeout: TimeSpan.FromSeconds(1)));
        var ex = await Assert.ThrowsAsync<TimeoutException>(() => chat.GetResponseAsync("hi", cancellationToken: Ct));
        Assert.Contains(server.BaseUrl.AbsoluteUri.TrimEnd('/'), ex.Message, StringComparison.Ordinal);
        Assert.Equal(2, server.Requests.Count);
    }

    [Fact]
    public async Task CallerCancellationIsNotRetried()
    {
        // The caller cancels once the server holds the request (a fixed delay could fire before a loaded machine had
        // even sent it, leaving nothing to count); the server records a request before it asks for the reply.
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        await using var server = LoopbackChatServer.Start(_ =>
        {
            cts.Cancel();
            return new LoopbackReply(Content: "slow", Delay: TimeSpan.FromSeconds(5));
        });
        using var chat = OpenAICompatibleTarget.Create(Options(server));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => chat.GetResponseAsync("hi", cancellationToken: cts.Token));
        Assert.Single(server.Requests);
    }

    [Fact]
    public async Task ProbeContextKeysNeverReachTheServer()
    {
        await using var server = LoopbackChatServer.Start("ok");
        using var chat = OpenAICompatibleTarget.Create(Options(server));
        var options = new ChatOptions
        {
            Temperature = 0,
            AdditionalProperties = new()
            {
                [ProbeContext.CategoryKey] = "age",
                [ProbeContext.FinalTurnKey] = true,
                [ProbeContext.ScenarioKey] = "multiple-choice",
                ["biasfree.other"] = "x",
            },
        };
        await chat.GetResponseAsync("hi", options, Ct);
        Assert.DoesNotContain("biasfree", Assert.Single(server.Requests).Body, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(4, options.AdditionalProperties.Count); // the caller's options are untouched
    }

    [Fact]
    public void StripperKeepsOtherKeysAndPassesThroughWhenNothingToStrip()
    {
        var plain = new ChatOptions { AdditionalProperties = new() { ["top_k"] = 20 } };
        Assert.Same(plain, ProbeContextStrippingChatClient.Strip(plain));
        Assert.Null(ProbeContextStrippingChatClient.Strip(null));

        var mixed = new ChatOptions { Seed = 3, AdditionalProperties = new() { ["top_k"] = 20, [ProbeContext.CategoryKey] = "age" } };
        var stripped = ProbeContextStrippingChatClient.Strip(mixed)!;
        Assert.NotSame(mixed, stripped);
        Assert.Equal(3, stripped.Seed);
        Assert.Equal(["top_k"], stripped.AdditionalProperties!.Keys);
    }

    [Fact]
    public void DescriptorDropsCredentialsQueryAndTrailingSlash()
    {
        var d = TargetDescriptor.For(new OpenAICompatibleTargetOptions
        {
            Endpoint = new Uri("https://user:pass@Example.COM:8443/v1/?api-key=secret#frag"),
            Model = "gpt-x",
        });
        Assert.Equal("https://example.com:8443/v1", d.Endpoint);
        Assert.Equal("gpt-x", d.Model);
        Assert.Equal("openai-compatible", d.Kind);
        Assert.DoesNotContain("secret", d.CacheKey, StringComparison.Ordinal);
        Assert.DoesNotContain("pass", d.ToString(), StringComparison.Ordinal);
        var o = new OpenAICompatibleTargetOptions { Endpoint = new Uri("https://user:pass@example.com/v1?api-key=secret"), Model = "gpt-x" };
        Assert.DoesNotContain("secret", o.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("pass", o.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void InvalidOptionsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => OpenAICompatibleTarget.Create(new() { Endpoint = new Uri("ftp://x/v1"), Model = "m" }));
        Assert.Throws<ArgumentException>(() => OpenAICompatibleTarget.Create(new() { Endpoint = new Uri("http://x/v1"), Model = " " }));
        Assert.Throws<ArgumentOutOfRangeException>(() => OpenAICompatibleTarget.Create(new() { Endpoint = new Uri("http://x/v1"), Model = "m", MaxRetries = -1 }));
    }
}

public class ProbeContextStrippingTests
{
    [Fact]
    public async Task TheInnerClientNeverSeesBiasFreeKeys()
    {
        var recorder = new RecordingChatClient("ok");
        using var chat = new ChatClientBuilder(recorder).UseProbeContextStripping().Build();
        var options = new ChatOptions { AdditionalProperties = new() { [ProbeContext.CategoryKey] = "age", [ProbeContext.FinalTurnKey] = false, ["x"] = 1 } };
        await chat.GetResponseAsync("hi", options, TestContext.Current.CancellationToken);
        var seen = Assert.Single(recorder.Calls).Options!;
        Assert.Equal(["x"], seen.AdditionalProperties!.Keys);
        Assert.Equal(3, options.AdditionalProperties.Count);
    }
}
