using System.Globalization;
using BiasFree.Engine.Decoding;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// <c>persona-judge</c>: tokens/s of Persona-judge decoding (<see cref="PersonaJudgeDecoder"/>) against plain sampling
/// of the same model (the random ~125M-parameter Llama of the main bench, or a reduced one with <c>--quick</c>), fp32,
/// one sequence at a time, temperature 1 with no top-k/top-p on both sides, seeded, no EOS (every reply has exactly
/// --tokens tokens). The two preference contexts are the same user prompt behind two different "system prompts"
/// (random token ids standing for a fairness persona and a helpful persona: the random model has no tokenizer).
/// Plain sampling decodes the fairness context alone (one pass per token over a KV cache). Persona-judge drafts γ
/// tokens per round in one context and verifies them in the other in one pass; rows for the paper's alternating roles
/// and the released code's one-time swap, and a row with the same context on both sides (p = q, every draft accepted:
/// the ceiling of the speculative speed-up when the drafter is the full model).
/// With random weights the acceptance rate says how far two random prefixes move a random model's next-token
/// distributions, not how much two real personas disagree: read the cost columns, not the acceptance, as the finding
/// (the demo model's acceptance under real personas is in docs/decoding-methods.md).
/// tokens/s = reply tokens / wall seconds (both prefills included), median of --repeats, repeats interleaved; the pass
/// and acceptance counts are summed over every reply of a row (warm-up included), as one reply's are noisy.
/// Usage: dotnet run -c Release --project bench/BiasFree.Bench -- persona-judge [--quick] [--tokens 32] [--prompt 64]
///        [--persona 16] [--gamma 4] [--repeats 5] [--threads N]
/// </summary>
internal static class PersonaJudgeBench
{
    private readonly record struct Outcome(int Tokens, PersonaJudgeStatistics? Statistics);

    public static int Run(IReadOnlyList<string> args)
    {
        bool quick = args.Contains("--quick");
        int tokens = BenchSupport.Int(args, "--tokens", quick ? 16 : 32);
        int promptLength = BenchSupport.Int(args, "--prompt", quick ? 32 : 64);
        int personaLength = BenchSupport.Int(args, "--persona", 16);
        int repeats = BenchSupport.Int(args, "--repeats", 5);
        int gamma = BenchSupport.Int(args, "--gamma", 4);
        BenchSupport.ApplyThreads(args);

        var config = BenchModel.Config(layers: quick ? 4 : 12, vocabulary: quick ? 8000 : 32000);
        using var model = CausalLM.Create(config, ScalarType.Float32, "cpu", seed: 1);
        model.eval();

        var rng = new Random(7);
        List<int> Random(int n) => [.. Enumerable.Range(0, n).Select(_ => rng.Next(config.VocabSize))];
        var user = Random(promptLength);
        List<int> fairness = [.. Random(personaLength), .. user], helpful = [.. Random(personaLength), .. user];
        var gen = new GenerationOptions { MaxNewTokens = tokens, DoSample = true, Temperature = 1.0, EosTokenIds = [] };
        int seed = 0;

        Outcome Plain() => new(model.Generate([fairness], gen with { Seed = seed++ })[0].Tokens.Count, null);
        var totals = new Dictionary<string, PersonaJudgeStatistics>();
        Func<Outcome> Judge(PersonaRoleSchedule schedule, bool samePersona = false) => () =>
        {
            var settings = new PersonaJudgeSettings { DraftTokens = gamma, Temperature = 1.0, TopK = null, TopP = null, Schedule = schedule };
            // Round 1: the helpful persona drafts and the fairness persona judges (as persona-judge's draft/judge defaults).
            var r = PersonaJudgeDecoder.Generate(model, samePersona ? fairness : helpful, fairness, settings, tokens, [], seed++);
            string key = $"{schedule}{samePersona}";
            totals[key] = (totals.GetValueOrDefault(key) ?? PersonaJudgeStatistics.Empty).Add(r.Statistics);
            return new(r.Tokens.Count, totals[key]);
        };

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Persona-judge vs plain sampling: {model.ParameterCount() / 1e6:0.0}M parameters ({config.NumHiddenLayers} layers, vocabulary {config.VocabSize}){(quick ? " (quick: reduced model)" : "")}, fp32, CPU, persona prefix {personaLength} + prompt {promptLength}, {tokens} reply tokens, temperature 1, no top-k/top-p, γ {gamma}, torch threads {torch.get_num_threads()} of {Environment.ProcessorCount} cores, load average {BenchSupport.LoadAverage():0.0} at start, median of {repeats}"));
        Console.WriteLine("RANDOM weights, random persona prefixes: acceptance measures how far two random prefixes move a random model, not how much two real personas disagree.");
        Console.WriteLine("| decoding | tokens/s | vs plain | acceptance | tokens / judge pass | tokens / forward pass |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        var rows = new (string Name, Func<Outcome> Run)[]
        {
            ("plain sampling, fairness persona (KV cache)", Plain),
            ("Persona-judge, roles alternate (paper)", Judge(PersonaRoleSchedule.Alternate)),
            ("Persona-judge, one-time swap (released code)", Judge(PersonaRoleSchedule.SwapOnce)),
            // p = q: every draft is accepted, the ceiling of the speculative speed-up with a same-size drafter.
            ("Persona-judge, same persona on both sides (p = q: best case)", Judge(PersonaRoleSchedule.Alternate, samePersona: true)),
        };
        var timed = BenchSupport.TimeInterleaved([.. rows.Select(r => r.Run)], o => o.Tokens, repeats);
        double plain = timed[0].TokensPerSecond;
        for (int r = 0; r < rows.Length; r++)
        {
            var (tps, last) = timed[r];
            var s = last.Statistics;
            string Stat(Func<PersonaJudgeStatistics, double> f, string format, string plainValue) =>
                s is null ? plainValue : f(s).ToString(format, CultureInfo.InvariantCulture);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {rows[r].Name} | {tps:0.0} | {tps / plain:0.00} | {Stat(x => x.AcceptanceRate * 100, "0.0", "–")}{(s is null ? "" : " %")} | {Stat(x => x.TokensPerJudgePass, "0.00", "–")} | {Stat(x => x.TokensPerForwardPass, "0.00", "1.00")} |"));
        }
        Console.WriteLine("tokens/s: reply tokens / wall seconds of the whole reply, prefill of both contexts included (median; repeats interleaved); vs plain: that over plain sampling's; acceptance, tokens per judge pass (the speculative speed-up over decoding with the judge alone) and tokens per forward pass of either context (drafting passes included; plain sampling: 1) are summed over every reply of the row (warm-up included); prefills are not counted as passes.");
        return 0;
    }
}
