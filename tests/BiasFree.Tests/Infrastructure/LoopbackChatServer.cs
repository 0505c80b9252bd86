using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace BiasFree.Tests.Infrastructure;

/// <summary>One chat message as the loopback server received it.</summary>
public sealed record LoopbackMessage(string Role, string Content);

/// <summary>One HTTP request as the loopback server received it (parsed fields are empty/null when absent).</summary>
public sealed record LoopbackRequest(
    string Method,
    string Path,
    string? Authorization,
    string Body,
    string Model,
    IReadOnlyList<LoopbackMessage> Messages,
    double? Temperature,
    long? Seed,
    int? MaxTokens);

/// <summary>
/// What the server answers. Status 200 gives a chat.completion with <paramref name="Content"/>; any other status
/// gives an OpenAI-style error body (Content, if set, is the error message). <paramref name="Delay"/> is waited
/// before answering (use it to provoke client timeouts). Faults: <paramref name="RawBody"/> replaces the body
/// verbatim (a malformed or truncated JSON body, an HTML page), sent with <paramref name="ContentType"/>;
/// <paramref name="StallBody"/> sends the head and half of the body, then stalls that long (a reply that starts and
/// never finishes) before closing the connection. <paramref name="Created"/> fixes the completion's <c>created</c>
/// time (Unix seconds; default: now), for tests that compare two replies sent a moment apart.
/// </summary>
public sealed record LoopbackReply(
    int Status = 200,
    string? Content = null,
    TimeSpan? Delay = null,
    IReadOnlyDictionary<string, string>? Headers = null,
    int PromptTokens = 10,
    int CompletionTokens = 5,
    string? RawBody = null,
    string ContentType = "application/json",
    TimeSpan? StallBody = null,
    long? Created = null);

/// <summary>
/// A minimal OpenAI-compatible HTTP/1.1 server on 127.0.0.1 (random free port) for tests. It serves
/// <c>POST /v1/chat/completions</c> (non-streaming), supports keep-alive and many concurrent connections,
/// and works with out-of-process clients. Every request is recorded in arrival order.
/// </summary>
public sealed class LoopbackChatServer : IAsyncDisposable
{
    private const int MaxHeaderBytes = 64 * 1024;

    private readonly TcpListener _listener;
    private readonly Func<LoopbackRequest, LoopbackReply> _responder;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<LoopbackRequest> _requests = [];
    private readonly Lock _gate = new();
    private readonly HashSet<TcpClient> _clients = [];
    private readonly List<Task> _connectionTasks = [];
    private readonly Task _acceptLoop;
    private long _completionCounter;
    private int _disposed;

