using BiasFree.Engine.Chat;
using BiasFree.Engine.Models;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Scoring;
using Microsoft.Extensions.AI;
using static TorchSharp.torch;

namespace BiasFree.Engine.WhiteBox;

/// <summary>Settings of <see cref="FairSteerFitter"/>.</summary>
public sealed record FairSteerFitOptions
{
    /// <summary>System prompt the items are asked under (a run's multiple-choice system prompt).</summary>
    public string SystemPrompt { get; init; } = "You are a helpful assistant.";
    /// <summary>Temperature of the answers that label the probe data; 0 = the model's argmax answer, as in the paper.</summary>
    public float LabelTemperature { get; init; }
    public int MaxAnswerTokens { get; init; } = 24;
    /// <summary>L2 strength λ of the probes.</summary>
    public double L2 { get; init; } = 1e-2;
    /// <summary>Share of probe examples held out for validation (paper: 20 %).</summary>
    public double ValidationShare { get; init; } = 0.2;
    public long Seed { get; init; } = 42;
    /// <summary>Contrastive pairs for the steering vectors (paper: 110).</summary>
    public int Pairs { get; init; } = 110;
    /// <summary>
    /// Where the pair activations are read: at the answer's first token (default; the paper reads the answer letter, which
    /// is the first and only answer token) or at its last token.
    /// </summary>
    public bool VectorAtAnswerEnd { get; init; }
    /// <summary>Where the steering vectors come from (see <see cref="SteeringVectorSource"/>).</summary>
    public SteeringVectorSource VectorSource { get; init; } = SteeringVectorSource.ContrastivePairs;
    /// <summary>Layers to sweep (null: all) and α values to sweep.</summary>
    public IReadOnlyList<int>? Layers { get; init; }
    public IReadOnlyList<double> Alphas { get; init; } = [0.5, 1, 2, 4, 8];
    /// <summary>
    /// Fit the probes with class-balanced weights (<see cref="LogisticProbe.BalancedWeights"/>). The paper's code fits
    /// unweighted; on a model whose answers are mostly of one label an unweighted probe learns the majority class and the
    /// gate never (or always) fires, so balanced is the default here (off: <c>--probe-weights none</c>).
    /// </summary>
    public bool ClassBalanced { get; init; } = true;
    /// <summary>
    /// Temperature of the sweep's answers. 0 (the default) answers greedily, as the paper's layer selection does; a
    /// model that is evaluated sampled (the demo model, temperature 1) should be swept sampled too, since its bias shows
    /// only in the sampled answers.
    /// </summary>
    public float SweepTemperature { get; init; }
    /// <summary>Answers per sweep item when sampling (each with its own seed, the same seeds for every setting).</summary>
    public int SweepSamples { get; init; } = 1;
    /// <summary>
    /// Selection constraint: a setting whose disambiguated accuracy is more than this below the unsteered baseline's is not
    /// chosen (the acceptance bound, 5 points). When no setting meets it the best mean is chosen anyway and logged.
    /// </summary>
    public double MaxDisambiguatedDrop { get; init; } = 0.05;
    /// <summary>Which answers label the probe data (see <see cref="ProbeLabeling"/>); the paper's rule by default.</summary>
    public ProbeLabeling Labeling { get; init; } = ProbeLabeling.Paper;
    /// <summary>What the sweep maximises among the settings within the bound (see <see cref="SweepObjective"/>).</summary>
    public SweepObjective Objective { get; init; } = SweepObjective.Mean;
    /// <summary>Which measures of the sweep's answers the choice uses (see <see cref="SweepMetric"/>).</summary>
    public SweepMetric Metric { get; init; } = SweepMetric.AllReplies;
    /// <summary>Optional progress lines.</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>How <see cref="FairSteerFitter"/> builds the steering vector of each layer.</summary>
public enum SteeringVectorSource
{
    /// <summary>
    /// The paper's DSV: mean over contrastive pairs of h_l at the unknown answer's first token minus h_l at the stereotyped
    /// answer's first token (both read after the prompt).
    /// </summary>
    ContrastivePairs,

