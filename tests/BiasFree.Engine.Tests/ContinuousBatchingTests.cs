using BiasFree.Engine.Chat;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using Microsoft.Extensions.AI;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests;

/// <summary>The continuous batcher: per-row settings and random state, joins mid-decode, per-row endings, cancellation, memory bound.</summary>
public class ContinuousBatchingTests : IDisposable
{
    private static readonly int[] Prompt = [1, 5, 17, 42, 8, 93, 3];
    private readonly TempDir _dir = new();
    private readonly CausalLM _model;
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    public ContinuousBatchingTests() => _model = TinyModels.SavedAndLoaded("llama", _dir);

    public void Dispose()
    {
        _model.Dispose();
        _dir.Dispose();
    }

    /// <summary>Seven neighbours with other prompts, settings and seeds.</summary>
    private static List<(IReadOnlyList<int> Prompt, GenerationOptions Options)> Neighbours(int variant) =>
        Enumerable.Range(0, 7).Select(i => (
            (IReadOnlyList<int>)Enumerable.Range(0, 2 + (i * 5 + variant * 3) % 11).Select(j => (j * 7 + i * 13 + variant) % 97).ToList(),
            new GenerationOptions
            {
                MaxNewTokens = 3 + (i + variant) % 9,
                DoSample = (i + variant) % 3 != 0,
                Temperature = 0.5 + 0.25 * i,
                TopK = i % 2 == 0 ? 10 + i : null,
                TopP = i % 3 == 1 ? 0.8 : null,
                Seed = 1000 + i * 17 + variant,
            })).ToList();

    private IReadOnlyList<SequenceResult> RunBatch(IEnumerable<(IReadOnlyList<int> Prompt, GenerationOptions Options)> requests, ContinuousBatchOptions? options = null)
    {
        using var batcher = new ContinuousBatcher(_model, options);
        var sequences = requests.Select(r => batcher.Add(r.Prompt, r.Options, _ct)).ToList();
        batcher.RunToCompletion();
        return sequences.Select(Done).ToList();
    }

    /// <summary>The result of a sequence the batcher has finished (its task completed synchronously inside Step).</summary>
    private static SequenceResult Done(BatchedSequence s)
    {
        Assert.True(s.Completion.IsCompleted, "the sequence has not finished");
        return s.Completion.Result;
    }

    public static TheoryData<string> SamplingSettings => new() { "greedy", "temperature", "cold", "top-k", "top-p", "top-k+top-p", "processor" };

    private static GenerationOptions Settings(string name)
    {
        var o = new GenerationOptions { MaxNewTokens = 14, DoSample = true, Seed = 4242 };
        return name switch
        {
            "greedy" => o with { DoSample = false },
            "temperature" => o with { Temperature = 1.4 },
            "cold" => o with { Temperature = 0.3 },
            "top-k" => o with { TopK = 5 },
            "top-p" => o with { TopP = 0.7 },
            "top-k+top-p" => o with { Temperature = 1.2, TopK = 20, TopP = 0.9 },
            // A processor that bans the previously generated token (it reads the row's own history).
            "processor" => o with
            {
                LogitsProcessors = [new DelegateLogitsProcessor((l, ctx) => ctx.Generated[0].Count == 0 ? l
                    : l.index_fill(-1, tensor(new long[] { ctx.Generated[0][^1] }), double.NegativeInfinity))],
            },
            _ => throw new ArgumentException(name),
        };
    }

