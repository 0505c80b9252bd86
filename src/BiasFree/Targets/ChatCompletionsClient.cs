using System.Buffers;
using System.ClientModel;
using System.Globalization;
using System.Runtime.ExceptionServices;
using System.Text.Json;
using Microsoft.Extensions.AI;

namespace BiasFree.Targets;

/// <summary>
/// The OpenAI chat-completions call of <see cref="OpenAICompatibleTarget"/>, written directly over
/// <see cref="HttpMessageInvoker"/>: the request body is written once with a <see cref="Utf8JsonWriter"/>, with the
/// token limit under the field the server reads; the reply is read within the attempt and parsed with a
/// <see cref="Utf8JsonReader"/>; retries, per-attempt timeouts and Retry-After are handled in one loop here.
/// </summary>
/// <remarks>
/// <para>Why: in the harness profile (docs/runs-and-reports.md, "Harness performance") the OpenAI SDK's pipeline, the
/// <c>Microsoft.Extensions.AI</c> adapter, Polly and the handlers that rewrote the request body and re-read the reply
/// were about half of a first run's HTTP samples. This path does the same work once.</para>
/// <para>Which path a request takes (<see cref="CanSend"/>): this one for text conversations (system, user and assistant
/// turns, text only) with the options a run sends (temperature, top-p, seed, token limit, stop sequences, penalties,
/// model, JSON mode, instructions). Streaming, tool calls, images and other content, JSON-schema response formats and
/// <see cref="ChatOptions.RawRepresentationFactory"/> go through the OpenAI SDK as before (the constructor's <c>sdk</c>,
/// created on first use over the same connections). Both paths send the same JSON for what they share; like the SDK,
/// this one sends no <see cref="ChatOptions.TopK"/> and no <see cref="ChatOptions.AdditionalProperties"/> (so the
/// run's <c>biasfree.*</c> probe context never reaches the server).</para>
/// <para>Failures are those the SDK path gives: an error status is a <see cref="ClientResultException"/> with the
/// server's status and its error message; a 2xx body that is not a chat completion is a
/// <see cref="MalformedReplyException"/> (retried) or <see cref="NonJsonReplyException"/> (not retried); a network error
/// or malformed reply that outlasts the retries comes out inside a <see cref="ClientResultException"/> with status 0, as
/// the SDK's transport wrapped it; every attempt timing out is a <see cref="TimeoutException"/> naming the endpoint. The API key is only ever written into the
/// Authorization header of a request.</para>
/// </remarks>
internal sealed class ChatCompletionsClient : IChatClient
{
    private readonly HttpMessageInvoker _http;
    private readonly Uri _url;
    private readonly string _authorization;
    private readonly string _model;
    private readonly byte[] _maxTokensField;
    private readonly OpenAICompatibleTargetOptions _options;
    private readonly TargetDescriptor _descriptor;
    private readonly Lazy<IChatClient> _sdk;
    private readonly ChatClientMetadata _metadata;
    private string? _lastModelSeen;

    /// <param name="http">The transport (sockets, or the endpoint balancer over them); not disposed here.</param>
    /// <param name="options">The target's options.</param>
    /// <param name="descriptor">The target's descriptor (for messages).</param>
    /// <param name="apiKey">Sent as <c>Authorization: Bearer</c>; kept in this one string only.</param>
    /// <param name="sdk">The OpenAI SDK client for requests this path does not write.</param>
    public ChatCompletionsClient(HttpMessageInvoker http, OpenAICompatibleTargetOptions options, TargetDescriptor descriptor, string apiKey, Lazy<IChatClient> sdk)
    {
        _http = http;
        _options = options;
        _descriptor = descriptor;
        _url = new Uri(options.Endpoint.AbsoluteUri.TrimEnd('/') + "/chat/completions");
        _authorization = "Bearer " + apiKey;
        _model = options.Model;
        _maxTokensField = System.Text.Encoding.UTF8.GetBytes(options.MaxTokensField);
        _sdk = sdk;
        _metadata = new ChatClientMetadata("openai", options.Endpoint, options.Model);
    }