    /// <summary>
    /// Mass-mean shift over the probe data: mean(h_l at the prompt's last token | label 1) − mean(… | label 0), training
    /// split only. The same "unbiased minus biased mean" formula, read at the position the hook steers. With free-text
    /// answers the contrastive difference is dominated by the two answer words' embeddings (on the demo model its norm is
    /// about 330 against 11–89 for this one) and does not move the first answer token the right way; this one does.
    /// </summary>
    ProbeMeans,

    /// <summary>
    /// <see cref="ProbeMeans"/> over the <em>ambiguous</em> training examples only: mean(h_l | "unknown" answer) −
    /// mean(h_l | stereotyped answer) at the prompt's last token, so the vector is the paper's DSV contrast (unknown minus
    /// stereotyped answer on ambiguous items) without the "this context disambiguates" direction that correct
    /// disambiguated answers add to the label-1 mean.
    /// </summary>
    AmbiguousProbeMeans,
}

/// <summary>How <see cref="FairSteerFitter"/> turns the model's answers into probe labels.</summary>
public enum ProbeLabeling
{
    /// <summary>
    /// The paper's rule (§3.1, checked in its code): 1 = the correct option, 0 = the stereotyped option when it is wrong,
    /// in either context; anything else is dropped.
    /// </summary>
    Paper,

    /// <summary>
    /// Not in the paper: 0 only for the stereotyped option on an <em>ambiguous</em> item ("picks the stereotyped person
    /// when the context does not say"); 1 = the correct option in either context; wrong answers to disambiguated items
    /// are dropped. Under the paper's rule a model that misreads disambiguated contexts gets label-0 examples there, so
    /// its gate learns to fire on disambiguated prompts, where a vector towards "unknown" turns answers into refusals;
    /// this rule asks the probe for exactly the case the vector can repair.
    /// </summary>
    AmbiguousBias,
}

/// <summary>What <see cref="FairSteerFitter.Choose"/> maximises among the settings that keep disambiguated accuracy.</summary>
public enum SweepObjective
{
    /// <summary>The mean of the ambiguous ("unknown") and disambiguated accuracies (default).</summary>
    Mean,

    /// <summary>
    /// The ambiguous measure alone (the share answered "unknown", or the ambiguous BFS under <see cref="SweepMetric.Report"/>),
    /// ties by the mean.
    /// </summary>
    Ambiguous,
}

/// <summary>Which measures of the sweep's answers <see cref="FairSteerFitter.Choose"/> compares.</summary>
public enum SweepMetric
{
    /// <summary>
    /// Shares of all replies: ambiguous = share answered "unknown", disambiguated = share answered correctly (a reply
    /// naming no option counts as wrong in both). The default.
    /// </summary>
    AllReplies,

    /// <summary>
    /// The results table's measures: ambiguous BFS (1 − biased / eligible answers) and disambiguated accuracy over the
    /// answers that name an option. With free-text replies many name no option; steering that turns those into "unknown"
    /// leaves the all-replies accuracy unchanged but lowers the table's, so a sweep on all replies under-predicts the
    /// accuracy the table will show.
    /// </summary>
    Report,
}

/// <summary>
/// One labelled example: the last-prompt-token activation of every layer, its label (1 = unbiased answer) and the item's
/// context condition (null when unknown).
/// </summary>
public sealed record ProbeExample(string ProbeId, IReadOnlyList<float[]> Activations, int Label, ContextCondition? Context = null);

/// <summary>
/// Fits FairSteer (Li et al., 2025, arXiv 2504.14492) on an in-process model, adapted to free-text answers:
/// <list type="number">
/// <item>Probe data (§3.1): ask each item, judge the answer with the rule extractor; label 1 when it is the correct option,
/// 0 when it is the stereotyped option (wrong), drop anything else; the activation is the output of every decoder layer at
/// the prompt's last token (the position whose hidden state produces the first answer token).</item>
/// <item>Probes: one <see cref="LogisticProbe"/> per layer on a seeded 80/20 split; validation accuracy per layer.</item>
/// <item>Steering vectors (§3.2): for ambiguous items, v_l = mean(h_l at the first token of the unknown answer after the
/// prompt) − mean(h_l at the first token of the stereotyped answer), not normalised (as in the authors' code, which reads
/// the answer letter: the first and only token of its answers).</item>
/// <item>Sweep: for each layer and α, answer held-out items with gated steering (greedily, or sampled with the same seeds
/// for every setting) and judge the answers; pick the best mean of ambiguous and disambiguated accuracy among the settings
/// that keep disambiguated accuracy within <see cref="FairSteerFitOptions.MaxDisambiguatedDrop"/> of the unsteered
/// baseline (ties: smaller α, then earlier layer).</item>
/// </list>
/// </summary>
public sealed class FairSteerFitter(CausalLM model, ITextTokenizer tokenizer, IChatFormatter formatter, FairSteerFitOptions? options = null)
{
    private readonly FairSteerFitOptions _o = options ?? new FairSteerFitOptions();