    [Theory, MemberData(nameof(SamplingSettings))]
    public void SeededRequestGivesTheSameTokensAloneFirstAndLastInABatchOfEight(string setting)
    {
        var target = ((IReadOnlyList<int>)Prompt, Settings(setting));
        var alone = RunBatch([target])[0];
        var first = RunBatch([target, .. Neighbours(1)])[0];
        var last = RunBatch([.. Neighbours(2), target])[7];
        Assert.Equal(14, alone.Tokens.Count);
        Assert.Equal(alone.Tokens, first.Tokens);
        Assert.Equal(alone.Tokens, last.Tokens);
        // The lone path of TextGeneration draws the same numbers (a run's results do not depend on which path served it).
        Assert.Equal(alone.Tokens, _model.Generate([Prompt], target.Item2, _ct)[0].Tokens);
        if (setting != "greedy")
        {
            // The seed matters: another seed gives other tokens, so the equalities above are not trivially true.
            var other = RunBatch([((IReadOnlyList<int>)Prompt, target.Item2 with { Seed = 77 })])[0];
            Assert.NotEqual(alone.Tokens, other.Tokens);
        }
    }

    [Fact]
    public void GreedyInAContinuousBatchEqualsGreedyAloneWithJoinsMidDecode()
    {
        IReadOnlyList<int>[] prompts = [Prompt, Prompt[..2], [9, 4, 44, 61, 2, 7, 7, 30, 12, 5, 90, 3, 66, 21, 8, 1, 50, 49, 11, 6], Prompt[3..], [33]];
        int[] maxNew = [12, 7, 10, 15, 9];
        var expected = prompts.Select((p, i) => _model.Generate([p], new GenerationOptions { MaxNewTokens = maxNew[i] }, _ct)[0].Tokens).ToList();

        // A small prefill chunk makes the long prompt arrive in several pieces while the others decode.
        using var batcher = new ContinuousBatcher(_model, new ContinuousBatchOptions { PrefillChunkTokens = 4, MaxBatchSize = 4 });
        var seqs = new List<BatchedSequence>();
        void Add(int i) => seqs.Add(batcher.Add(prompts[i], new GenerationOptions { MaxNewTokens = maxNew[i] }, _ct));
        Add(0);
        Add(1);
        for (int s = 0; s < 3; s++) batcher.Step();
        Assert.Equal(2, batcher.Running);
        Add(2);
        Add(3);
        batcher.Step();
        batcher.Step();
        Add(4); // the batch is full (MaxBatchSize 4): it waits for a free row
        batcher.RunToCompletion();
        for (int i = 0; i < prompts.Length; i++) Assert.Equal(expected[i], Done(seqs[i]).Tokens);
        var stats = batcher.Statistics;
        Assert.Equal(4, stats.LargestBatch);
        Assert.True(stats.MeanBatchRows > 1, $"mean rows per decode step {stats.MeanBatchRows}");
        // Every prompt position was either computed or copied from a running sequence (Prompt[..2] starts Prompt).
        Assert.Equal(prompts.Sum(p => p.Count), stats.PromptTokens + stats.SharedPromptTokens);
        Assert.True(stats.SharedPromptTokens > 0, "the prompt that starts another running prompt shared nothing");
        Assert.Equal(expected.Sum(e => e.Count), stats.GeneratedTokens); // no EOS configured: every sampled token is kept
    }

