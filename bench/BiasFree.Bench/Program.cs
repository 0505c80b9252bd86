using System.CommandLine;
using BiasFree.Engine.Models;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

// Engine benchmark (EngineBench.cs): prefill and decode throughput of a random ~125M-parameter Llama at several batch
// sizes, in fp32 and bf16, against the memory-bandwidth bound (every decode step must read all weight matrices once, so
// steps/s <= bandwidth / bytes read per step) and, when python3 can import torch, against an eager PyTorch HF-style
// loop on the same weights (bench/engine/peer.py), interleaved, medians.
//
// Usage: dotnet run -c Release --project bench/BiasFree.Bench [-- --quick] [--batches 1,8,32] [--prompt 128] [--steps 32]
//        [--dtypes float32,bfloat16] [--threads N] [--repeats 3] [--peer auto|off]   (--help lists them; bench/engine/engine.sh)
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
//    or: dotnet run -c Release --project bench/BiasFree.Bench -- judge-injection [--sets builtin,heldout4,...] [--judges biasguard,llm]
//        (flip rates of the LLM judges' prompts against a scripted judge that obeys every attack reaching it; see JudgeInjectionBench.cs)
//    or: dotnet run -c Release --project bench/BiasFree.Bench -- harness [--quick] [--sizes 10000,50000] [--in-flight 32,256]
//        [--latencies 0,50] [--repeats N]   (harness overhead of a real run against a loopback OpenAI-compatible server:
//        throughput, CPU per probe, peak memory, answers/s from the cache; see HarnessBench.cs)

if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 160;
var quickOption = new Option<bool>("--quick") { Description = "Reduced model and sizes (4 layers, 8k vocabulary; batches 1,8; prompt 32; 8 steps)." };
var batchesOption = new Option<string?>("--batches") { Description = "Comma list of batch sizes (default 1,8,32; quick 1,8)." };
var promptOption = new Option<int?>("--prompt") { Description = "Prompt length in tokens (default 128; quick 32)." };
var stepsOption = new Option<int?>("--steps") { Description = "Decode steps timed (default 32; quick 8)." };
var dtypesOption = new Option<string>("--dtypes") { Description = "Comma list: float32, bfloat16.", DefaultValueFactory = _ => "float32,bfloat16" };
var threadsOption = new Option<int?>("--threads") { Description = "Torch intra-op threads, engine and peer alike (default: torch's choice)." };
var repeatsOption = new Option<int?>("--repeats") { Description = "Measurements per cell, engine and peer interleaved; the table shows medians (default 3; quick 1)." };
var peerOption = new Option<string>("--peer") { Description = "auto: compare with bench/engine/peer.py (eager PyTorch, HF-style loop) when python can import torch; off: engine alone.", DefaultValueFactory = _ => "auto" };
var pythonOption = new Option<string?>("--python") { Description = "Python interpreter for the peer (default: python3, then /usr/bin/python3)." };
var peerScriptOption = new Option<string?>("--peer-script") { Description = "Path of peer.py (default: found from the build folder upwards)." };
// ServingBench reads its own options (--probes, --in-flight, --lone, --max-tokens, --kv-cache-mb, --threads, --model,
// --layers) from the raw arguments, so the parser lets them through.
var serving = new Command("serving", "In-process serving with continuous batching: --probes N, --in-flight N, --lone N, --max-tokens N, " +
    "--kv-cache-mb N, --threads N, --model FOLDER or --layers N (see ServingBench.cs).") { TreatUnmatchedTokensAsErrors = false };
serving.SetAction(async (_, _) => await ServingBench.RunAsync(args.ToList()));
var whiteBox = new Command("white-box", "FairSteer/BiasFilter evidence and overhead on the demo model: --model FOLDER, --steering DIR, --probes N, " +
    "--temperature T, --max-tokens N, --reward-model F --reward-ref F, --filter-grid N:C:l[:δ[:λ]],… (chosen on --dev-probes N), " +
    "--filter-also N:C:l:δ:λ,…, --adapter LORA_FOLDER, --methods m1,m2, --speed-runs K, --overhead-pairs N, --no-overhead, " +
    "--group-categories a,b, --out FILE --section NAME, --fit-only; when --steering is not fitted yet, steer fit's options: " +
    "--probe-labels paper|ambiguous-bias, --vector probe-means|probe-means-ambiguous|pairs, --sweep-objective mean|ambiguous, " +
    "--sweep-metric all-replies|report, --fit-items N, --sweep-items N, --sweep-samples N, --alphas a,b, --layers l1,l2 (see WhiteBoxBench.cs).") { TreatUnmatchedTokensAsErrors = false };