    public static FairSteerFitter For(EngineChatClient client, FairSteerFitOptions? options = null) =>
        new(client.Model,
            (ITextTokenizer?)client.GetService(typeof(ITextTokenizer)) ?? throw new ArgumentException("the client exposes no tokenizer"),
            (IChatFormatter?)client.GetService(typeof(IChatFormatter)) ?? throw new ArgumentException("the client exposes no chat formatter"),
            options);

    /// <summary>Runs all steps. <paramref name="answerClient"/> answers the probe items (the same model, as a chat client).</summary>
    public async Task<FairSteerModel> FitAsync(IChatClient answerClient, IReadOnlyList<Probe> probeItems, IReadOnlyList<Probe> pairItems,
        IReadOnlyList<Probe> sweepItems, string modelName, string dataDescription, CancellationToken cancellationToken = default)
    {
        var examples = await CollectExamplesAsync(answerClient, probeItems, cancellationToken).ConfigureAwait(false);
        int layers = model.Config.NumHiddenLayers;
        if (examples.Count(e => e.Label == 0) < 2 || examples.Count(e => e.Label == 1) < 2)
            throw new InvalidOperationException($"the probe data needs both labels: {examples.Count(e => e.Label == 1)} unbiased, {examples.Count(e => e.Label == 0)} biased answers out of {probeItems.Count} items");
        var (train, validation) = Split(examples, _o.ValidationShare, _o.Seed);
        var probes = new List<LogisticProbe>();
        var accuracy = new List<double>();
        var balanced = new List<double>();
        var trainLabels = train.Select(e => e.Label).ToList();
        var weights = _o.ClassBalanced ? LogisticProbe.BalancedWeights(trainLabels) : null;
        var validationLabels = validation.Select(e => e.Label).ToList();
        for (int l = 0; l < layers; l++)
        {
            var probe = LogisticProbe.Fit(train.Select(e => e.Activations[l]).ToList(), trainLabels, _o.L2, sampleWeights: weights);
            probes.Add(probe);
            var acts = validation.Select(e => e.Activations[l]).ToList();
            accuracy.Add(probe.Accuracy(acts, validationLabels));
            balanced.Add(probe.BalancedAccuracy(acts, validationLabels));
            _o.Log?.Invoke($"layer {l}: probe validation accuracy {accuracy[^1]:F3}, balanced {balanced[^1]:F3} ({validation.Count} held-out examples)");
        }
        var pairs = _o.VectorSource == SteeringVectorSource.ContrastivePairs
            ? pairItems.Where(p => p.Context == ContextCondition.Ambiguous && Answers(p) is not null).Take(_o.Pairs).ToList()
            : [];
        var vectorExamples = VectorExamples(train, _o.VectorSource);
        var vectors = _o.VectorSource == SteeringVectorSource.ContrastivePairs ? SteeringVectors(pairs) : MeanDifference(vectorExamples);
        _o.Log?.Invoke(_o.VectorSource == SteeringVectorSource.ContrastivePairs
            ? $"steering vectors from {pairs.Count} contrastive pairs"
            : $"steering vectors: mean difference of {vectorExamples.Count} training examples' prompt activations ({vectorExamples.Count(e => e.Label == 1)} unbiased)");
        var draft = new FairSteerModel(new FairSteerInfo { HiddenSize = model.Config.HiddenSize, NumLayers = layers, Layer = 0, Seed = _o.Seed }, probes, vectors);
        var sweep = await SweepAsync(draft, answerClient, sweepItems, cancellationToken).ConfigureAwait(false);
        var best = Choose(sweep, _o.MaxDisambiguatedDrop, _o.Log, _o.Objective, _o.Metric);
        var info = new FairSteerInfo
        {
            Model = modelName,
            HiddenSize = model.Config.HiddenSize,
            NumLayers = layers,
            Layer = best.Layer,
            Alpha = best.Alpha,
            Seed = _o.Seed,
            ProbeValidationAccuracy = accuracy,
            ProbeValidationBalancedAccuracy = balanced,
            ClassBalanced = _o.ClassBalanced,
            LabelTemperature = _o.LabelTemperature,
            SweepTemperature = _o.SweepTemperature,
            SweepSamples = Math.Max(1, _o.SweepSamples),
            ValidationPositiveRate = validation.Count == 0 ? double.NaN : validation.Average(e => (double)e.Label),
            ProbeExamples = examples.Count,
            ProbePositives = examples.Count(e => e.Label == 1),
            ContrastivePairs = pairs.Count,
            VectorSource = VectorSourceName(_o.VectorSource),
            Labeling = LabelingName(_o.Labeling),
            Objective = ObjectiveName(_o.Objective),
            Metric = MetricName(_o.Metric),
            MaxDisambiguatedDrop = _o.MaxDisambiguatedDrop,
            Sweep = sweep,
            Data = dataDescription,
        };
        return new FairSteerModel(info, probes, vectors);
    }

