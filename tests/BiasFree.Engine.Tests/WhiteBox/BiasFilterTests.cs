using System.Text.Json;
using BiasFree.Engine.Chat;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using BiasFree.Engine.WhiteBox;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.Tests.WhiteBox;

public class BiasFilterTests
{
    private static readonly int[] Prompt = [1, 5, 17, 42, 8, 93, 11];
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private static CausalLM Tiny(long seed) =>
        CausalLM.Create(TinyModels.Config("llama") with { VocabSize = 258, EosTokenIds = [257] }, TorchSharp.torch.ScalarType.Float32, "cpu", seed);

    private static string Bytes(IReadOnlyList<int> ids) => new ByteTokenizer().Decode(ids);

    [Fact]
    public void ZeroRewardWithOneCandidateReproducesPlainSamplingWithTheSameSeed()
    {
        using var model = Tiny(3);
        var scorer = new ScoringModel(model, new ByteTokenizer(), new PlainFormatter());
        var reward = new ImplicitReward(scorer, scorer); // π_fair = π_ref: r ≡ 0
        Assert.All(reward.Score([new(ChatRole.User, "x")], ["abc", "zz"]), r => Assert.Equal(0.0, r));
        var options = new GenerationOptions { MaxNewTokens = 30, DoSample = true, Seed = 1234, EosTokenIds = [257] };
        var plain = model.Generate([Prompt], options, _ct)[0];
        var decoder = new BiasFilterDecoder(texts => reward.Score([new(ChatRole.User, "x")], texts), new BiasFilterOptions { Keep = 1, Children = 1, SegmentTokens = 7 });
        var filtered = decoder.Decode(model, Prompt, options, Bytes, _ct);
        Assert.Equal(plain.Tokens, filtered.Tokens);
        Assert.Equal(plain.FinishReason, filtered.FinishReason);
        Assert.Equal(plain.Tokens.Count, decoder.LastTrace!.TargetTokens); // no extra work with N = N_children = 1
        // Segments of 7: a sequence cut by the limit needs ⌈n/7⌉ steps; one ended by EOS needs ⌊n/7⌋ + 1 (EOS is drawn in the last).
        int steps = plain.FinishReason == FinishReason.Length ? (plain.Tokens.Count + 6) / 7 : plain.Tokens.Count / 7 + 1;
        Assert.Equal(steps, decoder.LastTrace.Steps.Count);
        // Another seed samples another text, so the equality above is not vacuous.
        Assert.NotEqual(plain.Tokens, model.Generate([Prompt], options with { Seed = 99 }, _ct)[0].Tokens);
    }

    [Fact]
    public void RewardThatFavoursAKnownTokenIsFollowed()
    {
        using var model = Tiny(3);
        const int favoured = (int)'e';
        // A reward that counts the favoured byte: the search should pick the continuation with the most of them.
        IReadOnlyList<double> Reward(IReadOnlyList<string> texts) => texts.Select(t => (double)t.Count(c => c == (char)favoured)).ToList();
        var options = new GenerationOptions { MaxNewTokens = 24, DoSample = true, Seed = 5, EosTokenIds = [], Temperature = 1.5 };
        var plain = model.Generate([Prompt], options, _ct)[0];
        var decoder = new BiasFilterDecoder(Reward, new BiasFilterOptions { Keep = 4, Children = 8, SegmentTokens = 4 });
        var filtered = decoder.Decode(model, Prompt, options, Bytes, _ct);
        int Count(IReadOnlyList<int> t) => t.Count(x => x == favoured);
        Assert.True(Count(filtered.Tokens) > Count(plain.Tokens), $"filtered {Count(filtered.Tokens)} vs plain {Count(plain.Tokens)}");
        Assert.Equal(24, filtered.Tokens.Count);
        // Bookkeeping: step 1 has 8 candidates; later steps 4 parents × 8 children; 4 kept each time; scores are the reward of the whole prefix.
        var trace = decoder.LastTrace!;
        Assert.Equal(8, trace.Steps[0].Count);
        Assert.All(trace.Steps.Skip(1), s => Assert.Equal(32, s.Count));
        Assert.All(trace.Steps, s => Assert.Equal(4, s.Count(c => c.Kept)));
        Assert.Equal(Count(filtered.Tokens), trace.Steps[^1].Where(c => c.Kept).Max(c => c.Score));
        Assert.Equal(8 * 4 + 5 * 32 * 4, trace.TargetTokens);
        Assert.Equal((8.0 * 4 + 5 * 32 * 4) / 24, trace.TokensPerOutputToken, 6);
        var json = JsonDocument.Parse(trace.ToJson());
        Assert.Equal(6, json.RootElement.GetProperty("steps").GetArrayLength());
    }

