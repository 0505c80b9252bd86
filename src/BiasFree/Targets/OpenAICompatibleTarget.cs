using System.ClientModel;
using System.ClientModel.Primitives;
using System.Globalization;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.Http.Resilience;
using OpenAI;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace BiasFree.Targets;

/// <summary>
/// Creates <see cref="IChatClient"/>s for remote OpenAI-compatible chat-completions servers (OpenAI, vLLM, llama.cpp,
/// Ollama...). Requests go through our own chat-completions call (<see cref="ChatCompletionsClient"/>), or the OpenAI
/// SDK for what that does not write; both retry 429, 408, 5xx, network errors, per-attempt
/// timeouts (a reply's body included, so a reply that stalls half-way is retried) and 2xx replies whose body is not a
/// chat completion (<see cref="MalformedReplyException"/>) with jittered exponential backoff (honouring Retry-After up to <see cref="OpenAICompatibleTargetOptions.MaxDelay"/>).
/// The OpenAI SDK's own retries are switched off so the two do not multiply. Probe-context keys are stripped from
/// every request. <c>GetService(typeof(TargetDescriptor))</c> on the client returns its descriptor.
/// </summary>
public static class OpenAICompatibleTarget
{
    /// <summary>Key sent when no API key is configured (local servers accept anything).</summary>
    internal const string PlaceholderKey = "sk-no-key-configured";

    /// <summary>Creates the chat client. The API key is read from the environment now and kept only in the Authorization header value.</summary>
    /// <remarks>
    /// Text conversations go through <see cref="ChatCompletionsClient"/> (our own chat-completions call over
    /// <see cref="HttpMessageInvoker"/>); streaming, tools, non-text content and JSON-schema formats go through the
    /// OpenAI SDK (see <see cref="ChatCompletionsClient.CanSend"/>). Both share one connection pool.
    /// </remarks>
    public static IChatClient Create(OpenAICompatibleTargetOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();

        var descriptor = TargetDescriptor.For(options);
        var apiKey = ReadApiKey(options.ApiKeyEnvironmentVariable);
        var transport = new HttpMessageInvoker(CreateTransport(options), disposeHandler: true);
        var sdk = new Lazy<IChatClient>(() => CreateSdkClient(options, descriptor, apiKey, transport), LazyThreadSafetyMode.ExecutionAndPublication);
        var inner = new ChatCompletionsClient(transport, options, descriptor, apiKey, sdk);
        return new TargetChatClient(inner, descriptor, transport);
    }

    /// <summary>The OpenAI SDK's client over <paramref name="transport"/>, with the retry pipeline and reply check of <see cref="CreateHandler"/>.</summary>
    private static IChatClient CreateSdkClient(OpenAICompatibleTargetOptions options, TargetDescriptor descriptor, string apiKey, HttpMessageInvoker transport)
    {
        var http = new HttpClient(CreateHandler(options, descriptor, new SharedTransportHandler(transport), apiKey), disposeHandler: true)
        {
            Timeout = System.Threading.Timeout.InfiniteTimeSpan, // per-attempt timeouts live in the resilience pipeline
        };

        var clientOptions = new OpenAIClientOptions
        {
            Endpoint = options.Endpoint,
            Transport = new HttpClientPipelineTransport(http),
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0),
            NetworkTimeout = System.Threading.Timeout.InfiniteTimeSpan,
            // No logger is configured; without this the pipeline still runs a logging policy over every request.
            ClientLoggingOptions = new ClientLoggingOptions { EnableLogging = false, EnableMessageLogging = false, EnableMessageContentLogging = false },
        };