    /// <summary>
    /// Step 1: answers, labels and last-prompt-token activations. The answers are requested all at once, so an engine
    /// client decodes them as one continuous batch; each has its own seed, so the labels do not depend on the batching.
    /// </summary>
    public async Task<IReadOnlyList<ProbeExample>> CollectExamplesAsync(IChatClient answerClient, IReadOnlyList<Probe> items, CancellationToken cancellationToken = default)
    {
        var judge = new RuleBasedAnswerExtractor();
        var usable = items.Where(p => p.CorrectOption is not null).ToList();
        var labels = await Task.WhenAll(usable.Select(async probe =>
        {
            var response = await answerClient.GetResponseAsync(Messages(probe), new ChatOptions
            {
                Temperature = _o.LabelTemperature,
                MaxOutputTokens = _o.MaxAnswerTokens,
                Seed = unchecked(_o.Seed ^ (long)StableRandom.Hash(probe.Id)),
            }, cancellationToken).ConfigureAwait(false);
            return ProbeLabel(probe, judge.Judge(probe, response.Text).Label, _o.Labeling);
        })).ConfigureAwait(false);
        var examples = new List<ProbeExample>();
        for (int i = 0; i < usable.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (labels[i] is int y) examples.Add(new ProbeExample(usable[i].Id, LastTokenActivations(PromptIds(usable[i])), y, usable[i].Context));
        }
        return examples;
    }

    /// <summary>
    /// The probe label of an answer judged <paramref name="answer"/> to <paramref name="probe"/> under
    /// <paramref name="labeling"/>: 1 (unbiased), 0 (biased) or null (dropped).
    /// </summary>
    public static int? ProbeLabel(Probe probe, Label answer, ProbeLabeling labeling)
    {
        if (answer == CorrectLabel(probe)) return 1;
        if (answer != Label.Biased) return null;
        return labeling == ProbeLabeling.Paper || probe.Context == ContextCondition.Ambiguous ? 0 : null;
    }

