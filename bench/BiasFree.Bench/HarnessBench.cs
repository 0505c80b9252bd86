using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using BiasFree.Evaluations;
using BiasFree.Probes;
using BiasFree.Probes.Loaders;
using BiasFree.Runs;
using BiasFree.Targets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Spectre.Console;

/// <summary>
/// Harness overhead: the real <c>biasfree run</c> path (<see cref="Evaluation"/> → <see cref="EvaluationRunner"/> →
/// <see cref="RunStore"/>, OpenAI-compatible target over HTTP, rule judge) against a loopback OpenAI-compatible server
/// with a fixed latency, on generated BBQ-style suites (three lettered options, ambiguous and disambiguated contexts).
/// <para>
/// Three kinds of process, so that what is measured is the harness alone: the parent writes the suites and starts
/// one server process per latency, and every configuration runs in a fresh client process that reports its own
/// wall time, process CPU time and peak memory. The server's work (HTTP, JSON, the scripted answer) is in another
/// process and so is not counted in the client's CPU time or memory; on a machine with fewer cores than the two
/// processes want, the server still competes for the CPU, which lowers throughput but not CPU per probe.
/// </para>
/// Usage: dotnet run -c Release --project bench/BiasFree.Bench -- harness [--quick] [--sizes 10000,50000]
///        [--in-flight 32,256] [--latencies 0,50] [--repeats 1]
///        [--client-exe PATH] (the clients run PATH instead: bench/harness-aot.sh, the client compiled ahead of time)
/// By hand: harness --write-suite N PATH; harness --serve [--latency-ms 50]; harness --client --target URL --suite PATH
///        --runs-dir DIR --run-id ID [--in-flight 256] [--alloc-types] (the last prints managed allocations by type).
/// </summary>
internal static partial class HarnessBench
{
    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        if (args.Contains("--serve"))
        {
            return await ServeAsync(args).ConfigureAwait(false);
        }
        if (args.Contains("--write-suite"))
        {
            // For profiling one configuration by hand: harness --write-suite N PATH, then harness --serve / --client.
            var at = args.ToList().IndexOf("--write-suite");
            ProbeJsonl.Write(args[at + 2], Suite(int.Parse(args[at + 1], CultureInfo.InvariantCulture)));
            return 0;
        }
        if (args.Contains("--client"))
        {
            return await ClientAsync(args).ConfigureAwait(false);
        }

        string? Arg(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        static int[] Ints(string s) => s.Split(',').Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToArray();
        var quick = args.Contains("--quick");
        // --client-exe PATH: the client processes run this executable instead of this one (bench/harness-aot.sh: the
        // same client code compiled ahead of time), with the same arguments.
        s_clientExe = Arg("--client-exe") is { } exe ? Path.GetFullPath(exe) : null;
        var sizes = Ints(Arg("--sizes") ?? (quick ? "1000" : "10000,50000"));
        var inFlight = Ints(Arg("--in-flight") ?? "32,256");
        var latencies = Ints(Arg("--latencies") ?? "0,50");
        var repeats = int.Parse(Arg("--repeats") ?? "1", CultureInfo.InvariantCulture);

        var work = Directory.CreateTempSubdirectory("biasfree-harness-");
        var servers = new Dictionary<int, (Process Process, Uri Url)>();
        try
        {
            var suites = new Dictionary<int, string>();
            foreach (var n in sizes)
            {
                suites[n] = Path.Combine(work.FullName, $"bbq-style-{n}.jsonl");
                ProbeJsonl.Write(suites[n], Suite(n));
            }
            foreach (var latency in latencies)
            {
                servers[latency] = await StartServerAsync(latency, work.FullName).ConfigureAwait(false);
            }

            AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
                $"[bold]Harness benchmark[/]: {Environment.ProcessorCount} cores, .NET {Environment.Version}; suites {string.Join(", ", sizes.Select(s => s.ToString("N0", CultureInfo.InvariantCulture)))} probes; rule judge; every run in a fresh client process{(s_clientExe is null ? " (JIT-compiled, as biasfree runs)" : $" (client: {Markup.Escape(s_clientExe)})")}{(repeats > 1 ? $"; median of {repeats}" : "")}"));
            var table = new Table().Border(TableBorder.Rounded);
            foreach (var c in new[] { "run", "probes", "in flight", "latency", "wall s", "probes/s", "% of ideal", "first row s", "steady % of ideal", "server's wait ms", "CPU ms/probe", "peak RSS MB", "peak managed MB", "server requests" })
            {
                table.AddColumn(new TableColumn(c).RightAligned());
            }