    [Fact]
    public void PassOccupancyCountsPrefillingRowsThatDecodeOccupancyLeavesOut()
    {
        // PrefillChunkTokens 4 with two prefilling rows: each gets max(min(16, 4), 4 / 2) = 4 positions per pass.
        // Pass 1: A's one-token prompt completes and samples its first token; B prefills 4 of 20. Passes 2–5: A decodes,
        // B prefills 4 each and its last chunk samples B's first token. Pass 6: both decode (B's 2nd and last token).
        // Passes 7–10: A decodes alone up to its 10 tokens. So 10 passes of 2,2,2,2,2,2,1,1,1,1 rows (16 in all) and
        // 9 decode steps of 1,1,1,1,2,1,1,1,1 decoding rows (10 in all).
        IReadOnlyList<int> a = [33];
        IReadOnlyList<int> b = [9, 4, 44, 61, 2, 7, 7, 30, 12, 5, 90, 3, 66, 21, 8, 1, 50, 49, 11, 6];
        using var batcher = new ContinuousBatcher(_model, new ContinuousBatchOptions { PrefillChunkTokens = 4, MaxBatchSize = 4 });
        var seqA = batcher.Add(a, new GenerationOptions { MaxNewTokens = 10 }, _ct);
        var seqB = batcher.Add(b, new GenerationOptions { MaxNewTokens = 2 }, _ct);
        batcher.RunToCompletion();
        Assert.Equal(10, Done(seqA).Tokens.Count);
        Assert.Equal(2, Done(seqB).Tokens.Count);

        var stats = batcher.Statistics;
        Assert.Equal(10, stats.Passes);
        Assert.Equal(16, stats.PassRowSteps);
        Assert.Equal(9, stats.DecodeSteps);
        Assert.Equal(10, stats.DecodeRowSteps);
        Assert.Equal(16.0 / 10 / 4, stats.PassOccupancy, 12);
        Assert.Equal(10.0 / 9 / 4, stats.Occupancy, 12);
        Assert.StartsWith("pass 1.6/4 (40%) · decode 1.1/4 (28%) · ", stats.Describe(), StringComparison.Ordinal);
    }

    /// <summary>Requests that share a system-prompt-like prefix (and one a whole prompt), with mixed settings.</summary>
    private static List<(IReadOnlyList<int> Prompt, GenerationOptions Options)> SharedPrefixRequests()
    {
        int[] system = [4, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 5];
        return Enumerable.Range(0, 8).Select(i => (
            (IReadOnlyList<int>)[.. system, .. Enumerable.Range(0, 3 + i % 4).Select(j => (j * 11 + (i / 2) * 29) % 97)],
            new GenerationOptions
            {
                MaxNewTokens = 6 + i,
                DoSample = i % 3 != 0,
                Temperature = 0.7 + 0.1 * i,
                TopK = i % 2 == 0 ? 12 : null,
                Seed = 500 + i,
            })).ToList();
    }

    [Fact]
    public void PromptsSharingAPrefixGiveTheSameTokensAsAloneAndComputeThePrefixOnce()
    {
        var requests = SharedPrefixRequests();
        var alone = requests.Select(r => RunBatch([r])[0].Tokens).ToList();
        foreach (int chunk in new[] { 4, 512 })
        {
            using var batcher = new ContinuousBatcher(_model, new ContinuousBatchOptions { PrefillChunkTokens = chunk });
            var seqs = requests.Select(r => batcher.Add(r.Prompt, r.Options, _ct)).ToList();
            batcher.RunToCompletion();
            for (int i = 0; i < requests.Count; i++) Assert.Equal(alone[i], Done(seqs[i]).Tokens);
            var stats = batcher.Statistics;
            int total = requests.Sum(r => r.Prompt.Count);
            Assert.Equal(total, stats.PromptTokens + stats.SharedPromptTokens);
            // All eight arrive together: the first computes the 20-token prefix, the other seven wait for it and copy it
            // (pairs i, i+1 share even more), so at least 7 × 20 positions are copied.
            Assert.True(stats.SharedPromptTokens >= 7 * 20, $"chunk {chunk}: shared {stats.SharedPromptTokens} of {total}");
        }

        // Switched off, every position is computed, and the tokens are the same again.
        using var plain = new ContinuousBatcher(_model, new ContinuousBatchOptions { SharePrefixes = false });
        var plainSeqs = requests.Select(r => plain.Add(r.Prompt, r.Options, _ct)).ToList();
        plain.RunToCompletion();
        for (int i = 0; i < requests.Count; i++) Assert.Equal(alone[i], Done(plainSeqs[i]).Tokens);
        Assert.Equal(0, plain.Statistics.SharedPromptTokens);
        Assert.Equal(requests.Sum(r => r.Prompt.Count), plain.Statistics.PromptTokens);
    }

