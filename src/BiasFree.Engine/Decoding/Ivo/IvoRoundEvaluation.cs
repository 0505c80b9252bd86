using System.Globalization;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using BiasFree.Engine.Tokenization;
using BiasFree.Engine.Training;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Scoring;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.Decoding.Ivo;

/// <summary>Settings of <see cref="IvoRoundEvaluation"/>.</summary>
public sealed record IvoRoundEvaluationOptions
{
    /// <summary>β and k of the tokenwise decoding each round's V guides (the value training's own guide by default).</summary>
    public IvoSettings Guide { get; init; } = new();

    /// <summary>Length limit of an answer.</summary>
    public int MaxNewTokens { get; init; } = 64;

    /// <summary>Sampling temperature (the demo model is sampled at 1).</summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary>System prompt (the run's multiple-choice system prompt, which the value model was trained under).</summary>
    public string SystemPrompt { get; init; } = "You are a helpful assistant.";

    /// <summary>Probe i is sampled with seed Seed·1,000,003 + i in every row (common random numbers across the rows).</summary>
    public long Seed { get; init; } = 7;

    /// <summary>Probes decoded in one batch.</summary>
    public int Batch { get; init; } = 16;

    /// <summary>Bootstrap resamples of the mean reward's interval (the proportions use the report's own intervals).</summary>
    public int Resamples { get; init; } = Bootstrap.DefaultResamples;

    /// <summary>Interval coverage.</summary>
    public double Level { get; init; } = 0.95;

