using System.ClientModel;
using System.ClientModel.Primitives;
using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.AI;
using OpenAI;

namespace BiasFree.Tests.Infrastructure;

public class LoopbackChatServerTests
{
    private static IChatClient Client(LoopbackChatServer server, string model = "tiny-model") =>
        new OpenAIClient(new ApiKeyCredential("sk-loopback-test"), new OpenAIClientOptions
        {
            Endpoint = server.BaseUrl,
            RetryPolicy = new ClientRetryPolicy(0),
        }).GetChatClient(model).AsIChatClient();

    [Fact]
    public async Task ServesChatCompletionsToTheRealOpenAIClient()
    {
        await using var server = LoopbackChatServer.Start(r => new LoopbackReply(Content: "echo:" + r.Messages[^1].Content, PromptTokens: 7, CompletionTokens: 3));
        Assert.StartsWith("http://127.0.0.1:", server.BaseUrl.ToString(), StringComparison.Ordinal);
        Assert.EndsWith("/v1", server.BaseUrl.AbsoluteUri.TrimEnd('/'), StringComparison.Ordinal);

        var chat = Client(server);
        var resp = await chat.GetResponseAsync(
            [new(ChatRole.System, "Be terse."), new(ChatRole.User, "Hello?")],
            new ChatOptions { Temperature = 0.25f, Seed = 7, MaxOutputTokens = 16 },
            TestContext.Current.CancellationToken);

        Assert.Equal("echo:Hello?", resp.Text);
        Assert.Equal(ChatFinishReason.Stop, resp.FinishReason);
        Assert.Equal(7, resp.Usage?.InputTokenCount);
        Assert.Equal(3, resp.Usage?.OutputTokenCount);
        Assert.Equal(10, resp.Usage?.TotalTokenCount);
        Assert.Equal("tiny-model", resp.ModelId);

        var req = Assert.Single(server.Requests);
        Assert.Equal("POST", req.Method);
        Assert.Equal("/v1/chat/completions", req.Path);
        Assert.Equal("Bearer sk-loopback-test", req.Authorization);
        Assert.Equal("tiny-model", req.Model);
        Assert.Equal([new LoopbackMessage("system", "Be terse."), new LoopbackMessage("user", "Hello?")], req.Messages);
        Assert.Equal(0.25, req.Temperature!.Value, 3);
        Assert.Equal(7L, req.Seed);
        Assert.Equal(16, req.MaxTokens);
    }

