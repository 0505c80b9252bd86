using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using BiasFree.Engine.Chat;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using Microsoft.Extensions.AI;
using TorchSharp;

namespace BiasFree.Engine.WhiteBox;

/// <summary>
/// BiasFilter's search settings (arXiv 2505.23829 gives no values; these follow the chunk-level search of "weak-to-strong
/// search", Zhou et al. 2024, as recorded in shared/notes/algorithms.md §2).
/// </summary>
public sealed record BiasFilterOptions
{
    /// <summary>π_fair: the preference-tuned (DPO) model folder.</summary>
    public string FairModel { get; init; } = "";
    /// <summary>π_ref: its reference model folder.</summary>
    public string ReferenceModel { get; init; } = "";
    /// <summary>β of the implicit reward.</summary>
    public double Beta { get; init; } = 1.0;
    /// <summary>N: candidates kept after each segment (beam width).</summary>
    public int Keep { get; init; } = 4;
    /// <summary>N_children: continuations sampled from each kept candidate.</summary>
    public int Children { get; init; } = 4;
    /// <summary>l: tokens per segment.</summary>
    public int SegmentTokens { get; init; } = 12;
    /// <summary>
    /// δ (ours, not the paper's; 0 = the paper's ranking): candidates whose score is within δ of the step's best score count
    /// as equally fair and keep the target's sampling order among themselves, so the reward vetoes candidates it scores
    /// clearly lower but does not reorder those it cannot tell apart. In units of β·r.
    /// </summary>
    public double Margin { get; init; }
    /// <summary>
    /// λ (ours, not the paper's; 0 = the paper's ranking by the reward alone): candidates are ranked by
    /// β·r(x, y) + λ·log π_target(y | x), the target model's own log-probability of the partial reply added to the reward.
    /// Why: a reward that cannot tell two replies apart (on BBQ, the two names of a disambiguated item) then leaves the
    /// choice to the model that read the context, instead of to its own noise; where the reward does separate candidates
    /// by more than λ times their log-likelihood gap, it still decides. In nats per nat of log-likelihood.
    /// </summary>
    public double LikelihoodWeight { get; init; }

    public void Validate()
    {
        if (Keep < 1 || Children < 1 || SegmentTokens < 1)
            throw new ArgumentException("BiasFilter needs N ≥ 1, N_children ≥ 1 and a segment of at least 1 token");
        if (!(Beta > 0)) throw new ArgumentException("BiasFilter's β must be positive");
        if (!(Margin >= 0) || double.IsInfinity(Margin)) throw new ArgumentException("BiasFilter's margin δ must be a finite number ≥ 0");
        if (!(LikelihoodWeight >= 0) || double.IsInfinity(LikelihoodWeight)) throw new ArgumentException("BiasFilter's likelihood weight λ must be a finite number ≥ 0");
    }
}

/// <summary>One candidate of one search step, as recorded with the reply.</summary>
/// <param name="Parent">Index of the kept candidate it extends (in the previous step's kept list).</param>
/// <param name="Score">Its rank score: the cumulative implicit reward of the whole partial response, plus λ times
/// <paramref name="TargetLogLikelihood"/> when λ &gt; 0.</param>
/// <param name="Tokens">Response tokens so far.</param>
/// <param name="Finished">True when it ended (end of sequence, stop sequence or the token limit).</param>
/// <param name="Kept">True when it survived the top-N cut.</param>
/// <param name="TargetLogLikelihood">log π_target(partial response | prompt); computed only when λ &gt; 0.</param>
public sealed record BiasFilterCandidate(int Parent, double Score, int Tokens, bool Finished, bool Kept, double? TargetLogLikelihood = null);

/// <summary>What one BiasFilter decode did.</summary>
public sealed record BiasFilterTrace(IReadOnlyList<IReadOnlyList<BiasFilterCandidate>> Steps, long TargetTokens, int OutputTokens)
{
    /// <summary>Target tokens generated per output token (theory: about N·N_children once the beam is full).</summary>
    public double TokensPerOutputToken => OutputTokens == 0 ? TargetTokens : (double)TargetTokens / OutputTokens;

    public string ToJson() => JsonSerializer.Serialize(new BiasFilterTraceJson(
        TargetTokens,
        OutputTokens,
        Steps.Select(s => s.Select(c => new BiasFilterCandidateJson(c.Parent, Math.Round(c.Score, 4), c.Tokens, c.Finished, c.Kept,
            c.TargetLogLikelihood is { } ll ? Math.Round(ll, 4) : null)))), EngineJson.Default.BiasFilterTraceJson);
}

