using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using static TorchSharp.torch;

namespace BiasFree.Engine.Decoding;

/// <summary>Which preference context drafts in each round of Persona-judge.</summary>
public enum PersonaRoleSchedule
{
    /// <summary>The roles swap after every round: the paper's "mutual cross-validation" (each persona judges the other in turn).</summary>
    Alternate,

    /// <summary>
    /// The released code (<c>Monncyann/Persona-judge</c>, <c>trans_speculative_sampling</c>): the roles swap after the
    /// first round and its flag never flips back, so from round 2 on the judge persona drafts and the draft persona judges.
    /// </summary>
    SwapOnce,

    /// <summary>No swap: plain speculative sampling with the draft persona as drafter and the judge persona as target.</summary>
    Fixed,
}

/// <summary>Settings of Persona-judge decoding. Defaults are the released code's (T 0.9, top-k 20, top-p 0.9, γ 4).</summary>
public sealed record PersonaJudgeSettings
{
    /// <summary>γ: tokens the drafter proposes per round.</summary>
    public int DraftTokens { get; init; } = 4;

    /// <summary>Temperature of both p and q; 0 = greedy (one-hot distributions).</summary>
    public double Temperature { get; init; } = 0.9;

    /// <summary>Top-k filter applied to both p and q (null = off).</summary>
    public int? TopK { get; init; } = 20;

    /// <summary>Top-p filter applied to both p and q (null = off).</summary>
    public double? TopP { get; init; } = 0.9;

    /// <summary>Which persona drafts in each round.</summary>
    public PersonaRoleSchedule Schedule { get; init; } = PersonaRoleSchedule.Alternate;

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad field.</summary>
    public void Validate()
    {
        if (DraftTokens < 1) throw new ArgumentException($"draft tokens (γ) must be at least 1, got {DraftTokens}");
        if (Temperature < 0 || double.IsNaN(Temperature)) throw new ArgumentException($"temperature must be ≥ 0, got {Temperature}");
        if (TopK is < 1) throw new ArgumentException($"top-k must be at least 1, got {TopK}");
        if (TopP is { } p && (p <= 0 || p > 1)) throw new ArgumentException($"top-p must be in (0, 1], got {p}");
    }
}

/// <summary>What Persona-judge did for one reply; every figure is counted.</summary>
/// <param name="Rounds">Draft-and-verify rounds.</param>
/// <param name="Drafted">Draft tokens proposed.</param>
/// <param name="Accepted">Draft tokens accepted by the judge.</param>
/// <param name="BonusTokens">Rounds where all drafts were accepted and the judge added one token.</param>
/// <param name="DraftPasses">Forward passes of the drafting context (one per draft token).</param>
/// <param name="JudgePasses">Forward passes of the judging context (one per round).</param>
/// <param name="Tokens">Tokens produced (accepted drafts + residual/bonus tokens), before cutting at EOS or the length limit.</param>
public sealed record PersonaJudgeStatistics(int Rounds, int Drafted, int Accepted, int BonusTokens, int DraftPasses, int JudgePasses, int Tokens)
{
    /// <summary>Accepted / Drafted.</summary>
    public double AcceptanceRate => Drafted == 0 ? 0 : (double)Accepted / Drafted;

    /// <summary>Tokens per judge forward pass: the speculative speed-up over plain decoding with the judge (1 without drafting).</summary>
    public double TokensPerJudgePass => JudgePasses == 0 ? 0 : (double)Tokens / JudgePasses;

    /// <summary>Tokens per forward pass of either context (drafting passes included).</summary>
    public double TokensPerForwardPass => DraftPasses + JudgePasses == 0 ? 0 : (double)Tokens / (DraftPasses + JudgePasses);

    /// <summary>Sums two replies' counts.</summary>
    public PersonaJudgeStatistics Add(PersonaJudgeStatistics o) => new(Rounds + o.Rounds, Drafted + o.Drafted, Accepted + o.Accepted,
        BonusTokens + o.BonusTokens, DraftPasses + o.DraftPasses, JudgePasses + o.JudgePasses, Tokens + o.Tokens);

    /// <summary>All zero.</summary>
    public static PersonaJudgeStatistics Empty { get; } = new(0, 0, 0, 0, 0, 0, 0);
}