    [Fact]
    public void MarginKeepsTheSamplingOrderAmongCandidatesWithinDeltaOfTheBest()
    {
        using var model = Tiny(3);
        const char favoured = 'e';
        // One segment that covers the whole reply, so every candidate finishes in the first step.
        var options = new GenerationOptions { MaxNewTokens = 16, DoSample = true, Seed = 21, EosTokenIds = [], Temperature = 1.5 };
        string Decode(double margin, Func<string, double> score, List<string>? seen = null)
        {
            var decoder = new BiasFilterDecoder(texts =>
            {
                seen?.AddRange(texts);
                return texts.Select(score).ToList();
            }, new BiasFilterOptions { Keep = 4, Children = 8, SegmentTokens = 16, Margin = margin });
            return Bytes(decoder.Decode(model, Prompt, options, Bytes, _ct).Tokens);
        }
        double Count(string t) => t.Count(c => c == favoured);

        var candidates = new List<string>();
        string byReward = Decode(0, Count, candidates);
        Assert.Equal(8, candidates.Count);
        double best = candidates.Max(Count);
        Assert.Equal(best, Count(byReward));
        // The reward must separate the candidates for the cases below to differ.
        Assert.True(candidates.Select(Count).Distinct().Count() >= 2, string.Join(" | ", candidates.Select(Count)));

        // δ below the smallest gap (scores are whole counts): the same choice as δ = 0.
        Assert.Equal(byReward, Decode(0.5, Count));
        // δ = 1: the first candidate in sampling order whose score is within 1 of the best.
        Assert.Equal(candidates.First(c => Count(c) >= best - 1), Decode(1, Count));
        // δ above every gap: the reward no longer reorders anything, so the reply is the first sample, as with a zero reward.
        string first = Decode(1000, Count);
        Assert.Equal(candidates[0], first);
        Assert.Equal(Decode(0, _ => 0.0), first);
        Assert.Throws<ArgumentException>(() => new BiasFilterOptions { Margin = -1 }.Validate());
    }

    [Fact]
    public void ZeroRewardWithLikelihoodWeightPicksTheTargetsMostLikelyCandidate()
    {
        using var model = Tiny(3);
        // One segment covers the whole reply and no EOS, so every candidate is 16 tokens long and finishes in step 1.
        var options = new GenerationOptions { MaxNewTokens = 16, DoSample = true, Seed = 21, EosTokenIds = [], Temperature = 1.5 };
        var filterOptions = new BiasFilterOptions { Keep = 4, Children = 8, SegmentTokens = 16, LikelihoodWeight = 0.5 };
        var decoder = new BiasFilterDecoder(texts => texts.Select(_ => 0.0).ToList(), filterOptions);
        var filtered = decoder.Decode(model, Prompt, options, Bytes, _ct);

        // The same 8 candidates, drawn independently: the decoder's first step samples all of them in one batch from one
        // generator seeded with the request's seed. Each is scored by hand, one at a time.
        using var gen = new TorchSharp.torch.Generator(21);
        var candidates = model.Generate(Enumerable.Repeat((IReadOnlyList<int>)Prompt, 8).ToList(),
            options with { Generator = gen, Seed = null }, _ct).Select(r => r.Tokens).ToList();
        var logLikelihoods = candidates.Select(c => model.LogProbability(Prompt, c).Sum).ToList();
        int best = logLikelihoods.IndexOf(logLikelihoods.Max());
        Assert.Equal(candidates[best], filtered.Tokens);
        // Not vacuous: with λ = 0 a zero reward keeps the sampling order, so the reply is the first sample, another one.
        Assert.NotEqual(0, best);
        var plain = new BiasFilterDecoder(texts => texts.Select(_ => 0.0).ToList(), filterOptions with { LikelihoodWeight = 0 }).Decode(model, Prompt, options, Bytes, _ct);
        Assert.Equal(candidates[0], plain.Tokens);

        // The trace records each candidate's log-likelihood, and its score is λ times it (the reward is zero).
        var step = Assert.Single(decoder.LastTrace!.Steps);
        Assert.Equal(8, step.Count);
        for (int i = 0; i < 8; i++)
        {
            Assert.Equal(logLikelihoods[i], step[i].TargetLogLikelihood!.Value, 3);
            Assert.Equal(0.5 * logLikelihoods[i], step[i].Score, 3);
        }
        Assert.Contains("target_loglik", decoder.LastTrace.ToJson(), StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new BiasFilterOptions { LikelihoodWeight = -1 }.Validate());
    }