    [Fact]
    public void ARequestWithItsOwnResidualCallbackNeitherGivesNorTakesSharedPrefixes()
    {
        var (prompt, options) = SharedPrefixRequests()[0];
        // Steering that adds a constant to the residual stream: its keys/values differ from the plain request's.
        var steered = options with { OnLayer = (_, h) => h + 0.5f };
        var plainAlone = RunBatch([(prompt, options)])[0].Tokens;
        var steeredAlone = RunBatch([(prompt, steered)])[0].Tokens;
        Assert.NotEqual(plainAlone, steeredAlone); // the callback matters, so sharing across it would show

        using var batcher = new ContinuousBatcher(_model);
        var a = batcher.Add(prompt, steered, _ct);
        var b = batcher.Add(prompt, options, _ct);
        var c = batcher.Add(prompt, options with { Seed = options.Seed }, _ct);
        batcher.RunToCompletion();
        Assert.Equal(steeredAlone, Done(a).Tokens);
        Assert.Equal(plainAlone, Done(b).Tokens);
        Assert.Equal(plainAlone, Done(c).Tokens);
        // Only the two plain requests shared: all but the last prompt token of one of them.
        Assert.Equal(prompt.Count - 1, batcher.Statistics.SharedPromptTokens);
    }

    [Fact]
    public void StopSequencesMaxTokensAndEosEndEachRowIndependently()
    {
        var greedy = _model.Generate([Prompt], new GenerationOptions { MaxNewTokens = 12 }, _ct)[0].Tokens;
        // EOS: a token whose first appearance is at eosAt; stop sequence: the first occurrence of the pair at 4..5.
        int eosAt = Enumerable.Range(1, 11).First(i => !greedy.Take(i).Contains(greedy[i]));
        int[] pair = [greedy[4], greedy[5]];
        int pairAt = Enumerable.Range(1, 11).First(j => greedy[j - 1] == pair[0] && greedy[j] == pair[1]) - 1;
        string Decode(IReadOnlyList<int> ids) => string.Concat(ids.Select(i => (char)('A' + i % 26)));
        var stopText = Decode(greedy.Skip(6).Take(2).ToList());
        var results = RunBatch([
            (Prompt, new GenerationOptions { MaxNewTokens = 3 }),
            (Prompt, new GenerationOptions { MaxNewTokens = 12, EosTokenIds = [greedy[eosAt]] }),
            (Prompt, new GenerationOptions { MaxNewTokens = 12, StopTokenSequences = [pair] }),
            (Prompt, new GenerationOptions { MaxNewTokens = 12, StopStrings = [stopText], Decode = Decode }),
            (Prompt, new GenerationOptions { MaxNewTokens = 12 }),
        ]);
        Assert.Equal(greedy.Take(3), results[0].Tokens);
        Assert.Equal(FinishReason.Length, results[0].FinishReason);
        Assert.Equal(greedy.Take(eosAt), results[1].Tokens);
        Assert.Equal(FinishReason.EndOfSequence, results[1].FinishReason);
        Assert.Equal(greedy.Take(pairAt), results[2].Tokens);
        Assert.Equal(FinishReason.StopSequence, results[2].FinishReason);
        Assert.Equal(FinishReason.StopSequence, results[3].FinishReason);
        Assert.Equal(stopText, results[3].MatchedStop);
        Assert.EndsWith(stopText, Decode(results[3].Tokens));
        Assert.True(results[3].Tokens.Count <= 8);
        Assert.Equal(greedy, results[4].Tokens);
        Assert.Equal(FinishReason.Length, results[4].FinishReason);
    }

