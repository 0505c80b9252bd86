using System.Diagnostics;
using BiasFree.Engine.Kernels;
using BiasFree.Engine.Models;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// One batch size's bf16 greedy decode steps of the bench model in a loop, for a profiler to attach to (perf record -p):
/// prefill the prompt, then decode, truncating the cache back to the prompt every <c>--steps</c> steps so the attention
/// span stays that of the engine bench (prompt 32 + 16 steps). Prints the process id when decoding starts and CPU ms per
/// step per round (CPU time, 1 torch thread unless --threads).
/// </summary>
internal static class StepBench
{
    public static void Run(IReadOnlyList<string> args)
    {
        int batch = BenchSupport.Int(args, "--batch", 32);
        int prompt = BenchSupport.Int(args, "--prompt", 32);
        int steps = BenchSupport.Int(args, "--steps", 16);
        int rounds = BenchSupport.Int(args, "--rounds", 20);
        torch.set_num_threads(BenchSupport.Int(args, "--threads", 1));
        if (args.Contains("--attention"))
        {
            Attention(batch, prompt + steps, rounds);
            return;
        }
        using var model = CausalLM.Create(BenchModel.Config(), ScalarType.BFloat16, "cpu", seed: 1);
        var rng = new Random(7);
        var ids = Enumerable.Range(0, batch).Select(_ => (IReadOnlyList<int>)Enumerable.Range(0, prompt).Select(_ => rng.Next(32000)).ToList()).ToList();
        using var _ = inference_mode();
        using var kv = model.NewCache(prompt + steps + 1);
        Tensor next;
        using (var scope = NewDisposeScope())
        {
            var output = model.Forward(model.IdsTensor(ids), new ForwardArgs { Cache = kv, LastTokenLogitsOnly = true });
            next = tensor(ArgMax.LastDim(output.Logits.select(1, -1)), [batch, 1], ScalarType.Int64).DetachFromDisposeScope();
        }
        AnsiConsole.WriteLine($"decoding, pid {Environment.ProcessId}");
        var perStep = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            kv.Truncate(prompt);
            var cpu = Process.GetCurrentProcess().TotalProcessorTime;
            for (int s = 0; s < steps; s++)
            {
                using var scope = NewDisposeScope();
                var output = model.Forward(next, new ForwardArgs { Cache = kv });
                var chosen = ArgMax.LastDim(output.Logits.select(1, -1));
                next.Dispose();
                next = tensor(chosen, [batch, 1], ScalarType.Int64).DetachFromDisposeScope();
            }
            perStep.Add((Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds / steps);
            AnsiConsole.WriteLine($"round {r + 1}: {perStep[^1]:F1} CPU ms/step");
        }
        next.Dispose();
        perStep.Sort();
        AnsiConsole.WriteLine($"batch {batch}: median {perStep[perStep.Count / 2]:F1} CPU ms/step (lowest {perStep[0]:F1}, highest {perStep[^1]:F1}) over {rounds} rounds of {steps} steps");
    }

    /// <summary>One step's decode attention (12 layers) at the bench model's shapes: SDPA (grouped, as before) against the kernel.</summary>
    private static void Attention(int batch, int positions, int rounds)
    {
        using var _ = inference_mode();
        using var scope = NewDisposeScope();
        var q = randn([batch, 1, 16, 64], ScalarType.BFloat16).narrow(2, 0, 12).transpose(1, 2);
        var k = randn([batch, 4, 128, 64], ScalarType.BFloat16).narrow(2, 0, positions);
        var v = randn([batch, 4, 128, 64], ScalarType.BFloat16).narrow(2, 0, positions);
        var times = new List<double>[] { [], [] };
        for (int r = 0; r < rounds; r++)
            for (int path = 0; path < 2; path++)
            {
                var cpu = Process.GetCurrentProcess().TotalProcessorTime;
                for (int i = 0; i < 12 * 20; i++)
                {
                    using var inner = NewDisposeScope();
                    if (path == 0) nn.functional.scaled_dot_product_attention(q.reshape(batch, 4, 3, 64), k, v, null, 0.0, false);
                    else DecodeAttention.TryAttend(q, k, v, null);
                }
                times[path].Add((Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalMilliseconds / 20);
            }
        foreach (var t in times) t.Sort();
        AnsiConsole.WriteLine($"attention, batch {batch}, {positions} positions, 12 layers: SDPA {times[0][rounds / 2]:F2} ms, kernel {times[1][rounds / 2]:F2} ms (CPU, medians of {rounds})");
    }
}