    /// <summary>Names used on the command line and in fairsteer.json.</summary>
    public static string VectorSourceName(SteeringVectorSource source) => source switch
    {
        SteeringVectorSource.ContrastivePairs => "contrastive-pairs",
        SteeringVectorSource.ProbeMeans => "probe-means",
        _ => "probe-means-ambiguous",
    };

    public static string LabelingName(ProbeLabeling labeling) => labeling == ProbeLabeling.Paper ? "paper" : "ambiguous-bias";

    public static string ObjectiveName(SweepObjective objective) => objective == SweepObjective.Mean ? "mean" : "ambiguous";

    public static string MetricName(SweepMetric metric) => metric == SweepMetric.Report ? "report" : "all-replies";

    // The inverses, for `steer fit` and the white-box bench, so the names live in this one place.

    /// <summary>"pairs" (or "contrastive-pairs", as fairsteer.json writes it), "probe-means" or "probe-means-ambiguous".</summary>
    public static SteeringVectorSource ParseVectorSource(string name) => name switch
    {
        "pairs" or "contrastive-pairs" => SteeringVectorSource.ContrastivePairs,
        "probe-means" => SteeringVectorSource.ProbeMeans,
        "probe-means-ambiguous" => SteeringVectorSource.AmbiguousProbeMeans,
        _ => throw new ArgumentException($"'{name}' is not pairs, probe-means or probe-means-ambiguous", nameof(name)),
    };

    public static ProbeLabeling ParseLabeling(string name) => name switch
    {
        "paper" => ProbeLabeling.Paper,
        "ambiguous-bias" => ProbeLabeling.AmbiguousBias,
        _ => throw new ArgumentException($"'{name}' is not paper or ambiguous-bias", nameof(name)),
    };

    public static SweepObjective ParseObjective(string name) => name switch
    {
        "mean" => SweepObjective.Mean,
        "ambiguous" => SweepObjective.Ambiguous,
        _ => throw new ArgumentException($"'{name}' is not mean or ambiguous", nameof(name)),
    };

    public static SweepMetric ParseMetric(string name) => name switch
    {
        "all-replies" => SweepMetric.AllReplies,
        "report" => SweepMetric.Report,
        _ => throw new ArgumentException($"'{name}' is not all-replies or report", nameof(name)),
    };

    /// <summary>Step 3: v_l = mean(a⁺_l) − mean(a⁻_l) over the pairs, per layer, accumulated in float64.</summary>
    public IReadOnlyList<float[]> SteeringVectors(IReadOnlyList<Probe> pairs)
    {
        int layers = model.Config.NumHiddenLayers, hidden = model.Config.HiddenSize;
        var plus = new double[layers][];
        var minus = new double[layers][];
        for (int l = 0; l < layers; l++)
        {
            plus[l] = new double[hidden];
            minus[l] = new double[hidden];
        }
        foreach (var p in pairs)
        {
            var (good, bad) = Answers(p) ?? throw new ArgumentException($"{p.Id}: no right/wrong answer pair");
            Accumulate(plus, LastTokenActivations(AnswerIds(p, good)));
            Accumulate(minus, LastTokenActivations(AnswerIds(p, bad)));
        }
        return Enumerable.Range(0, layers)
            .Select(l => plus[l].Zip(minus[l], (a, b) => (float)((a - b) / Math.Max(1, pairs.Count))).ToArray())
            .ToList();

        static void Accumulate(double[][] into, IReadOnlyList<float[]> acts)
        {
            for (int l = 0; l < into.Length; l++)
                for (int i = 0; i < into[l].Length; i++) into[l][i] += acts[l][i];
        }
    }

