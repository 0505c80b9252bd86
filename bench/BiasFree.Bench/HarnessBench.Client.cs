using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using BiasFree.Evaluations;
using BiasFree.Runs;
using BiasFree.Targets;

// The client process of the harness benchmark, in a file of its own so that bench/HarnessAotClient can compile the same
// code ahead of time (Native AOT) and the parent can measure it with harness --client-exe (docs/runs-and-reports.md,
// "Twelfth round").
internal static partial class HarnessBench
{
    private const string Model = "harness-scripted";

    /// <summary>What one client process measured.</summary>
    /// <param name="FirstRowMs">When the first row was stored, from the start of the measured window (the client's stderr).</param>
    /// <param name="SteadyRate">Probes per second from the first tenth of the rows stored to the ninth (the client's stderr).</param>
    /// <param name="ServerWaitMsP50">The median of the server's measured waits during the run (0: not measured).</param>
    private sealed record Measurement(int Probes, double WallSeconds, double CpuMs, long PeakRssBytes, long PeakManagedBytes, long ServerRequests,
        double FirstRowMs = 0, double SteadyRate = 0, double ServerWaitMsP50 = 0);

    private static async Task<long> ServerRequestsAsync(Uri server)
    {
        using var http = new HttpClient();
        return long.Parse(await http.GetStringAsync(new Uri(server.ToString().TrimEnd('/') + "/stats")).ConfigureAwait(false), CultureInfo.InvariantCulture);
    }

    // ------------------------------------------------------------------ client process