/// <summary>A Persona-judge reply: its tokens (EOS removed), why it ended, and the counts.</summary>
/// <param name="Tokens">The reply.</param>
/// <param name="FinishReason">EOS, length limit, stop, or cancellation.</param>
/// <param name="Statistics">Counts of drafts, acceptances and passes.</param>
/// <param name="JudgePersonaJudged">Per round: true when the judge persona verified it (false: the draft persona did).</param>
/// <param name="RoundLengths">Per round: the tokens it added to <paramref name="Tokens"/>.</param>
public sealed record PersonaJudgeResult(IReadOnlyList<int> Tokens, FinishReason FinishReason, PersonaJudgeStatistics Statistics,
    IReadOnlyList<bool> JudgePersonaJudged, IReadOnlyList<int> RoundLengths);

/// <summary>
/// Persona-judge (Zhang et al., "Persona-judge: Personalized Alignment of Large Language Models via Token-level
/// Self-judgment", arXiv 2504.12663): one checkpoint, two preference contexts. Each round one context drafts γ tokens
/// (γ single-token passes over its own KV cache) and the other scores them in one pass; the speculative acceptance rule
/// (<see cref="SpeculativeSampling.Verify"/>) keeps a prefix of the draft and adds one token. The two contexts keep their
/// own caches; rejected drafts are cut off with <see cref="KVCache.Truncate"/>.
/// </summary>
/// <remarks>
/// Because the acceptance rule is exact, each round's tokens are distributed as the <em>judging</em> context's
/// distribution; the drafter only decides how many tokens a round yields. So with <see cref="PersonaRoleSchedule.Fixed"/>
/// the output is distributed as sampling from the judge persona alone, and with the swapping schedules it alternates
/// between the personas in chunks whose length depends on how much they agree.
/// </remarks>
public static class PersonaJudgeDecoder
{
    private sealed class Context(CausalLM model, IReadOnlyList<int> prompt) : IDisposable
    {
        public KVCache Cache { get; } = model.NewCache(prompt.Count + 64);
        /// <summary>Tokens of this context not yet in its cache (the prompt at first, then the last one or two committed tokens).</summary>
        public List<int> Pending { get; } = [.. prompt];
        public void Dispose() => Cache.Dispose();
    }

    /// <summary>Generates up to <paramref name="maxNewTokens"/> tokens. Contexts must be non-empty token lists.</summary>
    /// <param name="model">The shared checkpoint.</param>
    /// <param name="draftPrompt">Prompt ids under the draft persona (drafts in round 1).</param>
    /// <param name="judgePrompt">Prompt ids under the judge persona (judges in round 1).</param>
    /// <param name="settings">γ, sampling filters and role schedule.</param>
    /// <param name="maxNewTokens">Length limit of the reply.</param>
    /// <param name="eosTokenIds">Ids that end the reply (not included in it).</param>
    /// <param name="seed">Seeds the uniform draws (same seed, same reply).</param>
    /// <param name="stop">Optional early stop on the reply so far (e.g. a stop string appeared).</param>
    /// <param name="cancellationToken">Checked between rounds.</param>
    public static PersonaJudgeResult Generate(CausalLM model, IReadOnlyList<int> draftPrompt, IReadOnlyList<int> judgePrompt,
        PersonaJudgeSettings settings, int maxNewTokens, IReadOnlyCollection<int> eosTokenIds, long seed,
        Func<IReadOnlyList<int>, bool>? stop = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        settings.Validate();
        if (draftPrompt.Count == 0 || judgePrompt.Count == 0) throw new ArgumentException("both persona prompts need at least one token");
        var random = new Random(unchecked((int)(seed ^ (seed >> 32))));
        var eos = eosTokenIds as ISet<int> ?? eosTokenIds.ToHashSet();
        var output = new List<int>();
        var finish = FinishReason.Length;
        var stats = PersonaJudgeStatistics.Empty;
        var judged = new List<bool>();
        var lengths = new List<int>();
        if (maxNewTokens <= 0) return new PersonaJudgeResult(output, finish, stats, judged, lengths);

        using var _ = no_grad();
        using var a = new Context(model, draftPrompt);
        using var b = new Context(model, judgePrompt);
        var (drafter, judge) = (a, b);
        int round = 0, produced = 0;
        while (true)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                finish = FinishReason.Cancelled;
                break;
            }
            // ---- draft: γ tokens from q, one pass each (fewer near the length limit or after an EOS draft)
            int gamma = Math.Max(1, Math.Min(settings.DraftTokens, maxNewTokens - output.Count));
            int drafterBase = drafter.Cache.Length + drafter.Pending.Count;
            var draft = new List<int>(gamma);
            var q = new List<double[]>(gamma);
            while (true)
            {
                var dist = Feed(model, drafter, 1, settings)[0];
                stats = stats with { DraftPasses = stats.DraftPasses + 1 };
                int x = SpeculativeSampling.Sample(dist, random);
                draft.Add(x);
                q.Add(dist);
                if (draft.Count == gamma || eos.Contains(x)) break;
                drafter.Pending.Add(x);
            }
            // ---- judge: p at the position before each draft token and after the last, in one pass
            int judgeBase = judge.Cache.Length + judge.Pending.Count;
            judge.Pending.AddRange(draft);
            var p = Feed(model, judge, draft.Count + 1, settings);
            judged.Add(ReferenceEquals(judge, b));
            stats = stats with { JudgePasses = stats.JudgePasses + 1 };

