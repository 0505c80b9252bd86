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
    /// <summary>
    /// The KV caches of a live beam: the base model's (holding the prompt and the beam's tokens up to
    /// <see cref="BaseFed"/>; the beam's last token is fed at the start of its next round) and the value model's (the
    /// prompt and every token of the beam, so V of an extension needs a pass over the new block only).
    /// </summary>
    private sealed class BeamCaches(KVCache @base, int baseFed, KVCache valueCache) : IDisposable
    {
        public KVCache Base { get; } = @base;
        public int BaseFed { get; } = baseFed;
        public KVCache Value { get; } = valueCache;

        public void Dispose()
        {
            Base.Dispose();
            Value.Dispose();
        }
    }

    private sealed record Beam(IReadOnlyList<int> Tokens, bool Finished, FinishReason Reason, double Value)
    {
        /// <summary>Caches of a live beam on the cached path (null when finished or on the uncached path).</summary>
        public BeamCaches? Caches { get; init; }
    }

    /// <summary>The trace of the last <see cref="Decode"/> (one decoder per request).</summary>
    public IvoBlockTrace? LastTrace { get; private set; }

    /// <summary>
    /// Keep each kept beam's KV caches (base and value model) from round to round, so a round computes only its new
    /// blocks (default). False re-reads the prompt and the whole beam every round, in the base model to sample and in
    /// the value model to score: the reference the cached path is tested against (same tokens for the same seed).
    /// </summary>
    public bool ReuseCache { get; init; } = true;

    /// <summary>Decodes one reply to <paramref name="prompt"/> with <paramref name="model"/> (the engine's request options in <paramref name="gen"/>).</summary>
    public SequenceResult Decode(CausalLM model, IReadOnlyList<int> prompt, GenerationOptions gen, CancellationToken cancellationToken)
    {
        settings.Validate();
        if (prompt.Count == 0) throw new ArgumentException("the prompt needs at least one token", nameof(prompt));
        long seed = gen.Seed ?? Random.Shared.NextInt64();
        int pad = gen.PadTokenId;
        // Every cache this call creates is disposed before it returns (cancelled, thrown or done); beams keep references.
        var owned = new List<BeamCaches>();
        try
        {
            Beam root;
            if (ReuseCache && gen.MaxNewTokens > 0)
            {
                var caches = Track(owned, new BeamCaches(model.NewCache(prompt.Count + gen.MaxNewTokens + 1), 0, value.Model.NewCache(prompt.Count + gen.MaxNewTokens + 1)));
                root = new Beam([], false, FinishReason.Length, PrefillValue(caches.Value, prompt)) { Caches = caches };
            }
            else root = new([], gen.MaxNewTokens <= 0, FinishReason.Length, Values([prompt], pad)[0]);
            var beams = new List<Beam> { root };
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
                    // One seed per (round, beam); rows draw from Seed + row, so the B blocks differ.
                    var blockOptions = gen with
                    {
                        MaxNewTokens = length,
                        Seed = unchecked(seed + 1_000_003L * rounds + 10_007L * i),
                        Generator = null,
                        OnToken = null,
                    };
                    var rows = Enumerable.Repeat<IReadOnlyList<int>>([.. prompt, .. beam.Tokens], settings.BlocksPerBeam).ToList();
                    var candidates = new List<(Beam Beam, int Row)>();
                    KVCache? fork = null;
                    try
                    {
                        IReadOnlyList<SequenceResult> blocks;
                        if (beam.Caches is { } c)
                        {
                            // Feed what the beam's base cache has not seen (the whole prompt in round 0, then the block's
                            // last token), fork it into B rows and sample the blocks from there.
                            using var last = FeedBase(model, c, [.. prompt, .. beam.Tokens], gen.OnLayer);
                            fork = c.Base.SelectRows(Enumerable.Repeat(0, settings.BlocksPerBeam).ToList());
                            using var logits = last.expand(settings.BlocksPerBeam, -1);
                            blocks = model.GenerateFromCache(rows, fork, logits, blockOptions, cancellationToken);
                        }
                        else blocks = model.Generate(rows, blockOptions, cancellationToken);
                        for (int row = 0; row < blocks.Count; row++)
                        {
                            var block = blocks[row];
                            baseTokens += block.Tokens.Count + (block.FinishReason == FinishReason.EndOfSequence ? 1 : 0);
                            var tokens = beam.Tokens.Concat(block.Tokens).ToList();
                            bool ended = block.FinishReason != FinishReason.Length || tokens.Count >= gen.MaxNewTokens;
                            var reason = block.FinishReason == FinishReason.Length ? FinishReason.Length : block.FinishReason;
                            if (fresh.Concat(pool).Concat(candidates.Select(x => x.Beam)).Any(b => b.Finished == ended && b.Tokens.SequenceEqual(tokens))) continue;
                            candidates.Add((new Beam(tokens, ended, reason, double.NaN), row));
                        }
                        if (beam.Caches is { } cc) fresh.AddRange(ScoreCached(model, cc, fork!, beam, candidates, prompt.Count, pad, owned));
                        else fresh.AddRange(candidates.Select(x => x.Beam));
                    }
                    finally
                    {
                        fork?.Dispose();
                    }
                }
                if (fresh.Any(b => double.IsNaN(b.Value))) // the uncached path: score every beam+block over its whole prefix
                {
                    var values = Values([.. fresh.Select(b => (IReadOnlyList<int>)[.. prompt, .. b.Tokens])], pad);
                    fresh = [.. fresh.Select((b, j) => b with { Value = values[j] })];
                }
                scored += fresh.Count;
                pool.AddRange(fresh);
                // Highest V first; ties keep the earlier (finished beams, then the order sampled).
                var kept = pool.OrderByDescending(b => b.Value).Take(settings.Beams).ToList();
                // Caches of beams that did not survive go now, not at the end: only W beams' caches are alive at a time.
                foreach (var b in beams.Concat(fresh))
                    if (b.Caches is { } dropped && !kept.Any(k => ReferenceEquals(k.Caches, dropped)))
                    {
                        dropped.Dispose();
                        owned.Remove(dropped);
                    }
                beams = kept;
                rounds++;
            }
            var best = beams.Where(b => b.Finished).DefaultIfEmpty(beams[0]).MaxBy(b => b.Value)!;
            LastTrace = new IvoBlockTrace(rounds, scored, baseTokens, best.Tokens.Count, best.Value);
            return new SequenceResult(best.Tokens, cancellationToken.IsCancellationRequested ? FinishReason.Cancelled : best.Reason, prompt.Count, null);
        }
        finally
        {
            foreach (var c in owned) c.Dispose();
        }
    }

    private static BeamCaches Track(List<BeamCaches> owned, BeamCaches caches)
    {
        owned.Add(caches);
        return caches;
    }

    /// <summary>Feeds the tokens of <paramref name="sequence"/> the beam's base cache lacks; returns float32 logits [1, V] at its last token.</summary>
    private static Tensor FeedBase(CausalLM model, BeamCaches caches, IReadOnlyList<int> sequence, Func<int, Tensor, Tensor>? onLayer)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var pending = sequence.Skip(caches.Base.Length).ToList();
        if (pending.Count == 0) throw new InvalidOperationException("a live beam's base cache holds its whole sequence; its last token's logits are gone");
        using var output = model.Forward(model.IdsTensor([pending]), new ForwardArgs { Cache = caches.Base, LastTokenLogitsOnly = true, OnLayer = onLayer });
        return output.Logits.select(1, -1).to_type(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>Runs the prompt through the value model's cache and returns V at its last token.</summary>
    private double PrefillValue(KVCache cache, IReadOnlyList<int> prompt)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var h = value.Hidden(value.Model.IdsTensor([prompt]), cache);
        return value.Head(h.select(1, -1)).to_type(ScalarType.Float64).cpu().data<double>()[0];
    }

    /// <summary>
    /// V of each candidate from one value pass over the new blocks only: the beam's value cache is forked into one row
    /// per candidate and the blocks are fed right-padded (under causal attention the padding after a block cannot reach
    /// it), V read at each block's last token. A candidate that adds no token (EOS at once) has the beam's V. Live
    /// candidates keep their rows of both forks (the value cache cut back to their real length), so the next round
    /// starts from them.
    /// </summary>
    private IEnumerable<Beam> ScoreCached(CausalLM model, BeamCaches caches, KVCache baseFork, Beam beam, List<(Beam Beam, int Row)> candidates, int promptLength, int pad,
        List<BeamCaches> owned)
    {
        if (candidates.Count == 0) return [];
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        int before = beam.Tokens.Count;
        var blocks = candidates.Select(x => x.Beam.Tokens.Skip(before).ToList()).ToList();
        int width = blocks.Max(b => b.Count);
        var values = new double[candidates.Count];
        KVCache? valueFork = null;
        try
        {
            if (width > 0)
            {
                valueFork = caches.Value.SelectRows(Enumerable.Repeat(0, candidates.Count).ToList());
                var ids = blocks.Select(b => (IReadOnlyList<int>)[.. b, .. Enumerable.Repeat(pad, width - b.Count)]).ToList();
                using var h = value.Hidden(value.Model.IdsTensor(ids), valueFork);
                var at = tensor(blocks.Select(b => (long)Math.Max(b.Count - 1, 0)).ToArray()).to(h.device).view(-1, 1, 1).expand(-1, 1, h.shape[2]);
                var v = value.Head(h.gather(1, at).squeeze(1)).to_type(ScalarType.Float64).cpu().data<double>().ToArray();
                for (int j = 0; j < candidates.Count; j++) values[j] = blocks[j].Count == 0 ? beam.Value : v[j];
            }
            else Array.Fill(values, beam.Value);

            var result = new List<Beam>(candidates.Count);
            for (int j = 0; j < candidates.Count; j++)
            {
                var candidate = candidates[j].Beam with { Value = values[j] };
                if (!candidate.Finished)
                {
                    // A live candidate ran the whole block: its base row holds all but the block's last token.
                    var baseRow = baseFork.SelectRows([candidates[j].Row]);
                    var valueRow = valueFork!.SelectRows([j]);
                    valueRow.Truncate(promptLength + candidate.Tokens.Count);
                    candidate = candidate with { Caches = Track(owned, new BeamCaches(baseRow, baseRow.Length, valueRow)) };
                }
                result.Add(candidate);
            }
            return result;
        }
        finally
        {
            valueFork?.Dispose();
        }
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