/// <summary>A <see cref="BiasFilterTrace"/> as JSON (snake_case names, scores rounded to 4 decimals).</summary>
internal sealed record BiasFilterTraceJson(
    [property: JsonPropertyName("target_tokens")] long TargetTokens,
    [property: JsonPropertyName("output_tokens")] int OutputTokens,
    [property: JsonPropertyName("steps")] IEnumerable<IEnumerable<BiasFilterCandidateJson>> Steps);

/// <summary>One candidate of a trace; the target's log-likelihood only when λ &gt; 0, so that traces of the paper's ranking keep their shape.</summary>
internal sealed record BiasFilterCandidateJson(
    [property: JsonPropertyName("parent")] int Parent,
    [property: JsonPropertyName("score")] double Score,
    [property: JsonPropertyName("tokens")] int Tokens,
    [property: JsonPropertyName("finished")] bool Finished,
    [property: JsonPropertyName("kept")] bool Kept,
    [property: JsonPropertyName("target_loglik"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? TargetLogLikelihood);

/// <summary>
/// BiasFilter (arXiv 2505.23829) decoding over an in-process target: the response grows in segments of l tokens. At each
/// step every unfinished kept candidate spawns N_children continuations sampled from the target (all of a step's
/// continuations are generated as one batch); every candidate is scored by the cumulative reward of its whole partial
/// response; the top N (finished ones included) are kept. The result is the best-scoring finished candidate (or the best
/// one when the token limit ends the search). Ties keep generation order, so with N = N_children = 1 the search is plain
/// sampling continued segment by segment from one random stream. With λ &gt; 0 (<see cref="BiasFilterOptions.LikelihoodWeight"/>,
/// ours) the rank score adds λ·log π_target(y | x), computed by the target on the candidates' token ids (one batched
/// forward pass per step; end of sequence is not scored, as the reward does not score it either).
/// </summary>
public sealed class BiasFilterDecoder(Func<IReadOnlyList<string>, IReadOnlyList<double>> reward, BiasFilterOptions options)
{
    private sealed record Candidate(List<int> Tokens, double Score, bool Finished, FinishReason? Reason, string? Stop, double? LogLikelihood = null);

    public BiasFilterTrace? LastTrace { get; private set; }

    public SequenceResult Decode(CausalLM model, IReadOnlyList<int> prompt, GenerationOptions generation, Func<IReadOnlyList<int>, string> decode,
        CancellationToken cancellationToken = default)
    {
        options.Validate();
        using var ownGen = generation.Generator is null
            ? new torch.Generator(generation.Seed is { } s ? (ulong)s : (ulong)Random.Shared.NextInt64())
            : null;
        var gen = generation.Generator ?? ownGen!;
        var active = new List<Candidate> { new([], 0, false, null, null) };
        var steps = new List<IReadOnlyList<BiasFilterCandidate>>();
        long targetTokens = 0;
        int max = generation.MaxNewTokens;
        while (active.Any(c => !c.Finished))
        {
            if (cancellationToken.IsCancellationRequested)
            {
                var best = active[0];
                return new SequenceResult(best.Tokens, FinishReason.Cancelled, prompt.Count, null);
            }
            var open = active.Select((c, i) => (c, i)).Where(x => !x.c.Finished).ToList();
            var prompts = new List<IReadOnlyList<int>>();
            var parents = new List<int>();
            foreach (var (c, i) in open)
                for (int k = 0; k < options.Children; k++)
                {
                    prompts.Add([.. prompt, .. c.Tokens]);
                    parents.Add(i);
                }
            int segment = Math.Min(options.SegmentTokens, max - open.Min(x => x.c.Tokens.Count));
            // Each row stops at its own limit: a candidate never exceeds max tokens in total.
            var results = model.Generate(prompts, generation with { MaxNewTokens = segment, Generator = gen, OnToken = null, Seed = null },
                cancellationToken);
            var fresh = new List<Candidate>();
            for (int r = 0; r < results.Count; r++)
            {
                var parent = active[parents[r]];
                var tokens = parent.Tokens.Concat(results[r].Tokens).ToList();
                if (tokens.Count > max) tokens = tokens.Take(max).ToList();
                targetTokens += results[r].Tokens.Count;
                bool ended = results[r].FinishReason is FinishReason.EndOfSequence or FinishReason.StopSequence;
                var reason = ended ? results[r].FinishReason : tokens.Count >= max ? FinishReason.Length : (FinishReason?)null;
                fresh.Add(new Candidate(tokens, 0, reason is not null, reason, results[r].MatchedStop));
            }
            var texts = fresh.Select(c => TextGeneration.CutAtStop(decode(c.Tokens), generation.StopStrings)).ToList();
            var scores = reward(texts);
            // λ = 0 skips the target's forward pass entirely: the paper's ranking, at the paper's cost.
            var logLikelihoods = options.LikelihoodWeight == 0 ? null
                : model.LogProbabilities(fresh.Select(c => ((IReadOnlyList<int>)prompt, (IReadOnlyList<int>)c.Tokens)).ToList()).Select(x => x.Sum).ToList();
            fresh = fresh.Select((c, i) => logLikelihoods is null ? c with { Score = scores[i] }
                : c with { Score = scores[i] + options.LikelihoodWeight * logLikelihoods[i], LogLikelihood = logLikelihoods[i] }).ToList();
            // Finished candidates keep competing with the new ones; stable order: carried first, then generation order.
            var pool = active.Where(c => c.Finished).Select(c => (c, parent: -1)).Concat(fresh.Select((c, i) => (c, parent: parents[i]))).ToList();
            // Rank key: the score, except that every score within δ of the best counts as the best (δ = 0: the score).
            double top = pool.Max(x => x.c.Score);
            double Key(double score) => score >= top - options.Margin ? top : score;
            var kept = pool.Select((x, i) => (x, i)).OrderByDescending(y => Key(y.x.c.Score)).ThenBy(y => y.i).Take(options.Keep).Select(y => y.i).ToHashSet();
            steps.Add(pool.Select((x, i) => new BiasFilterCandidate(x.parent, x.c.Score, x.c.Tokens.Count, x.c.Finished, kept.Contains(i), x.c.LogLikelihood)).ToList());
            active = pool.Select((x, i) => (x, i)).Where(y => kept.Contains(y.i)).OrderByDescending(y => Key(y.x.c.Score)).ThenBy(y => y.i).Select(y => y.x.c).ToList();
        }
        // The best finished candidate; with δ > 0 the first (in kept order) of those within δ of the best finished score.
        var finished = active.Where(c => c.Finished).ToList();
        var winner = finished.Count == 0 ? active[0]
            : finished.First(c => c.Score >= finished.Max(f => f.Score) - options.Margin);
        LastTrace = new BiasFilterTrace(steps, targetTokens, winner.Tokens.Count);
        return new SequenceResult(winner.Tokens, winner.Reason ?? FinishReason.Length, prompt.Count, winner.Stop);
    }
}

/// <summary>
/// BiasFilter as a chat-client step over the in-process engine: each request is decoded by <see cref="BiasFilterDecoder"/>
/// with the implicit reward of π_fair vs π_ref on the same conversation; the reply carries the search trace (candidate
/// scores per step, target tokens spent) under <see cref="CandidatesKey"/>, which the run store records.
/// The target must be in-process: an OpenAI-compatible server cannot continue a partial assistant reply through the chat
/// API in a portable way, so remote targets are refused rather than approximated.
/// </summary>
public sealed class BiasFilterChatClient : DelegatingChatClient
{
    public const string CandidatesKey = "biasfree.biasfilter.candidates";
    public const string CostKey = "biasfree.biasfilter.target_tokens_per_output_token";

    private readonly ImplicitReward _reward;
    private readonly BiasFilterOptions _options;
    private readonly ITextTokenizer _tokenizer;

    public BiasFilterChatClient(IChatClient inner, ImplicitReward reward, BiasFilterOptions options) : base(inner)
    {
        options.Validate();
        _reward = reward;
        _options = options;
        var engine = inner.GetService<EngineChatClient>()
            ?? throw new InvalidOperationException("BiasFilter needs an in-process model target (a model folder or the demo model): a remote server cannot continue a partial reply portably.");
        _tokenizer = (ITextTokenizer?)engine.GetService(typeof(ITextTokenizer)) ?? throw new InvalidOperationException("the engine exposes no tokenizer");
    }

    public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var list = messages.ToList();
        var conversation = list.ToList();
        if (!string.IsNullOrEmpty(options?.Instructions)) conversation.Insert(0, new ChatMessage(ChatRole.System, options.Instructions));
        var decoder = new BiasFilterDecoder(texts => _reward.Score(conversation, texts), _options);
        var o = options?.Clone() ?? new ChatOptions();
        o.AdditionalProperties = o.AdditionalProperties is null ? [] : new AdditionalPropertiesDictionary(o.AdditionalProperties);
        o.AdditionalProperties[EngineChatClient.RequestHooksKey] = new EngineRequestHooks
        {
            Decoder = (model, prompt, gen, ct) => decoder.Decode(model, prompt, gen, ids => _tokenizer.Decode(ids), ct),
            Describe = props =>
            {
                if (decoder.LastTrace is not { } trace) return;
                props[CandidatesKey] = trace.ToJson();
                props[CostKey] = Math.Round(trace.TokensPerOutputToken, 3).ToString(CultureInfo.InvariantCulture);
            },
        };
        return base.GetResponseAsync(list, o, cancellationToken);
    }

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        // The search decides the text only at the end, so the reply arrives as one update.
        var response = await GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        foreach (var update in response.ToChatResponseUpdates()) yield return update;
    }
}