    /// <summary>Whether this path writes the request (otherwise the SDK does): text turns in the roles the API names, known options.</summary>
    internal static bool CanSend(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        if (options is not null)
        {
            if (options.Tools is { Count: > 0 } || options.ToolMode is not null || options.AllowMultipleToolCalls is not null
                || options.RawRepresentationFactory is not null || options.ConversationId is not null
                || options.ResponseFormat is not (null or ChatResponseFormatJson { Schema: null }))
            {
                return false;
            }
        }
        foreach (var m in messages)
        {
            if (!(m.Role == ChatRole.User || m.Role == ChatRole.System || m.Role == ChatRole.Assistant))
            {
                return false;
            }
            // One text part: the SDK sends it as a plain string; anything else (images, several parts, function calls) it sends its own way.
            if (m.Contents.Count != 1 || m.Contents[0] is not TextContent || m.Contents[0].GetType() != typeof(TextContent))
            {
                return false;
            }
        }
        return true;
    }

    public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (!CanSend(messages, options))
        {
            return _sdk.Value.GetResponseAsync(messages, ProbeContextStrippingChatClient.Strip(options), cancellationToken);
        }
        return SendAsync(WriteBody(messages, options), cancellationToken);
    }

    /// <summary>Streaming goes through the OpenAI SDK (a run never streams from a remote target).</summary>
    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        _sdk.Value.GetStreamingResponseAsync(messages, ProbeContextStrippingChatClient.Strip(options), cancellationToken);

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null)
        {
            return null;
        }
        if (serviceType == typeof(ChatClientMetadata))
        {
            return _metadata;
        }
        if (serviceType.IsInstanceOfType(this))
        {
            return this;
        }
        // The SDK's own types (its ChatClient, say) are still reachable; anything else is not here.
        return serviceType.Assembly == typeof(OpenAI.OpenAIClient).Assembly ? _sdk.Value.GetService(serviceType, serviceKey) : null;
    }

    public void Dispose()
    {
        if (_sdk.IsValueCreated)
        {
            _sdk.Value.Dispose();
        }
    }

    // ---- request ----

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    /// <summary>
    /// The request body, byte for byte what the OpenAI SDK (2.15, through the Microsoft.Extensions.AI adapter) writes for
    /// the same request: its member order (temperature, top_p, messages, model, the token limit, penalties,
    /// response_format, stop, seed; a <see cref="ChatOptions.ModelId"/> goes last, as the adapter adds it) and its escaping
    /// (relaxed: non-ASCII text as UTF-8, only what JSON requires escaped). Written once per call and re-sent as is on a
    /// retry. <c>ChatCompletionsClientTests</c> compares the two.
    /// </summary>
    internal byte[] WriteBody(IEnumerable<ChatMessage> messages, ChatOptions? options)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(4096);
        buffer.ResetWrittenCount();
        var w = t_writer;
        if (w is null)
        {
            t_writer = w = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        }
        else
        {
            w.Reset(buffer);
        }

        w.WriteStartObject();
        if (options?.Temperature is { } temperature)
        {
            w.WriteNumber("temperature"u8, temperature);
        }
        if (options?.TopP is { } topP)
        {
            w.WriteNumber("top_p"u8, topP);
        }
        w.WriteStartArray("messages"u8);
        if (options?.Instructions is { } instructions)
        {
            WriteMessage(w, "system"u8, instructions, null);
        }
        foreach (var m in messages)
        {
            var role = m.Role == ChatRole.System ? "system"u8 : m.Role == ChatRole.User ? "user"u8 : "assistant"u8;
            WriteMessage(w, role, ((TextContent)m.Contents[0]).Text, m.AuthorName);
        }
        w.WriteEndArray();
        if (options?.ModelId is null)
        {
            w.WriteString("model"u8, _model);
        }
        if (options?.MaxOutputTokens is { } maxTokens)
        {
            w.WriteNumber(_maxTokensField, maxTokens);
        }
        if (options?.FrequencyPenalty is { } frequency)
        {
            w.WriteNumber("frequency_penalty"u8, frequency);
        }
        if (options?.PresencePenalty is { } presence)
        {
            w.WriteNumber("presence_penalty"u8, presence);
        }
        if (options?.ResponseFormat is ChatResponseFormatJson)
        {
            w.WriteStartObject("response_format"u8);
            w.WriteString("type"u8, "json_object"u8);
            w.WriteEndObject();
        }
        if (options?.StopSequences is { Count: > 0 } stop)
        {
            w.WriteStartArray("stop"u8);
            foreach (var s in stop)
            {
                w.WriteStringValue(s);
            }
            w.WriteEndArray();
        }
        if (options?.Seed is { } seed)
        {
            w.WriteNumber("seed"u8, seed);
        }
        if (options?.ModelId is { } model)
        {
            w.WriteString("model"u8, model);
        }
        w.WriteEndObject();
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteMessage(Utf8JsonWriter w, ReadOnlySpan<byte> role, string text, string? name)
    {
        w.WriteStartObject();
        w.WriteString("role"u8, role);
        w.WriteString("content"u8, text);
        if (name is not null)
        {
            w.WriteString("name"u8, name);
        }
        w.WriteEndObject();
    }

    // ---- the call, with retries ----

    /// <summary>
    /// Sends <paramref name="body"/> until it gets a chat completion or the retries run out. Retried: 429, 408, 5xx,
    /// network errors, an attempt that outlives <see cref="OpenAICompatibleTargetOptions.Timeout"/> (the reply's body
    /// included, so a reply that stalls half-way is retried) and a 2xx body that is not a chat completion. The wait
    /// before attempt k+1 is the server's Retry-After when it sent one, else <c>BaseDelay · 2^k</c> times a uniform
    /// jitter in [0.5, 1.5); either is capped at <see cref="OpenAICompatibleTargetOptions.MaxDelay"/>.
    /// </summary>
    private async Task<ChatResponse> SendAsync(byte[] body, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            ExceptionDispatchInfo failure;
            TimeSpan? retryAfter = null;
            var timedOut = false;
            using (var attemptCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                attemptCts.CancelAfter(_options.Timeout);
                try
                {
                    using var request = new HttpRequestMessage(HttpMethod.Post, _url) { Content = new ByteArrayContent(body) };
                    request.Headers.TryAddWithoutValidation("Authorization", _authorization);
                    request.Headers.TryAddWithoutValidation("Accept", "application/json");
                    request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
                    using var response = await _http.SendAsync(request, attemptCts.Token).ConfigureAwait(false);
                    var status = (int)response.StatusCode;
                    if (status is >= 200 and < 300)
                    {
                        return await ReadCompletionAsync(response, attemptCts.Token).ConfigureAwait(false);
                    }

                    var error = await ErrorAsync(response, _authorization.AsMemory("Bearer ".Length), attemptCts.Token).ConfigureAwait(false);
                    if (!(status is 429 or 408 || status >= 500))
                    {
                        throw error;
                    }
                    failure = ExceptionDispatchInfo.Capture(error);
                    retryAfter = OpenAICompatibleTarget.RetryAfter(response, _options.MaxDelay);
                }
                catch (Exception ex) when (attemptCts.IsCancellationRequested && !cancellationToken.IsCancellationRequested
                                           && ex is OperationCanceledException or IOException or HttpRequestException)
                {
                    timedOut = true;
                    failure = ExceptionDispatchInfo.Capture(ex);
                }
                catch (HttpRequestException ex) when (!cancellationToken.IsCancellationRequested)
                {
                    failure = ExceptionDispatchInfo.Capture(ex); // network errors and malformed replies
                }
                catch (IOException ex) when (!cancellationToken.IsCancellationRequested)
                {
                    // A connection lost while the body was read: what HttpContent's own buffering reports it as.
                    failure = ExceptionDispatchInfo.Capture(new HttpRequestException($"Error while reading the reply from {_descriptor.Endpoint}: {ex.Message}", ex));
                }
            }

            if (attempt >= _options.MaxRetries)
            {
                if (timedOut)
                {
                    throw new TimeoutException(string.Create(CultureInfo.InvariantCulture,
                        $"No answer from {_descriptor.Endpoint} (model {_descriptor.Model}) within {_options.Timeout.TotalSeconds:0.###} s, in each of {_options.MaxRetries + 1} attempt(s)."),
                        failure.SourceException);
                }
                if (failure.SourceException is HttpRequestException network)
                {
                    // As the SDK's transport wrapped a network error or a malformed reply: callers that catch
                    // ClientResultException (status 0) see what they saw before, with the cause inside.
                    throw new ClientResultException(network.Message, response: null, network);
                }
                failure.Throw();
            }

            await Task.Delay(retryAfter ?? Backoff(attempt), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary><c>BaseDelay · 2^attempt</c> with a uniform jitter factor in [0.5, 1.5), capped at MaxDelay.</summary>
    internal TimeSpan Backoff(int attempt)
    {
        var ticks = _options.BaseDelay.Ticks * Math.Pow(2, Math.Min(attempt, 30)) * (0.5 + Random.Shared.NextDouble());
        return ticks >= _options.MaxDelay.Ticks ? _options.MaxDelay : TimeSpan.FromTicks((long)ticks);
    }

    /// <summary>Reads the whole 2xx body within the attempt and parses it; a body that is not a chat completion throws.</summary>
    private async Task<ChatResponse> ReadCompletionAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var (buffer, length) = await ReadBodyAsync(response.Content, int.MaxValue, cancellationToken).ConfigureAwait(false);
        try
        {
            var body = buffer.AsSpan(0, length);
            if (TryParse(body, ref _lastModelSeen) is { } parsed)
            {
                return parsed;
            }
            var status = (int)response.StatusCode;
            var mediaType = response.Content.Headers.ContentType?.MediaType;
            var (persistent, what) = ReplyCheckingHandler.Check(body, mediaType) ?? (false, "JSON that is not a chat completion (no choices)");
            throw persistent
                ? new NonJsonReplyException($"{TargetDescriptor.SanitizeEndpoint(_options.Endpoint)} answered HTTP {status} with {what}, not an OpenAI-compatible JSON reply", what)
                : new MalformedReplyException($"{TargetDescriptor.SanitizeEndpoint(_options.Endpoint)} answered HTTP {status} with {what}");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The body into a pooled buffer (return it), at most <paramref name="limit"/> bytes.</summary>
    private static async Task<(byte[] Buffer, int Length)> ReadBodyAsync(HttpContent content, int limit, CancellationToken cancellationToken)
    {
        var expected = content.Headers.ContentLength is { } n && n < limit ? (int)n : 0;
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(expected + 1, 1024));
        var length = 0;
        try
        {
            var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                while (length < limit)
                {
                    if (length == buffer.Length)
                    {
                        var bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                        buffer.AsSpan(0, length).CopyTo(bigger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = bigger;
                    }
                    var read = await stream.ReadAsync(buffer.AsMemory(length, Math.Min(buffer.Length, limit) - length), cancellationToken).ConfigureAwait(false);
                    if (read == 0)
                    {
                        break;
                    }
                    length += read;
                }
            }
            return (buffer, length);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
    }

    /// <summary>
    /// The chat completion in <paramref name="body"/>: the first choice's message (content, or the refusal as
    /// <see cref="ErrorContent"/>, and a server's <c>reasoning_content</c>), finish reason, id, model, creation time and
    /// token usage. Null when the body is not a JSON object with a non-empty <c>choices</c> array.
    /// </summary>
    internal static ChatResponse? TryParse(ReadOnlySpan<byte> body, ref string? modelCache)
    {
        if (body.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]))
        {
            body = body[3..];
        }
        string? id = null, model = null, content = null, refusal = null, reasoning = null, finish = null;
        long? created = null;
        int? promptTokens = null, completionTokens = null, totalTokens = null;
        var choices = -1;
        try
        {
            var r = new Utf8JsonReader(body);
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                if (r.ValueTextEquals("choices"u8))
                {
                    r.Read();
                    if (r.TokenType != JsonTokenType.StartArray)
                    {
                        return null;
                    }
                    choices = 0;
                    while (r.Read() && r.TokenType != JsonTokenType.EndArray)
                    {
                        if (choices++ > 0 || r.TokenType != JsonTokenType.StartObject)
                        {
                            r.Skip(); // only the first choice is read (the SDK adapter returns the first too when n = 1)
                            continue;
                        }
                        ReadChoice(ref r, ref content, ref refusal, ref reasoning, ref finish);
                    }
                }
                else if (r.ValueTextEquals("id"u8))
                {
                    id = ReadStringOrNull(ref r);
                }
                else if (r.ValueTextEquals("model"u8))
                {
                    r.Read();
                    if (r.TokenType == JsonTokenType.String)
                    {
                        // Every reply names the same model: keep one string rather than one per reply.
                        var cached = modelCache;
                        model = cached is not null && r.ValueTextEquals(cached) ? cached : (modelCache = r.GetString());
                    }
                    SkipIfContainer(ref r);
                }
                else if (r.ValueTextEquals("created"u8))
                {
                    r.Read();
                    created = r.TokenType == JsonTokenType.Number && r.TryGetInt64(out var c) ? c : null;
                    SkipIfContainer(ref r);
                }
                else if (r.ValueTextEquals("usage"u8))
                {
                    r.Read();
                    if (r.TokenType == JsonTokenType.StartObject)
                    {
                        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
                        {
                            ref var slot = ref promptTokens;
                            var known = true;
                            if (r.ValueTextEquals("prompt_tokens"u8)) slot = ref promptTokens;
                            else if (r.ValueTextEquals("completion_tokens"u8)) slot = ref completionTokens;
                            else if (r.ValueTextEquals("total_tokens"u8)) slot = ref totalTokens;
                            else known = false;
                            r.Read();
                            if (known && r.TokenType == JsonTokenType.Number && r.TryGetInt32(out var v))
                            {
                                slot = v;
                            }
                            SkipIfContainer(ref r);
                        }
                    }
                    else
                    {
                        SkipIfContainer(ref r);
                    }
                }
                else
                {
                    r.Read();
                    SkipIfContainer(ref r);
                }
            }
            if (r.TokenType != JsonTokenType.EndObject || r.Read())
            {
                return null; // not one complete object
            }
        }
        catch (JsonException)
        {
            return null;
        }
        if (choices <= 0)
        {
            return null;
        }

        var message = new ChatMessage { Role = ChatRole.Assistant, MessageId = id };
        if (reasoning is not null)
        {
            message.Contents.Add(new TextReasoningContent(reasoning));
        }
        if (content is not null)
        {
            message.Contents.Add(new TextContent(content));
        }
        if (refusal is not null)
        {
            message.Contents.Add(new ErrorContent(refusal) { ErrorCode = "Refusal" });
        }
        return new ChatResponse(message)
        {
            ResponseId = id,
            ModelId = model,
            CreatedAt = created is { } s ? DateTimeOffset.FromUnixTimeSeconds(s) : null,
            FinishReason = finish switch
            {
                null => null,
                "stop" => ChatFinishReason.Stop,
                "length" => ChatFinishReason.Length,
                "content_filter" => ChatFinishReason.ContentFilter,
                "tool_calls" or "function_call" => ChatFinishReason.ToolCalls,
                _ => new ChatFinishReason(finish),
            },
            Usage = promptTokens is null && completionTokens is null && totalTokens is null ? null : new UsageDetails
            {
                InputTokenCount = promptTokens,
                OutputTokenCount = completionTokens,
                TotalTokenCount = totalTokens,
            },
        };
    }

    private static void ReadChoice(ref Utf8JsonReader r, ref string? content, ref string? refusal, ref string? reasoning, ref string? finish)
    {
        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
        {
            if (r.ValueTextEquals("message"u8))
            {
                r.Read();
                if (r.TokenType != JsonTokenType.StartObject)
                {
                    SkipIfContainer(ref r);
                    continue;
                }
                while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
                {
                    if (r.ValueTextEquals("content"u8))
                    {
                        r.Read();
                        content = ReadText(ref r);
                    }
                    else if (r.ValueTextEquals("refusal"u8))
                    {
                        refusal = ReadStringOrNull(ref r);
                    }
                    else if (r.ValueTextEquals("reasoning_content"u8))
                    {
                        reasoning = ReadStringOrNull(ref r);
                    }
                    else
                    {
                        r.Read();
                        SkipIfContainer(ref r);
                    }
                }
            }
            else if (r.ValueTextEquals("finish_reason"u8))
            {
                finish = ReadStringOrNull(ref r);
            }
            else
            {
                r.Read();
                SkipIfContainer(ref r);
            }
        }
    }

    /// <summary>A message's content: a string, or the text parts of an array of content parts joined; null otherwise.</summary>
    private static string? ReadText(ref Utf8JsonReader r)
    {
        switch (r.TokenType)
        {
            case JsonTokenType.String:
                return r.GetString();
            case JsonTokenType.StartArray:
                string? text = null;
                while (r.Read() && r.TokenType != JsonTokenType.EndArray)
                {
                    if (r.TokenType != JsonTokenType.StartObject)
                    {
                        SkipIfContainer(ref r);
                        continue;
                    }
                    while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
                    {
                        var isText = r.ValueTextEquals("text"u8);
                        r.Read();
                        if (isText && r.TokenType == JsonTokenType.String)
                        {
                            text += r.GetString();
                        }
                        SkipIfContainer(ref r);
                    }
                }
                return text;
            default:
                SkipIfContainer(ref r);
                return null;
        }
    }

    /// <summary>Reads the value after a property name: its text when it is a string, else null (an object or array is skipped).</summary>
    private static string? ReadStringOrNull(ref Utf8JsonReader r)
    {
        r.Read();
        var value = r.TokenType == JsonTokenType.String ? r.GetString() : null;
        SkipIfContainer(ref r);
        return value;
    }

    private static void SkipIfContainer(ref Utf8JsonReader r)
    {
        if (r.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
        {
            r.Skip();
        }
    }

    // ---- error replies ----

    /// <summary>
    /// A <see cref="ClientResultException"/> for an error status, worded as the SDK words it: <c>HTTP 401
    /// (invalid_request_error: invalid_api_key)</c> and the server's message for an OpenAI-style error body; the
    /// status, its reason phrase and the start of the body otherwise. The body is read within the attempt, at most 64 KB.
    /// A body that repeats the API key (some servers echo the credential they refused) has it replaced by
    /// <see cref="RedactedKey"/> before it reaches the message or the exception's raw response: error messages end up in
    /// the run store, the report and the terminal, and the key must reach none of them.
    /// </summary>
    private static async Task<ClientResultException> ErrorAsync(HttpResponseMessage response, ReadOnlyMemory<char> apiKey, CancellationToken cancellationToken)
    {
        const int Limit = 64 * 1024;
        var (buffer, length) = await ReadBodyAsync(response.Content, Limit, cancellationToken).ConfigureAwait(false);
        try
        {
            var body = RedactKey(buffer.AsSpan(0, length).ToArray(), apiKey.Span);
            var status = (int)response.StatusCode;
            var message = ErrorMessage(status, response.ReasonPhrase, body);
            return new ClientResultException(message, new ErrorResponse(response, body));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>What an API key repeated in an error body is replaced by.</summary>
    internal const string RedactedKey = "[api key redacted]";

    /// <summary>
    /// <paramref name="body"/> with every occurrence of <paramref name="apiKey"/> replaced by <see cref="RedactedKey"/>.
    /// Keys shorter than 8 characters are left alone (so short a string could be ordinary text), and so is the
    /// placeholder sent when no key is configured (<see cref="OpenAICompatibleTarget.PlaceholderKey"/>): it is no secret,
    /// and "[api key redacted]" would suggest that a key was sent.
    /// </summary>
    internal static byte[] RedactKey(byte[] body, ReadOnlySpan<char> apiKey)
    {
        if (!IsRedactable(apiKey))
        {
            return body;
        }
        var key = System.Text.Encoding.UTF8.GetBytes(apiKey.ToArray());
        if (body.AsSpan().IndexOf(key) < 0)
        {
            return body;
        }
        var replacement = System.Text.Encoding.UTF8.GetBytes(RedactedKey);
        var result = new List<byte>(body.Length);
        var rest = body.AsSpan();
        for (var at = rest.IndexOf(key); at >= 0; at = rest.IndexOf(key))
        {
            result.AddRange(rest[..at]);
            result.AddRange(replacement);
            rest = rest[(at + key.Length)..];
        }
        result.AddRange(rest);
        return [.. result];
    }

    /// <summary>Whether <paramref name="apiKey"/> is a configured key long enough to look for in a body.</summary>
    internal static bool IsRedactable(ReadOnlySpan<char> apiKey) =>
        apiKey.Length >= 8 && !apiKey.SequenceEqual(OpenAICompatibleTarget.PlaceholderKey);

    internal static string ErrorMessage(int status, string? reason, ReadOnlySpan<byte> body)
    {
        try
        {
            var r = new Utf8JsonReader(body);
            if (r.Read() && r.TokenType == JsonTokenType.StartObject)
            {
                while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
                {
                    var isError = r.ValueTextEquals("error"u8);
                    r.Read();
                    if (isError && r.TokenType == JsonTokenType.StartObject)
                    {
                        string? text = null, type = null, code = null;
                        while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
                        {
                            var name = r.ValueTextEquals("message"u8) ? 1 : r.ValueTextEquals("type"u8) ? 2 : r.ValueTextEquals("code"u8) ? 3 : 0;
                            // Only string values: the SDK leaves a numeric code out too ("HTTP 500 (server_error: )").
                            var value = ReadStringOrNull(ref r);
                            switch (name)
                            {
                                case 1: text = value; break;
                                case 2: type = value; break;
                                case 3: code = value; break;
                            }
                        }
                        if (text is not null)
                        {
                            return string.Create(CultureInfo.InvariantCulture, $"HTTP {status} ({type}: {code})\n\n{text}");
                        }
                        break;
                    }
                    SkipIfContainer(ref r);
                }
            }
        }
        catch (JsonException)
        {
        }

        var head = System.Text.Encoding.UTF8.GetString(body[..Math.Min(body.Length, 2000)]).Trim();
        return string.Create(CultureInfo.InvariantCulture, $"HTTP {status} ({reason})") + (head.Length > 0 ? "\n\n" + head : "");
    }
}