    [Fact]
    public void CancellingOneRequestFreesItsRowWithoutDisturbingTheOthers()
    {
        var options = new GenerationOptions { MaxNewTokens = 10, DoSample = true, TopK = 8 };
        IReadOnlyList<int>[] prompts = [Prompt, Prompt[1..], Prompt[..4]];
        var alone = prompts.Select((p, i) => RunBatch([(p, options with { Seed = i })])[0].Tokens).ToList();

        using var cts = new CancellationTokenSource();
        using var batcher = new ContinuousBatcher(_model);
        var seqs = prompts.Select((p, i) => batcher.Add(p, options with { Seed = i }, i == 1 ? cts.Token : _ct)).ToList();
        for (int s = 0; s < 3; s++) batcher.Step();
        Assert.Equal(3, batcher.Running);
        long reserved = batcher.Statistics.ReservedTokens;
        cts.Cancel();
        batcher.Step();
        Assert.Equal(2, batcher.Running);
        Assert.True(seqs[1].Completion.IsCompleted);
        Assert.Equal(FinishReason.Cancelled, Done(seqs[1]).FinishReason);
        Assert.Equal(reserved - seqs[1].CacheTokens, batcher.Statistics.ReservedTokens);
        batcher.RunToCompletion();
        Assert.Equal(alone[0], Done(seqs[0]).Tokens);
        Assert.Equal(alone[2], Done(seqs[2]).Tokens);
        Assert.Equal(1, batcher.Statistics.Cancelled);
    }

