using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using BiasFree.Engine.Kernels;
using BiasFree.Engine.Models;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>Settings of the default (engine) benchmark.</summary>
internal sealed record EngineBenchOptions(bool Quick, int[] Batches, int PromptLength, int Steps, ScalarType[] DTypes, int Threads,
    int Repeats, string Peer, string? Python, string? PeerScript);

/// <summary>
/// Prefill and greedy-decode throughput of the random ~125M-parameter bench Llama, per dtype and batch size, set against
/// (a) the memory-bandwidth bound and (b) a peer: an eager PyTorch loop written like HF transformers' modeling_llama
/// (bench/engine/peer.py), run on the same weights (exported to safetensors), the same prompt ids and the same number
/// of threads. The peer runs in its own process and answers one measurement per request, so engine and peer alternate
/// cell by cell (A B B A A B ...) and every figure is the median of --repeats: the machine this runs on is shared.
/// Without a python3 that imports torch the table shows the engine alone.
/// </summary>
internal static class EngineBench
{
    private sealed record Cell(double PrefillTokS, double DecodeTokS, double DecodeMsStep, double CpuMsStep, long[] Tokens);

    public static int Run(EngineBenchOptions o)
    {
        torch.set_num_threads(o.Threads);
        var config = BenchModel.Config(layers: o.Quick ? 4 : 12, vocabulary: o.Quick ? 8000 : 32000);
        AnsiConsole.MarkupLine($"[bold]BiasFree engine benchmark[/] — torch threads {torch.get_num_threads()}, prompt {o.PromptLength}, {o.Steps} greedy decode steps, median of {o.Repeats}{(o.Quick ? " (quick: reduced model)" : "")}");
        var (read, copy) = MeasureBandwidth();
        double bandwidth = Math.Max(read, copy);
        AnsiConsole.MarkupLine($"Memory bandwidth: read {read / 1e9:F1} GB/s (sum over a 512 MiB fp32 tensor), copy {copy / 1e9:F1} GB/s (copy_ of 512 MiB into another tensor, read + written bytes); best of 5 each. The bound uses the larger, {bandwidth / 1e9:F1} GB/s.");

        var models = o.DTypes.ToDictionary(d => d, d => CausalLM.Create(config, d, "cpu", seed: 1));
        using var peer = PeerProcess.Start(o, models[o.DTypes[0]], config);
        AnsiConsole.MarkupLine(peer is null ? "[yellow]engine alone[/]: no peer (" + Markup.Escape(PeerProcess.WhyNot ?? "disabled") + ")"
            : $"Peer: eager PyTorch {peer.Hello["torch"]} (HF modeling_llama-style loop, {peer.Hello["attention"]} attention, DynamicCache by torch.cat), threads {peer.Hello["threads"]}, same weights and prompts");

        var rng = new Random(7);
        var prompts = o.Batches.ToDictionary(b => b, b => Enumerable.Range(0, b).Select(_ => (IReadOnlyList<int>)Enumerable.Range(0, o.PromptLength).Select(_ => rng.Next(config.VocabSize)).ToList()).ToList());
        var engineCells = new Dictionary<(ScalarType, int), List<Cell>>();
        var peerCells = new Dictionary<(ScalarType, int), List<Cell>>();
        int turn = 0;
        for (int r = 0; r < o.Repeats; r++)
        {
            foreach (var dtype in o.DTypes)
            {
                foreach (int batch in o.Batches)
                {
                    // Alternate which side goes first, so neither always runs right after the other's allocations.
                    bool engineFirst = turn++ % 2 == 0;
                    for (int side = 0; side < 2; side++)
                    {
                        bool engine = (side == 0) == engineFirst;
                        var cell = engine ? MeasureEngine(models[dtype], prompts[batch], o.PromptLength, o.Steps)
                            : peer?.Measure(dtype, prompts[batch], o.PromptLength, o.Steps);
                        if (cell is null) continue;
                        Add(engine ? engineCells : peerCells, (dtype, batch), cell);
                        AnsiConsole.MarkupLine($"[grey]  {(engine ? "engine" : "peer")} {dtype} batch {batch}: decode {cell.DecodeTokS:F1} tok/s ({cell.DecodeMsStep:F1} ms/step, CPU {cell.CpuMsStep:F1} ms/step), prefill {cell.PrefillTokS:F0} tok/s[/]");
                    }
                }
            }
            AnsiConsole.MarkupLine($"[grey]repeat {r + 1}/{o.Repeats} done[/]");
        }

        var table = new Table().Border(TableBorder.Rounded);
        var columns = new List<string> { "dtype", "batch", "prefill tok/s", "decode tok/s", "ms/step", "CPU ms/step", "% of BW bound", "(incl. embedding)", "vs batch 1" };
        if (peer is not null) columns.AddRange(["peer decode tok/s", "engine / peer", "peer CPU ms/step", "engine / peer by CPU", "peer prefill tok/s", "same greedy tokens"]);
        foreach (var c in columns) table.AddColumn(new TableColumn(c).RightAligned());
        foreach (var dtype in o.DTypes)
        {
            var model = models[dtype];
            double elem = dtype == ScalarType.BFloat16 ? 2.0 : 4.0;
            long parameters = model.ParameterCount();
            long embedding = (long)config.VocabSize * config.HiddenSize;
            double batch1 = engineCells.TryGetValue((dtype, 1), out var b1) ? Median(b1, c => c.DecodeTokS) : double.NaN;
            foreach (int batch in o.Batches)
            {
                var cells = engineCells[(dtype, batch)];
                double tokS = Median(cells, c => c.DecodeTokS);
                double stepsPerSec = tokS / batch;
                // Bytes one decode step must read: every weight matrix it multiplies by (all parameters except the
                // embedding table, of which a step reads one row per sequence) plus the keys and values cached so far
                // (on average prompt + steps/2 positions per sequence).
                double kvBytes = 2.0 * config.NumHiddenLayers * batch * config.NumKeyValueHeads * config.HeadDim * (o.PromptLength + o.Steps / 2.0) * elem;
                double stepBytes = (parameters - embedding) * elem + kvBytes;
                double fraction = stepsPerSec / (bandwidth / stepBytes);
                double fractionOld = stepsPerSec / (bandwidth / (parameters * elem + kvBytes));
                var row = new List<string>
                {
                    dtype == ScalarType.BFloat16 ? "bf16" : "fp32", $"{batch}", $"{Median(cells, c => c.PrefillTokS):F0}", $"{tokS:F1}",
                    $"{Median(cells, c => c.DecodeMsStep):F1}", $"{Median(cells, c => c.CpuMsStep):F1}", $"{fraction * 100:F0}%",
                    $"{fractionOld * 100:F0}%", double.IsNaN(batch1) ? "–" : $"{tokS / batch1:F2}×",
                };
                if (peer is not null)
                {
                    var p = peerCells[(dtype, batch)];
                    double peerTokS = Median(p, c => c.DecodeTokS);
                    double peerCpu = Median(p, c => c.CpuMsStep);
                    row.AddRange([$"{peerTokS:F1}", $"{tokS / peerTokS:F2}×", $"{peerCpu:F1}", $"{peerCpu / Median(cells, c => c.CpuMsStep):F2}×",
                        $"{Median(p, c => c.PrefillTokS):F0}", SameTokens(cells[0].Tokens, p[0].Tokens)]);
                }
                table.AddRow(row.ToArray());
            }
        }
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("[grey]decode tok/s: batch × greedy steps / wall seconds of the decode loop (greedy choice by the engine's ArgMax.LastDim, which brings one token id per row to the host per step, as TextGeneration does); median of the repeats.[/]");
        AnsiConsole.MarkupLine("[grey]% of BW bound: decode steps/s ÷ (bandwidth ÷ bytes a step reads: every weight except the embedding table, plus the KV cache). (incl. embedding): the same with the whole embedding table counted, the formula #11's figures used.[/]");
        AnsiConsole.MarkupLine("[grey]CPU ms/step: process CPU time per decode step (all threads); wall far above CPU ÷ threads means the machine was contended. engine / peer by CPU: peer CPU ms/step ÷ engine CPU ms/step, the work each does per step (with one thread it is not inflated by waiting for a descheduled thread).[/]");
        if (peer is not null)
            AnsiConsole.MarkupLine("[grey]same greedy tokens: row 0's greedy tokens, engine vs peer (fp32 should agree; bf16 rounding may flip a near-tie, after which the sequences differ).[/]");
        using var proc = Process.GetCurrentProcess();
        AnsiConsole.MarkupLine($"[grey]engine process peak working set {proc.PeakWorkingSet64 / 1e6:F0} MB (both models loaded).[/]");
        foreach (var m in models.Values) m.Dispose();
        return 0;
    }

