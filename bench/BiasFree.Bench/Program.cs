using System.CommandLine;
using System.Diagnostics;
using BiasFree.Engine.Models;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

// Engine benchmark: prefill and decode throughput of a random ~125M-parameter Llama at several batch sizes, in fp32
// and bf16, with peak memory and decode speed relative to the memory-bandwidth bound (every decode step must read all
// weights once, so tokens/s <= batch * bandwidth / model bytes).
//
// Usage: dotnet run -c Release --project bench/BiasFree.Bench [-- --quick] [--batches 1,8,32] [--prompt 128] [--steps 32]
//        [--dtypes float32,bfloat16] [--threads N]   (--help lists them)
//    or: dotnet run -c Release --project bench/BiasFree.Bench -- serving ...   (in-process serving with continuous
//        batching; see ServingBench.cs)
//    or: dotnet run -c Release --project bench/BiasFree.Bench -- white-box ...   (FairSteer/BiasFilter evidence and
//        overhead on the demo model; see WhiteBoxBench.cs)
//    or: dotnet run -c Release --project bench/BiasFree.Bench -- decoding-costs --runs-dir DIR --run-id ID   (tokens per
//        answer and tokens/s per method of a stored run; see DecodingCostsBench.cs)
//    or: dotnet run -c Release --project bench/BiasFree.Bench -- training [--quick] ...   (LoRA SFT training tokens/s and
//        peak memory in fp32 and bf16; see TrainingBench.cs)
//    or: dotnet run -c Release --project bench/BiasFree.Bench -- adaptive [--items 15000] [--precision 0.02]   (queries
//        adaptive sampling needs vs a full run; see AdaptiveBench.cs)
//    or: dotnet run -c Release --project bench/BiasFree.Bench -- diffpo [--layers 12] [--tokens 32] [--windows 8,32]   (DiffPO's
//        Jacobi refinement vs greedy decoding, tokens/s; see DiffPoBench.cs)
//    or: dotnet run -c Release --project bench/BiasFree.Bench -- ivo [--quick] [--tokens 32] [--repeats 5]   (IVO tokenwise and
//        blockwise vs plain sampling, tokens/s and value evaluations per token; see IvoBench.cs)
//    or: dotnet run -c Release --project bench/BiasFree.Bench -- memory [--probes 10000,50000]   (peak RSS of a whole run and
//        its report at several suite sizes against a scripted target; see MemoryBench.cs)
//    or: dotnet run -c Release --project bench/BiasFree.Bench -- harness [--quick] [--sizes 10000,50000] [--in-flight 32,256]
//        [--latencies 0,50] [--repeats N]   (harness overhead of a real run against a loopback OpenAI-compatible server:
//        throughput, CPU per probe, peak memory, answers/s from the cache; see HarnessBench.cs)

if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 160;
var quickOption = new Option<bool>("--quick") { Description = "Reduced model and sizes (4 layers, 8k vocabulary; batches 1,8; prompt 32; 8 steps)." };
var batchesOption = new Option<string?>("--batches") { Description = "Comma list of batch sizes (default 1,8,32; quick 1,8)." };
var promptOption = new Option<int?>("--prompt") { Description = "Prompt length in tokens (default 128; quick 32)." };
var stepsOption = new Option<int?>("--steps") { Description = "Decode steps timed (default 32; quick 8)." };
var dtypesOption = new Option<string>("--dtypes") { Description = "Comma list: float32, bfloat16.", DefaultValueFactory = _ => "float32,bfloat16" };
var threadsOption = new Option<int?>("--threads") { Description = "Torch intra-op threads (default: torch's choice)." };
// ServingBench reads its own options (--probes, --in-flight, --lone, --max-tokens, --kv-cache-mb, --threads, --model,
// --layers) from the raw arguments, so the parser lets them through.
var serving = new Command("serving", "In-process serving with continuous batching: --probes N, --in-flight N, --lone N, --max-tokens N, " +
    "--kv-cache-mb N, --threads N, --model FOLDER or --layers N (see ServingBench.cs).") { TreatUnmatchedTokensAsErrors = false };
serving.SetAction(async (_, _) => await ServingBench.RunAsync(args.ToList()));
var whiteBox = new Command("white-box", "FairSteer/BiasFilter evidence and overhead on the demo model: --model FOLDER, --steering DIR, --probes N, " +
    "--temperature T, --max-tokens N, --reward-model F --reward-ref F, --out FILE (see WhiteBoxBench.cs).") { TreatUnmatchedTokensAsErrors = false };