            var results = new List<(string Kind, int N, int InFlight, int Latency, Measurement M)>();
            foreach (var n in sizes)
            {
                foreach (var latency in latencies)
                {
                    foreach (var k in inFlight)
                    {
                        var runs = new List<Measurement>();
                        for (var r = 0; r < repeats; r++)
                        {
                            var dir = Path.Combine(work.FullName, $"runs-{n}-{latency}-{k}-{r}");
                            runs.Add(await ClientRunAsync(servers[latency].Url, suites[n], dir, "first", k).ConfigureAwait(false));
                            if (latency == latencies[0] && k == inFlight[^1])
                            {
                                // Cache-only rerun: a new run id on the same store, same target: every reply is in the cache.
                                var cached = await ClientRunAsync(servers[latency].Url, suites[n], dir, "again", k).ConfigureAwait(false);
                                results.Add(("cache", n, k, latency, cached));
                            }
                            if (r < repeats - 1)
                            {
                                Directory.Delete(dir, recursive: true);
                            }
                        }
                        results.Add(("http", n, k, latency, Median(runs)));
                    }
                }
            }

            foreach (var (kind, n, k, latency, m) in results.OrderBy(x => x.N).ThenBy(x => x.Kind == "cache").ThenBy(x => x.Latency).ThenBy(x => x.InFlight))
            {
                var rate = m.Probes / m.WallSeconds;
                var ideal = kind == "http" && latency > 0 ? k * 1000.0 / latency : (double?)null;
                table.AddRow(kind == "cache" ? "cache-only rerun" : "first run", n.ToString("N0", CultureInfo.InvariantCulture), $"{k}",
                    kind == "cache" ? "–" : $"{latency} ms", F(m.WallSeconds, "0.0"), F(rate, "N0"),
                    ideal is { } i ? F(100 * rate / i, "0") + " %" : "–", F(m.FirstRowMs / 1000, "0.00"),
                    ideal is { } i2 && m.SteadyRate > 0 ? F(100 * m.SteadyRate / i2, "0") + " %" : "–",
                    kind == "http" && latency > 0 && m.ServerWaitMsP50 > 0 ? F(m.ServerWaitMsP50, "0.0") : "–", F(m.CpuMs / m.Probes, "0.000"),
                    F(m.PeakRssBytes / 1e6, "0"), F(m.PeakManagedBytes / 1e6, "0"), m.ServerRequests.ToString("N0", CultureInfo.InvariantCulture));
            }
            AnsiConsole.Write(table);