    /// <summary>
    /// <c>kernels</c>: CPU time of the bf16 matrix products of one decode step of the bench model (per layer the fused
    /// q/k/v 1280×768, o_proj 768×768, the fused gate/up 4096×768 and down_proj 768×2048, then the lm_head 32000×768;
    /// every layer its own weights, 200 MB in all, so they come from memory as in a real step), per row count of x,
    /// through (a) libtorch's <c>linear</c> (oneDNN), (b) Bf16Linear's streaming kernel, (c) its tiled kernel, one torch
    /// thread, and (d) libtorch's <c>linear</c> on float32 copies of the same weights and x (twice the bytes; is float32
    /// faster at some row count?). The paths alternate within each repeat; the table shows medians and lowest–highest. This is the
    /// measurement behind <see cref="Bf16Linear.StreamRows"/> and <see cref="Bf16Linear.MaxRows"/>.
    /// </summary>
    public static int RunKernels(IReadOnlyList<string> args)
    {
        torch.set_num_threads(BenchSupport.Int(args, "--threads", 1));
        int repeats = BenchSupport.Int(args, "--repeats", 5);
        int[] rowCounts = (BenchSupport.Arg(args, "--rows") ?? "1,2,3,4,6,8,12,16,24,32").Split(',').Select(int.Parse).ToArray();
        var config = BenchModel.Config();
        int h = config.HiddenSize, kv = config.NumKeyValueHeads * config.HeadDim, inter = config.IntermediateSize;
        var shapes = new List<(string Name, long N, long K)>();
        for (int l = 0; l < config.NumHiddenLayers; l++)
            shapes.AddRange([("qkv", h + 2 * kv, h), ("o", h, h), ("gate/up", 2 * inter, h), ("down", h, inter)]);
        shapes.Add(("lm_head", config.VocabSize, h));
        using var _ = inference_mode();
        using var g = new Generator(3);
        var weights = shapes.Select(s => randn([s.N, s.K], generator: g).Times(0.05).to_type(ScalarType.BFloat16)).ToList();
        var weights32 = weights.Select(w => w.to_type(ScalarType.Float32)).ToList();
        AnsiConsole.MarkupLine($"[bold]bf16 decode products of one step[/] ({weights.Sum(w => w.numel()) * 2 / 1e6:F0} MB of weights), 1 torch thread, CPU ms per step, median of {repeats} (lowest–highest); load average {BenchSupport.LoadAverage():F1}");
        string[] paths = ["libtorch linear (oneDNN)", "Bf16Linear streaming", "Bf16Linear tiled", "libtorch linear, float32"];
        var table = new Table().Border(TableBorder.Rounded).AddColumn(new TableColumn("rows").RightAligned());
        foreach (var p in paths) table.AddColumn(new TableColumn(p).RightAligned());
        table.AddColumn(new TableColumn("best").RightAligned());
        foreach (int rows in rowCounts)
        {
            var xs = shapes.Select(s => (randn([rows, s.K], generator: g)).to_type(ScalarType.BFloat16)).ToList();
            var xs32 = xs.Select(x => x.to_type(ScalarType.Float32)).ToList();
            var times = paths.Select(_ => new List<double>()).ToArray();
            for (int r = 0; r <= repeats; r++) // the first round warms up (first-call compilation, oneDNN's kernel choice)
            {
                for (int p = 0; p < paths.Length; p++)
                {
                    int path = (p + r) % paths.Length; // rotate which path goes first
                    var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                    for (int i = 0; i < weights.Count; i++)
                    {
                        using var y = path switch
                        {
                            0 => nn.functional.linear(xs[i], weights[i]),
                            1 => Bf16Linear.TryForward(xs[i], weights[i], null, 1, 64, 64)!,
                            2 => Bf16Linear.TryForward(xs[i], weights[i], null, 1, 64, 0)!,
                            _ => nn.functional.linear(xs32[i], weights32[i]),
                        };
                    }
                    if (r > 0) times[path].Add((Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds);
                }
            }
            var medians = times.Select(t => t.Order().ElementAt(t.Count / 2)).ToArray();
            int best = Array.IndexOf(medians, medians.Min());
            table.AddRow([$"{rows}", .. times.Select((t, i) => $"{medians[i]:F1} ({t.Min():F1}–{t.Max():F1})"), paths[best]]);
            foreach (var x in xs.Concat(xs32)) x.Dispose();
        }
        AnsiConsole.Write(table);
        foreach (var w in weights.Concat(weights32)) w.Dispose();
        return 0;
    }

    private static void Add(Dictionary<(ScalarType, int), List<Cell>> d, (ScalarType, int) key, Cell c)
    {
        if (!d.TryGetValue(key, out var list)) d[key] = list = [];
        list.Add(c);
    }

    private static double Median(List<Cell> cells, Func<Cell, double> f)
    {
        var v = cells.Select(f).Order().ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    private static string SameTokens(long[] a, long[] b)
    {
        int n = Math.Min(a.Length, b.Length);
        for (int i = 0; i < n; i++)
            if (a[i] != b[i]) return $"first {i} of {n}";
        return a.Length == b.Length ? "yes" : $"first {n}";
    }

    /// <summary>One warm-up prefill, then a timed prefill and <paramref name="steps"/> timed greedy decode steps.</summary>
    private static Cell MeasureEngine(CausalLM model, List<IReadOnlyList<int>> prompt, int promptLength, int steps)
    {
        int batch = prompt.Count;
        using var _ = inference_mode();
        // Warm-up (first-call allocations, oneDNN kernel selection): a short prefill and two decode steps, the same
        // the peer does.
        using (var cache = model.NewCache(promptLength + steps + 1))
        using (var scope = NewDisposeScope())
        {
            var shortPrompt = prompt.Select(p => (IReadOnlyList<int>)p.Take(Math.Min(8, p.Count)).ToList()).ToList();
            var o = model.Forward(model.IdsTensor(shortPrompt), new ForwardArgs { Cache = cache, LastTokenLogitsOnly = true });
            for (int i = 0; i < 2; i++)
                o = model.Forward(o.Logits.select(1, -1).argmax(-1, keepdim: true), new ForwardArgs { Cache = cache });
        }

        using var kv = model.NewCache(promptLength + steps + 1);
        var sw = Stopwatch.StartNew();
        Tensor next;
        using (var scope = NewDisposeScope())
        {
            var output = model.Forward(model.IdsTensor(prompt), new ForwardArgs { Cache = kv, LastTokenLogitsOnly = true });
            next = tensor(ArgMax.LastDim(output.Logits.select(1, -1)), [batch, 1], ScalarType.Int64).DetachFromDisposeScope();
        }
        double prefillSec = sw.Elapsed.TotalSeconds;

        var tokens = new long[steps];
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        sw.Restart();
        for (int s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            var output = model.Forward(next, new ForwardArgs { Cache = kv });
            // The host needs each step's tokens (EOS, streaming), as a real loop does; the engine's greedy choice
            // (TextGeneration, the continuous batcher) brings them there and feeds them back as the next input.
            var ids = ArgMax.LastDim(output.Logits.select(1, -1));
            tokens[s] = ids[0];
            next.Dispose();
            next = tensor(ids, [batch, 1], ScalarType.Int64).DetachFromDisposeScope();
        }
        double decodeSec = sw.Elapsed.TotalSeconds;
        double cpuMs = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMilliseconds;
        next.Dispose();
        return new Cell(batch * promptLength / prefillSec, batch * steps / decodeSec, decodeSec / steps * 1000, cpuMs / steps, tokens);
    }

    /// <summary>Read bandwidth (a sum reads every byte once) and copy bandwidth (copy_ reads and writes every byte), best of 5.</summary>
    private static (double Read, double Copy) MeasureBandwidth()
    {
        using var _ = no_grad();
        using var src = ones([128L << 20], ScalarType.Float32);
        using var dst = empty([128L << 20], ScalarType.Float32);
        using (var warm = src.sum()) { }
        dst.copy_(src);
        double bestRead = double.MaxValue, bestCopy = double.MaxValue;
        for (int i = 0; i < 5; i++)
        {
            var sw = Stopwatch.StartNew();
            using (var s = src.sum()) { }
            bestRead = Math.Min(bestRead, sw.Elapsed.TotalSeconds);
            sw.Restart();
            dst.copy_(src);
            bestCopy = Math.Min(bestCopy, sw.Elapsed.TotalSeconds);
        }
        double bytes = src.numel() * 4.0;
        return (bytes / bestRead, 2 * bytes / bestCopy);
    }

    /// <summary>bench/engine/peer.py running as a child process, one JSON request and answer per line.</summary>
    private sealed class PeerProcess : IDisposable
    {
        public static string? WhyNot { get; private set; }
        private readonly Process _process;
        private readonly string _folder;
        public JsonObject Hello { get; }

        private PeerProcess(Process process, string folder, JsonObject hello) => (_process, _folder, Hello) = (process, folder, hello);

        public static PeerProcess? Start(EngineBenchOptions o, CausalLM anyModel, ModelConfig config)
        {
            if (o.Peer == "off") { WhyNot = "--peer off"; return null; }
            string? script = o.PeerScript ?? FindScript();
            if (script is null) { WhyNot = "bench/engine/peer.py not found; pass --peer-script"; return null; }
            // A python3 on PATH (pyenv, venv) may lack the system's python3-torch, so the system interpreter is tried next.
            string[] candidates = o.Python is { } given ? [given] : ["python3", "/usr/bin/python3"];
            string? python = candidates.FirstOrDefault(c => Succeeds(c, "-c \"import torch\""));
            if (python is null) { WhyNot = $"no python among {string.Join(", ", candidates)} imports torch; apt-get install python3-torch to compare"; return null; }
            // The peer reads the fp32 weights of the same seed and rounds them itself for bf16, as the engine's bf16
            // model does (both round to nearest even).
            string folder = Path.Combine(Path.GetTempPath(), $"biasfree-bench-peer-{Environment.ProcessId}");
            using (var fp32 = anyModel.DType == ScalarType.Float32 ? null : CausalLM.Create(config, ScalarType.Float32, "cpu", seed: 1))
                (fp32 ?? anyModel).Save(folder);
            var psi = new ProcessStartInfo(python) { RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var a in new[] { script, "--model", folder, "--threads", o.Threads.ToString(CultureInfo.InvariantCulture) }) psi.ArgumentList.Add(a);
            var p = Process.Start(psi)!;
            var hello = JsonNode.Parse(p.StandardOutput.ReadLine() ?? throw new InvalidOperationException("the peer exited at start"))!.AsObject();
            return new PeerProcess(p, folder, hello);
        }

        public Cell Measure(ScalarType dtype, List<IReadOnlyList<int>> prompt, int promptLength, int steps)
        {
            var request = new JsonObject
            {
                ["dtype"] = dtype == ScalarType.BFloat16 ? "bfloat16" : "float32", ["batch"] = prompt.Count, ["prompt"] = promptLength, ["steps"] = steps,
                ["ids"] = JsonSerializer.SerializeToNode(prompt),
            };
            _process.StandardInput.WriteLine(request.ToJsonString());
            _process.StandardInput.Flush();
            var answer = JsonNode.Parse(_process.StandardOutput.ReadLine() ?? throw new InvalidOperationException("the peer exited"))!;
            return new Cell((double)answer["prefill_tok_s"]!, (double)answer["decode_tok_s"]!, (double)answer["decode_ms_step"]!,
                (double)answer["cpu_ms_step"]!, answer["tokens"]!.AsArray().Select(t => (long)t!).ToArray());
        }

        public void Dispose()
        {
            _process.StandardInput.Close();
            if (!_process.WaitForExit(10_000)) _process.Kill();
            _process.Dispose();
            try { Directory.Delete(_folder, recursive: true); } catch (IOException) { }
        }

        private static string? FindScript()
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "bench", "engine", "peer.py");
                if (File.Exists(candidate)) return candidate;
            }
            return null;
        }

        private static bool Succeeds(string file, string arguments)
        {
            try
            {
                using var p = Process.Start(new ProcessStartInfo(file, arguments) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false })!;
                p.WaitForExit();
                return p.ExitCode == 0;
            }
            catch (System.ComponentModel.Win32Exception)
            {
                return false;
            }
        }
    }
}