    [Fact]
    public async Task HundredConcurrentRequestsCompleteWithinASmallCacheBudget()
    {
        using var probe = SlotKVCache.For(_model);
        // Room for 64 positions: a few requests of 2..10 prompt + 8 new tokens at once; the rest must wait, none may fail.
        long budget = probe.BytesPerToken * 64;
        using var client = new EngineChatClient(_model, new ByteTokenizer97(), new PlainFormatter97(), new EngineChatClientOptions
        {
            KvCacheBytes = budget,
            MaxBatchSize = 32,
            DefaultTemperature = 1,
            Seed = 3,
        });
        var tasks = Enumerable.Range(0, 100).Select(i => client.GetResponseAsync([new ChatMessage(ChatRole.User, new string((char)('a' + i % 26), 1 + i % 9))],
            new ChatOptions { MaxOutputTokens = 8, Seed = i % 2 == 0 ? i : null }, _ct)).ToList();
        var responses = await Task.WhenAll(tasks);
        Assert.All(responses, r => Assert.True(r.Usage!.OutputTokenCount <= 8));
        var stats = client.Statistics;
        Assert.Equal(100, stats.Requests);
        Assert.True(stats.PeakCacheBytes <= budget, $"peak {stats.PeakCacheBytes} > budget {budget}");
        Assert.True(stats.PeakCacheBytes > 0);
        // Several ran together, but never more than the budget can hold (each reserves at least 2 prompt + 8 new positions).
        Assert.True(stats.LargestBatch > 1 && stats.LargestBatch * 10 <= 64, $"largest batch {stats.LargestBatch}");
        Assert.True(stats.MaxQueueWaitSeconds > 0);
        Assert.Equal(0, stats.ReservedTokens);

        // A request that could never fit fails at once with a clear message instead of waiting forever.
        var tooBig = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync([new ChatMessage(ChatRole.User, "x")], new ChatOptions { MaxOutputTokens = 200 }, _ct));
        Assert.Contains("KV-cache budget", tooBig.Message);
    }

    [Fact]
    public async Task UnseededRequestsDrawFromThePerClientStream()
    {
        async Task<string[]> Run(long seed)
        {
            using var client = new EngineChatClient(_model, new ByteTokenizer97(), new PlainFormatter97(), new EngineChatClientOptions { DefaultTemperature = 1, Seed = seed });
            var texts = new List<string>();
            for (int i = 0; i < 3; i++) texts.Add((await client.GetResponseAsync([new ChatMessage(ChatRole.User, "abc")], new ChatOptions { MaxOutputTokens = 8 }, _ct)).Text);
            return [.. texts];
        }
        var a = await Run(5);
        Assert.Equal(a, await Run(5));
        Assert.NotEqual(a, await Run(6));
        Assert.True(a.Distinct().Count() > 1, "successive unseeded requests should draw different seeds");
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("mistral")]
    public void SlotBatchesWithRightPaddingAndLeftPaddedBatchesMatchTheReference(string arch)
    {
        using var dir = new TempDir();
        using var model = TinyModels.SavedAndLoaded(arch, dir);
        var reference = new ReferenceModel(dir.Path);
        int[][] seqs = [[1, 5, 17, 42, 8, 93, 3, 3, 60, 11], [7, 2, 9, 30, 51], [4, 4, 80, 15, 6, 71, 33]];
        var expected = seqs.Select(s => reference.Logits(s)).ToList();
        using var _ = no_grad();
        double scale = expected.SelectMany(e => e).SelectMany(r => r).Max(Math.Abs);

        double Diff(Tensor row, double[] want)
        {
            using var w = tensor(want, ScalarType.Float64);
            using var d = (row.to_type(ScalarType.Float64) - w).abs().max();
            return d.item<double>();
        }

        // A slot batch: passes with different new-token counts per row (attention pads them on the right), then each
        // row's last-token logits are compared with the reference at that position. One-token rows at the front attend in
        // a group of their own (passes 2 and 3); a one-token row after a longer one stays in the longer one's group (pass 3).
        using var cache = SlotKVCache.For(model);
        cache.Resize(3, 16, 0);
        var past = new[] { 0, 0, 0 };
        foreach (var lengths in new[] { new[] { 4, 1, 2 }, new[] { 1, 1, 2 }, new[] { 1, 2, 1 }, new[] { 4, 1, 2 } })
        {
            var chunks = Enumerable.Range(0, 3).Select(b => (IReadOnlyList<int>)seqs[b].Skip(past[b]).Take(lengths[b]).ToList()).ToList();
            using var logits = model.ForwardSlots(chunks, cache, 0, past);
            for (int b = 0; b < 3; b++)
            {
                past[b] += lengths[b];
                double diff = Diff(logits[b], expected[b][past[b] - 1]);
                Assert.True(diff < 2e-4 * scale, $"{arch}: slot row {b} at {past[b] - 1} differs by {diff} (scale {scale})");
            }
        }
        Assert.Equal(seqs.Select(s => s.Length), past);

        // Left padding in the classic batch path (attention mask over the padding).
        int longest = seqs.Max(s => s.Length);
        var rows = seqs.Select(s => (IReadOnlyList<int>)Enumerable.Repeat(0, longest - s.Length).Concat(s).ToList()).ToList();
        var mask = seqs.Select(s => (IReadOnlyList<int>)Enumerable.Repeat(0, longest - s.Length).Concat(Enumerable.Repeat(1, s.Length)).ToList()).ToList();
        using var output = model.Forward(model.IdsTensor(rows), new ForwardArgs { AttentionMask = model.IdsTensor(mask) });
        for (int b = 0; b < seqs.Length; b++)
            for (int i = 0; i < seqs[b].Length; i++)
            {
                double diff = Diff(output.Logits[b][longest - seqs[b].Length + i], expected[b][i]);
                Assert.True(diff < 2e-4 * scale, $"{arch}: left-padded row {b} at {i} differs by {diff}");
            }
    }
}

/// <summary>ids = byte value mod 97 (the tiny test vocabulary); no special tokens.</summary>
internal sealed class ByteTokenizer97 : ITextTokenizer
{
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens) => text.Select(c => c % 97).ToList();
    public string Decode(IEnumerable<int> ids) => string.Concat(ids.Select(i => (char)('!' + i)));
    public int? BosId => null;
    public IReadOnlyList<int> EosIds => [];
}

internal sealed class PlainFormatter97 : IChatFormatter
{
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt) => string.Concat(messages.Select(m => m.Text + "\n"));
}
