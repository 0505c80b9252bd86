using BiasFree.Engine.Decoding;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using BiasFree.Engine.Training;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests.Decoding;

/// <summary>DiffPO's Jacobi refinement on a tiny random model, against greedy decoding and one-step argmax computed without a cache.</summary>
public class DiffPoTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly CausalLM _model;
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private const int EosId = 257;
    private static readonly int[] Eos = [EosId];
    private static readonly IReadOnlyList<int> Prompt = [.. "user: who forgot the keys?\nassistant: "u8.ToArray().Select(b => (int)b)];
    // An answer the random model would not write: its tokens are unlikely to be its argmax.
    private static readonly int[] Scrambled = [.. "Qz9!kX#w"u8.ToArray().Select(b => (int)b)];

    public DiffPoTests()
    {
        using (var m = CausalLM.Create(TinyModels.Config("llama") with { VocabSize = 258, EosTokenIds = [EosId] }, ScalarType.Float32, "cpu", 5))
            m.Save(_dir.Path);
        _model = CausalLM.Load(_dir.Path);
    }

    public void Dispose()
    {
        _model.Dispose();
        _dir.Dispose();
        GC.SuppressFinalize(this);
    }

    private IReadOnlyList<int> Greedy(IReadOnlyList<int> prefix, int tokens) =>
        _model.Generate([prefix], new GenerationOptions { MaxNewTokens = tokens, EosTokenIds = Eos }, _ct)[0].Tokens;

    /// <summary>argmax of the next-token logits after <paramref name="ids"/>, by a full forward pass without any cache.</summary>
    private int Argmax(IReadOnlyList<int> ids)
    {
        using var scope = NewDisposeScope();
        return (int)_model.Logits(ids)[-1].argmax(-1).item<long>();
    }

    [Fact]
    public void A_fixed_point_is_returned_unchanged_after_one_iteration()
    {
        var answer = Greedy(Prompt, 10);
        Assert.Equal(10, answer.Count); // no EOS within 10 tokens, so the whole window is the answer
        foreach (int window in new[] { 10, 4 })
        {
            var r = JacobiRefiner.Refine(_model, Prompt, answer, 0, new DiffPoSettings { Window = window, ReserveTokens = 0 }, 10, Eos, _ct);
            Assert.Equal(answer, r.Tokens);
            Assert.Equal(0, r.ChangedTokens);
            Assert.Equal(0, r.TokenUpdates);
            Assert.True(r.Converged);
            Assert.All(r.IterationsPerWindow, n => Assert.Equal(1, n));
            Assert.Equal((10 + window - 1) / window, r.Windows);
        }
    }

    [Fact]
    public void Tokens_after_the_first_EOS_are_not_compared_so_an_answer_the_aligner_would_end_there_is_a_fixed_point()
    {
        // Treat the model's 7th greedy token as "EOS": then the 6-token greedy answer, padded with that id, is a fixed
        // point up to its EOS, while the positions after the EOS (fed EOS) almost surely predict something else.
        var seven = Greedy(Prompt, 7);
        int eos = seven[6];
        var answer = seven.Take(6).ToArray();
        Assert.DoesNotContain(eos, answer); // precondition of the construction
        var r = JacobiRefiner.Refine(_model, Prompt, answer, 0, new DiffPoSettings { Window = 12, ReserveTokens = 0 }, 20, [eos], _ct);
        Assert.Equal(answer, r.Tokens);
        Assert.Equal(FinishReason.EndOfSequence, r.FinishReason);
        Assert.Equal(1, r.Iterations);
        Assert.True(r.Converged);
    }

    [Fact]
    public void The_frozen_prefix_never_changes_and_the_rest_converges_to_greedy_decoding_after_it()
    {
        Assert.NotEqual(Scrambled[0], Argmax(Prompt)); // otherwise freezing would prove nothing
        for (int frozen = 0; frozen <= 4; frozen += 2)
        {
            var r = JacobiRefiner.Refine(_model, Prompt, Scrambled, frozen, new DiffPoSettings { Window = 5, ReserveTokens = 0 }, 12, Eos, _ct);
            Assert.Equal(frozen, r.FrozenTokens);
            Assert.Equal(Scrambled.Take(frozen), r.Tokens.Take(frozen));
            // Jacobi's fixed point is the aligner's greedy continuation of prompt ++ frozen tokens.
            var greedy = Greedy([.. Prompt, .. Scrambled.Take(frozen)], 12 - frozen);
            Assert.Equal(greedy, r.Tokens.Skip(frozen));
            Assert.True(r.Converged);
            Assert.All(r.IterationsPerWindow, n => Assert.InRange(n, 1, 5 + 1));
            Assert.True(r.ChangedTokens > 0);
        }
        // r larger than the answer freezes the whole answer and refines only what follows it.
        var all = JacobiRefiner.Refine(_model, Prompt, Scrambled, 99, new DiffPoSettings { Window = 4, ReserveTokens = 0 }, 12, Eos, _ct);
        Assert.Equal(Scrambled.Length, all.FrozenTokens);
        Assert.Equal(Scrambled, all.Tokens.Take(Scrambled.Length));
    }

    [Fact]
    public void Iteration_stops_at_max_iter_with_exactly_that_many_Jacobi_steps()
    {
        // One step by hand: y1[i] = argmax p(· | prompt, y0[..i]) for every i at once, from full uncached passes.
        var expected = Enumerable.Range(0, Scrambled.Length).Select(i => Argmax([.. Prompt, .. Scrambled.Take(i)])).ToArray();
        Assert.NotEqual(Scrambled, expected);
        var one = JacobiRefiner.Refine(_model, Prompt, Scrambled, 0, new DiffPoSettings { Window = Scrambled.Length, MaxIterations = 1, ReserveTokens = 0 },
            Scrambled.Length, Eos, _ct);
        Assert.Equal(1, one.Iterations);
        Assert.False(one.Converged);
        Assert.Equal(expected.TakeWhile(t => t != EosId), one.Tokens);

        var two = JacobiRefiner.Refine(_model, Prompt, Scrambled, 0, new DiffPoSettings { Window = Scrambled.Length, MaxIterations = 2, ReserveTokens = 0 },
            Scrambled.Length, Eos, _ct);
        Assert.Equal(2, two.Iterations);
        var second = Enumerable.Range(0, expected.Length).Select(i => Argmax([.. Prompt, .. expected.Take(i)])).ToArray();
        if (!second.SequenceEqual(expected)) Assert.Equal(second.TakeWhile(t => t != EosId), two.Tokens);
    }

    [Fact]
    public void Frozen_token_count_is_drawn_from_0_to_reserve_and_depends_only_on_the_seed()
    {
        var s = new DiffPoSettings { ReserveTokens = 12 };
        var draws = Enumerable.Range(0, 2000).Select(i => s.FrozenTokensFor(i)).ToList();
        Assert.Equal(Enumerable.Range(0, 13), draws.Distinct().Order());
        Assert.Equal(draws, Enumerable.Range(0, 2000).Select(i => s.FrozenTokensFor(i)));
        Assert.All(Enumerable.Range(0, 50), i => Assert.Equal(0, new DiffPoSettings { ReserveTokens = 0 }.FrozenTokensFor(i)));
    }
}

