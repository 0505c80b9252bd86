using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests;

public class GenerationTests : IDisposable
{
    private static readonly int[] Prompt = [1, 5, 17, 42, 8];
    private readonly TempDir _dir = new();
    private readonly CausalLM _model;
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    public GenerationTests() => _model = TinyModels.SavedAndLoaded("qwen2", _dir);

    public void Dispose()
    {
        _model.Dispose();
        _dir.Dispose();
    }

    private IReadOnlyList<int> Greedy(int n) => _model.Generate([Prompt], new GenerationOptions { MaxNewTokens = n }, _ct)[0].Tokens;

    [Fact]
    public void GreedyMatchesArgmaxOfFullForward()
    {
        var tokens = Greedy(5);
        var ids = Prompt.ToList();
        foreach (var t in tokens)
        {
            using var logits = _model.Logits(ids);
            Assert.Equal(logits[^1].argmax().item<long>(), t);
            ids.Add(t);
        }
    }

    [Fact]
    public void MaxNewTokensLimitsLengthAndReportsLength()
    {
        var r = _model.Generate([Prompt], new GenerationOptions { MaxNewTokens = 3 }, _ct)[0];
        Assert.Equal(3, r.Tokens.Count);
        Assert.Equal(FinishReason.Length, r.FinishReason);
        Assert.Equal(Prompt.Length, r.PromptTokens);
    }

    [Fact]
    public void TopKOneAndTinyTopPEqualGreedy()
    {
        var greedy = Greedy(6);
        var k1 = _model.Generate([Prompt], new GenerationOptions { MaxNewTokens = 6, DoSample = true, TopK = 1, Seed = 4 }, _ct)[0];
        var p0 = _model.Generate([Prompt], new GenerationOptions { MaxNewTokens = 6, DoSample = true, TopP = 1e-9, Seed = 4 }, _ct)[0];
        Assert.Equal(greedy, k1.Tokens);
        Assert.Equal(greedy, p0.Tokens);
    }

    [Fact]
    public void SeededSamplingIsReproducible()
    {
        GenerationOptions Opts(long seed) => new() { MaxNewTokens = 12, DoSample = true, Temperature = 2.0, Seed = seed };
        var a = _model.Generate([Prompt], Opts(11), _ct)[0].Tokens;
        var b = _model.Generate([Prompt], Opts(11), _ct)[0].Tokens;
        var c = _model.Generate([Prompt], Opts(12), _ct)[0].Tokens;
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void TopKRestrictsSamplingToTheKBestTokens()
    {
        using var logits = tensor(new float[] { 0, 5, 4, -1, 3 }).unsqueeze(0).expand(200, 5).contiguous();
        using var gen = new TorchSharp.torch.Generator(1);
        using var picks = TextGeneration.SelectTokens(logits, new GenerationOptions { DoSample = true, TopK = 2, Temperature = 5 }, gen);
        Assert.All(picks.data<long>().ToArray(), t => Assert.Contains(t, new long[] { 1, 2 }));
        using var picksP = TextGeneration.SelectTokens(logits, new GenerationOptions { DoSample = true, TopP = 0.8 }, gen);
        // softmax([0,5,4,-1,3]) ≈ [.005,.66,.24,.002,.09]: tokens 1 and 2 hold 0.9 > 0.8, so token 4 is cut.
        Assert.All(picksP.data<long>().ToArray(), t => Assert.Contains(t, new long[] { 1, 2 }));
    }

    [Fact]
    public void EosStopsAndIsNotReturned()
    {
        var greedy = Greedy(8);
        int k = Enumerable.Range(1, greedy.Count - 1).First(i => !greedy.Take(i).Contains(greedy[i]));
        var r = _model.Generate([Prompt], new GenerationOptions { MaxNewTokens = 8, EosTokenIds = [greedy[k]] }, _ct)[0];
        Assert.Equal(FinishReason.EndOfSequence, r.FinishReason);
        Assert.Equal(greedy.Take(k), r.Tokens);
    }

    [Fact]
    public void StopTokenSequenceAndStopStringEndGeneration()
    {
        var greedy = Greedy(8);
        var r = _model.Generate([Prompt], new GenerationOptions { MaxNewTokens = 8, StopTokenSequences = [greedy.Skip(3).Take(2).ToList()] }, _ct)[0];
        Assert.Equal(FinishReason.StopSequence, r.FinishReason);
        Assert.True(r.Tokens.Count <= 3);
        Assert.Equal(greedy.Take(r.Tokens.Count), r.Tokens);

        static string Decode(IReadOnlyList<int> ids) => string.Join(" ", ids);
        string stop = $"{greedy[2]} {greedy[3]}";
        var s = _model.Generate([Prompt], new GenerationOptions { MaxNewTokens = 8, StopStrings = [stop], Decode = Decode }, _ct)[0];
        Assert.Equal(stop, s.MatchedStop);
        Assert.Equal(FinishReason.StopSequence, s.FinishReason);
        Assert.DoesNotContain(stop, TextGeneration.CutAtStop(Decode(s.Tokens), [stop]));
    }

    [Fact]
    public void LogitsProcessorsRewriteEveryStep()
    {
        var forced = new DelegateLogitsProcessor((logits, ctx) =>
        {
            var l = full_like(logits, double.NegativeInfinity);
            l[.., 7] = logits[.., 7];
            return l;
        });
        var r = _model.Generate([Prompt, Prompt[..2]], new GenerationOptions { MaxNewTokens = 4, LogitsProcessors = [forced] }, _ct);
        Assert.All(r, row => Assert.Equal([7, 7, 7, 7], row.Tokens));

        var steps = new List<int>();
        var observer = new DelegateLogitsProcessor((logits, ctx) =>
        {
            steps.Add(ctx.Step);
            Assert.Equal(ctx.Step, ctx.Generated[0].Count);
            return logits;
        });
        _model.Generate([Prompt], new GenerationOptions { MaxNewTokens = 3, LogitsProcessors = [observer] }, _ct);
        Assert.Equal([0, 1, 2], steps);
    }

    [Fact]
    public void StreamingCallbackSeesEveryToken()
    {
        var seen = new List<(int, int)>();
        var r = _model.Generate([Prompt, Prompt[1..]], new GenerationOptions { MaxNewTokens = 4, OnToken = (row, t) => seen.Add((row, t)) }, _ct);
        Assert.Equal(r[0].Tokens, seen.Where(s => s.Item1 == 0).Select(s => s.Item2));
        Assert.Equal(r[1].Tokens, seen.Where(s => s.Item1 == 1).Select(s => s.Item2));
    }
}
