using System.Net;

namespace BiasFree.Targets;

/// <summary>
/// Sends each request to one of several endpoints serving the same model (replicas without a load balancer in front):
/// the healthy endpoint with the fewest requests outstanding, each endpoint holding at most its own concurrency. An
/// endpoint that fails (connection error, 429, 5xx) is drained: it gets no new request for a cool-down that doubles with
/// each failure in a row (from <see cref="OpenAICompatibleTargetOptions.EndpointCooldown"/> up to 64 times that), then
/// one request tries it again; a success makes it healthy. When every endpoint is cooling down, the one that recovers
/// first is used, so a run never stalls here. It sits inside the retry pipeline, so a retried request goes wherever
/// is best at that moment. The request is rewritten to the chosen endpoint's base URL; the model,
/// body and cache identity are the first endpoint's, so replies are filed as if one endpoint had answered.
/// </summary>
internal sealed class EndpointBalancingHandler : DelegatingHandler
{
    private sealed class Endpoint(Uri baseUri, int concurrency)
    {
        public Uri Base { get; } = baseUri;
        public SemaphoreSlim Slots { get; } = new(concurrency, concurrency);
        public int Outstanding;
        public int Failures;
        public DateTimeOffset RetryAt = DateTimeOffset.MinValue;
        public bool Trial;
        public long Sent;
    }

    private readonly Endpoint[] _endpoints;
    private readonly TimeSpan _cooldown;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();

    public EndpointBalancingHandler(IReadOnlyList<Uri> endpoints, int perEndpointConcurrency, TimeSpan cooldown, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(endpoints.Count, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(perEndpointConcurrency, 1);
        _endpoints = [.. endpoints.Select(e => new Endpoint(WithSlash(e), perEndpointConcurrency))];
        _cooldown = cooldown;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Requests sent to each endpoint so far, in the order the endpoints were given.</summary>
    public IReadOnlyList<long> Sent => [.. _endpoints.Select(e => Interlocked.Read(ref e.Sent))];

    private static Uri WithSlash(Uri u) => u.AbsoluteUri.EndsWith('/') ? u : new Uri(u.AbsoluteUri + "/");

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var endpoint = Choose();
        await endpoint.Slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            Interlocked.Increment(ref endpoint.Sent);
            // A retried attempt carries the URL of the endpoint that failed it, so the base is swapped from whichever it has.
            if (request.RequestUri is { } uri && _endpoints.Where(e => uri.AbsoluteUri.StartsWith(e.Base.AbsoluteUri, StringComparison.Ordinal))
                    .MaxBy(e => e.Base.AbsoluteUri.Length) is { } from && !ReferenceEquals(from, endpoint))
            {
                request.RequestUri = new Uri(endpoint.Base.AbsoluteUri + uri.AbsoluteUri[from.Base.AbsoluteUri.Length..]);
            }
            HttpResponseMessage response;
            try
            {
                response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (HttpRequestException)
            {
                Failed(endpoint);
                throw;
            }
            var status = (int)response.StatusCode;
            if (status is 429 or >= 500)
            {
                Failed(endpoint);
            }
            else
            {
                Succeeded(endpoint);
            }
            return response;
        }
        finally
        {
            endpoint.Slots.Release();
            lock (_gate)
            {
                endpoint.Outstanding--;
                endpoint.Trial = false;
            }
        }
    }

    /// <summary>The healthy endpoint with the fewest outstanding requests; a cooled-down one gets one trial request.</summary>
    private Endpoint Choose()
    {
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            Endpoint? best = null;
            foreach (var e in _endpoints)
            {
                var usable = e.Failures == 0 || (e.RetryAt <= now && !e.Trial);
                if (usable && (best is null || e.Outstanding < best.Outstanding))
                {
                    best = e;
                }
            }
            // Every endpoint is cooling down: wait on the one that recovers first rather than fail here.
            best ??= _endpoints.MinBy(e => e.RetryAt)!;
            if (best.Failures > 0)
            {
                best.Trial = true;
            }
            best.Outstanding++;
            return best;
        }
    }

    private void Failed(Endpoint e)
    {
        lock (_gate)
        {
            e.Failures++;
            var factor = 1 << Math.Min(6, e.Failures - 1);
            e.RetryAt = _time.GetUtcNow() + _cooldown * factor;
        }
    }

    private void Succeeded(Endpoint e)
    {
        lock (_gate)
        {
            e.Failures = 0;
            e.RetryAt = DateTimeOffset.MinValue;
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            foreach (var e in _endpoints)
            {
                e.Slots.Dispose();
            }
        }
        base.Dispose(disposing);
    }
}
