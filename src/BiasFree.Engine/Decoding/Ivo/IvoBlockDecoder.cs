using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using BiasFree.Engine.Training;
using static TorchSharp.torch;

namespace BiasFree.Engine.Decoding.Ivo;

/// <summary>What one blockwise reply cost and found.</summary>
/// <param name="Rounds">Block rounds.</param>
/// <param name="Candidates">Candidate prefixes scored by the value model.</param>
/// <param name="BaseTokens">Tokens the base model sampled over all blocks (EOS included).</param>
/// <param name="OutputTokens">Tokens of the returned reply.</param>
/// <param name="Value">V of the returned reply.</param>
public sealed record IvoBlockTrace(int Rounds, int Candidates, int BaseTokens, int OutputTokens, double Value)
{
    /// <summary>Base tokens sampled per token returned (the search's cost over plain decoding).</summary>
    public double TargetTokensPerOutputToken => OutputTokens == 0 ? BaseTokens : (double)BaseTokens / OutputTokens;
}

/// <summary>
/// IVO's value-guided blockwise beam search: each round, every live beam samples B blocks of L tokens from the base
/// model (the request's own temperature / top-k / top-p, seeded), the value model scores every beam+block, and the W
/// prefixes of highest V survive (finished beams stay in the pool and compete). It stops when all W kept beams have
/// ended (EOS, stop, or the length limit) and returns the one of highest V. Blocks are ranked by V alone: they are
/// already samples of π_base, so the base's likelihood is not counted twice. At temperature 0 the B blocks of a beam
/// coincide (one candidate per beam): blockwise search needs sampling.
/// </summary>
public sealed class IvoBlockDecoder(ScoreModel value, IvoSettings settings)
{
    private sealed record Beam(IReadOnlyList<int> Tokens, bool Finished, FinishReason Reason, double Value);

    /// <summary>The trace of the last <see cref="Decode"/> (one decoder per request).</summary>
    public IvoBlockTrace? LastTrace { get; private set; }

    /// <summary>Decodes one reply to <paramref name="prompt"/> with <paramref name="model"/> (the engine's request options in <paramref name="gen"/>).</summary>
    public SequenceResult Decode(CausalLM model, IReadOnlyList<int> prompt, GenerationOptions gen, CancellationToken cancellationToken)
    {
        settings.Validate();
        long seed = gen.Seed ?? Random.Shared.NextInt64();
        int pad = gen.PadTokenId;
        var beams = new List<Beam> { new([], gen.MaxNewTokens <= 0, FinishReason.Length, Values([prompt], pad)[0]) };
        int rounds = 0, scored = 1, baseTokens = 0;
        while (beams.Any(b => !b.Finished))
        {
            if (cancellationToken.IsCancellationRequested) break;
            var pool = beams.Where(b => b.Finished).ToList();
            var fresh = new List<Beam>();
            var live = beams.Where(b => !b.Finished).ToList();
            for (int i = 0; i < live.Count; i++)
            {
                var beam = live[i];
                int length = Math.Min(settings.BlockTokens, gen.MaxNewTokens - beam.Tokens.Count);
                var rows = Enumerable.Repeat<IReadOnlyList<int>>([.. prompt, .. beam.Tokens], settings.BlocksPerBeam).ToList();
                // One seed per (round, beam); rows draw from Seed + row, so the B blocks differ.
                var blocks = model.Generate(rows, gen with
                {
                    MaxNewTokens = length,
                    Seed = unchecked(seed + 1_000_003L * rounds + 10_007L * i),
                    Generator = null,
                    OnToken = null,
                }, cancellationToken);
                foreach (var block in blocks)
                {
                    baseTokens += block.Tokens.Count + (block.FinishReason == FinishReason.EndOfSequence ? 1 : 0);
                    var tokens = beam.Tokens.Concat(block.Tokens).ToList();
                    bool ended = block.FinishReason != FinishReason.Length || tokens.Count >= gen.MaxNewTokens;
                    var reason = block.FinishReason == FinishReason.Length ? FinishReason.Length : block.FinishReason;
                    if (fresh.Concat(pool).Any(b => b.Finished == ended && b.Tokens.SequenceEqual(tokens))) continue;
                    fresh.Add(new Beam(tokens, ended, reason, double.NaN));
                }
            }
            var values = Values([.. fresh.Select(b => (IReadOnlyList<int>)[.. prompt, .. b.Tokens])], pad);
            scored += fresh.Count;
            pool.AddRange(fresh.Select((b, j) => b with { Value = values[j] }));
            // Highest V first; ties keep the earlier (finished beams, then the order sampled).
            beams = [.. pool.OrderByDescending(b => b.Value).Take(settings.Beams)];
            rounds++;
        }
        var best = beams.Where(b => b.Finished).DefaultIfEmpty(beams[0]).MaxBy(b => b.Value)!;
        LastTrace = new IvoBlockTrace(rounds, scored, baseTokens, best.Tokens.Count, best.Value);
        return new SequenceResult(best.Tokens, cancellationToken.IsCancellationRequested ? FinishReason.Cancelled : best.Reason, prompt.Count, null);
    }

    private double[] Values(IReadOnlyList<IReadOnlyList<int>> sequences, int pad)
    {
        if (sequences.Count == 0) return [];
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var all = value.ForwardAll(sequences, pad);
        var last = tensor(sequences.Select(s => (long)s.Count - 1).ToArray()).to(all.device).view(-1, 1);
        return [.. all.gather(1, last).squeeze(1).cpu().to_type(ScalarType.Float64).data<double>()];
    }
}