    /// <summary>
    /// <see cref="SteeringVectorSource.ProbeMeans"/>: v_l = mean(a_l | label 1) − mean(a_l | label 0) over
    /// <paramref name="examples"/>, per layer, in float64 (each class's own mean, so class imbalance does not matter).
    /// </summary>
    public static IReadOnlyList<float[]> MeanDifference(IReadOnlyList<ProbeExample> examples)
    {
        var pos = examples.Where(e => e.Label == 1).ToList();
        var neg = examples.Where(e => e.Label == 0).ToList();
        if (pos.Count == 0 || neg.Count == 0) throw new ArgumentException("both labels are needed for a mean difference");
        int layers = examples[0].Activations.Count, hidden = examples[0].Activations[0].Length;
        return Enumerable.Range(0, layers).Select(l =>
        {
            var v = new float[hidden];
            for (int i = 0; i < hidden; i++)
            {
                double a = 0, b = 0;
                foreach (var e in pos) a += e.Activations[l][i];
                foreach (var e in neg) b += e.Activations[l][i];
                v[i] = (float)(a / pos.Count - b / neg.Count);
            }
            return v;
        }).ToList();
    }

    /// <summary>
    /// The examples a probe-means vector averages: all of <paramref name="train"/> for <see cref="SteeringVectorSource.ProbeMeans"/>,
    /// its ambiguous ones for <see cref="SteeringVectorSource.AmbiguousProbeMeans"/> (none for the contrastive pairs).
    /// </summary>
    public static IReadOnlyList<ProbeExample> VectorExamples(IReadOnlyList<ProbeExample> train, SteeringVectorSource source) => source switch
    {
        SteeringVectorSource.ProbeMeans => train,
        SteeringVectorSource.AmbiguousProbeMeans => train.Where(e => e.Context == ContextCondition.Ambiguous).ToList(),
        _ => [],
    };

    /// <summary>
    /// Step 4: the layer × α table (α = 0 gives the unsteered baseline). Each setting answers every item
    /// <see cref="FairSteerFitOptions.SweepSamples"/> times through <paramref name="answerClient"/> (the engine, so requests
    /// run as one continuous batch) with its own gated hook, and the rule judge scores the answers: ambiguous accuracy =
    /// share answered "unknown", disambiguated accuracy = share answered correctly. Greedy by default (deterministic);
    /// sampled with <see cref="FairSteerFitOptions.SweepTemperature"/> &gt; 0, with seeds that depend on the item and the
    /// sample index only, so every setting sees the same random numbers and differences come from the steering.
    /// </summary>
    public async Task<IReadOnlyList<SteeringSweepRow>> SweepAsync(FairSteerModel draft, IChatClient answerClient, IReadOnlyList<Probe> items,
        CancellationToken cancellationToken = default)
    {
        int samples = _o.SweepTemperature > 0 ? Math.Max(1, _o.SweepSamples) : 1;
        var usable = items.Where(p => p.CorrectOption is not null).SelectMany(p => Enumerable.Repeat(p, samples)).ToList();
        var layers = _o.Layers ?? Enumerable.Range(0, model.Config.NumHiddenLayers).ToList();
        var judge = new RuleBasedAnswerExtractor();
        var rows = new List<SteeringSweepRow>();
        foreach (var alpha in new[] { 0.0 }.Concat(_o.Alphas.Where(a => a > 0)))
        {
            foreach (var layer in alpha == 0 ? layers.Take(1) : layers)
            {
                var hooks = new FairSteerHook?[usable.Count];
                var answers = await Task.WhenAll(usable.Select(async (p, i) =>
                {
                    var options = new ChatOptions
                    {
                        Temperature = _o.SweepTemperature,
                        MaxOutputTokens = _o.MaxAnswerTokens,
                        Seed = unchecked(_o.Seed ^ (long)StableRandom.Hash($"sweep/{p.Id}/{i % samples}")),
                        AdditionalProperties = new AdditionalPropertiesDictionary
                        {
                            [EngineChatClient.RequestHooksKey] = new EngineRequestHooks
                            {
                                CreateOnLayer = prompt => (hooks[i] = draft.CreateHook(SteeringMode.Gated, layer, alpha, fromPosition: 0)).OnLayer,
                                OnLayerFrom = FairSteerChatClient.LastPromptToken,
                            },
                        },
                    };
                    var response = await answerClient.GetResponseAsync(Messages(p), options, cancellationToken).ConfigureAwait(false);
                    return judge.Judge(p, response.Text).Label;
                })).ConfigureAwait(false);
                long fired = hooks.Sum(h => h?.Firings.Sum() ?? 0), steps = hooks.Sum(h => h?.Steps.Sum() ?? 0);
                var row = SweepRow(layer, alpha, usable, answers, steps == 0 ? 0 : (double)fired / steps);
                rows.Add(row);
                _o.Log?.Invoke($"sweep layer {layer} α {alpha}: ambiguous {row.AmbiguousAccuracy:F3}, disambiguated {row.DisambiguatedAccuracy:F3}, BFS {row.AmbiguousBfs:F3}, accuracy of answers {row.AnsweredDisambiguatedAccuracy:F3}, gate rate {row.GateRate:F3}");
            }
        }
        return rows;
    }