    internal static async Task<int> ClientAsync(IReadOnlyList<string> args)
    {
        string Arg(string name) => args.SkipWhile(a => a != name).Skip(1).First();
        var target = new Uri(Arg("--target"));
        var inFlight = int.Parse(Arg("--in-flight"), CultureInfo.InvariantCulture);
        var serverBefore = await ServerRequestsAsync(target).ConfigureAwait(false);

        // Peak managed heap: sampled, since the GC reports only the current size.
        long peakManaged = 0;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                var now = GC.GetGCMemoryInfo().HeapSizeBytes;
                peakManaged = Math.Max(peakManaged, Math.Max(now, GC.GetTotalMemory(false)));
                try
                {
                    await Task.Delay(20, sampling.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }
            }
        });

        var options = new OpenAICompatibleTargetOptions
        {
            Endpoint = target,
            Model = Model,
            ApiKeyEnvironmentVariable = null,
            MaxConnectionsPerServer = Math.Max(inFlight, 1),
        };
        var evaluation = new Evaluation([$"jsonl:{Arg("--suite")}"], EvaluationTarget.OpenAICompatible(options))
        {
            RunId = Arg("--run-id"),
            Settings = new EvaluationSettings { Concurrency = inFlight },
            // --precision H: an adaptive run (each cell stops once its BFS is known to ±H), for its memory.
            Precision = args.SkipWhile(a => a != "--precision").Skip(1).FirstOrDefault() is { } h ? double.Parse(h, CultureInfo.InvariantCulture) : null,
        };
        // --alloc-types: which types the managed allocations were, sampled by the runtime (one AllocationTick event per
        // ~100 KB allocated, naming the type of the object that crossed the mark), printed after the run.
        using var allocations = args.Contains("--alloc-types") ? new AllocationSampler() : null;
        using var self = Process.GetCurrentProcess();
        var cpu0 = self.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        // Where the wall time goes: phases of the run, and when each tenth of the rows was stored (a synchronous
        // IProgress: the runner reports under its lock, in order).
        var mainAt = DateTime.UtcNow;
        var timeline = new Timeline(clock);
        RunOutcome outcome;
        double openMs, startMs, runMs;
        await using (var store = await RunStore.OpenDirectoryAsync(Arg("--runs-dir")).ConfigureAwait(false))
        {
            openMs = clock.Elapsed.TotalMilliseconds;
            using var session = await evaluation.StartAsync(store).ConfigureAwait(false);
            startMs = clock.Elapsed.TotalMilliseconds;
            outcome = await session.RunAsync(timeline).ConfigureAwait(false);
            runMs = clock.Elapsed.TotalMilliseconds;
        }
        var wall = clock.Elapsed.TotalSeconds;
        ThreadPool.GetMinThreads(out var minWorkers, out _);
        await Console.Error.WriteLineAsync(JsonSerializer.Serialize(new Phases
        {
            // Milliseconds from the OS starting this process to the measured window (runtime start, JIT of Main, the stats call).
            ProcessStartToWindowMs = (mainAt - self.StartTime.ToUniversalTime()).TotalMilliseconds,
            WindowStartUtc = mainAt.ToString("O", CultureInfo.InvariantCulture),
            OpenMs = openMs,
            StartMs = startMs,
            RunMs = runMs,
            CloseMs = wall * 1000,
            // Wall milliseconds (from the window's start) at which 1, 10 %, 20 %, ..., 100 % of the rows were stored.
            FirstRowMs = timeline.FirstMs,
            DecilesMs = timeline.Deciles,
            ThreadPoolThreads = ThreadPool.ThreadCount,
            MinWorkerThreads = minWorkers,
            ThreadPoolCompleted = ThreadPool.CompletedWorkItemCount,
            Gen0 = GC.CollectionCount(0),
            Gen1 = GC.CollectionCount(1),
            Gen2 = GC.CollectionCount(2),
            GcPauseMs = GC.GetTotalPauseDuration().TotalMilliseconds,
            // Bytes the process allocated on the managed heap since it started, per row stored (start-up included).
            AllocatedKbPerRow = GC.GetTotalAllocatedBytes(precise: true) / 1024.0 / Math.Max(1, outcome.Completed),
        }, ClientJson.Default.Phases)).ConfigureAwait(false);
        allocations?.Print(outcome.Completed);
        self.Refresh();
        var cpuMs = (self.TotalProcessorTime - cpu0).TotalMilliseconds;
        await sampling.CancelAsync().ConfigureAwait(false);
        await sampler.ConfigureAwait(false);
        // Where the resident memory is at the end: the GC's committed memory, SQLite's own allocations (page caches,
        // statements; its high-water mark), anonymous and file-backed resident pages.
        var gcInfo = GC.GetGCMemoryInfo();
        await Console.Error.WriteLineAsync(JsonSerializer.Serialize(new MemoryAtEnd
        {
            GcCommittedMb = gcInfo.TotalCommittedBytes / 1e6,
            GcHeapMb = gcInfo.HeapSizeBytes / 1e6,
            GcFragmentedMb = gcInfo.FragmentedBytes / 1e6,
            SqliteNowMb = SQLitePCL.raw.sqlite3_memory_used() / 1e6,
            SqlitePeakMb = SQLitePCL.raw.sqlite3_memory_highwater(0) / 1e6,
            RssAnonMb = StatusKb("RssAnon") / 1024.0,
            RssFileMb = StatusKb("RssFile") / 1024.0,
            VmRssMb = StatusKb("VmRSS") / 1024.0,
            Rows = outcome.Completed,
        }, ClientJson.Default.MemoryAtEnd)).ConfigureAwait(false);
        if (!outcome.IsComplete || outcome.Errors > 0)
        {
            await Console.Error.WriteLineAsync($"run incomplete: {outcome}").ConfigureAwait(false);
            return 1;
        }
        // ServerRequests carries the server's count before the run; the parent subtracts it from the count after.
        Console.WriteLine(JsonSerializer.Serialize(new Measurement(outcome.Completed, wall, cpuMs, PeakRss(), peakManaged, serverBefore), ClientJson.Default.Measurement));
        return 0;
    }

    /// <summary>
    /// Managed allocations by type, from the runtime's GCAllocationTick events (Microsoft-Windows-DotNETRuntime, GC
    /// keyword, verbose): each event reports the bytes allocated since the last one (about 100 KB) and the type of the
    /// object that crossed the mark, so a type's share of the events estimates its share of the bytes.
    /// </summary>
    private sealed class AllocationSampler : System.Diagnostics.Tracing.EventListener
    {
        private readonly Dictionary<string, (long Events, long Bytes)> _byType = [];
        private readonly Dictionary<string, int> _collections = [];

        protected override void OnEventSourceCreated(System.Diagnostics.Tracing.EventSource eventSource)
        {
            if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
            {
                EnableEvents(eventSource, System.Diagnostics.Tracing.EventLevel.Verbose, (System.Diagnostics.Tracing.EventKeywords)0x1);
            }
        }

        protected override void OnEventWritten(System.Diagnostics.Tracing.EventWrittenEventArgs eventData)
        {
            if (eventData.EventName?.StartsWith("GCStart", StringComparison.Ordinal) ?? false)
            {
                // Each collection's generation and reason (the runtime's gc_reason: 0 small-object budget, 1 induced,
                // 4 large-object budget, ...), to see what brings the gen-2 collections.
                var n = eventData.PayloadNames!;
                var key = $"gen {eventData.Payload![n.IndexOf("Depth")]} reason {eventData.Payload[n.IndexOf("Reason")]}";
                lock (_byType)
                {
                    _collections[key] = _collections.GetValueOrDefault(key) + 1;
                }
                return;
            }
            if (!eventData.EventName?.StartsWith("GCAllocationTick", StringComparison.Ordinal) ?? true)
            {
                return;
            }
            var names = eventData.PayloadNames!;
            var type = eventData.Payload![names.IndexOf("TypeName")] as string ?? "?";
            var amountAt = names.IndexOf("AllocationAmount64");
            var bytes = amountAt >= 0 ? Convert.ToInt64(eventData.Payload[amountAt], CultureInfo.InvariantCulture) : 100_000;
            lock (_byType)
            {
                var (e, b) = _byType.GetValueOrDefault(type);
                _byType[type] = (e + 1, b + bytes);
            }
        }

        public void Print(long rows)
        {
            lock (_byType)
            {
                var total = _byType.Values.Sum(v => v.Bytes);
                Console.Error.WriteLine($"collections: {string.Join(", ", _collections.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}: {kv.Value}"))}");
                Console.Error.WriteLine($"allocation samples: {_byType.Values.Sum(v => v.Events)} events, {total / 1e6:F1} MB");
                foreach (var (type, (events, bytes)) in _byType.OrderByDescending(kv => kv.Value.Bytes).Take(30))
                {
                    Console.Error.WriteLine($"  {100.0 * bytes / total,5:F1} %  {bytes / 1024.0 / Math.Max(1, rows),7:F2} KB/row  {events,6}  {type}");
                }
            }
        }
    }

    /// <summary>Stopwatch times of the first stored row and of each tenth of the run's rows.</summary>
    private sealed class Timeline(Stopwatch clock) : IProgress<RunProgress>
    {
        public double FirstMs { get; private set; } = -1.0;

        public double[] Deciles { get; } = Enumerable.Repeat(-1.0, 10).ToArray();

        public void Report(RunProgress value)
        {
            var done = value.Done - value.Skipped;
            var total = value.Total - value.Skipped;
            if (done <= 0 || total <= 0)
            {
                return;
            }
            var now = clock.Elapsed.TotalMilliseconds;
            if (FirstMs < 0)
            {
                FirstMs = now;
            }
            var decile = (int)((long)done * 10 / total) - 1;
            if (decile >= 0 && Deciles[decile] < 0)
            {
                Deciles[decile] = now;
            }
        }
    }

    /// <summary>The client's phases line (stderr): where the wall time went, the collections and the allocations.</summary>
    private sealed class Phases
    {
        public double ProcessStartToWindowMs { get; init; }
        public string WindowStartUtc { get; init; } = "";
        public double OpenMs { get; init; }
        public double StartMs { get; init; }
        public double RunMs { get; init; }
        public double CloseMs { get; init; }
        public double FirstRowMs { get; init; }
        public double[] DecilesMs { get; init; } = [];
        public int ThreadPoolThreads { get; init; }
        public int MinWorkerThreads { get; init; }
        public long ThreadPoolCompleted { get; init; }
        public int Gen0 { get; init; }
        public int Gen1 { get; init; }
        public int Gen2 { get; init; }
        public double GcPauseMs { get; init; }
        public double AllocatedKbPerRow { get; init; }
    }

    /// <summary>The client's memory line (stderr), written after the run.</summary>
    private sealed class MemoryAtEnd
    {
        public double GcCommittedMb { get; init; }
        public double GcHeapMb { get; init; }
        public double GcFragmentedMb { get; init; }
        public double SqliteNowMb { get; init; }
        public double SqlitePeakMb { get; init; }
        public double RssAnonMb { get; init; }
        public double RssFileMb { get; init; }
        public double VmRssMb { get; init; }
        public int Rows { get; init; }
    }

    /// <summary>Source-generated JSON for the client's output lines, so that a Native AOT build writes them as the JIT build
    /// does (reflection-based serialisation of these types loses their properties once trimmed).</summary>
    [System.Text.Json.Serialization.JsonSerializable(typeof(Measurement))]
    [System.Text.Json.Serialization.JsonSerializable(typeof(Phases))]
    [System.Text.Json.Serialization.JsonSerializable(typeof(MemoryAtEnd))]
    private sealed partial class ClientJson : System.Text.Json.Serialization.JsonSerializerContext;

    /// <summary>Peak resident set size (VmHWM) of this process, in bytes.</summary>
    private static long PeakRss() => StatusKb("VmHWM") * 1024;

    /// <summary>A kB field of /proc/self/status (0 where there is none).</summary>
    private static long StatusKb(string field)
    {
        if (!File.Exists("/proc/self/status"))
        {
            return 0;
        }
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
    }
}