    [Fact]
    public async Task ErrorStatusGivesAnErrorBodyAndHeaders()
    {
        await using var server = LoopbackChatServer.Start(_ => new LoopbackReply(429, "slow down",
            Headers: new Dictionary<string, string> { ["Retry-After"] = "1" }));
        var ex = await Assert.ThrowsAsync<ClientResultException>(() =>
            Client(server).GetResponseAsync("hi", cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(429, ex.Status);
        Assert.Contains("slow down", ex.Message, StringComparison.Ordinal);
        Assert.Equal("1", ex.GetRawResponse()?.Headers.TryGetValue("Retry-After", out var v) == true ? v : null);
        Assert.Single(server.Requests);
    }

    [Fact]
    public async Task HandlesManyConcurrentRequestsAndKeepsThemInOrderOfArrival()
    {
        await using var server = LoopbackChatServer.Start(r => new LoopbackReply(Content: r.Messages[0].Content.ToUpperInvariant(), Delay: TimeSpan.FromMilliseconds(20)));
        var chat = Client(server);
        var tasks = Enumerable.Range(0, 40).Select(i => chat.GetResponseAsync($"m{i}", cancellationToken: TestContext.Current.CancellationToken)).ToArray();
        var results = await Task.WhenAll(tasks);
        for (var i = 0; i < results.Length; i++)
        {
            Assert.Equal($"M{i}", results[i].Text);
        }

        Assert.Equal(40, server.Requests.Count);
        Assert.Equal(40, server.Requests.Select(r => r.Messages[0].Content).Distinct().Count());
        // Sequential calls afterwards reuse pooled keep-alive connections.
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal("X", (await chat.GetResponseAsync("x", cancellationToken: TestContext.Current.CancellationToken)).Text);
        }
    }

    [Fact]
    public async Task KeepAliveServesSeveralRequestsOnOneRawConnection()
    {
        await using var server = LoopbackChatServer.Start(_ => new LoopbackReply(Content: "ok"));
        using var tcp = new TcpClient();
        await tcp.ConnectAsync("127.0.0.1", server.BaseUrl.Port, TestContext.Current.CancellationToken);
        var stream = tcp.GetStream();
        var body = """{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}""";
        for (var i = 0; i < 3; i++)
        {
            var req = $"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n{body}";
            await stream.WriteAsync(Encoding.UTF8.GetBytes(req), TestContext.Current.CancellationToken);
            var text = await ReadOneResponseAsync(stream);
            Assert.StartsWith("HTTP/1.1 200 OK", text, StringComparison.Ordinal);
            Assert.Contains("\"chat.completion\"", text, StringComparison.Ordinal);
        }

        Assert.Equal(3, server.Requests.Count);
        Assert.Equal("ab", server.Requests[0].Messages[0].Content);
    }

    [Fact]
    public async Task UnknownRouteIs404()
    {
        await using var server = LoopbackChatServer.Start(_ => new LoopbackReply(Content: "ok"));
        using var http = new HttpClient();
        var resp = await http.GetAsync(new Uri(server.BaseUrl + "/models"), TestContext.Current.CancellationToken);
        Assert.Equal(404, (int)resp.StatusCode);
    }

    [Fact]
    public async Task WorksWithAClientInAnotherProcess()
    {
        if (!File.Exists("/usr/bin/curl"))
        {
            Assert.Skip("curl not installed");
        }

        await using var server = LoopbackChatServer.Start(_ => new LoopbackReply(Content: "from-loopback"));
        var psi = new ProcessStartInfo("/usr/bin/curl")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in new[] { "-s", "-H", "Content-Type: application/json", "-H", "Authorization: Bearer k",
                     "-d", """{"model":"m","messages":[{"role":"user","content":"hi"}]}""", server.BaseUrl + "/chat/completions" })
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var stdout = await p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        await p.WaitForExitAsync(TestContext.Current.CancellationToken);
        Assert.Equal(0, p.ExitCode);
        Assert.Contains("from-loopback", stdout, StringComparison.Ordinal);
        Assert.Equal("Bearer k", Assert.Single(server.Requests).Authorization);
    }

    [Fact(Timeout = 20_000)]
    public async Task DisposeStopsCleanlyWhileARequestIsPending()
    {
        var server = LoopbackChatServer.Start(_ => new LoopbackReply(Content: "late", Delay: TimeSpan.FromSeconds(30)));
        using var http = new HttpClient();
        var pending = http.PostAsync(new Uri(server.BaseUrl + "/chat/completions"),
            new StringContent("""{"model":"m","messages":[]}""", Encoding.UTF8, "application/json"), TestContext.Current.CancellationToken);
        while (server.Requests.Count == 0)
        {
            await Task.Delay(5, TestContext.Current.CancellationToken);
        }

        // Disposing must not wait for the 30 s reply: the test's timeout guards against that hang.
        await server.DisposeAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => pending);
    }

    private static async Task<string> ReadOneResponseAsync(NetworkStream stream)
    {
        var buf = new byte[8192];
        var sb = new StringBuilder();
        while (true)
        {
            var n = await stream.ReadAsync(buf, TestContext.Current.CancellationToken);
            Assert.True(n > 0, "connection closed");
            sb.Append(Encoding.UTF8.GetString(buf, 0, n));
            var s = sb.ToString();
            var headEnd = s.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (headEnd < 0)
            {
                continue;
            }

            var lenLine = s[..headEnd].Split("\r\n").First(l => l.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase));
            var len = int.Parse(lenLine["Content-Length:".Length..].Trim(), System.Globalization.CultureInfo.InvariantCulture);
            if (Encoding.UTF8.GetByteCount(s[(headEnd + 4)..]) >= len)
            {
                return s;
            }
        }
    }
}