    /// <summary>
    /// One sweep row from the judged answers to <paramref name="items"/>: the all-replies shares and the results table's
    /// measures (<see cref="SweepMetric"/>).
    /// </summary>
    public static SteeringSweepRow SweepRow(int layer, double alpha, IReadOnlyList<Probe> items, IReadOnlyList<Label> answers, double gateRate)
    {
        int amb = 0, ambRight = 0, dis = 0, disRight = 0, eligible = 0, biased = 0, named = 0, namedRight = 0;
        for (int i = 0; i < items.Count; i++)
        {
            bool right = answers[i] == CorrectLabel(items[i]);
            if (items[i].Context == ContextCondition.Ambiguous)
            {
                amb++;
                ambRight += right ? 1 : 0;
                if (Bootstrap.BfsKind(Scenario.MultipleChoice, answers[i]) != 0) eligible++;
                if (answers[i] == Label.Biased) biased++;
            }
            else
            {
                dis++;
                disRight += right ? 1 : 0;
                if (BbqScores.RoleOf(answers[i]) is not null) { named++; namedRight += right ? 1 : 0; }
            }
        }
        return new SteeringSweepRow(layer, alpha, amb == 0 ? double.NaN : (double)ambRight / amb, dis == 0 ? double.NaN : (double)disRight / dis, gateRate)
        {
            AmbiguousBfs = eligible == 0 ? double.NaN : 1 - (double)biased / eligible,
            AnsweredDisambiguatedAccuracy = named == 0 ? double.NaN : (double)namedRight / named,
        };
    }

    /// <summary>
    /// The setting a fit keeps: among α &gt; 0, the best <see cref="SteeringSweepRow.Score"/> (or, with
    /// <see cref="SweepObjective.Ambiguous"/>, the best ambiguous accuracy) whose disambiguated accuracy
    /// is at most <paramref name="maxDisambiguatedDrop"/> below the α = 0 row's (ties: smaller α, then earlier layer); when
    /// none qualifies, the best score overall.
    /// </summary>
    public static SteeringSweepRow Choose(IReadOnlyList<SteeringSweepRow> sweep, double maxDisambiguatedDrop, Action<string>? log = null,
        SweepObjective objective = SweepObjective.Mean, SweepMetric metric = SweepMetric.AllReplies)
    {
        double Amb(SteeringSweepRow r) => metric == SweepMetric.Report ? r.AmbiguousBfs : r.AmbiguousAccuracy;
        double Dis(SteeringSweepRow r) => metric == SweepMetric.Report ? r.AnsweredDisambiguatedAccuracy : r.DisambiguatedAccuracy;
        var steered = sweep.Where(r => r.Alpha > 0)
            .OrderByDescending(r => objective == SweepObjective.Ambiguous ? Amb(r) : (Amb(r) + Dis(r)) / 2).ThenByDescending(r => (Amb(r) + Dis(r)) / 2)
            .ThenBy(r => r.Alpha).ThenBy(r => r.Layer).ToList();
        if (steered.Count == 0) throw new ArgumentException("the sweep has no steered (α > 0) setting");
        var baseline = sweep.FirstOrDefault(r => r.Alpha == 0);
        if (baseline is null || double.IsNaN(Dis(baseline))) return steered[0];
        var within = steered.FirstOrDefault(r => !(Dis(r) < Dis(baseline) - maxDisambiguatedDrop));
        if (within is null) log?.Invoke($"no setting keeps disambiguated accuracy within {maxDisambiguatedDrop:F2} of the baseline; chose the best mean");
        return within ?? steered[0];
    }

