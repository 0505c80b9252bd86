using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using BiasFree.Engine.Lora;
using BiasFree.Engine.Models;
using BiasFree.Engine.Training;
using Spectre.Console;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// Training throughput of LoRA SFT on the random ~125M-parameter bench Llama (<see cref="BenchModel"/>), in fp32 and bf16:
/// the optimizer step <c>biasfree train --method sft</c> takes (LoRA on every linear layer, response-only next-token
/// loss, backward, gradient clipping, our AdamW), timed over a few steps after one warm-up step, with the process's
/// resident memory sampled after every forward and backward pass.
/// </summary>
/// <remarks>
/// Usage: dotnet run -c Release --project bench/BiasFree.Bench -- training [--quick] [--batch 4] [--seq 128] [--steps 3]
///        [--dtypes float32,bfloat16] [--rank 8] [--threads N]
/// The issue asks for the ratio to the same step in an eager PyTorch loop "if one is available on the machine"; the bench
/// checks (python3 -c "import torch") and prints whether it is, but runs no PyTorch loop itself.
/// </remarks>
internal static class TrainingBench
{
    public static Command Build()
    {
        var quick = new Option<bool>("--quick") { Description = "Reduced model (4 layers, 8k vocabulary), batch 2, sequence 64, 2 steps." };
        var batch = new Option<int?>("--batch") { Description = "Sequences per step (default 4; quick 2)." };
        var seq = new Option<int?>("--seq") { Description = "Tokens per sequence; the second half is the response the loss covers (default 128; quick 64)." };
        var steps = new Option<int?>("--steps") { Description = "Timed optimizer steps after one warm-up step (default 3; quick 2)." };
        var dtypes = new Option<string>("--dtypes") { Description = "Comma list: float32, bfloat16.", DefaultValueFactory = _ => "float32,bfloat16" };
        var rank = new Option<int>("--rank") { Description = "LoRA rank (alpha = 2 x rank, as train-compare).", DefaultValueFactory = _ => 8 };
        var threads = new Option<int?>("--threads") { Description = "Torch intra-op threads (default: torch's choice)." };
        var cmd = new Command("training", "LoRA SFT training throughput (tokens/s) and peak memory on the random ~125M Llama, fp32 and bf16.")
        {
            quick, batch, seq, steps, dtypes, rank, threads,
        };
        cmd.SetAction(pr =>
        {
            bool q = pr.GetValue(quick);
            Run(BenchModel.Config(layers: q ? 4 : 12, vocabulary: q ? 8000 : 32000), pr.GetValue(batch) ?? (q ? 2 : 4), pr.GetValue(seq) ?? (q ? 64 : 128),
                pr.GetValue(steps) ?? (q ? 2 : 3), [.. pr.GetValue(dtypes)!.Split(',').Select(d => d.Trim() == "bfloat16" ? ScalarType.BFloat16 : ScalarType.Float32)],
                pr.GetValue(rank), pr.GetValue(threads), q);
            return 0;
        });
        return cmd;
    }

    private static void Run(ModelConfig config, int batch, int seq, int steps, ScalarType[] dtypes, int rank, int? threads, bool quick)
    {
        if (threads is int t) torch.set_num_threads(t);
        AnsiConsole.MarkupLine($"[bold]LoRA SFT training benchmark[/] — torch threads {torch.get_num_threads()}, batch {batch} × {seq} tokens (loss on the last {seq / 2}), " +
            $"LoRA r {rank} on {string.Join(",", LoraOptions.AllLinear)}, {steps} timed steps after 1 warm-up{(quick ? " (quick: reduced model)" : "")}");
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var c in new[] { "dtype", "params", "trainable", "step ms", "tokens/s", "CPU ms/step", "tokens/CPU-s", "RSS before MB", "peak RSS MB", "peak − before MB" })
            table.AddColumn(new TableColumn(c).RightAligned());