            var verdict = SpeculativeSampling.Verify(draft, q, p, random);
            int n = verdict.Accepted;
            stats = stats with
            {
                Rounds = stats.Rounds + 1,
                Drafted = stats.Drafted + draft.Count,
                Accepted = stats.Accepted + n,
                BonusTokens = stats.BonusTokens + (verdict.Bonus ? 1 : 0),
            };

            // ---- roll both caches back to the kept prefix; what is not cached yet waits in Pending
            judge.Cache.Truncate(judgeBase + n);
            judge.Pending.Clear();
            judge.Pending.Add(verdict.NextToken);
            if (n == draft.Count)
            {
                // The drafter's cache holds every draft token but the last, which was never fed.
                drafter.Pending.Clear();
                drafter.Pending.Add(draft[^1]);
                drafter.Pending.Add(verdict.NextToken);
            }
            else
            {
                drafter.Cache.Truncate(drafterBase + n);
                drafter.Pending.Clear();
                drafter.Pending.Add(verdict.NextToken);
            }

            // ---- commit
            bool done = false;
            int before = output.Count;
            foreach (int t in draft.Take(n).Append(verdict.NextToken))
            {
                produced++;
                if (eos.Contains(t))
                {
                    finish = FinishReason.EndOfSequence;
                    done = true;
                    break;
                }
                output.Add(t);
                if (output.Count >= maxNewTokens)
                {
                    finish = FinishReason.Length;
                    done = true;
                    break;
                }
            }
            lengths.Add(output.Count - before);
            if (!done && stop?.Invoke(output) == true)
            {
                finish = FinishReason.StopSequence;
                done = true;
            }
            if (done) break;

            round++;
            bool swap = settings.Schedule switch
            {
                PersonaRoleSchedule.Alternate => true,
                PersonaRoleSchedule.SwapOnce => round == 1,
                _ => false,
            };
            if (swap) (drafter, judge) = (judge, drafter);
        }
        return new PersonaJudgeResult(output, finish, stats with { Tokens = produced }, judged, lengths);
    }

    /// <summary>
    /// Feeds <paramref name="context"/>'s pending tokens through the model (appending them to its cache) and returns the
    /// sampling distributions at the last <paramref name="positions"/> of them.
    /// </summary>
    private static double[][] Feed(CausalLM model, Context context, int positions, PersonaJudgeSettings s)
    {
        using var scope = NewDisposeScope();
        using var output = model.Forward(model.IdsTensor([context.Pending]), new ForwardArgs { Cache = context.Cache, LastTokenLogitsOnly = positions == 1 });
        context.Pending.Clear();
        var logits = output.Logits; // [1, T or 1, V]
        int t = (int)logits.shape[1];
        var rows = logits[0].narrow(0, t - positions, positions).to_type(ScalarType.Float32).cpu();
        int v = (int)rows.shape[1];
        var flat = rows.data<float>().ToArray();
        var result = new double[positions][];
        for (int i = 0; i < positions; i++) result[i] = SpeculativeSampling.Distribution(flat.AsSpan(i * v, v), s.Temperature, s.TopK, s.TopP);
        return result;
    }
}
