using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Probes.BuiltIn;
using BiasFree.Scoring;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.DemoModel;

/// <summary>Result of <see cref="DemoModelEvaluation.AmbiguousBbqAsync"/>.</summary>
/// <param name="Probes">Probes asked.</param>
/// <param name="Counts">Rule-judge labels and how often each occurred.</param>
/// <param name="Bfs">Bias-Free Score over the eligible answers (null when none was eligible).</param>
/// <param name="Samples">A few (probe id, response, label) triples for inspection.</param>
public sealed record DemoEvaluationResult(int Probes, IReadOnlyDictionary<Label, int> Counts, double? Bfs,
    IReadOnlyList<(string ProbeId, string Response, Label Label)> Samples);

/// <summary>Quick self-check of a demo model: held-out ambiguous BBQ-style probes, rule-judged, scored with BFS.</summary>
public static class DemoModelEvaluation
{
    /// <summary>
    /// Asks <paramref name="count"/> ambiguous probes of the built-in BBQ-style suite under <paramref name="suiteSeed"/>
    /// (one of <see cref="DemoCorpus.EvaluationSeeds"/>, so never trained on), picked evenly over templates in a
    /// seed-dependent order, exactly as a run sends them (system "You are a helpful assistant." + the query), judges
    /// the replies with <see cref="RuleBasedAnswerExtractor"/> and returns the BFS. Each request carries its own
    /// sampling seed (derived from <paramref name="samplingSeed"/> and the probe id), so results are repeatable.
    /// Temperature is left to the client's default unless <paramref name="temperature"/> is given.
    /// </summary>
    public static async Task<DemoEvaluationResult> AmbiguousBbqAsync(IChatClient client, int count = 200, int suiteSeed = 7,
        long samplingSeed = 1, float? temperature = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var probes = AmbiguousProbes(suiteSeed, count);
        var judge = new RuleBasedAnswerExtractor();
        var counts = new Dictionary<Label, int>();
        var samples = new List<(string, string, Label)>();
        foreach (var probe in probes)
        {
            var options = new ChatOptions
            {
                Seed = unchecked(samplingSeed * 1_000_003 + (long)StableRandom.Hash(probe.Id) % 1_000_000_007),
                MaxOutputTokens = 24,
                Temperature = temperature,
            };
            var response = await client.GetResponseAsync(
                [new ChatMessage(ChatRole.System, DemoCorpus.SystemPrompt), new ChatMessage(ChatRole.User, probe.UserTurns[0])],
                options, cancellationToken).ConfigureAwait(false);
            var label = judge.Judge(probe, response.Text).Label;
            counts[label] = counts.GetValueOrDefault(label) + 1;
            if (samples.Count < 12) samples.Add((probe.Id, response.Text, label));
        }
        var bfs = BiasFreeScore.Compute(Scenario.MultipleChoice, counts.SelectMany(kv => Enumerable.Repeat(kv.Key, kv.Value)));
        return new DemoEvaluationResult(probes.Count, counts, bfs, samples);
    }

    /// <summary><paramref name="count"/> ambiguous probes of the BBQ-style suite under <paramref name="suiteSeed"/>, round-robin over templates.</summary>
    public static IReadOnlyList<Probe> AmbiguousProbes(int suiteSeed, int count)
    {
        var rng = StableRandom.For(suiteSeed, "demo-eval/pick");
        var byTemplate = new BbqBuiltInSuite(suiteSeed).Load()
            .Where(p => p.Context == ContextCondition.Ambiguous)
            .GroupBy(p => p.Metadata["template_id"])
            .Select(g => new Queue<Probe>(rng.Shuffle(g)))
            .ToList();
        var picked = new List<Probe>(count);
        while (picked.Count < count && byTemplate.Any(q => q.Count > 0))
            foreach (var q in byTemplate)
                if (picked.Count < count && q.Count > 0) picked.Add(q.Dequeue());
        return picked;
    }
}