whiteBox.SetAction(async (_, _) => await WhiteBoxBench.RunAsync(args.ToList()));
var decodingCosts = new Command("decoding-costs", "Per method of a stored run: target tokens per answer and tokens/s with 95 % bootstrap intervals: --runs-dir DIR --run-id ID (see DecodingCostsBench.cs).") { TreatUnmatchedTokensAsErrors = false };
decodingCosts.SetAction(async (_, _) => await DecodingCostsBench.RunAsync(args.Skip(1).ToList()));
var diffPo = new Command("diffpo", "DiffPO's Jacobi refinement vs greedy decoding on the random bench model: --layers N, --tokens N, --windows 8,32, --prompt N, --repeats N, --threads N (see DiffPoBench.cs).") { TreatUnmatchedTokensAsErrors = false };
diffPo.SetAction(_ => DiffPoBench.Run(args.Skip(1).ToList()));
var ivo = new Command("ivo", "IVO tokenwise and blockwise vs plain sampling on the random bench model (untrained value head): --quick, --tokens N, --prompt N, --repeats N, --beta B, --candidates K, --block-tokens L, --beams W, --blocks B, --threads N (see IvoBench.cs).") { TreatUnmatchedTokensAsErrors = false };
ivo.SetAction(_ => IvoBench.Run(args.Skip(1).ToList()));
var personaJudge = new Command("persona-judge", "Persona-judge (two personas, speculative) vs plain sampling on the random bench model: --quick, --tokens N, --prompt N, --persona N, --gamma N, --repeats N, --threads N (see PersonaJudgeBench.cs).") { TreatUnmatchedTokensAsErrors = false };
personaJudge.SetAction(_ => PersonaJudgeBench.Run(args.Skip(1).ToList()));
var training = TrainingBench.Build();
var adaptive = new Command("adaptive", "Queries adaptive sampling (--precision) needs vs a full run on a 15k-item BBQ-size suite with a scripted target: --items N, --precision P, --seed N (see AdaptiveBench.cs).") { TreatUnmatchedTokensAsErrors = false };
adaptive.SetAction(async (_, _) => await AdaptiveBench.RunAsync(args.Skip(1).ToList()));
var memory = new Command("memory", "Peak RSS of a whole run (suite, run, report) per suite size, one child process each, scripted target: --probes 10000,50000, --concurrency N, --resamples N (see MemoryBench.cs).") { TreatUnmatchedTokensAsErrors = false };
memory.SetAction(async (_, _) => await MemoryBench.RunAsync(args.Skip(1).ToList()));
var harness = new Command("harness", "Harness overhead of the real run path against a loopback OpenAI-compatible server with fixed latency: --quick, --sizes 10000,50000, --in-flight 32,256, --latencies 0,50, --repeats N (see HarnessBench.cs).") { TreatUnmatchedTokensAsErrors = false };
harness.SetAction(async (_, _) => await HarnessBench.RunAsync(args.Skip(1).ToList()));
var judgeInjection = new Command("judge-injection", "Flip rates of the LLM judges' prompts (BiasGuard, LLM dialogue judge) on every attack set against a scripted judge that obeys every attack reaching it: --sets builtin,heldout4,... --judges biasguard,llm (see JudgeInjectionBench.cs).") { TreatUnmatchedTokensAsErrors = false };
judgeInjection.SetAction(async (_, _) => await JudgeInjectionBench.RunAsync(args.Skip(1).ToList()));
var kernels = new Command("kernels", "The bf16 decode products of one step of the bench model (12 layers' projections + lm_head), own kernels vs libtorch's linear, per row count: --rows 1,4,8,16,32, --repeats N (see EngineBench.cs).") { TreatUnmatchedTokensAsErrors = false };
kernels.SetAction(_ => EngineBench.RunKernels(args.Skip(1).ToList()));
var step = new Command("step", "bf16 greedy decode steps of the bench model at one batch size in a loop, for a profiler to attach to: --batch 32, --prompt 32, --steps 16, --rounds 20, --threads 1 (see StepBench.cs).") { TreatUnmatchedTokensAsErrors = false };
step.SetAction(_ => StepBench.Run(args.Skip(1).ToList()));
var root = new RootCommand("BiasFree engine benchmark: prefill and decode throughput of a random ~125M-parameter Llama, in fp32 and bf16.")
{
    quickOption, batchesOption, promptOption, stepsOption, dtypesOption, threadsOption, repeatsOption, peerOption, pythonOption, peerScriptOption, serving, whiteBox, decodingCosts, training, adaptive, diffPo, ivo, personaJudge, memory, harness, judgeInjection, kernels, step,
};
root.SetAction(parsed =>
{
    bool quick = parsed.GetValue(quickOption);
    return EngineBench.Run(new EngineBenchOptions(
        Quick: quick,
        Batches: (parsed.GetValue(batchesOption) ?? (quick ? "1,8" : "1,8,32")).Split(',').Select(int.Parse).ToArray(),
        PromptLength: parsed.GetValue(promptOption) ?? (quick ? 32 : 128),
        Steps: parsed.GetValue(stepsOption) ?? (quick ? 8 : 32),
        DTypes: parsed.GetValue(dtypesOption)!.Split(',').Select(d => d == "bfloat16" ? ScalarType.BFloat16 : ScalarType.Float32).ToArray(),
        Threads: parsed.GetValue(threadsOption) ?? torch.get_num_threads(),
        Repeats: parsed.GetValue(repeatsOption) ?? (quick ? 1 : 3),
        Peer: parsed.GetValue(peerOption)!,
        Python: parsed.GetValue(pythonOption),
        PeerScript: parsed.GetValue(peerScriptOption)));
});
// The engine benchmark, a subcommand, --help, --version, or the parse errors with a usage hint.
return await root.Parse(args).InvokeAsync();