        return new OwningChatClient(new OpenAIClient(new ApiKeyCredential(apiKey), clientOptions).GetChatClient(options.Model).AsIChatClient(), http);
    }

    /// <summary>Describes a target for run records and cache keys (no credentials).</summary>
    public static TargetDescriptor Describe(OpenAICompatibleTargetOptions options) => TargetDescriptor.For(options);

    private static string ReadApiKey(string? variable)
    {
        if (string.IsNullOrWhiteSpace(variable))
        {
            return PlaceholderKey;
        }

        var key = Environment.GetEnvironmentVariable(variable);
        return string.IsNullOrWhiteSpace(key) ? PlaceholderKey : key.Trim();
    }

    /// <summary>
    /// The connections: sockets (at most <see cref="OpenAICompatibleTargetOptions.MaxConnectionsPerServer"/> per
    /// server), behind the endpoint balancer when there are several endpoints. Both request paths send through it.
    /// </summary>
    internal static HttpMessageHandler CreateTransport(OpenAICompatibleTargetOptions options, HttpMessageHandler? primary = null)
    {
        HttpMessageHandler transport = primary ?? new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            // Per server, and HTTP/1.1 carries one request per connection: this bounds the requests in flight to it.
            MaxConnectionsPerServer = options.MaxConnectionsPerServer,
            // Two handler stages fewer per request (each its own async state machine): a chat-completions POST is not
            // redirected by the servers this talks to (a 3xx now shows as the error it is, naming its status), and no
            // trace context is sent (the harness traces nothing; a W3C traceparent header would be added to every request).
            AllowAutoRedirect = false,
            ActivityHeadersPropagator = null,
        };
        if (options.AdditionalEndpoints.Count > 0)
        {
            // Under each path's retries, so that a retried attempt goes to whichever endpoint is best then.
            transport = new EndpointBalancingHandler(options.AllEndpoints, options.EndpointConcurrency ?? OpenAICompatibleTargetOptions.MaxConnectionsLimit, options.EndpointCooldown)
            {
                InnerHandler = transport,
            };
        }
        return transport;
    }

    /// <summary>
    /// The SDK path's handler chain over <paramref name="transport"/>: exception translation → retry/timeout pipeline →
    /// reply check (body read and validated within the attempt; an error body has <paramref name="apiKey"/> redacted) →
    /// transport; the <c>max_tokens</c> rename in front when
    /// the server reads that name (the SDK writes <c>max_completion_tokens</c>).
    /// </summary>
    internal static HttpMessageHandler CreateHandler(OpenAICompatibleTargetOptions options, TargetDescriptor descriptor, HttpMessageHandler transport, string? apiKey = null)
    {
        var resilience = new ResilienceHandler(BuildPipeline(options))
        {
            InnerHandler = new ReplyCheckingHandler(options.Endpoint, apiKey) { InnerHandler = transport },
        };
        var translating = new TimeoutTranslatingHandler(options, descriptor) { InnerHandler = resilience };
        return options.MaxTokensField == MaxTokensParameters.MaxTokensField
            ? new MaxTokensFieldHandler { InnerHandler = translating }
            : translating;
    }

    /// <summary>Sends through the target's shared transport without owning it (the target disposes it once).</summary>
    private sealed class SharedTransportHandler(HttpMessageInvoker transport) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            transport.SendAsync(request, cancellationToken);
    }

    /// <summary>The SDK's chat client, disposing its HttpClient with it.</summary>
    private sealed class OwningChatClient(IChatClient inner, HttpClient http) : DelegatingChatClient(inner)
    {
        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                http.Dispose();
            }
            base.Dispose(disposing);
        }
    }

    /// <summary>Retry (outer) around a per-attempt timeout (inner).</summary>
    internal static ResiliencePipeline<HttpResponseMessage> BuildPipeline(OpenAICompatibleTargetOptions options)
    {
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage>();
        if (options.MaxRetries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = options.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.BaseDelay,
                MaxDelay = options.MaxDelay,
                ShouldHandle = args => ValueTask.FromResult(IsTransient(args.Outcome, args.Context.CancellationToken)),
                DelayGenerator = args => ValueTask.FromResult(RetryAfter(args.Outcome.Result, options.MaxDelay)),
            });
        }

        builder.AddTimeout(options.Timeout);
        return builder.Build();
    }

    internal static bool IsTransient(Outcome<HttpResponseMessage> outcome, CancellationToken callerToken)
    {
        if (outcome.Exception is { } ex)
        {
            return !callerToken.IsCancellationRequested && ex is TimeoutRejectedException or HttpRequestException;
        }

        if (outcome.Result is not { } response)
        {
            return false;
        }

        var status = (int)response.StatusCode;
        return status is 429 or 408 || status >= 500;
    }

    /// <summary>The server's requested wait (Retry-After seconds or date, or retry-after-ms), capped; null when absent.</summary>
    internal static TimeSpan? RetryAfter(HttpResponseMessage? response, TimeSpan cap)
    {
        if (response is null)
        {
            return null;
        }

        TimeSpan? wait = null;
        if (response.Headers.TryGetValues("retry-after-ms", out var ms)
            && double.TryParse(ms.FirstOrDefault(), NumberStyles.Float, CultureInfo.InvariantCulture, out var millis) && millis >= 0)
        {
            wait = TimeSpan.FromMilliseconds(millis);
        }
        else if (response.Headers.RetryAfter is { } retryAfter)
        {
            wait = retryAfter.Delta ?? (retryAfter.Date is { } date ? date - DateTimeOffset.UtcNow : null);
        }

        if (wait is not { } w)
        {
            return null;
        }

        if (w < TimeSpan.Zero)
        {
            w = TimeSpan.Zero;
        }

        return w > cap ? cap : w;
    }

    /// <summary>Turns Polly's timeout rejection into a plain <see cref="TimeoutException"/> naming the endpoint (never the key).</summary>
    private sealed class TimeoutTranslatingHandler(OpenAICompatibleTargetOptions options, TargetDescriptor descriptor) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            try
            {
                return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutRejectedException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException(string.Create(CultureInfo.InvariantCulture,
                    $"No answer from {descriptor.Endpoint} (model {descriptor.Model}) within {options.Timeout.TotalSeconds:0.###} s, in each of {options.MaxRetries + 1} attempt(s)."), ex);
            }
        }
    }

    /// <summary>The public client: knows its descriptor, owns the transport (probe-context keys are never sent: see <see cref="ChatCompletionsClient"/>).</summary>
    private sealed class TargetChatClient(IChatClient inner, TargetDescriptor descriptor, HttpMessageInvoker transport)
        : DelegatingChatClient(inner)
    {
        public override object? GetService(Type serviceType, object? serviceKey = null) =>
            serviceKey is null && serviceType == typeof(TargetDescriptor) ? descriptor : base.GetService(serviceType, serviceKey);

        protected override void Dispose(bool disposing)
        {
            base.Dispose(disposing); // the SDK client first, if one was made: it sends through the transport
            if (disposing)
            {
                transport.Dispose();
            }
        }

        public override string ToString() => $"OpenAICompatibleTarget({descriptor})";
    }
}