whiteBox.SetAction(async (_, _) => await WhiteBoxBench.RunAsync(args.ToList()));
var decodingCosts = new Command("decoding-costs", "Per method of a stored run: target tokens per answer and tokens/s with 95 % bootstrap intervals: --runs-dir DIR --run-id ID (see DecodingCostsBench.cs).") { TreatUnmatchedTokensAsErrors = false };
decodingCosts.SetAction(async (_, _) => await DecodingCostsBench.RunAsync(args.Skip(1).ToList()));
var diffPo = new Command("diffpo", "DiffPO's Jacobi refinement vs greedy decoding on the random bench model: --layers N, --tokens N, --windows 8,32, --prompt N, --repeats N, --threads N (see DiffPoBench.cs).") { TreatUnmatchedTokensAsErrors = false };
diffPo.SetAction(_ => DiffPoBench.Run(args.Skip(1).ToList()));
var ivo = new Command("ivo", "IVO tokenwise and blockwise vs plain sampling on the random bench model (untrained value head): --quick, --tokens N, --prompt N, --repeats N, --beta B, --candidates K, --block-tokens L, --beams W, --blocks B, --threads N (see IvoBench.cs).") { TreatUnmatchedTokensAsErrors = false };
ivo.SetAction(_ => IvoBench.Run(args.Skip(1).ToList()));
var training = TrainingBench.Build();
var adaptive = new Command("adaptive", "Queries adaptive sampling (--precision) needs vs a full run on a 15k-item BBQ-size suite with a scripted target: --items N, --precision P, --seed N (see AdaptiveBench.cs).") { TreatUnmatchedTokensAsErrors = false };
adaptive.SetAction(async (_, _) => await AdaptiveBench.RunAsync(args.Skip(1).ToList()));
var memory = new Command("memory", "Peak RSS of a whole run (suite, run, report) per suite size, one child process each, scripted target: --probes 10000,50000, --concurrency N, --resamples N (see MemoryBench.cs).") { TreatUnmatchedTokensAsErrors = false };
memory.SetAction(async (_, _) => await MemoryBench.RunAsync(args.Skip(1).ToList()));
var harness = new Command("harness", "Harness overhead of the real run path against a loopback OpenAI-compatible server with fixed latency: --quick, --sizes 10000,50000, --in-flight 32,256, --latencies 0,50, --repeats N (see HarnessBench.cs).") { TreatUnmatchedTokensAsErrors = false };
harness.SetAction(async (_, _) => await HarnessBench.RunAsync(args.Skip(1).ToList()));
var root = new RootCommand("BiasFree engine benchmark: prefill and decode throughput of a random ~125M-parameter Llama, in fp32 and bf16.")
{
    quickOption, batchesOption, promptOption, stepsOption, dtypesOption, threadsOption, serving, whiteBox, decodingCosts, training, adaptive, diffPo, ivo, memory, harness,
};
var parsed = root.Parse(args);
if (parsed.Errors.Count > 0 || parsed.Action is not null)
{
    return await parsed.InvokeAsync(); // serving, --help, --version, or the parse errors with a usage hint
}

bool quick = parsed.GetValue(quickOption);
int[] batches = (parsed.GetValue(batchesOption) ?? (quick ? "1,8" : "1,8,32")).Split(',').Select(int.Parse).ToArray();
int promptLen = parsed.GetValue(promptOption) ?? (quick ? 32 : 128);
int steps = parsed.GetValue(stepsOption) ?? (quick ? 8 : 32);
var dtypes = parsed.GetValue(dtypesOption)!.Split(',')
    .Select(d => d == "bfloat16" ? ScalarType.BFloat16 : ScalarType.Float32).ToArray();
if (parsed.GetValue(threadsOption) is int th) torch.set_num_threads(th);

var config = BenchModel.Config(layers: quick ? 4 : 12, vocabulary: quick ? 8000 : 32000);

AnsiConsole.MarkupLine($"[bold]BiasFree engine benchmark[/] — torch threads {torch.get_num_threads()}, prompt {promptLen}, {steps} decode steps{(quick ? " (quick: reduced model)" : "")}");
double bandwidth = MeasureReadBandwidth();
AnsiConsole.MarkupLine($"Measured read bandwidth: [bold]{bandwidth / 1e9:F1} GB/s[/] (sum over a 512 MiB tensor, best of 5)");

