using System.Globalization;
using BiasFree.Engine.Decoding.Ivo;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using BiasFree.Engine.Safetensors;
using BiasFree.Engine.Training;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// <c>ivo</c>: tokens/s of IVO's two decoders against plain sampling of the same model (the random ~125M-parameter Llama
/// of the main bench, or a reduced one with <c>--quick</c>), fp32, one sequence at a time, temperature 1, seeded.
/// The value model is a <see cref="ScoreModel"/> on the same random weights, loaded through <see cref="ScoreModel.Load"/>
/// like a trained one, with a random untrained head: its values mean nothing, but a value pass costs what a trained
/// one costs (same width and depth), and cost is all this bench measures. No EOS is set, so every reply has exactly
/// --tokens tokens. Rows: plain sampling (one base pass per token, KV cache); IVO tokenwise (<see cref="ValueGuide"/>:
/// per token one value pass over the new token plus one over a k-row fork of its cache); IVO blockwise
/// (<see cref="IvoBlockDecoder"/>: W beams × B sampled blocks of L tokens per round, each candidate scored by the
/// value model), once with the KV caches of the kept beams carried from round to round (a round computes only its new
/// blocks) and once without (every round re-reads the prompt and the beam in both models).
/// tokens/s = reply tokens / wall seconds, median of --repeats.
/// Usage: dotnet run -c Release --project bench/BiasFree.Bench -- ivo [--quick] [--tokens 32] [--prompt 64] [--repeats 5]
///        [--beta 5] [--candidates 10] [--block-tokens 4] [--beams 2] [--blocks 4] [--threads N]
/// </summary>
internal static class IvoBench
{
    public static int Run(IReadOnlyList<string> args)
    {
        string? Arg(string name) => BenchSupport.Arg(args, name);
        int Int(string name, int fallback) => BenchSupport.Int(args, name, fallback);
        bool quick = args.Contains("--quick");
        int tokens = Int("--tokens", quick ? 16 : 32);
        int promptLength = Int("--prompt", quick ? 32 : 64);
        int repeats = Int("--repeats", 5);
        var defaults = new IvoSettings();
        var settings = new IvoSettings
        {
            Beta = Arg("--beta") is { } b ? double.Parse(b, CultureInfo.InvariantCulture) : defaults.Beta,
            Candidates = Int("--candidates", defaults.Candidates),
            BlockTokens = Int("--block-tokens", defaults.BlockTokens),
            Beams = Int("--beams", defaults.Beams),
            BlocksPerBeam = Int("--blocks", defaults.BlocksPerBeam),
        };
        settings.Validate();
        BenchSupport.ApplyThreads(args);

        var config = BenchModel.Config(layers: quick ? 4 : 12, vocabulary: quick ? 8000 : 32000);
        using var model = CausalLM.Create(config, ScalarType.Float32, "cpu", seed: 1);
        model.eval();
        // The value model goes through the same Load path as a trained one, so the bench times what IVO runs.
        var folder = Path.Combine(Path.GetTempPath(), $"biasfree-ivo-bench-{Environment.ProcessId}");
        try
        {
            model.Save(folder);
            using (var head = NewDisposeScope())
            {
                var g = new Generator(seed: 3);
                SafetensorsWriter.Save(Path.Combine(folder, ScoreModel.HeadFile),
                [
                    new("score.weight", randn([config.HiddenSize], generator: g) / Math.Sqrt(config.HiddenSize)),
                    new("score.bias", zeros(1)),
                ]);
            }
            using var value = ScoreModel.Load(folder);
            Measure(model, value, settings, config, quick, tokens, promptLength, repeats);
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
        return 0;
    }

    private static void Measure(CausalLM model, ScoreModel value, IvoSettings settings, ModelConfig config, bool quick, int tokens, int promptLength, int repeats)
    {
        var rng = new Random(7);
        var prompt = Enumerable.Range(0, promptLength).Select(_ => rng.Next(config.VocabSize)).ToList();
        var gen = new GenerationOptions { MaxNewTokens = tokens, DoSample = true, Temperature = 1.0, EosTokenIds = [] };
        int seed = 0;

        // Each run returns (reply tokens, value evaluations, base tokens sampled).
        (int Tokens, double Values, double BaseTokens) Plain()
        {
            var r = model.Generate([prompt], gen with { Seed = seed++ })[0];
            return (r.Tokens.Count, 0, r.Tokens.Count);
        }
        (int Tokens, double Values, double BaseTokens) Tokenwise()
        {
            using var guide = new ValueGuide(value, settings);
            var r = model.Generate([prompt], gen with { Seed = seed++, LogitsProcessors = [guide] })[0];
            return (r.Tokens.Count, guide.ValueEvaluations, r.Tokens.Count);
        }
        (int Tokens, double Values, double BaseTokens) Blockwise() => Block(reuseCache: true);
        (int Tokens, double Values, double BaseTokens) BlockwiseUncached() => Block(reuseCache: false);
        (int Tokens, double Values, double BaseTokens) Block(bool reuseCache)
        {
            var decoder = new IvoBlockDecoder(value, settings) { ReuseCache = reuseCache };
            var r = decoder.Decode(model, prompt, gen with { Seed = seed++ }, CancellationToken.None);
            return (r.Tokens.Count, decoder.LastTrace!.Candidates, decoder.LastTrace.BaseTokens);
        }

        double load = BenchSupport.LoadAverage();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"IVO vs plain sampling: {model.ParameterCount() / 1e6:0.0}M parameters ({config.NumHiddenLayers} layers, vocabulary {config.VocabSize}){(quick ? " (quick: reduced model)" : "")}, fp32, CPU, prompt {promptLength}, {tokens} reply tokens, temperature 1, torch threads {torch.get_num_threads()} of {Environment.ProcessorCount} cores, load average {load:0.0} at start, median of {repeats}"));
        Console.WriteLine("Value model: the same random weights with a random UNTRAINED head (its values mean nothing; a value pass costs what a trained one does).");
        Console.WriteLine("| decoding | settings | tokens/s | vs plain | value evaluations / token | base tokens sampled / token |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|");
        var rows = new (string Name, string Settings, Func<(int Tokens, double Values, double BaseTokens)> Run)[]
        {
            ("plain sampling (KV cache)", "–", Plain),
            ("IVO tokenwise", string.Create(CultureInfo.InvariantCulture, $"β {settings.Beta}, k {settings.Candidates}"), Tokenwise),
            ("IVO blockwise (KV caches kept across rounds)", $"L {settings.BlockTokens}, W {settings.Beams}, B {settings.BlocksPerBeam}", Blockwise),
            ("IVO blockwise (no cache: every round re-reads its prefixes)", $"L {settings.BlockTokens}, W {settings.Beams}, B {settings.BlocksPerBeam}", BlockwiseUncached),
        };
        var timed = BenchSupport.TimeInterleaved([.. rows.Select(r => r.Run)], r => r.Tokens, repeats);
        double plain = timed[0].TokensPerSecond;
        for (int r = 0; r < rows.Length; r++)
        {
            var (tps, last) = timed[r];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {rows[r].Name} | {rows[r].Settings} | {tps:0.0} | {tps / plain:0.00} | {last.Values / last.Tokens:0.0} | {last.BaseTokens / last.Tokens:0.0} |"));
        }
        Console.WriteLine("tokens/s: reply tokens / wall seconds of the whole reply, prompt prefill included (median; repeats interleaved); vs plain: that over plain sampling's; value evaluations: sequences the value model scored (tokenwise: V(s) and k candidates per token over a KV cache; blockwise: every beam+block; with the cache a pass over the new block only, without it over the whole prefix), from the last repeat.");
    }
}
