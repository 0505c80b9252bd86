using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text;
using BiasFree.Mitigations;
using BiasFree.Targets;
using BiasFree.Tests.Infrastructure;
using Microsoft.Extensions.AI;
using OpenAI;

namespace BiasFree.Tests.Targets;

/// <summary>
/// Our own chat-completions call (<see cref="ChatCompletionsClient"/>) against the OpenAI SDK it replaces, both talking to
/// the loopback server: the same request bytes, the same reply, the same errors; and what still goes through the SDK.
/// </summary>
public class ChatCompletionsClientTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static OpenAICompatibleTargetOptions Options(LoopbackChatServer server, MaxTokensParameter field = MaxTokensParameter.MaxCompletionTokens, int retries = 0) => new()
    {
        Endpoint = server.BaseUrl,
        Model = "tiny-model",
        ApiKeyEnvironmentVariable = null,
        MaxRetries = retries,
        BaseDelay = TimeSpan.FromMilliseconds(5),
        MaxDelay = TimeSpan.FromMilliseconds(50),
        Timeout = TimeSpan.FromSeconds(20),
        MaxTokensParameter = field,
    };

    /// <summary>The OpenAI SDK and its Microsoft.Extensions.AI adapter, as the target used them before (no retries).</summary>
    private static IChatClient Sdk(LoopbackChatServer server) =>
        new OpenAIClient(new ApiKeyCredential(OpenAICompatibleTarget.PlaceholderKey), new OpenAIClientOptions
        {
            Endpoint = server.BaseUrl,
            RetryPolicy = new ClientRetryPolicy(0),
        }).GetChatClient("tiny-model").AsIChatClient();

    public static TheoryData<string> Requests => [.. RequestCases.Keys];

    private static readonly Dictionary<string, (ChatMessage[] Messages, ChatOptions? Options)> RequestCases = new()
    {
        ["a run's multiple-choice request"] = ([new(ChatRole.System, "You are a helpful assistant."), new(ChatRole.User, "Who was late?\nA. the man\nB. the woman\nC. Unknown")],
            new ChatOptions { Temperature = 0, Seed = 42, MaxOutputTokens = 128 }),
        ["a dialogue"] = ([new(ChatRole.User, "Q1"), new(ChatRole.Assistant, "A1"), new(ChatRole.User, "Q2")], new ChatOptions { Temperature = 0.7f }),
        ["no options"] = ([new(ChatRole.User, "hi")], null),
        ["JSON mode, penalties and stop"] = ([new(ChatRole.User, "q")], new ChatOptions { ResponseFormat = ChatResponseFormat.Json, PresencePenalty = 1, StopSequences = ["x"], Seed = 2, MaxOutputTokens = 3 }),
        ["every sampling option"] = ([new(ChatRole.User, "q")], new ChatOptions
        {
            Temperature = 0.7f, TopP = 0.9f, TopK = 20, StopSequences = ["\n", "END"], FrequencyPenalty = 0.1f, PresencePenalty = -0.2f,
            ModelId = "other-model", Seed = -3, MaxOutputTokens = 5,
            AdditionalProperties = new() { ["top_k"] = 20, [ProbeContext.CategoryKey] = "age" },
        }),
        ["JSON mode and instructions"] = ([new(ChatRole.User, "judge this")], new ChatOptions { ResponseFormat = ChatResponseFormat.Json, Instructions = "Answer in JSON." }),
        ["an author name"] = ([new(ChatRole.User, "q") { AuthorName = "bob" }], null),
        ["text that needs escaping"] = ([new(ChatRole.User, "quote \" backslash \\ tab \t newline \n <script>&'é 日本 😀 \u0001 \u2028 \u007f \ud800 end")], new ChatOptions { StopSequences = ["</s>"] }),
    };

    [Theory]
    [MemberData(nameof(Requests))]
    public async Task TheRequestBodyIsTheBytesTheSdkSent(string name)
    {
        var (messages, options) = RequestCases[name];
        await using var server = LoopbackChatServer.Start("ok");
        using (var ours = OpenAICompatibleTarget.Create(Options(server)))
        {
            await ours.GetResponseAsync(messages, options, Ct);
        }
        await Sdk(server).GetResponseAsync(messages, ProbeContextStrippingChatClient.Strip(options), Ct);
        Assert.Equal(2, server.Requests.Count);
        Assert.Equal(server.Requests[1].Body, server.Requests[0].Body);
        Assert.DoesNotContain("biasfree", server.Requests[0].Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MaxTokensIsWrittenUnderTheServersFieldWithTheSameBytesOtherwise()
    {
        await using var server = LoopbackChatServer.Start("ok");
        var options = new ChatOptions { Temperature = 0, Seed = 1, MaxOutputTokens = 77 };
        using (var ours = OpenAICompatibleTarget.Create(Options(server, MaxTokensParameter.MaxTokens)))
        {
            await ours.GetResponseAsync("hi", options, Ct);
        }
        await Sdk(server).GetResponseAsync("hi", options, Ct);
        Assert.Equal(server.Requests[1].Body.Replace("\"max_completion_tokens\":", "\"max_tokens\":", StringComparison.Ordinal), server.Requests[0].Body);
        Assert.Equal(77, server.Requests[0].MaxTokens);
    }

    [Fact]
    public async Task TheReplyIsReadAsTheSdkReadsIt()
    {
        // One fixed creation time: two replies a moment apart could otherwise straddle a second (a CI flake).
        const long created = 1_764_547_200;
        await using var server = LoopbackChatServer.Start(r => new LoopbackReply(Content: "echo: " + r.Messages[^1].Content + " \"é\"", PromptTokens: 11, CompletionTokens: 4, Created: created));
        using var ours = OpenAICompatibleTarget.Create(Options(server));
        var a = await ours.GetResponseAsync("hi", new ChatOptions { MaxOutputTokens = 9 }, Ct);
        var b = await Sdk(server).GetResponseAsync("hi", new ChatOptions { MaxOutputTokens = 9 }, Ct);
        Assert.Equal("echo: hi \"é\"", a.Text);
        Assert.Equal(b.Text, a.Text);
        Assert.Equal(b.ModelId, a.ModelId);
        Assert.Equal(b.FinishReason, a.FinishReason);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(created), a.CreatedAt);
        Assert.Equal(b.CreatedAt, a.CreatedAt);
        Assert.NotNull(a.ResponseId);
        Assert.Equal(b.ResponseId!.Length, a.ResponseId!.Length);
        Assert.Equal(ChatRole.Assistant, Assert.Single(a.Messages).Role);
        Assert.Equal((11L, 4L, 15L), (a.Usage!.InputTokenCount!.Value, a.Usage.OutputTokenCount!.Value, a.Usage.TotalTokenCount!.Value));
        Assert.Equal((b.Usage!.InputTokenCount, b.Usage.OutputTokenCount, b.Usage.TotalTokenCount), (a.Usage.InputTokenCount, a.Usage.OutputTokenCount, a.Usage.TotalTokenCount));
        Assert.Equal("tiny-model", ours.GetService<ChatClientMetadata>()?.DefaultModelId);
    }

    [Fact]
    public void TheParserReadsWhatServersSendAndRejectsWhatIsNotACompletion()
    {
        static ChatResponse? Parse(string json)
        {
            string? model = null;
            return ChatCompletionsClient.TryParse(Encoding.UTF8.GetBytes(json), ref model);
        }

        var full = Parse("""
            {"id":"c1","object":"chat.completion","created":1700000000,"model":"m","system_fingerprint":null,
             "choices":[{"index":0,"message":{"role":"assistant","content":"Answer: C","reasoning_content":"thinking","tool_calls":[]},"logprobs":null,"finish_reason":"length"},
                        {"index":1,"message":{"role":"assistant","content":"second"},"finish_reason":"stop"}],
             "usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,"prompt_tokens_details":{"cached_tokens":1}}}
            """)!;
        Assert.Equal("Answer: C", full.Text);
        Assert.Equal(ChatFinishReason.Length, full.FinishReason);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000), full.CreatedAt);
        Assert.Equal(("c1", "m"), (full.ResponseId, full.ModelId));
        Assert.Equal((3L, 4L, 7L), (full.Usage!.InputTokenCount!.Value, full.Usage.OutputTokenCount!.Value, full.Usage.TotalTokenCount!.Value));
        Assert.Equal("thinking", Assert.IsType<TextReasoningContent>(full.Messages[0].Contents[0]).Text);

        // Content as parts, a refusal, an unknown finish reason, a BOM, no usage.
        Assert.Equal("ab", Parse("\uFEFF{\"choices\":[{\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}}]}")!.Text);
        var refused = Parse("{\"choices\":[{\"message\":{\"content\":null,\"refusal\":\"I can't\"},\"finish_reason\":\"stop\"}]}")!;
        Assert.Equal("", refused.Text);
        Assert.Equal("I can't", Assert.IsType<ErrorContent>(Assert.Single(refused.Messages[0].Contents)).Message);
        Assert.Null(refused.Usage);
        Assert.Equal("eos_token", Parse("{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":\"eos_token\"}]}")!.FinishReason?.Value);

        // Not a completion: no choices, empty choices, wrong types, truncated, trailing data, not an object.
        Assert.Null(Parse("{\"id\":\"x\",\"object\":\"chat.completion\"}"));
        Assert.Null(Parse("{\"choices\":[]}"));
        Assert.Null(Parse("{\"choices\":{}}"));
        Assert.Null(Parse("{\"choices\":[{\"message\":{\"content\":\"trunc"));
        Assert.Null(Parse("{\"choices\":[{\"message\":{\"content\":\"x\"}}]} {}"));
        Assert.Null(Parse("[{\"choices\":[]}]"));
        Assert.Null(Parse("null"));
        Assert.Null(Parse(""));
    }

    [Theory]
    [InlineData(400)]
    [InlineData(401)]
    [InlineData(404)]
    [InlineData(429)]
    [InlineData(500)]
    public async Task AnErrorStatusGivesTheSdksExceptionAndMessage(int status)
    {
        await using var server = LoopbackChatServer.Start(_ => new LoopbackReply(status, "Incorrect API key provided",
            Headers: new Dictionary<string, string> { ["Retry-After"] = "0" }));
        using var ours = OpenAICompatibleTarget.Create(Options(server));
        var a = await Assert.ThrowsAsync<ClientResultException>(() => ours.GetResponseAsync("hi", cancellationToken: Ct));
        var b = await Assert.ThrowsAsync<ClientResultException>(() => Sdk(server).GetResponseAsync("hi", cancellationToken: Ct));
        Assert.Equal(status, a.Status);
        Assert.Equal(b.Message, a.Message);
        Assert.Contains("Incorrect API key provided", a.Message, StringComparison.Ordinal);
        Assert.Equal("0", a.GetRawResponse()?.Headers.TryGetValue("Retry-After", out var v) == true ? v : null);
        Assert.DoesNotContain(OpenAICompatibleTarget.PlaceholderKey, a.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public Task AnErrorBodyThatRepeatsTheApiKeyHasItRedacted() =>
        // Some servers echo the credential they refused; the message and the raw response must not carry it onwards.
        AssertEchoedKeyIsRedactedAsync(streaming: false);

    [Fact]
    public Task TheSdkPathRedactsAnEchoedApiKeyToo() =>
        // Streaming goes through the OpenAI SDK, which quotes the error body in its exception message: the key must be
        // taken out of the body before the SDK reads it.
        AssertEchoedKeyIsRedactedAsync(streaming: true);

    [Fact]
    public async Task ThePlaceholderKeyIsNotRedacted()
    {
        // With no key configured the placeholder is sent; a server that echoes it gives no secret away, and a message
        // saying "[api key redacted]" would suggest that a key was sent.
        await using var server = LoopbackChatServer.Start(EchoTheKey);
        using var chat = OpenAICompatibleTarget.Create(Options(server));
        var ex = await Assert.ThrowsAsync<ClientResultException>(() => chat.GetResponseAsync("hi", cancellationToken: Ct));
        Assert.Contains("Incorrect API key provided: " + OpenAICompatibleTarget.PlaceholderKey, ex.Message, StringComparison.Ordinal);
    }

    /// <summary>A 401 whose OpenAI-style error message repeats the bearer token the request carried.</summary>
    private static LoopbackReply EchoTheKey(LoopbackRequest request) => new(401,
        RawBody: "{\"error\":{\"message\":\"Incorrect API key provided: " + request.Authorization!["Bearer ".Length..] + "\",\"type\":\"invalid_request_error\",\"code\":\"invalid_api_key\"}}");

    private static async Task AssertEchoedKeyIsRedactedAsync(bool streaming)
    {
        var variable = "BIASFREE_TEST_REDACTED_KEY_" + (streaming ? "SDK" : "OWN");
        var key = "sk-test-" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(variable, key);
        try
        {
            await using var server = LoopbackChatServer.Start(EchoTheKey);
            using var chat = OpenAICompatibleTarget.Create(Options(server) with { ApiKeyEnvironmentVariable = variable });
            var ex = await Assert.ThrowsAsync<ClientResultException>(async () =>
            {
                if (!streaming)
                {
                    await chat.GetResponseAsync("hi", cancellationToken: Ct);
                    return;
                }
                await foreach (var _ in chat.GetStreamingResponseAsync("hi", cancellationToken: Ct))
                {
                }
            });
            var request = Assert.Single(server.Requests);
            Assert.Equal("Bearer " + key, request.Authorization);
            Assert.Equal(streaming, request.Body.Contains("\"stream\":true", StringComparison.Ordinal));
            Assert.Contains("Incorrect API key provided: " + ChatCompletionsClient.RedactedKey, ex.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(key, ex.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain(key, ex.GetRawResponse()!.Content.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    [Fact]
    public void RedactionReplacesEveryOccurrenceAndLeavesOtherBodiesAsTheyAre()
    {
        static byte[] B(string s) => System.Text.Encoding.UTF8.GetBytes(s);
        var key = "secret-key-123";
        Assert.Equal(B($"a {ChatCompletionsClient.RedactedKey} b {ChatCompletionsClient.RedactedKey}"),
            ChatCompletionsClient.RedactKey(B($"a {key} b {key}"), key));
        var plain = B("nothing to hide");
        Assert.Same(plain, ChatCompletionsClient.RedactKey(plain, key));
        // The placeholder sent when no key is configured is too short to redact safely.
        Assert.Same(plain, ChatCompletionsClient.RedactKey(plain, "none"));
    }

    [Fact]
    public async Task ANetworkErrorComesOutAsTheSdkGaveIt()
    {
        // A port nothing listens on: the connection is refused.
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var endpoint = new Uri($"http://127.0.0.1:{port}/v1");
        using var ours = OpenAICompatibleTarget.Create(new OpenAICompatibleTargetOptions { Endpoint = endpoint, Model = "m", ApiKeyEnvironmentVariable = null, MaxRetries = 0 });
        var sdk = new OpenAIClient(new ApiKeyCredential("k"), new OpenAIClientOptions { Endpoint = endpoint, RetryPolicy = new ClientRetryPolicy(0) }).GetChatClient("m").AsIChatClient();
        var a = await Assert.ThrowsAsync<ClientResultException>(() => ours.GetResponseAsync("hi", cancellationToken: Ct));
        var b = await Assert.ThrowsAsync<ClientResultException>(() => sdk.GetResponseAsync("hi", cancellationToken: Ct));
        Assert.Equal((0, b.Message), (a.Status, a.Message));
        Assert.IsType<HttpRequestException>(a.InnerException);
        Assert.Null(TargetFailure.Persistent(a));
    }

    [Fact]
    public void AnErrorBodyThatIsNotOpenAIsIsQuoted()
    {
        Assert.Equal("HTTP 400 (Bad Request)\n\nmodel 'x' not loaded", ChatCompletionsClient.ErrorMessage(400, "Bad Request", "model 'x' not loaded\n"u8));
        Assert.Equal("HTTP 502 (Bad Gateway)", ChatCompletionsClient.ErrorMessage(502, "Bad Gateway", ""u8));
        Assert.Equal("HTTP 500 (server_error: )\n\nboom", ChatCompletionsClient.ErrorMessage(500, "x", "{\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"code\":500}}"u8));
    }

    [Fact]
    public void OnlyTextConversationsTakeOurPath()
    {
        ChatMessage[] text = [new(ChatRole.System, "s"), new(ChatRole.User, "u"), new(ChatRole.Assistant, "a")];
        Assert.True(ChatCompletionsClient.CanSend(text, null));
        Assert.True(ChatCompletionsClient.CanSend(text, new ChatOptions { ResponseFormat = ChatResponseFormat.Json, Temperature = 1, Instructions = "x", TopK = 3 }));
        Assert.False(ChatCompletionsClient.CanSend([new(ChatRole.User, [new TextContent("a"), new TextContent("b")])], null));
        Assert.False(ChatCompletionsClient.CanSend([new(ChatRole.User, [new DataContent(new byte[] { 1 }, "image/png")])], null));
        Assert.False(ChatCompletionsClient.CanSend([new(ChatRole.Tool, "result")], null));
        Assert.False(ChatCompletionsClient.CanSend([new(ChatRole.User, [new TextReasoningContent("r")])], null));
        Assert.False(ChatCompletionsClient.CanSend(text, new ChatOptions { Tools = [AIFunctionFactory.Create(() => 1, "one")] }));
        Assert.False(ChatCompletionsClient.CanSend(text, new ChatOptions { ResponseFormat = ChatResponseFormat.Text }));
        Assert.False(ChatCompletionsClient.CanSend(text, new ChatOptions { ResponseFormat = ChatResponseFormat.ForJsonSchema(System.Text.Json.JsonDocument.Parse("{\"type\":\"object\"}").RootElement) }));
        Assert.False(ChatCompletionsClient.CanSend(text, new ChatOptions { RawRepresentationFactory = _ => null }));
    }

    [Fact]
    public async Task WhatOurPathDoesNotWriteStillGoesThroughTheSdkWithTheSameRulesAndConnections()
    {
        // Two text parts: the SDK's content-part array. The SDK path keeps its max_tokens rename and drops probe context.
        await using var server = LoopbackChatServer.Start(r => new LoopbackReply(Content: "got " + r.Messages[0].Content));
        using var chat = OpenAICompatibleTarget.Create(Options(server, MaxTokensParameter.MaxTokens));
        var reply = await chat.GetResponseAsync([new(ChatRole.User, [new TextContent("a"), new TextContent("b")])],
            new ChatOptions { MaxOutputTokens = 12, AdditionalProperties = new() { [ProbeContext.CategoryKey] = "age" } }, Ct);
        Assert.Equal("got ab", reply.Text);
        var request = Assert.Single(server.Requests);
        Assert.Contains("\"content\":[", request.Body, StringComparison.Ordinal);
        Assert.Contains("\"max_tokens\":12", request.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("max_completion_tokens", request.Body, StringComparison.Ordinal);
        Assert.DoesNotContain("biasfree", request.Body, StringComparison.Ordinal);
        // The SDK's own types stay reachable; types of other targets are not made up.
        Assert.NotNull(chat.GetService<OpenAI.Chat.ChatClient>());
        Assert.Null(chat.GetService<LoopbackChatServer>());
    }
}