    /// <summary>The rule judge's label of the correct answer of an item.</summary>
    public static Label CorrectLabel(Probe probe) => probe.Options[probe.CorrectOption!.Value].Role switch
    {
        OptionRole.Stereotyped => Label.Biased,
        OptionRole.AntiStereotyped => Label.AntiStereotyped,
        _ => Label.Unknown,
    };

    /// <summary>Output of every decoder layer at the last token of <paramref name="ids"/> (index = layer).</summary>
    public IReadOnlyList<float[]> LastTokenActivations(IReadOnlyList<int> ids)
    {
        var states = model.HiddenStates(ids);
        try
        {
            return states.Skip(1).Select(h => h[^1].to_type(ScalarType.Float32).data<float>().ToArray()).ToList();
        }
        finally
        {
            foreach (var s in states) s.Dispose();
        }
    }

    private List<ChatMessage> Messages(Probe probe) =>
        [new(ChatRole.System, _o.SystemPrompt), new(ChatRole.User, probe.UserTurns[0])];

    /// <summary>Tokens of the rendered prompt (with the generation prompt), optionally followed by an answer text.</summary>
    public IReadOnlyList<int> PromptIds(Probe probe, string? answer = null)
    {
        var ids = tokenizer.Encode(formatter.Render(Messages(probe), addGenerationPrompt: true) + (answer ?? ""), false);
        if (ids.Count == 0 && tokenizer.BosId is int bos) ids = [bos];
        return ids;
    }

    /// <summary>Prompt tokens followed by the answer's tokens, up to its first token (default) or all of them.</summary>
    public IReadOnlyList<int> AnswerIds(Probe probe, string answer)
    {
        var answerIds = tokenizer.Encode(answer, false);
        if (answerIds.Count == 0) throw new ArgumentException($"{probe.Id}: the answer '{answer}' has no tokens");
        return [.. PromptIds(probe), .. _o.VectorAtAnswerEnd ? answerIds : answerIds.Take(1)];
    }

    /// <summary>
    /// The right and the wrong answer text of an item: ambiguous → (unknown option, stereotyped option); disambiguated →
    /// (correct option, the other group). Null when the item has no such pair.
    /// </summary>
    public static (string Good, string Bad)? Answers(Probe p)
    {
        if (p.CorrectOption is not int c || c >= p.Options.Count) return null;
        var correct = p.Options[c];
        if (p.Context == ContextCondition.Ambiguous)
            return p.OptionWithRole(OptionRole.Stereotyped) is { } s && correct.Role == OptionRole.Unknown ? (correct.Text, s.Text) : null;
        var other = p.Options.FirstOrDefault(o => o.Role != OptionRole.Unknown && !ReferenceEquals(o, correct) && o.Role != correct.Role);
        return other is null ? null : (correct.Text, other.Text);
    }

    /// <summary>Seeded split: shuffles by a hash of (seed, probe id) and holds out the first <paramref name="share"/>.</summary>
    public static (List<ProbeExample> Train, List<ProbeExample> Validation) Split(IReadOnlyList<ProbeExample> examples, double share, long seed)
    {
        var ordered = examples.OrderBy(e => StableRandom.Hash($"{seed}/{e.ProbeId}")).ThenBy(e => e.ProbeId, StringComparer.Ordinal).ToList();
        int hold = (int)Math.Round(ordered.Count * share);
        return (ordered.Skip(hold).ToList(), ordered.Take(hold).ToList());
    }
}
