using System.Diagnostics;
using System.Globalization;
using BiasFree.Engine.Decoding;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using TorchSharp;

/// <summary>
/// <c>diffpo</c>: tokens/s of DiffPO's Jacobi refinement against plain greedy decoding of the same model (the random
/// ~125M-parameter Llama of the main bench, or <c>--layers N</c> for a smaller one), fp32, one sequence at a time.
/// Three rows per window size: greedy decoding of N tokens (one pass per token, KV cache); Jacobi refinement starting
/// from that greedy answer (a fixed point: one pass over the window per window); and Jacobi refinement from a random
/// answer (the worst case: up to W + 1 passes per window). tokens/s = answer tokens / wall seconds, median of --repeats.
/// A random model's argmax is its own, so iterations are the only thing that differs from a trained aligner.
/// Usage: dotnet run -c Release --project bench/BiasFree.Bench -- diffpo [--layers 12] [--tokens 32] [--windows 8,32] [--prompt 64] [--repeats 3] [--threads N]
/// </summary>
internal static class DiffPoBench
{
    public static int Run(IReadOnlyList<string> args)
    {
        string? Arg(string name)
        {
            int i = args.ToList().IndexOf(name);
            return i >= 0 && i + 1 < args.Count ? args[i + 1] : null;
        }
        int layers = int.Parse(Arg("--layers") ?? "12", CultureInfo.InvariantCulture);
        int tokens = int.Parse(Arg("--tokens") ?? "32", CultureInfo.InvariantCulture);
        int promptLength = int.Parse(Arg("--prompt") ?? "64", CultureInfo.InvariantCulture);
        int repeats = int.Parse(Arg("--repeats") ?? "3", CultureInfo.InvariantCulture);
        var windows = (Arg("--windows") ?? "8,32").Split(',').Select(w => int.Parse(w, CultureInfo.InvariantCulture)).ToArray();
        if (Arg("--threads") is { } th) torch.set_num_threads(int.Parse(th, CultureInfo.InvariantCulture));

        var config = new ModelConfig
        {
            ModelType = "llama", VocabSize = 32000, HiddenSize = 768, IntermediateSize = 2048, NumHiddenLayers = layers,
            NumAttentionHeads = 12, NumKeyValueHeads = 4, HeadDim = 64, RmsNormEps = 1e-5, MaxPositionEmbeddings = 4096, EosTokenIds = [31999],
        };
        using var model = CausalLM.Create(config, torch.ScalarType.Float32, "cpu", seed: 1);
        var rng = new Random(7);
        var prompt = Enumerable.Range(0, promptLength).Select(_ => rng.Next(config.VocabSize - 1)).ToList();
        int[] eos = [config.VocabSize - 1];

        // Greedy decoding of the answer (no EOS expected from a random model in so few tokens).
        var greedyOptions = new GenerationOptions { MaxNewTokens = tokens, EosTokenIds = eos };
        model.Generate([prompt], greedyOptions); // warm-up
        var answer = model.Generate([prompt], greedyOptions)[0].Tokens.ToArray();
        var random = Enumerable.Range(0, tokens).Select(_ => rng.Next(config.VocabSize - 1)).ToArray();

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"DiffPO Jacobi refinement vs greedy decoding: {model.ParameterCount() / 1e6:0.0}M parameters ({layers} layers), fp32, prompt {promptLength}, {tokens} answer tokens, torch threads {torch.get_num_threads()}, median of {repeats}"));
        Console.WriteLine("| decoding | window | forward passes | Jacobi iterations | tokens/s | vs greedy |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        double greedySeconds = Median(repeats, () => model.Generate([prompt], greedyOptions));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| greedy (KV cache) | – | {tokens + 1} | – | {tokens / greedySeconds:0.0} | 1.00 |"));
        foreach (int w in windows)
        {
            foreach (var (name, start) in new[] { ("Jacobi from its own greedy answer (fixed point)", answer), ("Jacobi from a random answer", random) })
            {
                var settings = new DiffPoSettings { Window = w, ReserveTokens = 0 };
                JacobiResult? last = null;
                double seconds = Median(repeats, () => last = JacobiRefiner.Refine(model, prompt, start, 0, settings, tokens, eos));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {name} | {w} | {last!.ForwardPasses} | {last.Iterations} | {tokens / seconds:0.0} | {greedySeconds / seconds:0.00} |"));
            }
        }
        return 0;
    }

    private static double Median(int repeats, Action action)
    {
        var times = new List<double>();
        for (int i = 0; i < repeats; i++)
        {
            var sw = Stopwatch.StartNew();
            action();
            times.Add(sw.Elapsed.TotalSeconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }
}