    [Fact]
    public void LikelihoodWeightTradesTheRewardAgainstTheTargetsLikelihood()
    {
        using var model = Tiny(3);
        const char favoured = 'e';
        var options = new GenerationOptions { MaxNewTokens = 16, DoSample = true, Seed = 21, EosTokenIds = [], Temperature = 1.5 };
        var seen = new List<string>();
        List<BiasFilterCandidate> Step(double lambda)
        {
            var decoder = new BiasFilterDecoder(texts =>
            {
                seen.AddRange(texts);
                return texts.Select(t => (double)t.Count(c => c == favoured)).ToList();
            }, new BiasFilterOptions { Keep = 4, Children = 8, SegmentTokens = 16, LikelihoodWeight = lambda });
            decoder.Decode(model, Prompt, options, Bytes, _ct);
            return decoder.LastTrace!.Steps.Single().ToList();
        }
        var byReward = Step(0);
        Assert.All(byReward, c => Assert.Null(c.TargetLogLikelihood)); // λ = 0: the paper's ranking, no extra forward pass
        var rewards = seen.Select(t => (double)t.Count(c => c == favoured)).ToList();
        var mixed = Step(0.7);
        // Every candidate's score is its reward plus λ times its log-likelihood; the kept ones are the top 4 of that sum.
        for (int i = 0; i < 8; i++) Assert.Equal(rewards[i] + 0.7 * mixed[i].TargetLogLikelihood!.Value, mixed[i].Score, 3);
        var top = mixed.Select((c, i) => (c, i)).OrderByDescending(x => x.c.Score).ThenBy(x => x.i).Take(4).Select(x => x.i).ToHashSet();
        Assert.Equal(top, mixed.Select((c, i) => (c, i)).Where(x => x.c.Kept).Select(x => x.i).ToHashSet());
    }

    [Fact]
    public void FinishedCandidatesStopGrowingAndStopStringsCutTheText()
    {
        using var model = Tiny(8);
        // Find a token the model emits greedily early on and make it the end of sequence.
        var greedy = model.Generate([Prompt], new GenerationOptions { MaxNewTokens = 6, EosTokenIds = [] }, _ct)[0];
        int eos = greedy.Tokens[2];
        var options = new GenerationOptions { MaxNewTokens = 20, EosTokenIds = [eos] };
        var expected = model.Generate([Prompt], options, _ct)[0];
        Assert.Equal(FinishReason.EndOfSequence, expected.FinishReason);
        var decoder = new BiasFilterDecoder(texts => texts.Select(_ => 0.0).ToList(), new BiasFilterOptions { Keep = 2, Children = 2, SegmentTokens = 1 });
        var result = decoder.Decode(model, Prompt, options, Bytes, _ct);
        Assert.Equal(expected.Tokens, result.Tokens); // greedy children are identical; the search ends at EOS, not at the limit
        Assert.Equal(FinishReason.EndOfSequence, result.FinishReason);
        Assert.True(decoder.LastTrace!.Steps[^1].Where(c => c.Kept).All(c => c.Finished));

        // A stop string: the row ends as soon as the decoded text holds it.
        string stop = Bytes([greedy.Tokens[1]]);
        Assert.NotEmpty(stop);
        var stopOptions = new GenerationOptions { MaxNewTokens = 20, EosTokenIds = [], StopStrings = [stop], Decode = Bytes };
        var plainStop = model.Generate([Prompt], stopOptions, _ct)[0];
        var stopped = decoder.Decode(model, Prompt, stopOptions, Bytes, _ct);
        Assert.Equal(FinishReason.StopSequence, stopped.FinishReason);
        Assert.Equal(stop, stopped.MatchedStop);
        Assert.Equal(plainStop.Tokens, stopped.Tokens);
        Assert.True(stopped.Tokens.Count <= 2); // stopped at the second token at the latest, not at the limit
        Assert.DoesNotContain(stop, TextGeneration.CutAtStop(Bytes(stopped.Tokens), [stop]));
    }

