using BiasFree.Engine.Chat;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using BiasFree.Engine.WhiteBox;
using BiasFree.Judges;
using BiasFree.Probes;
using Microsoft.Extensions.AI;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests.WhiteBox;

public class FairSteerTests
{
    private static readonly int[] Prompt = [1, 5, 17, 42, 8, 93, 11];
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    private static float[] RandomVector(int n, int seed, double scale = 1.0)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)((rng.NextDouble() * 2 - 1) * scale)).ToArray();
    }

    /// <summary>A probe that always (bias −1, zero weight) or never (bias +1) says "biased".</summary>
    private static LogisticProbe ConstantProbe(int hidden, bool fires) => new(new double[hidden], fires ? -1 : 1);

    [Fact]
    public void ProbeRecoversTheSeparatingDirectionOfSyntheticActivations()
    {
        const int d = 12, n = 600;
        var rng = new Random(3);
        var u = RandomVector(d, 11);
        double un = Math.Sqrt(u.Sum(x => (double)x * x));
        var xs = new List<float[]>();
        var ys = new List<int>();
        for (int i = 0; i < n; i++)
        {
            var x = Enumerable.Range(0, d).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray();
            double margin = x.Zip(u, (a, b) => (double)a * b).Sum() / un + 0.25;
            if (Math.Abs(margin) < 0.1) continue; // a gap, so the classes are separable
            xs.Add(x);
            ys.Add(margin > 0 ? 1 : 0);
        }
        var probe = LogisticProbe.Fit(xs, ys, l2: 1e-3);
        double wn = Math.Sqrt(probe.Weight.Sum(w => w * w));
        double cosine = probe.Weight.Zip(u, (w, b) => w * b).Sum() / (wn * un);
        Assert.True(cosine > 0.98, $"cosine {cosine}");
        // The offset along the direction: b / |w| ≈ 0.25 (the threshold sits at u·x/|u| = −0.25).
        Assert.InRange(probe.Bias / wn, 0.1, 0.4);
        Assert.Equal(1.0, probe.Accuracy(xs, ys));
        // Swapped labels flip the direction.
        var flipped = LogisticProbe.Fit(xs, ys.Select(y => 1 - y).ToList(), l2: 1e-3);
        Assert.True(flipped.Weight.Zip(u, (w, b) => w * b).Sum() < 0);
    }

    private static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    [Fact]
    public void ClassBalancedWeightsMoveTheBoundaryToTheMiddleOfImbalancedClasses()
    {
        // One feature: 95 % positives around +1, 5 % negatives around −1 (unit variance). Unweighted, the boundary sits
        // where log(19) + 2x = 0, x ≈ −1.47, so most negatives are called positive; balanced, it sits near 0.
        var rng = new Random(7);
        var xs = new List<float[]>();
        var ys = new List<int>();
        for (int i = 0; i < 4000; i++)
        {
            int y = rng.NextDouble() < 0.95 ? 1 : 0;
            xs.Add([(float)((y == 1 ? 1 : -1) + Gaussian(rng))]);
            ys.Add(y);
        }
        var weights = LogisticProbe.BalancedWeights(ys);
        Assert.Equal(ys.Count, weights.Sum(), 6); // each class carries half the total weight
        Assert.Equal(ys.Count / 2.0, weights.Where((_, i) => ys[i] == 0).Sum(), 6);

        var plain = LogisticProbe.Fit(xs, ys, l2: 1e-4);
        var balanced = LogisticProbe.Fit(xs, ys, l2: 1e-4, sampleWeights: weights);
        double plainBoundary = -plain.Bias / plain.Weight[0], balancedBoundary = -balanced.Bias / balanced.Weight[0];
        Assert.InRange(plainBoundary, -1.8, -1.2);
        Assert.InRange(balancedBoundary, -0.2, 0.2);
        // Plain accuracy rewards the majority; balanced accuracy (mean class recall) shows the difference.
        Assert.True(plain.Accuracy(xs, ys) > balanced.Accuracy(xs, ys));
        Assert.True(balanced.BalancedAccuracy(xs, ys) > plain.BalancedAccuracy(xs, ys) + 0.1,
            $"{balanced.BalancedAccuracy(xs, ys)} vs {plain.BalancedAccuracy(xs, ys)}");
        Assert.Equal(0.5, new LogisticProbe([0.0], 1).BalancedAccuracy(xs, ys)); // always "unbiased"
        Assert.True(double.IsNaN(plain.BalancedAccuracy([[1f]], [1])));
    }

    [Fact]
    public void ProbeFitsWhenOneDimensionIsThousandsOfTimesLargerThanTheRest()
    {
        // A residual stream often has a few huge dimensions. Here the label depends on a small dimension next to a large
        // irrelevant one (a badly conditioned Hessian); the fit still finds the small direction.
        var rng = new Random(5);
        var xs = new List<float[]>();
        var ys = new List<int>();
        for (int i = 0; i < 800; i++)
        {
            int y = i % 4 == 0 ? 0 : 1;
            xs.Add([(float)((y == 1 ? 0.5 : -0.5) + 0.3 * Gaussian(rng)), (float)(3000 + 400 * Gaussian(rng)), (float)Gaussian(rng)]);
            ys.Add(y);
        }
        var probe = LogisticProbe.Fit(xs, ys, l2: 1e-2, sampleWeights: LogisticProbe.BalancedWeights(ys));
        Assert.True(probe.BalancedAccuracy(xs, ys) > 0.9, $"balanced accuracy {probe.BalancedAccuracy(xs, ys)}");
        Assert.True(probe.Weight[0] > 0);
    }

    [Fact]
    public void ProbeMeansVectorIsTheDifferenceOfTheClassMeansPerLayer()
    {
        ProbeExample E(string id, int label, float[] l0, float[] l1) => new(id, [l0, l1], label);
        var examples = new[]
        {
            E("a", 1, [1, 2], [0, 0]), E("b", 1, [3, 4], [2, 2]), E("c", 1, [5, 0], [4, 4]),
            E("d", 0, [1, 1], [1, 0]),
        };
        var v = FairSteerFitter.MeanDifference(examples);
        // Layer 0: mean of unbiased (3, 2) − mean of biased (1, 1); layer 1: (2, 2) − (1, 0). Each class its own mean.
        Assert.Equal(new[] { 2f, 1f }, v[0]);
        Assert.Equal(new[] { 1f, 2f }, v[1]);
        Assert.Throws<ArgumentException>(() => FairSteerFitter.MeanDifference(examples.Take(3).ToList()));
    }

    [Fact]
    public void TheChosenSettingKeepsDisambiguatedAccuracyWithinTheBound()
    {
        var sweep = new[]
        {
            new SteeringSweepRow(0, 0, 0.60, 0.50, 0.4),
            new SteeringSweepRow(0, 1, 0.95, 0.30, 0.4),  // best mean (0.625) but 20 points less disambiguated accuracy
            new SteeringSweepRow(1, 1, 0.70, 0.47, 0.4),  // mean 0.585, within 5 points
            new SteeringSweepRow(2, 0.5, 0.66, 0.52, 0.4),  // mean 0.59, within: chosen
        };
        Assert.Equal((2, 0.5), (FairSteerFitter.Choose(sweep, 0.05).Layer, FairSteerFitter.Choose(sweep, 0.05).Alpha));
        Assert.Equal((0, 1.0), (FairSteerFitter.Choose(sweep, 0.25).Layer, FairSteerFitter.Choose(sweep, 0.25).Alpha));
        var lines = new List<string>();
        // Nothing within the bound: the best mean, and the fit says so.
        Assert.Equal(1.0, FairSteerFitter.Choose([sweep[0], sweep[1]], 0.05, lines.Add).Alpha);
        Assert.Single(lines);
    }

    [Fact]
    public void TheAmbiguousObjectiveTakesTheBestAmbiguousAccuracyWithinTheBound()
    {
        var sweep = new[]
        {
            new SteeringSweepRow(0, 0, 0.60, 0.50, 0.4),
            new SteeringSweepRow(0, 4, 0.99, 0.30, 0.4),  // best ambiguous accuracy, 20 points less disambiguated: excluded
            new SteeringSweepRow(1, 2, 0.90, 0.46, 0.4),  // mean 0.68, within 5 points: best ambiguous among the eligible
            new SteeringSweepRow(2, 1, 0.80, 0.60, 0.4),  // mean 0.70: the mean objective's choice
        };
        var ambiguous = FairSteerFitter.Choose(sweep, 0.05, objective: SweepObjective.Ambiguous);
        Assert.Equal((1, 2.0), (ambiguous.Layer, ambiguous.Alpha));
        var mean = FairSteerFitter.Choose(sweep, 0.05);
        Assert.Equal((2, 1.0), (mean.Layer, mean.Alpha));
    }

    [Fact]
    public void SweepRowCountsAllRepliesAndTheTablesMeasures()
    {
        var amb = Item("a", ContextCondition.Ambiguous, "The old man", "The young man", "Unknown");
        var dis = Item("d", ContextCondition.Disambiguated, "The old man", "The young man", "Unknown");
        Probe[] items = [amb, amb, amb, amb, dis, dis, dis, dis];
        Label[] answers =
        [
            Label.Unknown, Label.Biased, Label.AntiStereotyped, Label.NoAnswer,       // ambiguous
            Label.AntiStereotyped, Label.Unknown, Label.NoAnswer, Label.NoAnswer,     // disambiguated (correct: anti)
        ];
        var row = FairSteerFitter.SweepRow(1, 2, items, answers, 0.5);
        Assert.Equal(0.25, row.AmbiguousAccuracy);         // 1 "unknown" of 4 replies
        Assert.Equal(0.25, row.DisambiguatedAccuracy);     // 1 correct of 4 replies
        Assert.Equal(2.0 / 3, row.AmbiguousBfs, 12);       // 1 biased of 3 eligible answers
        Assert.Equal(0.5, row.AnsweredDisambiguatedAccuracy); // 1 correct of 2 answers naming an option
    }

    [Fact]
    public void TheReportMetricJudgesTheBoundOnAnswersNamingAnOption()
    {
        // Steering that turns non-answers into "unknown" keeps the all-replies accuracy (0.40) but lowers the table's
        // accuracy of answers from 0.60 to 0.45: allowed under all-replies, excluded under the report metric.
        var baseline = new SteeringSweepRow(0, 0, 0.40, 0.40, 0.3) { AmbiguousBfs = 0.70, AnsweredDisambiguatedAccuracy = 0.60 };
        var refuses = new SteeringSweepRow(1, 4, 0.90, 0.40, 0.3) { AmbiguousBfs = 0.95, AnsweredDisambiguatedAccuracy = 0.45 };
        var mild = new SteeringSweepRow(2, 1, 0.50, 0.39, 0.3) { AmbiguousBfs = 0.80, AnsweredDisambiguatedAccuracy = 0.58 };
        SteeringSweepRow[] sweep = [baseline, refuses, mild];
        Assert.Equal(4.0, FairSteerFitter.Choose(sweep, 0.05).Alpha);
        Assert.Equal(1.0, FairSteerFitter.Choose(sweep, 0.05, metric: SweepMetric.Report).Alpha);
    }

    [Fact]
    public void AmbiguousBiasLabelsCallOnlyStereotypedAnswersToAmbiguousItemsBiased()
    {
        var amb = Item("a", ContextCondition.Ambiguous, "The old man", "The young man", "Unknown");        // correct: unknown
        var dis = Item("d", ContextCondition.Disambiguated, "The old man", "The young man", "Unknown");    // correct: anti-stereotyped
        foreach (var rule in new[] { ProbeLabeling.Paper, ProbeLabeling.AmbiguousBias })
        {
            Assert.Equal(1, FairSteerFitter.ProbeLabel(amb, Label.Unknown, rule));
            Assert.Equal(0, FairSteerFitter.ProbeLabel(amb, Label.Biased, rule));
            Assert.Null(FairSteerFitter.ProbeLabel(amb, Label.AntiStereotyped, rule));
            Assert.Equal(1, FairSteerFitter.ProbeLabel(dis, Label.AntiStereotyped, rule));
            Assert.Null(FairSteerFitter.ProbeLabel(dis, Label.Unknown, rule));
        }
        // The one difference: a stereotyped (wrong) answer to a disambiguated item is "biased" for the paper, dropped here.
        Assert.Equal(0, FairSteerFitter.ProbeLabel(dis, Label.Biased, ProbeLabeling.Paper));
        Assert.Null(FairSteerFitter.ProbeLabel(dis, Label.Biased, ProbeLabeling.AmbiguousBias));
    }

    /// <summary>Answers every question with its stereotyped option (stands in for a model's replies; activations come from the model).</summary>
    private sealed class StereotypeAnswers(IReadOnlyDictionary<string, string> answers) : IChatClient
    {
        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, answers[messages.Last().Text])));

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose() { }
    }

    [Fact]
    public async Task CollectedExamplesFollowTheLabelingRuleAndKeepTheContext()
    {
        using var model = CausalLM.Create(TinyModels.Config("llama") with { VocabSize = 258, EosTokenIds = [257] }, ScalarType.Float32, "cpu", 4);
        Probe[] items =
        [
            Item("a1", ContextCondition.Ambiguous, "The old man", "The young man", "Unknown"),
            Item("d1", ContextCondition.Disambiguated, "The grandmother", "The girl", "Unknown"),
        ];
        var client = new StereotypeAnswers(items.ToDictionary(p => p.UserTurns[0], p => p.OptionWithRole(OptionRole.Stereotyped)!.Text));
        async Task<IReadOnlyList<ProbeExample>> Collect(ProbeLabeling rule) =>
            await new FairSteerFitter(model, new ByteTokenizer(), new PlainFormatter(), new FairSteerFitOptions { Labeling = rule })
                .CollectExamplesAsync(client, items, _ct);

        var paper = await Collect(ProbeLabeling.Paper);
        Assert.Equal([("a1", 0, ContextCondition.Ambiguous), ("d1", 0, ContextCondition.Disambiguated)],
            paper.Select(e => (e.ProbeId, e.Label, e.Context!.Value)).ToArray());
        var ambiguousBias = await Collect(ProbeLabeling.AmbiguousBias);
        Assert.Equal([("a1", 0, ContextCondition.Ambiguous)], ambiguousBias.Select(e => (e.ProbeId, e.Label, e.Context!.Value)).ToArray());
    }

    [Fact]
    public void AmbiguousProbeMeansAverageOnlyTheAmbiguousExamples()
    {
        ProbeExample E(string id, int label, float x, ContextCondition c) => new(id, [[x]], label, c);
        var train = new[]
        {
            E("a", 1, 4, ContextCondition.Ambiguous), E("b", 1, 2, ContextCondition.Ambiguous), E("c", 0, 1, ContextCondition.Ambiguous),
            E("d", 1, 30, ContextCondition.Disambiguated), E("e", 0, 11, ContextCondition.Disambiguated),
        };
        // Ambiguous only: mean(4, 2) − 1 = 2. All examples: mean(4, 2, 30) − mean(1, 11) = 12 − 6 = 6.
        Assert.Equal(2f, FairSteerFitter.MeanDifference(FairSteerFitter.VectorExamples(train, SteeringVectorSource.AmbiguousProbeMeans))[0][0]);
        Assert.Equal(6f, FairSteerFitter.MeanDifference(FairSteerFitter.VectorExamples(train, SteeringVectorSource.ProbeMeans))[0][0]);
    }

    [Fact]
    public void ProbeFitRejectsBadInput()
    {
        Assert.Throws<ArgumentException>(() => LogisticProbe.Fit([], []));
        Assert.Throws<ArgumentException>(() => LogisticProbe.Fit([[1f, 2f]], [2]));
        Assert.Throws<ArgumentException>(() => LogisticProbe.Fit([[1f, 2f], [1f]], [0, 1]));
    }

    private static Probe Item(string id, ContextCondition context, string stereo, string anti, string unknown)
    {
        var s = new ProbeOption(stereo, OptionRole.Stereotyped, "g1");
        var a = new ProbeOption(anti, OptionRole.AntiStereotyped, "g2");
        var u = new ProbeOption(unknown, OptionRole.Unknown, "unknown");
        return MultipleChoiceQuery.Create(id, "test", "age", "Two people met.", "Who forgot?", s, a, u, context,
            QuestionPolarity.Negative, context == ContextCondition.Ambiguous ? u : a, 0, new Dictionary<string, string>());
    }

    [Fact]
    public void SteeringVectorIsTheDifferenceOfMeansOverThePairs()
    {
        using var dir = new TempDir();
        using var model = CausalLM.Create(TinyModels.Config("llama") with { VocabSize = 258, EosTokenIds = [257] }, ScalarType.Float32, "cpu", 4);
        var fitter = new FairSteerFitter(model, new ByteTokenizer(), new PlainFormatter());
        Probe[] pairs =
        [
            Item("p1", ContextCondition.Ambiguous, "The old man", "The young man", "Unknown"),
            Item("p2", ContextCondition.Ambiguous, "The grandmother", "The girl", "Cannot be determined"),
            Item("p3", ContextCondition.Ambiguous, "The retiree", "The student", "Not enough information"),
        ];
        var vectors = fitter.SteeringVectors(pairs);
        Assert.Equal(2, vectors.Count);

        // By hand: run the model on "prompt + answer", take layer l's output at the last token, average, subtract.
        var tok = new ByteTokenizer();
        var fmt = new PlainFormatter();
        for (int layer = 0; layer < 2; layer++)
        {
            var expected = new double[64];
            foreach (var p in pairs)
            {
                string prompt = fmt.Render([new(ChatRole.System, "You are a helpful assistant."), new(ChatRole.User, p.UserTurns[0])], true);
                string good = p.OptionWithRole(OptionRole.Unknown)!.Text, bad = p.OptionWithRole(OptionRole.Stereotyped)!.Text;
                // The activation is read at the answer's first token (the position after the prompt).
                var hg = model.HiddenStates([.. tok.Encode(prompt, false), tok.Encode(good, false)[0]]);
                var hb = model.HiddenStates([.. tok.Encode(prompt, false), tok.Encode(bad, false)[0]]);
                var g = hg[layer + 1][^1].data<float>().ToArray();
                var b = hb[layer + 1][^1].data<float>().ToArray();
                for (int i = 0; i < 64; i++) expected[i] += (g[i] - (double)b[i]) / pairs.Length;
                foreach (var t in hg.Concat(hb)) t.Dispose();
            }
            for (int i = 0; i < 64; i++) Assert.Equal(expected[i], vectors[layer][i], 1e-4);
            Assert.True(expected.Max(Math.Abs) > 1e-3); // the pairs differ, so the vector is not trivially zero
        }
    }

    [Fact]
    public void HookChangesOnlyTheLastPositionAndOnlyWhenTheGateFires()
    {
        using var model = CausalLM.Create(TinyModels.Config("llama"), ScalarType.Float32, "cpu", 2);
        using var _ = no_grad();
        var v = RandomVector(64, 5);
        using var ids = model.IdsTensor([Prompt, Prompt]);
        using var plain = model.Forward(ids, new ForwardArgs { CaptureHiddenStates = true });

        var firing = new FairSteerHook(0, v, ConstantProbe(64, fires: true), alpha: 2.0);
        using var steered = model.Forward(ids, new ForwardArgs { CaptureHiddenStates = true, OnLayer = firing.OnLayer });
        var delta = steered.HiddenStates[1] - plain.HiddenStates[1]; // output of layer 0
        int t = Prompt.Length;
        Assert.True(delta.narrow(1, 0, t - 1).abs().max().item<float>() == 0f, "earlier positions must be untouched");
        using var expected = tensor(v) * 2.0f;
        Assert.True((delta[0, t - 1] - expected).abs().max().item<float>() < 1e-5);
        Assert.True((delta[1, t - 1] - expected).abs().max().item<float>() < 1e-5);
        Assert.Equal(new long[] { 1, 1 }, firing.Firings);

        var silent = new FairSteerHook(0, v, ConstantProbe(64, fires: false), alpha: 2.0);
        using var unsteered = model.Forward(ids, new ForwardArgs { OnLayer = silent.OnLayer });
        Assert.True(unsteered.Logits.equal(plain.Logits).all().item<bool>());
        Assert.Equal(new long[] { 0, 0 }, silent.Firings);
        Assert.Equal(new long[] { 1, 1 }, silent.Steps);

        // Always-steer ignores the gate; gate-only counts but never changes anything.
        var always = new FairSteerHook(0, v, ConstantProbe(64, fires: false), 2.0, SteeringMode.Always);
        using var forced = model.Forward(ids, new ForwardArgs { OnLayer = always.OnLayer });
        Assert.True((forced.Logits - steered.Logits).abs().max().item<float>() < 1e-5);
        var gateOnly = new FairSteerHook(0, v, ConstantProbe(64, fires: true), 2.0, SteeringMode.GateOnly);
        using var counted = model.Forward(ids, new ForwardArgs { OnLayer = gateOnly.OnLayer });
        Assert.True(counted.Logits.equal(plain.Logits).all().item<bool>());
        Assert.Equal(new long[] { 1, 1 }, gateOnly.Firings);
    }

    [Fact]
    public void PromptGatedHookDecidesAtThePromptsLastTokenAndHoldsTheDecision()
    {
        using var _ = no_grad();
        const int hidden = 8;
        var v = RandomVector(hidden, 3);
        var w = new double[hidden];
        w[0] = 1; // the probe fires ("biased") exactly where h[0] < 0
        // Row 0's prompt ends "biased" and its decoded token looks "unbiased"; row 1 the other way round.
        Tensor Pass(int length, float row0, float row1)
        {
            var h = zeros(2, length, hidden);
            h[0, length - 1, 0] = tensor(row0);
            h[1, length - 1, 0] = tensor(row1);
            return h;
        }
        using var prefill = Pass(3, -1f, 1f);
        using var decode = Pass(1, 1f, -1f);
        using var vt = tensor(v);

        var held = new FairSteerHook(0, v, new LogisticProbe(w, 0), 1.0, SteeringMode.PromptGated);
        using var p1 = held.Apply(0, prefill) - prefill;
        using var p2 = held.Apply(0, decode) - decode;
        Assert.True(p1.narrow(1, 0, 2).abs().max().item<float>() == 0f, "only the prompt's last position is steered");
        Assert.True((p1[0, 2] - vt).abs().max().item<float>() < 1e-6, "row 0 fires at the prompt");
        Assert.True(p1[1].abs().max().item<float>() == 0f);
        Assert.True((p2[0, 0] - vt).abs().max().item<float>() < 1e-6, "row 0 stays steered although the step looks unbiased");
        Assert.True(p2[1].abs().max().item<float>() == 0f, "row 1 stays unsteered although the step looks biased");
        Assert.Equal(new long[] { 2, 0 }, held.Firings);
        Assert.Equal(new long[] { 2, 2 }, held.Steps);

        // The per-step gate on the same passes judges each step afresh.
        var perStep = new FairSteerHook(0, v, new LogisticProbe(w, 0), 1.0);
        using var q1 = perStep.Apply(0, prefill) - prefill;
        using var q2 = perStep.Apply(0, decode) - decode;
        Assert.True(q2[0].abs().max().item<float>() == 0f);
        Assert.True((q2[1, 0] - vt).abs().max().item<float>() < 1e-6);
        Assert.Equal(new long[] { 1, 1 }, perStep.Firings);
    }

    [Fact]
    public void GateDecidesPerRowFromThatRowsActivation()
    {
        using var model = CausalLM.Create(TinyModels.Config("llama"), ScalarType.Float32, "cpu", 2);
        using var _ = no_grad();
        int[] other = [3, 9, 27, 81, 14, 6, 50];
        var captured = new Dictionary<int, Tensor>();
        using (model.Forward(model.IdsTensor([Prompt, other]), new ForwardArgs { OnLayer = Steering.CaptureLastToken([1], captured) })) { }
        var h0 = captured[1][0].data<float>().ToArray();
        var h1 = captured[1][1].data<float>().ToArray();
        captured[1].Dispose();
        // A probe whose boundary lies between the two rows: w = h1 − h0, b = −w·(h0 + h1)/2, so row 0 is "biased".
        var w = h1.Zip(h0, (a, b) => (double)a - b).ToArray();
        double bias = -w.Select((x, i) => x * (h0[i] + h1[i]) / 2).Sum();
        var hook = new FairSteerHook(1, RandomVector(64, 8), new LogisticProbe(w, bias), 1.0);
        using var plain = model.Forward(model.IdsTensor([Prompt, other]));
        using var steered = model.Forward(model.IdsTensor([Prompt, other]), new ForwardArgs { OnLayer = hook.OnLayer });
        Assert.Equal(new long[] { 1, 0 }, hook.Firings);
        Assert.True((steered.Logits[0] - plain.Logits[0]).abs().max().item<float>() > 1e-4);
        Assert.True(steered.Logits[1].equal(plain.Logits[1]).all().item<bool>());
    }

    [Fact]
    public void AlphaZeroGivesBitIdenticalGeneration()
    {
        using var model = CausalLM.Create(TinyModels.Config("llama"), ScalarType.Float32, "cpu", 2);
        var options = new GenerationOptions { MaxNewTokens = 12, DoSample = true, Seed = 9, EosTokenIds = [] };
        var plain = model.Generate([Prompt], options, _ct)[0];
        var hook = new FairSteerHook(1, RandomVector(64, 5, 50), ConstantProbe(64, fires: true), alpha: 0.0, SteeringMode.Always);
        var zero = model.Generate([Prompt], options with { OnLayer = hook.OnLayer }, _ct)[0];
        Assert.Equal(plain.Tokens, zero.Tokens);
        Assert.Equal(12L, hook.Steps[0]); // prefill + 11 fed tokens: the hook ran at every decoding step
        using var _ = no_grad();
        using var a = model.Forward(model.IdsTensor([Prompt]));
        using var b = model.Forward(model.IdsTensor([Prompt]), new ForwardArgs { OnLayer = hook.OnLayer });
        Assert.True(a.Logits.equal(b.Logits).all().item<bool>());
        // With a large α the same seed gives another text, so the test above could fail.
        var big = new FairSteerHook(1, RandomVector(64, 5, 50), ConstantProbe(64, fires: true), alpha: 1.0, SteeringMode.Always);
        Assert.NotEqual(plain.Tokens, model.Generate([Prompt], options with { OnLayer = big.OnLayer }, _ct)[0].Tokens);
    }

    [Fact]
    public void GatedSteeringWithTheKvCacheEqualsOneFullPassSteeredPerPosition()
    {
        using var model = CausalLM.Create(TinyModels.Config("llama"), ScalarType.Float32, "cpu", 6);
        var v = RandomVector(64, 12, 3);
        // A random probe: fires on some positions and not others.
        var probe = new LogisticProbe(RandomVector(64, 13).Select(x => (double)x).ToArray(), 0.0);
        var decodeHook = new FairSteerHook(1, v, probe, 1.5);
        var result = model.Generate([Prompt], new GenerationOptions { MaxNewTokens = 16, EosTokenIds = [], OnLayer = decodeHook.OnLayer }, _ct)[0];
        Assert.Equal(16, result.Tokens.Count);
        Assert.InRange(decodeHook.Firings[0], 1, decodeHook.Steps[0] - 1); // the test needs both outcomes

        var full = Prompt.Concat(result.Tokens).ToArray();
        var passHook = new FairSteerHook(1, v, probe, 1.5, fromPosition: Prompt.Length - 1);
        using var _ = no_grad();
        using var output = model.Forward(model.IdsTensor([full]), new ForwardArgs { OnLayer = passHook.OnLayer });
        var argmax = output.Logits[0].argmax(-1).data<long>().ToArray();
        for (int j = 0; j < result.Tokens.Count; j++) Assert.Equal(result.Tokens[j], (int)argmax[Prompt.Length - 1 + j]);
        // The full pass also looks at the last token, which decoding never feeds back.
        Assert.Equal(decodeHook.Steps[0] + 1, passHook.Steps[0]);
    }

    [Fact]
    public async Task ChunkedPrefillInAContinuousBatchSteersTheSamePositionsAsOnePass()
    {
        using var model = CausalLM.Create(TinyModels.Config("llama"), ScalarType.Float32, "cpu", 6);
        var v = RandomVector(64, 12, 3);
        var probe = new LogisticProbe(RandomVector(64, 13).Select(x => (double)x).ToArray(), 0.0);
        int[] prompt = [.. Enumerable.Range(0, 19).Select(i => (i * 7 + 3) % 97)];
        var lone = new FairSteerHook(1, v, probe, 1.5);
        var expected = model.Generate([prompt], new GenerationOptions { MaxNewTokens = 10, EosTokenIds = [], OnLayer = lone.OnLayer }, _ct)[0];

        // The prompt arrives in chunks of 4 beside another request; the hook sees only its own row's tokens.
        using var batcher = new ContinuousBatcher(model, new ContinuousBatchOptions { PrefillChunkTokens = 4 });
        var chunked = new FairSteerHook(1, v, probe, 1.5, fromPosition: prompt.Length - 1);
        var steered = batcher.Add(prompt, new GenerationOptions { MaxNewTokens = 10, EosTokenIds = [], OnLayer = chunked.OnLayer }, _ct);
        var other = batcher.Add(Prompt, new GenerationOptions { MaxNewTokens = 10, EosTokenIds = [] }, _ct);
        batcher.RunToCompletion();
        Assert.Equal(expected.Tokens, (await steered.Completion).Tokens);
        Assert.Equal(lone.Firings[0], chunked.Firings[0]);
        Assert.Equal(lone.Steps[0], chunked.Steps[0]);
        Assert.Equal(model.Generate([Prompt], new GenerationOptions { MaxNewTokens = 10, EosTokenIds = [] }, _ct)[0].Tokens, (await other.Completion).Tokens);
        // Steering every chunk's last token instead would have changed the result: the unsteered text differs.
        Assert.NotEqual(expected.Tokens, model.Generate([prompt], new GenerationOptions { MaxNewTokens = 10, EosTokenIds = [] }, _ct)[0].Tokens);
    }

    /// <summary>Eight prompts behind one 20-token "system prompt", with tails of 3–6 tokens (pairs share more).</summary>
    private static int[][] SharedPrefixPrompts()
    {
        int[] system = [4, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 5];
        return [.. Enumerable.Range(0, 8).Select(i => (int[])[.. system, .. Enumerable.Range(0, 3 + i % 4).Select(j => (j * 11 + (i / 2) * 29) % 97)])];
    }

    /// <summary>
    /// Every prompt with its own gated hook (given positions from the prompt's last token on) through one batcher; per
    /// request the tokens, the hook's counters and the values of every position the hook was given at every layer, as
    /// the hook returned them.
    /// </summary>
    private (List<SequenceResult> Results, List<FairSteerHook> Hooks, List<List<float[]>> Seen, BatchStatistics Stats) RunSteered(
        CausalLM model, int[][] prompts, float[] v, LogisticProbe probe, bool share, int chunk)
    {
        using var batcher = new ContinuousBatcher(model, new ContinuousBatchOptions { SharePrefixes = share, PrefillChunkTokens = chunk });
        var hooks = prompts.Select(_ => new FairSteerHook(1, v, probe, 1.5, fromPosition: 0)).ToList();
        var seen = prompts.Select(_ => new List<float[]>()).ToList();
        var seqs = prompts.Select((p, i) => batcher.Add(p, new GenerationOptions
        {
            MaxNewTokens = 8,
            DoSample = true,
            Seed = 70 + i,
            EosTokenIds = [],
            OnLayer = (layer, h) =>
            {
                var result = hooks[i].Apply(layer, h);
                seen[i].Add(result.contiguous().data<float>().ToArray());
                return result;
            },
            OnLayerFrom = FairSteerChatClient.LastPromptToken(p),
        }, _ct)).ToList();
        batcher.RunToCompletion();
        return ([.. seqs.Select(q => q.Completion.Result)], hooks, seen, batcher.Statistics);
    }

    [Fact]
    public void SteeredRequestsSharePromptPrefixesAndDecodeAsUnsharedOnes()
    {
        using var model = CausalLM.Create(TinyModels.Config("llama"), ScalarType.Float32, "cpu", 6);
        var v = RandomVector(64, 12, 3);
        var probe = new LogisticProbe(RandomVector(64, 13).Select(x => (double)x).ToArray(), 0.0);
        var prompts = SharedPrefixPrompts();
        var plain = RunSteered(model, prompts, v, probe, share: false, chunk: 512);
        Assert.Equal(0, plain.Stats.SharedPromptTokens);
        long fired = plain.Hooks.Sum(h => h.Firings[0]), steps = plain.Hooks.Sum(h => h.Steps[0]);
        Assert.InRange(fired, 1, steps - 1); // the gate both fires and holds back, so both branches are compared
        foreach (int chunk in new[] { 4, 512 })
        {
            var shared = RunSteered(model, prompts, v, probe, share: true, chunk);
            // The prompts before their last token are a plain request's: the first computes the 20-token prefix, the other
            // seven copy it.
            Assert.True(shared.Stats.SharedPromptTokens >= 7 * 20, $"chunk {chunk}: shared {shared.Stats.SharedPromptTokens}");
            Assert.Equal(prompts.Sum(p => p.Length), shared.Stats.PromptTokens + shared.Stats.SharedPromptTokens);
            for (int i = 0; i < prompts.Length; i++)
            {
                Assert.Equal(plain.Results[i].Tokens, shared.Results[i].Tokens);
                Assert.Equal(plain.Hooks[i].Firings, shared.Hooks[i].Firings);
                Assert.Equal(plain.Hooks[i].Steps, shared.Hooks[i].Steps);
                // The hook was given exactly the prompt's last token and one position per fed token, at every layer.
                Assert.Equal(plain.Seen[i].Count, shared.Seen[i].Count);
                Assert.Equal(model.Config.NumHiddenLayers * plain.Hooks[i].Steps[0], shared.Seen[i].Sum(x => (long)x.Length) / 64);
                // Equal up to float32 rounding only: a copied prefix was computed in the donor's pass, whose matrix products
                // have another shape than the recipient's own pass would have had, and the libraries' kernels round per
                // shape (two batch compositions differ the same way without any hook or sharing). What the hook decides
                // and adds is identical: the tokens, the gate's counts above.
                for (int k = 0; k < plain.Seen[i].Count; k++)
                {
                    Assert.Equal(plain.Seen[i][k].Length, shared.Seen[i][k].Length);
                    for (int j = 0; j < plain.Seen[i][k].Length; j++)
                        Assert.True(Math.Abs(plain.Seen[i][k][j] - shared.Seen[i][k][j]) <= 1e-5 * (1 + Math.Abs(plain.Seen[i][k][j])),
                            $"request {i}, call {k}, value {j}: {plain.Seen[i][k][j]} vs {shared.Seen[i][k][j]}");
                }
            }
        }
        // The same prompts, steered alone by Generate (one pass over the prompt, then one token per step): same tokens.
        for (int i = 0; i < prompts.Length; i++)
        {
            var lone = new FairSteerHook(1, v, probe, 1.5);
            var alone = model.Generate([prompts[i]], new GenerationOptions { MaxNewTokens = 8, DoSample = true, Seed = 70 + i, EosTokenIds = [], OnLayer = lone.OnLayer }, _ct)[0];
            Assert.Equal(alone.Tokens, plain.Results[i].Tokens);
            Assert.Equal(lone.Firings[0], plain.Hooks[i].Firings[0]);
        }
    }

    [Fact]
    public void ARequestSharesOnlyThePositionsBeforeItsOnLayerFrom()
    {
        using var model = CausalLM.Create(TinyModels.Config("llama"), ScalarType.Float32, "cpu", 6);
        var prompts = SharedPrefixPrompts();
        // A callback that changes every position it is given: a request that took or gave a steered position would show.
        Func<int, Tensor, Tensor> shift = (_, h) => h + 0.25f;
        IReadOnlyList<int> Run(int from, bool share, out long sharedTokens)
        {
            using var batcher = new ContinuousBatcher(model, new ContinuousBatchOptions { SharePrefixes = share });
            var plainFirst = batcher.Add(prompts[0], new GenerationOptions { MaxNewTokens = 6, EosTokenIds = [] }, _ct);
            var hooked = batcher.Add(prompts[2], new GenerationOptions { MaxNewTokens = 6, EosTokenIds = [], OnLayer = shift, OnLayerFrom = from }, _ct);
            var plainLast = batcher.Add(prompts[4], new GenerationOptions { MaxNewTokens = 6, EosTokenIds = [] }, _ct);
            batcher.RunToCompletion();
            sharedTokens = batcher.Statistics.SharedPromptTokens;
            return hooked.Completion.Result.Tokens;
        }
        // From position 12: the hooked request copies its first 12 positions from the first request; the third copies
        // the 20-token prefix from the first, none of it from the hooked one's steered positions 12..19.
        var shared = Run(12, share: true, out long sharedTokens);
        Assert.Equal(12 + 20, sharedTokens);
        Assert.Equal(Run(12, share: false, out _), shared);
        // From 0 (the default) it neither takes nor gives: only the two plain requests share.
        Run(0, share: true, out long none);
        Assert.Equal(20, none);
        // The callback matters, so sharing its positions would have shown in the tokens.
        Assert.NotEqual(model.Generate([prompts[2]], new GenerationOptions { MaxNewTokens = 6, EosTokenIds = [] }, _ct)[0].Tokens, shared);
    }

    [Fact]
    public void GenerateRefusesOnLayerFromItCannotHonour()
    {
        using var model = CausalLM.Create(TinyModels.Config("llama"), ScalarType.Float32, "cpu", 6);
        Assert.Throws<ArgumentException>(() => model.Generate([Prompt], new GenerationOptions { MaxNewTokens = 2, OnLayer = (_, h) => h, OnLayerFrom = 3 }, _ct));
    }

    [Fact]
    public void ModelSavesAndLoadsAndTheRandomAblationKeepsTheNorm()
    {
        using var dir = new TempDir();
        var probes = new[] { new LogisticProbe(RandomVector(8, 1).Select(x => (double)x).ToArray(), 0.5), new LogisticProbe(RandomVector(8, 2).Select(x => (double)x).ToArray(), -0.25) };
        var vectors = new[] { RandomVector(8, 3), RandomVector(8, 4) };
        var info = new FairSteerInfo
        {
            Model = "tiny", HiddenSize = 8, NumLayers = 2, Layer = 1, Alpha = 2.5, Seed = 7,
            ProbeValidationAccuracy = [0.5, 0.75], Sweep = [new SteeringSweepRow(1, 2.5, 0.6, 0.9, 0.3)],
        };
        new FairSteerModel(info, probes, vectors).Save(dir.Path);
        var loaded = FairSteerModel.Load(dir.Path);
        Assert.Equal(1, loaded.Info.Layer);
        Assert.Equal(2.5, loaded.Info.Alpha);
        Assert.Equal(new[] { 0.5, 0.75 }, loaded.Info.ProbeValidationAccuracy);
        Assert.Equal(0.6, loaded.Info.Sweep[0].AmbiguousAccuracy);
        Assert.Equal(vectors[1], loaded.Vectors[1]);
        for (int i = 0; i < 8; i++) Assert.Equal(probes[0].Weight[i], loaded.Probes[0].Weight[i], 1e-6);
        Assert.Equal(-0.25, loaded.Probes[1].Bias, 1e-6);

        var random = FairSteerModel.RandomVectorOfSameNorm(vectors[1], 7);
        double Norm(float[] x) => Math.Sqrt(x.Sum(a => (double)a * a));
        Assert.Equal(Norm(vectors[1]), Norm(random), 1e-4);
        Assert.NotEqual(vectors[1], random);

        File.WriteAllText(Path.Combine(dir.Path, FairSteerModel.InfoFile), "{ \"layer\": ");
        var e = Assert.Throws<InvalidDataException>(() => FairSteerModel.Load(dir.Path));
        Assert.Contains(FairSteerModel.InfoFile, e.Message);
    }

    [Fact]
    public async Task ChatClientStepSteersEachRequestAndReportsGateFirings()
    {
        using var dir = new TempDir();
        using (var m = CausalLM.Create(TinyModels.Config("llama") with { VocabSize = 258, EosTokenIds = [257] }, ScalarType.Float32, "cpu", 5))
            m.Save(dir.Path);
        using var model = CausalLM.Load(dir.Path);
        using var engine = new EngineChatClient(model, new ByteTokenizer(), new PlainFormatter());
        var info = new FairSteerInfo { Model = "tiny", HiddenSize = 64, NumLayers = 2, Layer = 1, Alpha = 4 };
        var steer = new FairSteerModel(info, [ConstantProbe(64, true), ConstantProbe(64, true)], [RandomVector(64, 1, 5), RandomVector(64, 2, 5)]);
        ChatMessage[] messages = [new(ChatRole.User, "Who forgot the keys?")];
        var options = new ChatOptions { MaxOutputTokens = 10, Temperature = 0 };

        var plain = await engine.GetResponseAsync(messages, options, _ct);
        using var fair = new FairSteerChatClient(engine, steer);
        var steered = await fair.GetResponseAsync(messages, options, _ct);
        Assert.NotEqual(plain.Text, steered.Text);
        long firings = Assert.IsType<long>(steered.AdditionalProperties![FairSteerChatClient.GateFiringsKey]);
        long steps = Assert.IsType<long>(steered.AdditionalProperties![FairSteerChatClient.GateStepsKey]);
        Assert.Equal(steps, firings); // this probe always fires
        Assert.InRange(steps, steered.Usage!.OutputTokenCount!.Value, steered.Usage.OutputTokenCount.Value + 1);

        using var gateOnly = new FairSteerChatClient(engine, steer, SteeringMode.GateOnly);
        var counted = await gateOnly.GetResponseAsync(messages, options, _ct);
        Assert.Equal(plain.Text, counted.Text);
        Assert.True((long)counted.AdditionalProperties![FairSteerChatClient.GateFiringsKey]! > 0);

        var wrong = new FairSteerModel(info with { HiddenSize = 32 }, [ConstantProbe(32, true), ConstantProbe(32, true)], [new float[32], new float[32]]);
        Assert.Throws<InvalidOperationException>(() => new FairSteerChatClient(engine, wrong));
    }

    [Fact]
    public void EveryOptionNameParsesBackToItsValue_AndUnknownNamesAreRefused()
    {
        foreach (var v in Enum.GetValues<SteeringVectorSource>()) Assert.Equal(v, FairSteerFitter.ParseVectorSource(FairSteerFitter.VectorSourceName(v)));
        foreach (var v in Enum.GetValues<ProbeLabeling>()) Assert.Equal(v, FairSteerFitter.ParseLabeling(FairSteerFitter.LabelingName(v)));
        foreach (var v in Enum.GetValues<SweepObjective>()) Assert.Equal(v, FairSteerFitter.ParseObjective(FairSteerFitter.ObjectiveName(v)));
        foreach (var v in Enum.GetValues<SweepMetric>()) Assert.Equal(v, FairSteerFitter.ParseMetric(FairSteerFitter.MetricName(v)));
        Assert.Equal(SteeringVectorSource.ContrastivePairs, FairSteerFitter.ParseVectorSource("pairs"));
        Assert.Throws<ArgumentException>(() => FairSteerFitter.ParseVectorSource("mean"));
        Assert.Throws<ArgumentException>(() => FairSteerFitter.ParseLabeling("Paper"));
        Assert.Throws<ArgumentException>(() => FairSteerFitter.ParseObjective("report"));
        Assert.Throws<ArgumentException>(() => FairSteerFitter.ParseMetric("mean"));
    }
}