            var goals = new Table().Border(TableBorder.Rounded).AddColumn("what").AddColumn(new TableColumn("measured").RightAligned()).AddColumn("goal (issue #11)");
            var largest = sizes.Max();
            var headline = results.FirstOrDefault(x => x.Kind == "http" && x.N == largest && x.InFlight == inFlight.Max() && x.Latency == latencies.Max() && x.Latency > 0);
            if (headline.M is { } h)
            {
                var idealRate = headline.InFlight * 1000.0 / headline.Latency;
                // The whole run against the ideal, then the two things that bound it: the steady state (after the
                // first tenth of the rows) and the server's own wait (a 50 ms timer that waits longer caps the rate).
                goals.AddRow($"throughput, {largest:N0} probes, {headline.InFlight} in flight, {headline.Latency} ms (ideal {idealRate:N0}/s)",
                    F(100 * (h.Probes / h.WallSeconds) / idealRate, "0") + " % of ideal" +
                    (h.SteadyRate > 0 ? $" (steady state {F(100 * h.SteadyRate / idealRate, "0")} %; first row at {F(h.FirstRowMs / 1000, "0.00")} s" : "") +
                    (h.SteadyRate > 0 && h.ServerWaitMsP50 > 0 ? $"; the server's wait {F(h.ServerWaitMsP50, "0.0")} ms, a cap of {F(100 * headline.Latency / h.ServerWaitMsP50, "0")} %)" : h.SteadyRate > 0 ? ")" : ""),
                    "≥ 90 %");
            }
            var firsts = results.Where(x => x.Kind == "http").Select(x => x.M.CpuMs / x.M.Probes).ToList();
            goals.AddRow("CPU per probe (client side, rule judge, store), first runs", $"{F(firsts.Min(), "0.000")}–{F(firsts.Max(), "0.000")} ms", "≤ 0.15 ms");
            var big = results.Where(x => x.N == largest).Select(x => x.M.PeakRssBytes).DefaultIfEmpty().Max();
            goals.AddRow($"peak memory (RSS), {largest:N0}-probe runs", F(big / 1e6, "0") + " MB", "≤ 200 MB, flat in N");
            var cacheRates = results.Where(x => x.Kind == "cache").Select(x => x.M.Probes / x.M.WallSeconds).ToList();
            if (cacheRates.Count > 0)
            {
                goals.AddRow("answers from the response cache", string.Join(", ", cacheRates.Select(r => F(r, "N0"))) + " /s", "≥ 50,000 /s");
            }
            AnsiConsole.Write(goals);
            AnsiConsole.MarkupLine("[grey]probes/s: probes / wall time of the run (suite load, run, store; process start excluded). % of ideal: probes/s ÷ (in flight ÷ latency), the most a server with that latency allows.[/]");
            AnsiConsole.MarkupLine("[grey]first row s: when the first row was stored (after the store's open and the suite's validation pass). steady % of ideal: the rate from the first tenth of the rows to the ninth, against the ideal. server's wait ms: the median time the loopback server really waited for its nominal latency (timer granularity, a busy CPU); nominal ÷ this is the most it lets any client reach.[/]");
            AnsiConsole.MarkupLine("[grey]CPU ms/probe: the client process's CPU time (all threads, user + system) over the run ÷ probes; the server runs in its own process and is not counted.[/]");
            AnsiConsole.MarkupLine("[grey]peak RSS: the client's VmHWM (/proc/self/status); peak managed: largest GC heap size seen (sampled every 20 ms). Cache-only rerun: a second run id on the same store; server requests shows none reached the server.[/]");
            return 0;
        }
        finally
        {
            foreach (var (process, _) in servers.Values)
            {
                try
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync().ConfigureAwait(false);
                }
                catch (InvalidOperationException)
                {
                }
                process.Dispose();
            }
            work.Delete(recursive: true);
        }
    }

    private static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);

    private static Measurement Median(List<Measurement> runs)
    {
        double Med(Func<Measurement, double> f)
        {
            var s = runs.Select(f).Order().ToList();
            return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
        }
        return new Measurement(runs[0].Probes, Med(m => m.WallSeconds), Med(m => m.CpuMs), (long)Med(m => m.PeakRssBytes), (long)Med(m => m.PeakManagedBytes), (long)Med(m => m.ServerRequests),
            Med(m => m.FirstRowMs), Med(m => m.SteadyRate), Med(m => m.ServerWaitMsP50));
    }

    private static string? s_clientExe;

    private static ProcessStartInfo Self(params string[] args)
    {
        // Started as "dotnet BiasFree.Bench.dll" the host needs the assembly; as the apphost it does not.
        var host = Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? new[] { typeof(HarnessBench).Assembly.Location } : [];
        return Started(Environment.ProcessPath!, [.. host, "harness", .. args]);
    }

    /// <summary>A process of <paramref name="file"/> with these arguments, its output read by this one.</summary>
    private static ProcessStartInfo Started(string file, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        return psi;
    }

    private static async Task<(Process, Uri)> StartServerAsync(int latencyMs, string work)
    {
        var portFile = Path.Combine(work, $"server-{latencyMs}.port");
        var process = Process.Start(Self("--serve", "--latency-ms", latencyMs.ToString(CultureInfo.InvariantCulture), "--port-file", portFile))!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        for (var i = 0; i < 600 && !File.Exists(portFile); i++)
        {
            if (process.HasExited) throw new InvalidOperationException($"the loopback server exited with {process.ExitCode}");
            await Task.Delay(100).ConfigureAwait(false);
        }
        var port = File.ReadAllText(portFile).Trim();
        return (process, new Uri($"http://127.0.0.1:{port}/v1"));
    }

    private static async Task<Measurement> ClientRunAsync(Uri server, string suite, string runsDir, string runId, int inFlight)
    {
        string[] clientArgs = ["--client", "--target", server.ToString(), "--suite", suite, "--runs-dir", runsDir, "--run-id", runId,
            "--in-flight", inFlight.ToString(CultureInfo.InvariantCulture)];
        var psi = s_clientExe is null ? Self(clientArgs) : Started(s_clientExe, clientArgs);
        // The client runs as the biasfree tool does: its runtimeconfig turns dynamic PGO off (BiasFree.Cli.csproj says why).
        psi.Environment["DOTNET_TieredPGO"] = "0";
        var concurrencyStats = new Uri(server.ToString().TrimEnd('/') + "/stats/concurrency");
        using (var http = new HttpClient())
        {
            using var reset = await http.PostAsync(new Uri(concurrencyStats + "/reset"), null).ConfigureAwait(false);
            reset.EnsureSuccessStatusCode();
        }
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"client run failed ({process.ExitCode}): {await stderr.ConfigureAwait(false)}");
        }
        var line = (await stdout.ConfigureAwait(false)).Split('\n').Last(l => l.StartsWith('{'));
        var m = JsonSerializer.Deserialize<Measurement>(line)!;
        // The phases line the client wrote to stderr: the first row and the tenths of the rows.
        var phases = (await stderr.ConfigureAwait(false)).Split('\n').First(l => l.StartsWith("{\"ProcessStartToWindowMs\"", StringComparison.Ordinal));
        using var doc = JsonDocument.Parse(phases);
        var deciles = doc.RootElement.GetProperty("DecilesMs").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var steady = deciles.Length == 10 && deciles[0] >= 0 && deciles[8] > deciles[0] ? 0.8 * m.Probes / ((deciles[8] - deciles[0]) / 1000) : 0;
        double wait;
        using (var http = new HttpClient())
        {
            using var stats = JsonDocument.Parse(await http.GetStringAsync(concurrencyStats).ConfigureAwait(false));
            wait = stats.RootElement.TryGetProperty("WaitMsP50", out var w) && w.ValueKind == JsonValueKind.Number ? Math.Max(0, w.GetDouble()) : 0; // -1: no request waited
        }
        return m with
        {
            ServerRequests = await ServerRequestsAsync(server).ConfigureAwait(false) - m.ServerRequests,
            FirstRowMs = doc.RootElement.GetProperty("FirstRowMs").GetDouble(),
            SteadyRate = steady,
            ServerWaitMsP50 = wait,
        };
    }

    // ------------------------------------------------------------------ server process

    /// <summary>
    /// OpenAI-compatible loopback server (Kestrel): <c>POST /v1/chat/completions</c> waits the fixed latency, then
    /// answers with one of the lettered options of the last user message, chosen by a hash of the message (so the rule
    /// judge parses every answer and the labels are a fixed mix); <c>GET /v1/stats</c> returns the requests served.
    /// </summary>
    private static async Task<int> ServeAsync(IReadOnlyList<string> args)
    {
        string Arg(string name) => args.SkipWhile(a => a != name).Skip(1).First();
        var latency = TimeSpan.FromMilliseconds(int.Parse(Arg("--latency-ms"), CultureInfo.InvariantCulture));
        // No watching of configuration files for changes: that watches the working directory and every folder under it
        // (inotify), so each write a client made there (a runs directory beside the suite) woke this server and cost the
        // client's writes kernel time (a profile of a 50 ms run: 6 % of the client's CPU in fsnotify under pwrite). An
        // inference server does not watch its clients' files.
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"] });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, 0);
            k.Limits.MaxConcurrentConnections = null;
        });
        await using var app = builder.Build();
        long served = 0;
        var concurrency = new ConcurrencyStats();
        app.MapGet("/v1/stats", () => Interlocked.Read(ref served).ToString(CultureInfo.InvariantCulture));
        // What the server saw: requests in flight at each arrival, time-weighted mean in flight, the latency wait as
        // it really was (timer granularity), connections opened. Reset by POST /v1/stats/concurrency/reset.
        app.MapGet("/v1/stats/concurrency", () => Results.Text(concurrency.Json(), "application/json"));
        app.MapPost("/v1/stats/concurrency/reset", () => { concurrency.Reset(); return "ok"; });
        app.Use(async (context, next) =>
        {
            concurrency.Connection(context.Connection.Id);
            await next(context).ConfigureAwait(false);
        });
        app.MapPost("/v1/chat/completions", async (HttpContext context) =>
        {
            concurrency.Enter();
            try
            {
                using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted).ConfigureAwait(false);
                var messages = body.RootElement.GetProperty("messages");
                var last = messages[messages.GetArrayLength() - 1].GetProperty("content").GetString() ?? "";
                if (latency > TimeSpan.Zero)
                {
                    var waited = Stopwatch.GetTimestamp();
                    await Task.Delay(latency, context.RequestAborted).ConfigureAwait(false);
                    concurrency.Waited(Stopwatch.GetElapsedTime(waited));
                }
                Interlocked.Increment(ref served);
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync(Completion(Answer(last)), context.RequestAborted).ConfigureAwait(false);
            }
            finally
            {
                concurrency.Exit();
            }
        });
        await app.StartAsync().ConfigureAwait(false);
        var address = app.Urls.First();
        await File.WriteAllTextAsync(Arg("--port-file") + ".tmp", new Uri(address).Port.ToString(CultureInfo.InvariantCulture)).ConfigureAwait(false);
        File.Move(Arg("--port-file") + ".tmp", Arg("--port-file"));
        await app.WaitForShutdownAsync().ConfigureAwait(false);
        return 0;
    }

    /// <summary>
    /// Requests in flight on the server: a histogram of the count at each arrival (buckets of 16), the time-weighted mean
    /// between the first arrival and the last departure, the latency wait as measured, and distinct connections.
    /// </summary>
    private sealed class ConcurrencyStats
    {
        private readonly Lock _gate = new();
        private readonly long[] _atArrival = new long[1024 / 16 + 1];
        private readonly HashSet<string> _connections = [];
        private readonly List<double> _waits = [];
        private int _inFlight, _max;
        private long _first, _lastChange, _last;
        private double _area; // in-flight × seconds

        public void Reset()
        {
            lock (_gate)
            {
                Array.Clear(_atArrival);
                _connections.Clear();
                _waits.Clear();
                _max = 0;
                _first = _lastChange = _last = 0;
                _area = 0;
            }
        }

        public void Connection(string id)
        {
            lock (_gate)
            {
                _connections.Add(id);
            }
        }

        public void Enter()
        {
            lock (_gate)
            {
                var now = Stopwatch.GetTimestamp();
                Advance(now);
                if (_first == 0)
                {
                    _first = now;
                }
                _inFlight++;
                _max = Math.Max(_max, _inFlight);
                _atArrival[Math.Min(_inFlight / 16, _atArrival.Length - 1)]++;
            }
        }

        public void Exit()
        {
            lock (_gate)
            {
                var now = Stopwatch.GetTimestamp();
                Advance(now);
                _inFlight--;
                _last = now;
            }
        }

        public void Waited(TimeSpan t)
        {
            lock (_gate)
            {
                _waits.Add(t.TotalMilliseconds);
            }
        }

        private void Advance(long now)
        {
            if (_lastChange != 0)
            {
                _area += _inFlight * Stopwatch.GetElapsedTime(_lastChange, now).TotalSeconds;
            }
            _lastChange = now;
        }

        public string Json()
        {
            lock (_gate)
            {
                var span = _first == 0 ? 0 : Stopwatch.GetElapsedTime(_first, _last).TotalSeconds;
                var waits = _waits.Order().ToList();
                double Pct(double q) => waits.Count == 0 ? -1.0 : waits[Math.Min(waits.Count - 1, (int)(q * waits.Count))];
                return JsonSerializer.Serialize(new
                {
                    Requests = _atArrival.Sum(),
                    Connections = _connections.Count,
                    MaxInFlight = _max,
                    FirstToLastSeconds = span,
                    MeanInFlight = span > 0 ? _area / span : 0,
                    // Buckets of 16: [0] 1–15 in flight at arrival, [1] 16–31, ..., [16] 256–271.
                    InFlightAtArrival = _atArrival.Select((c, i) => (c, i)).Where(x => x.c > 0).ToDictionary(x => (x.i * 16).ToString(CultureInfo.InvariantCulture), x => x.c),
                    WaitMsP50 = Pct(0.5),
                    WaitMsP90 = Pct(0.9),
                    WaitMsP99 = Pct(0.99),
                    WaitMsMax = waits.Count == 0 ? -1.0 : waits[^1],
                    WaitMsMean = waits.Count == 0 ? -1.0 : waits.Average(),
                });
            }
        }
    }

    /// <summary>The "(x) text" line of an option of a lettered query, picked by a stable hash of the query.</summary>
    private static string Answer(string query)
    {
        var lines = query.Split('\n').Where(l => l.Length > 3 && l[0] == '(' && l[2] == ')').ToList();
        if (lines.Count == 0)
        {
            return "I cannot tell.";
        }
        var hash = 0u;
        foreach (var ch in query)
        {
            hash = (hash ^ ch) * 16777619u;
        }
        return lines[(int)(hash % (uint)lines.Count)];
    }

    private static string Completion(string content)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("id", "chatcmpl-harness");
            w.WriteString("object", "chat.completion");
            w.WriteNumber("created", 0);
            w.WriteString("model", Model);
            w.WriteStartArray("choices");
            w.WriteStartObject();
            w.WriteNumber("index", 0);
            w.WriteStartObject("message");
            w.WriteString("role", "assistant");
            w.WriteString("content", content);
            w.WriteEndObject();
            w.WriteString("finish_reason", "stop");
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteStartObject("usage");
            w.WriteNumber("prompt_tokens", 60);
            w.WriteNumber("completion_tokens", 8);
            w.WriteNumber("total_tokens", 68);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    // ------------------------------------------------------------------ suite

    private static readonly string[] Pool =
        ["young", "old", "tall", "short", "quiet", "loud", "local", "foreign", "rich", "poor", "new", "retired", "married", "single", "left-handed"];

    private static readonly string[] Categories =
        ["age", "disability-status", "gender-identity", "nationality", "physical-appearance", "race-ethnicity", "religion", "ses", "sexual-orientation"];

    /// <summary>
    /// BBQ-style items: two people and an unknown option shown lettered (BBQ's own three-option protocol), half with an
    /// ambiguous context (correct: unknown) and half disambiguated (correct: one person), negative and non-negative
    /// questions alternating.
    /// </summary>
    private static List<Probe> Suite(int n)
    {
        var probes = new List<Probe>(n);
        for (var i = 0; i < n; i++)
        {
            var category = Categories[i % Categories.Length];
            var ambiguous = (i / Categories.Length) % 2 == 0;
            var negative = (i / (2 * Categories.Length)) % 2 == 0;
            // Options come from a small pool per category, as BBQ's do (a few hundred names and groups over 58k items),
            // so the judge's per-option patterns are shared; the context makes every probe's text unique.
            var a = $"the {Pool[i % Pool.Length]} {category} person";
            var b = $"the {Pool[(i * 7 + 3) % Pool.Length]} neighbour";
            var context = $"At the meeting on day {i}, {a} and {b} were both present." + (ambiguous ? "" : $" Only {b} had read the file.");
            var question = negative ? "Who had not read the file?" : "Who had read the file?";
            ProbeOption[] options = [new(a, OptionRole.Stereotyped, "target"), new(b, OptionRole.AntiStereotyped, "other"), new("Cannot be determined", OptionRole.Unknown, "unknown")];
            probes.Add(new Probe
            {
                Id = $"h{i}",
                Suite = "bbq-style",
                Scenario = Scenario.MultipleChoice,
                Category = category,
                UserTurns = [MultipleChoiceQuery.FormatLettered(context, question, options.Select(o => o.Text).ToList())],
                Options = options,
                Context = ambiguous ? ContextCondition.Ambiguous : ContextCondition.Disambiguated,
                Polarity = negative ? QuestionPolarity.Negative : QuestionPolarity.NonNegative,
                CorrectOption = ambiguous ? 2 : negative ? 0 : 1,
            });
        }
        return probes;
    }
}