var table = new Table().Border(TableBorder.Rounded);
foreach (var c in new[] { "dtype", "params", "model MB", "batch", "prefill tok/s", "decode tok/s", "decode ms/step", "CPU ms/step", "% of BW bound", "peak WS MB", "GC MB" })
    table.AddColumn(new TableColumn(c).RightAligned());

foreach (var dtype in dtypes)
{
    using var model = CausalLM.Create(config, dtype, "cpu", seed: 1);
    long parameters = model.ParameterCount();
    double modelBytes = parameters * (dtype == ScalarType.BFloat16 ? 2.0 : 4.0);
    var rng = new Random(7);
    foreach (int batch in batches)
    {
        var prompt = Enumerable.Range(0, batch).Select(_ => (IReadOnlyList<int>)Enumerable.Range(0, promptLen).Select(_ => rng.Next(config.VocabSize)).ToList()).ToList();
        using var _ = no_grad();
        // Warm-up (first-call allocations, oneDNN kernel selection).
        using (var cache = model.NewCache(promptLen + steps + 1))
        using (var scope = NewDisposeScope())
            model.Forward(model.IdsTensor(prompt), new ForwardArgs { Cache = cache, LastTokenLogitsOnly = true });

        using var kv = model.NewCache(promptLen + steps + 1);
        var sw = Stopwatch.StartNew();
        Tensor next;
        using (var scope = NewDisposeScope())
        {
            var output = model.Forward(model.IdsTensor(prompt), new ForwardArgs { Cache = kv, LastTokenLogitsOnly = true });
            next = output.Logits.select(1, -1).argmax(-1, keepdim: true).DetachFromDisposeScope();
        }
        double prefillSec = sw.Elapsed.TotalSeconds;

        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        sw.Restart();
        for (int s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            var output = model.Forward(next, new ForwardArgs { Cache = kv });
            var chosen = output.Logits.select(1, -1).argmax(-1, keepdim: true).DetachFromDisposeScope();
            next.Dispose();
            next = chosen;
        }
        long last = next.cpu().data<long>()[0]; // make sure the last step finished
        GC.KeepAlive(last);
        double decodeSec = sw.Elapsed.TotalSeconds;
        double cpuMsPerStep = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMilliseconds / steps;
        next.Dispose();

        double stepMs = decodeSec / steps * 1000;
        double decodeTps = batch * steps / decodeSec;
        // Each step reads all weights once plus the KV cache so far (read twice: keys and values already counted in shape).
        double kvBytes = 2.0 * config.NumHiddenLayers * batch * config.NumKeyValueHeads * config.HeadDim * (promptLen + steps / 2.0) * (modelBytes / parameters);
        double boundStepsPerSec = bandwidth / (modelBytes + kvBytes);
        double fraction = (steps / decodeSec) / boundStepsPerSec;
        using var proc = Process.GetCurrentProcess();
        table.AddRow(dtype == ScalarType.BFloat16 ? "bf16" : "fp32", $"{parameters / 1e6:F1}M", $"{modelBytes / 1e6:F0}", $"{batch}",
            $"{batch * promptLen / prefillSec:F0}", $"{decodeTps:F1}", $"{stepMs:F1}", $"{cpuMsPerStep:F1}", $"{fraction * 100:F0}%",
            $"{proc.PeakWorkingSet64 / 1e6:F0}", $"{GC.GetTotalMemory(false) / 1e6:F1}");
    }
}
AnsiConsole.Write(table);
AnsiConsole.MarkupLine("[grey]% of BW bound: decode steps/s divided by (read bandwidth / bytes of weights + KV cache read per step); read bandwidth measured with a reduction.[/]");
AnsiConsole.MarkupLine("[grey]CPU ms/step: process CPU time per decode step (all threads); wall time far above CPU time / threads means the machine is contended.[/]");
AnsiConsole.MarkupLine("[grey]peak WS: process peak working set (managed + native, includes libtorch); GC: managed heap.[/]");
return 0;

static double MeasureReadBandwidth()
{
    using var _ = no_grad();
    using var src = ones([128L << 20], ScalarType.Float32);
    using (var warm = src.sum()) { }
    double best = double.MaxValue;
    for (int i = 0; i < 5; i++)
    {
        var sw = Stopwatch.StartNew();
        using var s = src.sum();
        best = Math.Min(best, sw.Elapsed.TotalSeconds);
    }
    return src.numel() * 4.0 / best;
}