    private LoopbackChatServer(Func<LoopbackRequest, LoopbackReply> responder)
    {
        _responder = responder;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start(backlog: 512);
        var port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        BaseUrl = new Uri($"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}/v1");
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>Starts a server that answers every request with <paramref name="responder"/>.</summary>
    public static LoopbackChatServer Start(Func<LoopbackRequest, LoopbackReply> responder)
    {
        ArgumentNullException.ThrowIfNull(responder);
        return new LoopbackChatServer(responder);
    }

    /// <summary>Starts a server that always answers 200 with the given content.</summary>
    public static LoopbackChatServer Start(string content) => Start(_ => new LoopbackReply(Content: content));

    /// <summary>The OpenAI base URL, <c>http://127.0.0.1:PORT/v1</c>.</summary>
    public Uri BaseUrl { get; }

    /// <summary>A snapshot of the requests received so far, in arrival order.</summary>
    public IReadOnlyList<LoopbackRequest> Requests
    {
        get
        {
            lock (_gate)
            {
                return _requests.ToArray();
            }
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            catch (ObjectDisposedException)
            {
                return;
            }

            client.NoDelay = true;
            lock (_gate)
            {
                if (_stop.IsCancellationRequested)
                {
                    client.Dispose();
                    return;
                }

                _clients.Add(client);
                _connectionTasks.RemoveAll(t => t.IsCompleted);
                _connectionTasks.Add(Task.Run(() => ServeConnectionAsync(client)));
            }
        }
    }

    private async Task ServeConnectionAsync(TcpClient client)
    {
        var ct = _stop.Token;
        try
        {
            var stream = client.GetStream();
            var reader = new BufferedReader(stream);
            while (!ct.IsCancellationRequested)
            {
                var head = await reader.ReadHeadAsync(ct).ConfigureAwait(false);
                if (head is null)
                {
                    return; // client closed the connection
                }

                var lines = head.Split("\r\n");
                var requestLine = lines[0].Split(' ');
                if (requestLine.Length < 3)
                {
                    await WriteResponseAsync(stream, 400, ErrorJson(400, "bad request line"), null, false, ct).ConfigureAwait(false);
                    return;
                }

                var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
                foreach (var line in lines.Skip(1))
                {
                    var colon = line.IndexOf(':', StringComparison.Ordinal);
                    if (colon > 0)
                    {
                        headers[line[..colon].Trim()] = line[(colon + 1)..].Trim();
                    }
                }

                byte[] body;
                if (headers.TryGetValue("Transfer-Encoding", out var te) && te.Contains("chunked", StringComparison.OrdinalIgnoreCase))
                {
                    body = await reader.ReadChunkedAsync(ct).ConfigureAwait(false);
                }
                else if (headers.TryGetValue("Content-Length", out var cl) && int.TryParse(cl, NumberStyles.None, CultureInfo.InvariantCulture, out var len))
                {
                    body = await reader.ReadExactAsync(len, ct).ConfigureAwait(false);
                }
                else
                {
                    body = [];
                }

                var keepAlive = !(headers.TryGetValue("Connection", out var conn) && conn.Equals("close", StringComparison.OrdinalIgnoreCase))
                    && requestLine[2] != "HTTP/1.0";

                var method = requestLine[0];
                var rawPath = requestLine[1];
                var path = rawPath.Split('?')[0];
                headers.TryGetValue("Authorization", out var auth);
                var bodyText = Encoding.UTF8.GetString(body);
                var request = Parse(method, path, auth, bodyText);
                lock (_gate)
                {
                    _requests.Add(request);
                }

                if (!(method == "POST" && path.TrimEnd('/').EndsWith("/v1/chat/completions", StringComparison.Ordinal)))
                {
                    await WriteResponseAsync(stream, 404, ErrorJson(404, $"no route for {method} {path}"), null, keepAlive, ct).ConfigureAwait(false);
                }
                else
                {
                    LoopbackReply reply;
                    try
                    {
                        reply = _responder(request);
                    }
                    catch (Exception ex)
                    {
                        reply = new LoopbackReply(500, "responder threw: " + ex.Message);
                    }

                    if (reply.Delay is { } delay && delay > TimeSpan.Zero)
                    {
                        await Task.Delay(delay, ct).ConfigureAwait(false);
                    }

                    var json = reply.RawBody ?? (reply.Status == 200
                        ? CompletionJson(request, reply)
                        : ErrorJson(reply.Status, reply.Content ?? $"loopback error {reply.Status}"));
                    if (reply.StallBody is { } stall)
                    {
                        // Head and half the body, then nothing: the client must give up on its own.
                        await WriteResponseAsync(stream, reply.Status, json, reply.Headers, keepAlive, ct, reply.ContentType,
                            sendBytes: Encoding.UTF8.GetByteCount(json) / 2).ConfigureAwait(false);
                        await Task.Delay(stall, ct).ConfigureAwait(false);
                        return;
                    }

                    await WriteResponseAsync(stream, reply.Status, json, reply.Headers, keepAlive, ct, reply.ContentType).ConfigureAwait(false);
                }

                if (!keepAlive)
                {
                    return;
                }
            }
        }
        catch (Exception) when (ct.IsCancellationRequested)
        {
        }
        catch (IOException)
        {
        }
        catch (SocketException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
        catch (InvalidDataException)
        {
        }
        finally
        {
            lock (_gate)
            {
                _clients.Remove(client);
            }

            client.Dispose();
        }
    }

    private static LoopbackRequest Parse(string method, string path, string? auth, string body)
    {
        string model = "";
        var messages = new List<LoopbackMessage>();
        double? temperature = null;
        long? seed = null;
        int? maxTokens = null;
        if (body.Length > 0)
        {
            try
            {
                if (JsonNode.Parse(body) is JsonObject obj)
                {
                    model = obj["model"]?.GetValue<string>() ?? "";
                    if (obj["messages"] is JsonArray arr)
                    {
                        foreach (var m in arr.OfType<JsonObject>())
                        {
                            messages.Add(new LoopbackMessage(m["role"]?.GetValue<string>() ?? "", ContentText(m["content"])));
                        }
                    }

                    temperature = obj["temperature"] is JsonValue t ? t.GetValue<double>() : null;
                    seed = obj["seed"] is JsonValue s ? s.GetValue<long>() : null;
                    maxTokens = obj["max_completion_tokens"] is JsonValue mc ? mc.GetValue<int>()
                        : obj["max_tokens"] is JsonValue mt ? mt.GetValue<int>() : null;
                }
            }
            catch (JsonException)
            {
            }
            catch (InvalidOperationException)
            {
            }
            catch (FormatException)
            {
            }
        }

        return new LoopbackRequest(method, path, auth, body, model, messages, temperature, seed, maxTokens);
    }

    private static string ContentText(JsonNode? content) => content switch
    {
        null => "",
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonArray parts => string.Concat(parts.OfType<JsonObject>()
            .Where(p => p["type"]?.GetValue<string>() == "text")
            .Select(p => p["text"]?.GetValue<string>() ?? "")),
        _ => content.ToJsonString(),
    };

    private string CompletionJson(LoopbackRequest request, LoopbackReply reply)
    {
        var n = Interlocked.Increment(ref _completionCounter);
        var obj = new JsonObject
        {
            ["id"] = "chatcmpl-loopback-" + n.ToString(CultureInfo.InvariantCulture),
            ["object"] = "chat.completion",
            ["created"] = reply.Created ?? DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["model"] = request.Model.Length > 0 ? request.Model : "loopback",
            ["choices"] = new JsonArray(new JsonObject
            {
                ["index"] = 0,
                ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = reply.Content ?? "" },
                ["logprobs"] = null,
                ["finish_reason"] = "stop",
            }),
            ["usage"] = new JsonObject
            {
                ["prompt_tokens"] = reply.PromptTokens,
                ["completion_tokens"] = reply.CompletionTokens,
                ["total_tokens"] = reply.PromptTokens + reply.CompletionTokens,
            },
        };
        return obj.ToJsonString();
    }

    private static string ErrorJson(int status, string message) => new JsonObject
    {
        ["error"] = new JsonObject
        {
            ["message"] = message,
            ["type"] = status == 429 ? "rate_limit_exceeded" : status >= 500 ? "server_error" : "invalid_request_error",
            ["param"] = null,
            ["code"] = status.ToString(CultureInfo.InvariantCulture),
        },
    }.ToJsonString();

    private static async Task WriteResponseAsync(NetworkStream stream, int status, string json,
        IReadOnlyDictionary<string, string>? extraHeaders, bool keepAlive, CancellationToken ct,
        string contentType = "application/json", int? sendBytes = null)
    {
        var body = Encoding.UTF8.GetBytes(json);
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"HTTP/1.1 {status} {Reason(status)}\r\n");
        sb.Append(CultureInfo.InvariantCulture, $"Content-Type: {contentType}\r\n");
        sb.Append(CultureInfo.InvariantCulture, $"Content-Length: {body.Length}\r\n");
        sb.Append(keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
        if (extraHeaders is not null)
        {
            foreach (var (k, v) in extraHeaders)
            {
                sb.Append(CultureInfo.InvariantCulture, $"{k}: {v}\r\n");
            }
        }

        sb.Append("\r\n");
        var head = Encoding.ASCII.GetBytes(sb.ToString());
        var sent = Math.Min(sendBytes ?? body.Length, body.Length);
        var all = new byte[head.Length + sent];
        head.CopyTo(all, 0);
        body.AsSpan(0, sent).CopyTo(all.AsSpan(head.Length));
        await stream.WriteAsync(all, ct).ConfigureAwait(false);
        await stream.FlushAsync(ct).ConfigureAwait(false);
    }

    private static string Reason(int status) => status switch
    {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    };

    /// <summary>Stops accepting, closes every open connection and waits for the handlers to finish.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        Task[] pending;
        lock (_gate)
        {
            foreach (var c in _clients)
            {
                c.Dispose();
            }

            pending = [_acceptLoop, .. _connectionTasks];
        }

        try
        {
            await Task.WhenAll(pending).WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Handlers end with socket errors when their connection is closed under them; that is expected here.
        }

        _listener.Dispose();
        _stop.Dispose();
    }