        var rng = new Random(7);
        var rows = Enumerable.Range(0, batch).Select(_ => (IReadOnlyList<int>)Enumerable.Range(0, seq).Select(_ => rng.Next(config.VocabSize)).ToList()).ToList();
        foreach (var dtype in dtypes)
        {
            GC.Collect();
            long before = Rss();
            long peak = before;
            void Sample() => peak = Math.Max(peak, Rss());

            using var model = CausalLM.Create(config, dtype, "cpu", seed: 1);
            LoraAdapter.Apply(model, new LoraOptions { Rank = rank, Alpha = 2.0 * rank, TargetModules = LoraOptions.AllLinear, Seed = 1 });
            var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();
            using var optimizer = new AdamWOptimizer(trainable);
            using var ids = model.IdsTensor(rows);
            using var mask = cat([zeros([batch, seq / 2]), ones([batch, seq - seq / 2])], 1);
            model.train();
            Sample();

            void Step()
            {
                using var scope = NewDisposeScope();
                optimizer.ZeroGrad();
                var loss = model.NextTokenLoss(ids, mask);
                Sample(); // activations of the forward pass are alive here
                loss.backward();
                Sample();
                nn.utils.clip_grad_norm_(trainable.Select(p => p.parameter).ToList(), 1.0);
                optimizer.Update(1e-4);
            }

            Step(); // warm-up: first-call allocations and kernel selection
            var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            for (int s = 0; s < steps; s++) Step();
            double seconds = sw.Elapsed.TotalSeconds;
            double cpuMs = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalMilliseconds / steps;
            long parameters = model.ParameterCount();
            long trainableCount = trainable.Sum(p => p.parameter.numel());
            table.AddRow(dtype == ScalarType.BFloat16 ? "bf16" : "fp32", $"{parameters / 1e6:F1}M", $"{trainableCount / 1e6:F2}M",
                $"{seconds / steps * 1000:F0}", $"{(double)batch * seq * steps / seconds:F0}", $"{cpuMs:F0}", $"{batch * seq / (cpuMs / 1000):F0}",
                $"{before / 1e6:F0}", $"{peak / 1e6:F0}", $"{(peak - before) / 1e6:F0}");
        }
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("[grey]tokens/s: tokens through forward and backward (batch × sequence, prompt included) per second of optimizer steps.[/]");
        AnsiConsole.MarkupLine("[grey]RSS: the process's resident set (managed + native, includes libtorch), sampled after each forward and each backward pass; " +
            "'before' is taken before the model is built, so 'peak − before' is what this dtype's training added. A later dtype reuses memory the allocator " +
            "kept from an earlier one, so for its own peak run it alone (--dtypes bfloat16).[/]");
        AnsiConsole.MarkupLine("[grey]CPU ms/step: process CPU time per step (all threads); wall time far above CPU time / threads means the machine is contended. " +
            "tokens/CPU-s: tokens per second of CPU time (batch × sequence / CPU s per step), the figure that survives contention; times the threads bounds an idle machine's tokens/s from above.[/]");
        AnsiConsole.MarkupLine(Markup.Escape(PyTorchNote()));
    }

    private static long Rss()
    {
        using var p = Process.GetCurrentProcess();
        return p.WorkingSet64;
    }

    /// <summary>Whether an eager PyTorch loop could be compared here (python3 with torch importable).</summary>
    private static string PyTorchNote()
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("python3", ["-c", "import torch; print(torch.__version__)"])
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            })!;
            var version = p.StandardOutput.ReadToEnd().Trim();
            p.StandardError.ReadToEnd();
            if (!p.WaitForExit(60_000)) p.Kill();
            return p.ExitCode == 0
                ? $"PyTorch {version} is installed here, but this benchmark runs no PyTorch loop: no ratio is printed."
                : "No PyTorch on this machine (python3 -c \"import torch\" failed): no ratio to an eager PyTorch loop is printed.";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "No python3 on this machine, so no PyTorch: no ratio to an eager PyTorch loop is printed.";
        }
    }
}