/// <summary>DiffPO's training pieces: the consistency loss against a hand-computed float64 case, and the trajectory states.</summary>
public class DiffPoObjectiveTests
{
    [Fact]
    public void Consistency_loss_is_the_masked_mean_forward_KL_with_no_gradient_to_the_teacher()
    {
        double[] s0 = [0.5, -1.0, 2.0], s1 = [0.0, 0.3, -0.7];
        double[] t0 = [1.5, 0.2, -0.4], t1 = [-2.0, 0.0, 1.0];
        using var student = tensor(s0.Concat(s1).ToArray(), [1, 2, 3], ScalarType.Float64).requires_grad_();
        using var teacher = tensor(t0.Concat(t1).ToArray(), [1, 2, 3], ScalarType.Float64).requires_grad_();

        static double[] Softmax(double[] x)
        {
            double m = x.Max();
            var e = x.Select(v => Math.Exp(v - m)).ToArray();
            double z = e.Sum();
            return [.. e.Select(v => v / z)];
        }
        static double Kl(double[] p, double[] q) => p.Zip(q).Sum(pq => pq.First * (Math.Log(pq.First) - Math.Log(pq.Second)));

        // Both positions count: mean of the two KLs.
        using (var both = tensor(new double[] { 1, 1 }, [1, 2], ScalarType.Float64))
        using (var loss = DiffPoObjectives.ConsistencyLoss(student, teacher, both))
        {
            double expected = (Kl(Softmax(t0), Softmax(s0)) + Kl(Softmax(t1), Softmax(s1))) / 2;
            Assert.Equal(expected, loss.item<double>(), 12);
        }
        // Only the first position counts; the gradient w.r.t. the student is softmax(s) − softmax(t) there, 0 elsewhere,
        // and the teacher gets none (stop-gradient).
        using var first = tensor(new double[] { 1, 0 }, [1, 2], ScalarType.Float64);
        using var masked = DiffPoObjectives.ConsistencyLoss(student, teacher, first);
        Assert.Equal(Kl(Softmax(t0), Softmax(s0)), masked.item<double>(), 12);
        masked.backward();
        var grad = student.grad!.data<double>().ToArray();
        var ps = Softmax(s0);
        var pt = Softmax(t0);
        for (int v = 0; v < 3; v++) Assert.Equal(ps[v] - pt[v], grad[v], 12);
        for (int v = 3; v < 6; v++) Assert.Equal(0, grad[v], 12);
        Assert.True(teacher.grad is null || teacher.grad.abs().sum().item<double>() == 0);

        // Identical distributions: zero.
        using var same = DiffPoObjectives.ConsistencyLoss(teacher.detach(), teacher, first);
        Assert.Equal(0, same.item<double>(), 12);
    }

    [Fact]
    public void Autoregressive_loss_is_the_masked_mean_cross_entropy()
    {
        double[] l0 = [0.5, -1.0, 2.0], l1 = [0.0, 0.3, -0.7];
        using var logits = tensor(l0.Concat(l1).ToArray(), [1, 2, 3], ScalarType.Float64);
        using var targets = tensor(new long[] { 2, 1 }, [1, 2], ScalarType.Int64);
        using var mask = tensor(new double[] { 1, 1 }, [1, 2], ScalarType.Float64);
        static double Nll(double[] x, int k) => Math.Log(x.Sum(Math.Exp)) - x[k];
        using var loss = DiffPoObjectives.AutoregressiveLoss(logits, targets, mask);
        Assert.Equal((Nll(l0, 2) + Nll(l1, 1)) / 2, loss.item<double>(), 12);
    }

    [Fact]
    public void States_move_from_the_original_to_the_target_left_to_right()
    {
        int[] original = [1, 2, 3, 4], target = [5, 6, 7, 8];
        Assert.Equal(original, DiffPoTrainer.State(original, target, 0, 4));
        Assert.Equal([5, 2, 3, 4], DiffPoTrainer.State(original, target, 1, 4));
        Assert.Equal([5, 6, 7, 4], DiffPoTrainer.State(original, target, 3, 4));
        Assert.Equal(target, DiffPoTrainer.State(original, target, 4, 4));
        Assert.Throws<ArgumentException>(() => DiffPoTrainer.State([1], target, 0, 4));
    }
}