    /// <summary>A tiny buffered reader for HTTP/1.1 heads and bodies over a network stream.</summary>
    private sealed class BufferedReader(Stream stream)
    {
        private readonly byte[] _buffer = new byte[16 * 1024];
        private int _start;
        private int _end;

        private async ValueTask<bool> FillAsync(CancellationToken ct)
        {
            if (_start > 0 && _start == _end)
            {
                _start = _end = 0;
            }

            if (_end == _buffer.Length)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                _end -= _start;
                _start = 0;
            }

            var n = await stream.ReadAsync(_buffer.AsMemory(_end), ct).ConfigureAwait(false);
            _end += n;
            return n > 0;
        }

        /// <summary>Reads up to and including the blank line; null when the peer closed before sending anything.</summary>
        public async Task<string?> ReadHeadAsync(CancellationToken ct)
        {
            var head = new MemoryStream();
            while (true)
            {
                for (var i = _start; i < _end; i++)
                {
                    head.WriteByte(_buffer[i]);
                    var len = head.Length;
                    if (len >= 4)
                    {
                        var b = head.GetBuffer();
                        if (b[len - 4] == '\r' && b[len - 3] == '\n' && b[len - 2] == '\r' && b[len - 1] == '\n')
                        {
                            _start = i + 1;
                            return Encoding.ASCII.GetString(b, 0, (int)len - 4);
                        }
                    }
                }

                _start = _end;
                if (head.Length > MaxHeaderBytes)
                {
                    throw new InvalidDataException("HTTP head too large");
                }

                if (!await FillAsync(ct).ConfigureAwait(false))
                {
                    if (head.Length == 0)
                    {
                        return null;
                    }

                    throw new IOException("connection closed inside an HTTP head");
                }
            }
        }