    [Fact]
    public void ImplicitRewardIsBetaTimesTheLogRatioOfTheTwoModels()
    {
        using var fairModel = Tiny(21);
        using var refModel = Tiny(22);
        var tok = new ByteTokenizer();
        var fmt = new PlainFormatter();
        var reward = new ImplicitReward(new ScoringModel(fairModel, tok, fmt), new ScoringModel(refModel, tok, fmt), beta: 0.5);
        ChatMessage[] conversation = [new(ChatRole.User, "Who was bad at math?")];
        string[] responses = ["The girl.", "Cannot be determined."];
        var scores = reward.Score(conversation, responses);
        var prompt = tok.Encode(fmt.Render(conversation, true), false);
        for (int i = 0; i < responses.Length; i++)
        {
            double byHand = 0.5 * (fairModel.LogProbability(prompt, tok.Encode(responses[i], false)).Sum - refModel.LogProbability(prompt, tok.Encode(responses[i], false)).Sum);
            Assert.Equal(byHand, scores[i], 4);
            Assert.NotEqual(0.0, scores[i]);
        }
    }

    [Fact]
    public async Task ChatClientStepRecordsCandidateScoresAndRefusesRemoteTargets()
    {
        using var dir = new TempDir();
        using (var m = Tiny(5)) m.Save(dir.Path);
        using var model = CausalLM.Load(dir.Path);
        using var engine = new EngineChatClient(model, new ByteTokenizer(), new PlainFormatter());
        using var fairModel = Tiny(6);
        var reward = new ImplicitReward(new ScoringModel(fairModel, new ByteTokenizer(), new PlainFormatter()), new ScoringModel(model, new ByteTokenizer(), new PlainFormatter()));
        using var filter = new BiasFilterChatClient(engine, reward, new BiasFilterOptions { Keep = 2, Children = 2, SegmentTokens = 4 });
        var response = await filter.GetResponseAsync([new ChatMessage(ChatRole.User, "Hi")], new ChatOptions { MaxOutputTokens = 8, Temperature = 1, Seed = 3 }, _ct);
        Assert.InRange(response.Usage!.OutputTokenCount!.Value, 1, 8);
        var trace = JsonDocument.Parse((string)response.AdditionalProperties![BiasFilterChatClient.CandidatesKey]!).RootElement;
        int steps = trace.GetProperty("steps").GetArrayLength();
        Assert.InRange(steps, 1, 2);
        Assert.Equal(2, trace.GetProperty("steps")[0].GetArrayLength()); // N_children candidates from the empty start
        Assert.InRange(trace.GetProperty("target_tokens").GetInt64(), 1, 4 * 2 + 4 * 4);
        // The kept winner's score is the implicit reward of the reply.
        var best = trace.GetProperty("steps")[steps - 1].EnumerateArray().Where(c => c.GetProperty("kept").GetBoolean()).Max(c => c.GetProperty("score").GetDouble());
        var expected = reward.Score([new ChatMessage(ChatRole.User, "Hi")], [response.Text])[0];
        Assert.Equal(expected, best, 3);

        using var remote = new ScriptedRemote();
        Assert.Throws<InvalidOperationException>(() => new BiasFilterChatClient(remote, reward, new BiasFilterOptions()));
    }

    /// <summary>A client with no engine behind it (stands in for a server target).</summary>
    private sealed class ScriptedRemote : IChatClient
    {
        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, "ok")));
        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();
        public object? GetService(Type serviceType, object? serviceKey = null) => null;
        public void Dispose() { }
    }
}