    /// <summary>Torch threads (null: torch's default).</summary>
    public int? Threads { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad field.</summary>
    public void Validate()
    {
        Guide.Validate();
        if (MaxNewTokens < 1) throw new ArgumentException($"MaxNewTokens must be ≥ 1, got {MaxNewTokens}");
        if (Temperature <= 0) throw new ArgumentException($"Temperature must be positive (the policies are sampled), got {Temperature}");
        if (Batch < 1) throw new ArgumentException($"Batch must be ≥ 1, got {Batch}");
        if (Resamples < 100) throw new ArgumentException($"Resamples must be ≥ 100, got {Resamples}");
        if (Level is <= 0 or >= 1) throw new ArgumentException($"Level must be in (0, 1), got {Level}");
    }
}

/// <summary>One row of the per-round table: one policy decoded on every held-out probe.</summary>
/// <param name="Policy">"base" or "guided by V{r}".</param>
/// <param name="Round">r of the value model V_r that guided the decoding; null for the base policy.</param>
/// <param name="ValueModel">Folder of V_r; null for the base policy.</param>
/// <param name="Probes">Probes decoded.</param>
/// <param name="MeanReward">Mean <see cref="IvoReward"/> over the probes.</param>
/// <param name="RewardInterval">Percentile-bootstrap interval of <see cref="MeanReward"/>, resampling probes.</param>
/// <param name="Scores">Ambiguous BFS, disambiguated accuracy and over-refusal with the report's intervals (<see cref="ScoreTable"/>).</param>
/// <param name="TokensPerAnswer">Mean answer length in tokens.</param>
/// <param name="Rewards">Reward of each probe, in probe order (for paired comparisons).</param>
/// <param name="Answers">The decoded answer to each probe, in probe order.</param>
public sealed record IvoRoundRow(string Policy, int? Round, string? ValueModel, int Probes, double MeanReward, ConfidenceInterval? RewardInterval,
    ScoreRow Scores, double TokensPerAnswer, IReadOnlyList<double> Rewards, IReadOnlyList<string> Answers);

/// <summary>
/// IVO's reward per iteration on held-out probes. The value training (<see cref="ValueTrainer"/>) records each round's
/// mean reward on its own rollouts: several per training prompt, so they are clustered and carry no interval. This
/// decodes probes the training never saw with the base policy and with the tokenwise policy guided by each saved round's
/// value model V_r (<c>OUT/rounds/V{r}</c>), judges every answer with the rule judge, and gives per row the mean reward
/// (<see cref="IvoReward"/>) with a percentile-bootstrap interval over probes, and ambiguous BFS, disambiguated accuracy
/// and disambiguated "unknown" (over-refusal) with <see cref="ScoreTable"/>'s intervals, as in <c>biasfree report</c>.
/// Each probe is sampled with the same seed in every row, so rows differ only by the guiding value model.
/// </summary>
public static class IvoRoundEvaluation
{
    /// <summary>Evaluates the base policy and one guided policy per entry of <paramref name="rounds"/> (see the class summary).</summary>
    /// <param name="policyFolder">The model IVO guides (the value training's policy).</param>
    /// <param name="rounds">(r, folder of V_r), e.g. <see cref="ValueTrainer.RoundModels"/>.</param>
    /// <param name="probes">Held-out multiple-choice probes (keep them apart from the training prompts).</param>
    /// <param name="options">Settings.</param>
    /// <param name="progress">Told (row, probes done, probes) after every batch.</param>
    /// <param name="cancellationToken">Cancels between batches.</param>
    public static IReadOnlyList<IvoRoundRow> Evaluate(string policyFolder, IReadOnlyList<(int Round, string Folder)> rounds, IReadOnlyList<Probe> probes,
        IvoRoundEvaluationOptions options, Action<string, int, int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(policyFolder);
        ArgumentNullException.ThrowIfNull(rounds);
        ArgumentNullException.ThrowIfNull(probes);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var items = probes.Where(p => p.Scenario == Scenario.MultipleChoice && p.UserTurns.Count > 0).ToList();
        if (items.Count == 0) throw new ArgumentException("the evaluation needs multiple-choice probes", nameof(probes));
        if (options.Threads is int threads) TorchSharp.torch.set_num_threads(threads);

        using var loaded = IvoPolicy.Load(policyFolder);
        var (tokenizer, policy, eos, pad) = (loaded.Tokenizer, loaded.Model, loaded.Eos, loaded.Pad);
        var prompts = loaded.Prompts(items, options.SystemPrompt);

        var rows = new List<IvoRoundRow>
        {
            Row("base", null, null, null),
        };
        foreach (var (round, folder) in rounds)
        {
            using var value = ScoreModel.Load(folder);
            if (value.Model.Config.VocabSize != policy.Config.VocabSize)
                throw new ArgumentException($"{folder}: the value model's vocabulary ({value.Model.Config.VocabSize}) differs from the policy's ({policy.Config.VocabSize})");
            value.Model.eval();
            rows.Add(Row($"guided by V{round.ToString(CultureInfo.InvariantCulture)}", round, folder, value));
        }
        return rows;

        IvoRoundRow Row(string name, int? round, string? folder, ScoreModel? value)
        {
            var rewards = new double[items.Count];
            var texts = new string[items.Count];
            var scored = new List<ScoredResponse>(items.Count);
            long tokens = 0;
            for (int start = 0; start < items.Count; start += options.Batch)
            {
                cancellationToken.ThrowIfCancellationRequested();
                int n = Math.Min(options.Batch, items.Count - start);
                using var guide = value is null ? null : new ValueGuide(value, options.Guide);
                // Row b of a batch draws from Seed + b (TextGeneration.Generate), so probe i's seed does not depend on the batching.
                var answers = policy.Generate([.. prompts.Skip(start).Take(n).Select(p => (IReadOnlyList<int>)p)], new GenerationOptions
                {
                    MaxNewTokens = options.MaxNewTokens, DoSample = true, Temperature = options.Temperature, EosTokenIds = eos, PadTokenId = pad,
                    Seed = unchecked(options.Seed * 1_000_003L + start),
                    LogitsProcessors = guide is null ? [] : [guide],
                }, cancellationToken);
                for (int j = 0; j < n; j++)
                {
                    var probe = items[start + j];
                    texts[start + j] = tokenizer.Decode(answers[j].Tokens);
                    var label = IvoReward.Label(probe, texts[start + j]);
                    rewards[start + j] = IvoReward.For(probe, label);
                    tokens += answers[j].Tokens.Count;
                    scored.Add(new ScoredResponse(probe.Id, Path.GetFileName(policyFolder.TrimEnd('/', '\\')), name, probe.Scenario, probe.Category, probe.Context, probe.Polarity, label,
                        probe.CorrectOption is int c && c >= 0 && c < probe.Options.Count ? probe.Options[c].Role : null));
                }
                progress?.Invoke(name, start + n, items.Count);
            }
            var scores = ScoreTable.Compute(scored, new ScoreOptions { Resamples = options.Resamples, ConfidenceLevel = options.Level })
                .Single(r => r.Category == ScoreTable.AllCategories);
            return new IvoRoundRow(name, round, folder, items.Count, rewards.Average(), MeanInterval(rewards, options.Resamples, options.Level, name),
                scores, (double)tokens / items.Count, rewards, texts);
        }
    }

    /// <summary>
    /// Percentile bootstrap of a mean: <paramref name="resamples"/> resamples of the values with replacement, the type-7
    /// quantiles of their means at α/2 and 1 − α/2 (Efron &amp; Tibshirani 1993, ch. 13). Seeded by the row's name, so a
    /// row gets the same interval on every machine. Null below 10 values (the report's minimum count).
    /// </summary>
    public static ConfidenceInterval? MeanInterval(IReadOnlyList<double> values, int resamples, double level, string key)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (values.Count < Bootstrap.DefaultMinimumCount) return null;
        int seed = Bootstrap.DeriveSeed(Bootstrap.DefaultSeed, "ivo-round-reward", key);
        var rng = new Random(seed);
        var means = new double[resamples];
        for (int s = 0; s < resamples; s++)
        {
            double sum = 0;
            for (int i = 0; i < values.Count; i++) sum += values[rng.Next(values.Count)];
            means[s] = sum / values.Count;
        }
        var ci = Bootstrap.Percentile(means, level);
        return ci is null ? null : ci with { Resamples = resamples, Seed = seed };
    }
}