        public async Task<byte[]> ReadExactAsync(int count, CancellationToken ct)
        {
            var result = new byte[count];
            var got = 0;
            while (got < count)
            {
                if (_start == _end && !await FillAsync(ct).ConfigureAwait(false))
                {
                    throw new IOException("connection closed inside an HTTP body");
                }

                var n = Math.Min(count - got, _end - _start);
                Buffer.BlockCopy(_buffer, _start, result, got, n);
                _start += n;
                got += n;
            }

            return result;
        }

        private async Task<string> ReadLineAsync(CancellationToken ct)
        {
            var sb = new StringBuilder();
            while (true)
            {
                if (_start == _end && !await FillAsync(ct).ConfigureAwait(false))
                {
                    throw new IOException("connection closed inside a chunked body");
                }

                var c = (char)_buffer[_start++];
                if (c == '\n')
                {
                    return sb.ToString().TrimEnd('\r');
                }

                sb.Append(c);
            }
        }

        public async Task<byte[]> ReadChunkedAsync(CancellationToken ct)
        {
            var body = new MemoryStream();
            while (true)
            {
                var sizeLine = (await ReadLineAsync(ct).ConfigureAwait(false)).Split(';')[0].Trim();
                var size = int.Parse(sizeLine, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                if (size == 0)
                {
                    // Trailers (ignored) until the empty line.
                    while ((await ReadLineAsync(ct).ConfigureAwait(false)).Length > 0)
                    {
                    }

                    return body.ToArray();
                }

                var chunk = await ReadExactAsync(size, ct).ConfigureAwait(false);
                body.Write(chunk);
                await ReadLineAsync(ct).ConfigureAwait(false);
            }
        }
    }
}
