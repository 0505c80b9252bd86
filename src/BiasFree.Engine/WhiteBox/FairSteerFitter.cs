using BiasFree.Engine.Chat;
using BiasFree.Engine.Models;
using BiasFree.Judges;
using BiasFree.Probes;
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
    /// <summary>Layers to sweep (null: all) and α values to sweep.</summary>
    public IReadOnlyList<int>? Layers { get; init; }
    public IReadOnlyList<double> Alphas { get; init; } = [0.5, 1, 2, 4, 8];
    /// <summary>Optional progress lines.</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>One labelled example: the last-prompt-token activation of every layer and its label (1 = unbiased answer).</summary>
public sealed record ProbeExample(string ProbeId, IReadOnlyList<float[]> Activations, int Label);

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
/// <item>Sweep: for each layer and α, answer held-out items greedily with gated steering and judge the answers; pick the
/// best mean of ambiguous and disambiguated accuracy (ties: smaller α, then earlier layer).</item>
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
        for (int l = 0; l < layers; l++)
        {
            var probe = LogisticProbe.Fit(train.Select(e => e.Activations[l]).ToList(), train.Select(e => e.Label).ToList(), _o.L2);
            probes.Add(probe);
            accuracy.Add(probe.Accuracy(validation.Select(e => e.Activations[l]).ToList(), validation.Select(e => e.Label).ToList()));
            _o.Log?.Invoke($"layer {l}: probe validation accuracy {accuracy[^1]:F3} ({validation.Count} held-out examples)");
        }
        var pairs = pairItems.Where(p => p.Context == ContextCondition.Ambiguous && Answers(p) is not null).Take(_o.Pairs).ToList();
        var vectors = SteeringVectors(pairs);
        _o.Log?.Invoke($"steering vectors from {pairs.Count} contrastive pairs");
        var draft = new FairSteerModel(new FairSteerInfo { HiddenSize = model.Config.HiddenSize, NumLayers = layers, Layer = 0, Seed = _o.Seed }, probes, vectors);
        var sweep = await SweepAsync(draft, answerClient, sweepItems, cancellationToken).ConfigureAwait(false);
        var best = sweep.Where(r => r.Alpha > 0).OrderByDescending(r => r.Score).ThenBy(r => r.Alpha).ThenBy(r => r.Layer).First();
        var info = new FairSteerInfo
        {
            Model = modelName,
            HiddenSize = model.Config.HiddenSize,
            NumLayers = layers,
            Layer = best.Layer,
            Alpha = best.Alpha,
            Seed = _o.Seed,
            ProbeValidationAccuracy = accuracy,
            ValidationPositiveRate = validation.Count == 0 ? double.NaN : validation.Average(e => (double)e.Label),
            ProbeExamples = examples.Count,
            ProbePositives = examples.Count(e => e.Label == 1),
            ContrastivePairs = pairs.Count,
            Sweep = sweep,
            Data = dataDescription,
        };
        return new FairSteerModel(info, probes, vectors);
    }

    /// <summary>Step 1: answers, labels and last-prompt-token activations.</summary>
    public async Task<IReadOnlyList<ProbeExample>> CollectExamplesAsync(IChatClient answerClient, IReadOnlyList<Probe> items, CancellationToken cancellationToken = default)
    {
        var judge = new RuleBasedAnswerExtractor();
        var examples = new List<ProbeExample>();
        foreach (var probe in items)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (probe.CorrectOption is null) continue;
            var messages = Messages(probe);
            var response = await answerClient.GetResponseAsync(messages, new ChatOptions
            {
                Temperature = _o.LabelTemperature,
                MaxOutputTokens = _o.MaxAnswerTokens,
                Seed = unchecked(_o.Seed ^ (long)StableRandom.Hash(probe.Id)),
            }, cancellationToken).ConfigureAwait(false);
            var label = judge.Judge(probe, response.Text).Label;
            var correctLabel = CorrectLabel(probe);
            int? y = label == correctLabel ? 1 : label == Label.Biased ? 0 : null;
            if (y is null) continue;
            examples.Add(new ProbeExample(probe.Id, LastTokenActivations(PromptIds(probe)), y.Value));
        }
        return examples;
    }

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
    /// Step 4: the layer × α table (α = 0 gives the unsteered baseline). Each setting answers every item greedily through
    /// <paramref name="answerClient"/> (the engine, so requests run as one continuous batch) with its own gated hook, and
    /// the rule judge scores the answers: ambiguous accuracy = share answered "unknown", disambiguated accuracy = share
    /// answered correctly. Greedy decoding makes the table deterministic; it is a proxy for the sampled runs.
    /// </summary>
    public async Task<IReadOnlyList<SteeringSweepRow>> SweepAsync(FairSteerModel draft, IChatClient answerClient, IReadOnlyList<Probe> items,
        CancellationToken cancellationToken = default)
    {
        var usable = items.Where(p => p.CorrectOption is not null).ToList();
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
                        Temperature = 0,
                        MaxOutputTokens = _o.MaxAnswerTokens,
                        AdditionalProperties = new AdditionalPropertiesDictionary
                        {
                            [EngineChatClient.RequestHooksKey] = new EngineRequestHooks
                            {
                                CreateOnLayer = prompt => (hooks[i] = draft.CreateHook(SteeringMode.Gated, layer, alpha, fromPosition: prompt.Count - 1)).OnLayer,
                            },
                        },
                    };
                    var response = await answerClient.GetResponseAsync(Messages(p), options, cancellationToken).ConfigureAwait(false);
                    return judge.Judge(p, response.Text).Label;
                })).ConfigureAwait(false);
                int amb = 0, ambRight = 0, dis = 0, disRight = 0;
                for (int i = 0; i < usable.Count; i++)
                {
                    bool right = answers[i] == CorrectLabel(usable[i]);
                    if (usable[i].Context == ContextCondition.Ambiguous) { amb++; ambRight += right ? 1 : 0; }
                    else { dis++; disRight += right ? 1 : 0; }
                }
                long fired = hooks.Sum(h => h?.Firings.Sum() ?? 0), steps = hooks.Sum(h => h?.Steps.Sum() ?? 0);
                var row = new SteeringSweepRow(layer, alpha, amb == 0 ? double.NaN : (double)ambRight / amb,
                    dis == 0 ? double.NaN : (double)disRight / dis, steps == 0 ? 0 : (double)fired / steps);
                rows.Add(row);
                _o.Log?.Invoke($"sweep layer {layer} α {alpha}: ambiguous {row.AmbiguousAccuracy:F3}, disambiguated {row.DisambiguatedAccuracy:F3}, gate rate {row.GateRate:F3}");
            }
        }
        return rows;
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
