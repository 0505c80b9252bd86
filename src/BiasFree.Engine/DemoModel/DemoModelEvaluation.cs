using BiasFree.Judges;
using BiasFree.Mitigations;
using BiasFree.Targets;
using BiasFree.Probes;
using BiasFree.Probes.BuiltIn;
using BiasFree.Runs;
using BiasFree.Scoring;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.DemoModel;

/// <summary>One multiple-choice condition measured on held-out ambiguous probes.</summary>
/// <param name="Condition">"none", a prompting method, or "persona:{name}".</param>
/// <param name="Protocol">"two" or "three" options.</param>
/// <param name="Taught">The taught stereotype rate of the condition.</param>
/// <param name="Counts">Rule-judge labels.</param>
/// <param name="StereotypeRate">Biased answers among eligible ones (biased, anti-stereotyped, unknown) = 1 − BFS.</param>
/// <param name="FormatOk">Condition-specific format check (Self-Help: rewrites parsed without fallback; CoT: a reasoning line before the answer line), null where none applies.</param>
/// <param name="Samples">A few (probe id, response, label) triples.</param>
public sealed record ChoiceMeasurement(string Condition, string Protocol, double Taught, IReadOnlyDictionary<Label, int> Counts,
    Proportion StereotypeRate, Proportion? FormatOk, IReadOnlyList<(string ProbeId, string Response, Label Label)> Samples)
{
    /// <summary>Bias-Free Score = 1 − stereotype rate (BiasFreeBench's BFS on ambiguous multiple choice).</summary>
    public Proportion Bfs => new(StereotypeRate.Trials - StereotypeRate.Hits, StereotypeRate.Trials);

    public int Probes => Counts.Values.Sum();
}

/// <summary>One non-multiple-choice family measured on held-out items.</summary>
/// <param name="Family">e.g. "dialogue go-along", "continuation", "judge", "capability: arithmetic".</param>
/// <param name="Measure">What the proportion counts.</param>
/// <param name="Taught">The taught value.</param>
/// <param name="Measured">The measured proportion.</param>
/// <param name="Other">Replies that matched none of the taught forms (out of all items).</param>
/// <param name="Samples">A few (item id, response) pairs.</param>
public sealed record FamilyMeasurement(string Family, string Measure, double Taught, Proportion Measured, Proportion Other,
    IReadOnlyList<(string Id, string Response)> Samples);

/// <summary>Result of <see cref="DemoModelEvaluation.AmbiguousBbqAsync"/>.</summary>
public sealed record DemoEvaluationResult(int Probes, IReadOnlyDictionary<Label, int> Counts, double? Bfs,
    IReadOnlyList<(string ProbeId, string Response, Label Label)> Samples);

/// <summary>
/// Measures what the demo model was taught, family by family, on held-out prompts (suite seeds from
/// <see cref="DemoCorpus.EvaluationSeeds"/>, capability/judge items from other streams), through the real code paths:
/// BBQ-style probes go through the real prompting wrappers (<see cref="PromptingMitigations.Apply(Microsoft.Extensions.AI.IChatClient, string)"/>) and are judged by
/// <see cref="RuleBasedAnswerExtractor"/>. Every request carries its own sampling seed derived from the sampling seed and
/// the item id, so results repeat exactly.
/// </summary>
public static class DemoModelEvaluation
{
    /// <summary>Requests in flight at once (the engine batches concurrent requests).</summary>
    private const int Concurrency = 16;

    /// <summary>Ambiguous BBQ-style probes, no mitigation, two options: the v1 check, kept for the main-job figure.</summary>
    public static async Task<DemoEvaluationResult> AmbiguousBbqAsync(IChatClient client, int count = 200, int suiteSeed = 7,
        long samplingSeed = 1, float? temperature = null, CancellationToken cancellationToken = default)
    {
        var m = await ChoiceAsync(client, PromptingMitigations.None, "two", 0.4, count, suiteSeed, samplingSeed, temperature, cancellationToken).ConfigureAwait(false);
        var bfs = BiasFreeScore.Compute(Scenario.MultipleChoice, m.Counts.SelectMany(kv => Enumerable.Repeat(kv.Key, kv.Value)));
        return new DemoEvaluationResult(m.Probes, m.Counts, bfs, m.Samples);
    }

    /// <summary>The taught stereotype rate of a condition ("none", a method name, or "persona:{name}").</summary>
    public static double TaughtRate(DemoCorpusOptions taught, string condition)
    {
        ArgumentNullException.ThrowIfNull(taught);
        if (condition.StartsWith("persona:", StringComparison.Ordinal))
            return taught.Personas.First(p => p.Name == condition["persona:".Length..]).Rate;
        return PromptingMitigations.Normalize(condition) switch
        {
            PromptingMitigations.SelfAwareness => taught.SelfAwarenessRate,
            PromptingMitigations.SelfReflection => taught.SelfReflectionRate,
            PromptingMitigations.SelfHelp => taught.SelfHelpRate,
            PromptingMitigations.ChainOfThought => taught.ChainOfThoughtRate,
            _ => taught.StereotypeRate,
        };
    }

    /// <summary>
    /// Asks <paramref name="count"/> held-out ambiguous probes under a condition: a prompting method (through its real
    /// wrapper) or a persona (its system prompt instead of "You are a helpful assistant."), in the two- or three-option protocol.
    /// </summary>
    public static async Task<ChoiceMeasurement> ChoiceAsync(IChatClient client, string condition, string protocol, double taught,
        int count, int suiteSeed, long samplingSeed, float? temperature, CancellationToken cancellationToken = default,
        IReadOnlyList<DemoPersona>? personas = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        string system = DemoCorpus.SystemPrompt;
        IChatClient target = client;
        if (condition.StartsWith("persona:", StringComparison.Ordinal))
        {
            var name = condition["persona:".Length..];
            system = (personas ?? new DemoCorpusOptions().Personas).FirstOrDefault(p => p.Name == name)?.SystemPrompt
                     ?? throw new ArgumentException($"unknown persona '{name}'", nameof(condition));
        }
        // Every inner request gets its own seed, derived from the probe's seed and the request's messages, as in a run
        // (PerRequestSeedChatClient). A method that asks twice (Self-Reflection) would otherwise sample its second
        // answer with the same random numbers as its first: the same uniforms pick the same region of two similar
        // distributions, so the second answer tracks the first and the method looks as if it changed nothing.
        else target = PromptingMitigations.Apply(new PerRequestSeedChatClient(client), condition);

        var probes = AmbiguousProbes(suiteSeed, count).Select(p => protocol == "three" ? DemoCorpus.ThreeOptions(p, suiteSeed) : p).ToList();
        var judge = new RuleBasedAnswerExtractor();
        var results = await ForEachAsync(probes, async (probe, ct) =>
        {
            var options = DemoCorpus.RequestOptions(probe);
            options.Seed = RequestSeed(samplingSeed, probe.Id);
            options.Temperature = temperature;
            options.MaxOutputTokens = 128; // what runs use by default (BiasFreeBench: 128), so the Self-Help rewrite must fit as it would there
            var response = await target.GetResponseAsync(
                [new ChatMessage(ChatRole.System, system), new ChatMessage(ChatRole.User, probe.UserTurns[0])], options, ct).ConfigureAwait(false);
            var transcript = response.AdditionalProperties?.TryGetValue(PromptingMitigationChatClient.TranscriptKey, out var t) == true ? t as string : null;
            bool? formatOk = PromptingMitigations.Normalize(condition.StartsWith("persona:", StringComparison.Ordinal) ? "none" : condition) switch
            {
                PromptingMitigations.SelfHelp => transcript is not null && !transcript.Contains("## fallback", StringComparison.Ordinal),
                PromptingMitigations.ChainOfThought => transcript is not null && ReasoningThenAnswer(transcript),
                _ => null,
            };
            return (probe.Id, response.Text, judge.Judge(probe, response.Text).Label, formatOk);
        }, cancellationToken).ConfigureAwait(false);

        var counts = results.GroupBy(r => r.Label).ToDictionary(g => g.Key, g => g.Count());
        int biased = counts.GetValueOrDefault(Label.Biased);
        int eligible = results.Count(r => BiasFreeScore.IsEligible(Scenario.MultipleChoice, r.Label));
        var checks = results.Where(r => r.formatOk is not null).ToList();
        Proportion? format = checks.Count == 0 ? null : new(checks.Count(r => r.formatOk == true), checks.Count);
        return new ChoiceMeasurement(condition, protocol, taught, counts, new Proportion(biased, eligible), format,
            [.. results.Take(8).Select(r => (r.Id, r.Text, r.Label))]);
    }

    /// <summary>True when CoT's full reply (in the transcript) has at least one line of reasoning before the final line.</summary>
    private static bool ReasoningThenAnswer(string transcript)
    {
        int i = transcript.LastIndexOf("[assistant] ", StringComparison.Ordinal);
        if (i < 0) return false;
        var reply = transcript[(i + "[assistant] ".Length)..];
        return reply.Split('\n').Count(l => l.Trim().Length > 0) >= 2;
    }

    /// <summary>Disambiguated two-option probes, no mitigation: the share answered with the correct option.</summary>
    public static async Task<Proportion> DisambiguatedAccuracyAsync(IChatClient client, int count, int suiteSeed, long samplingSeed,
        float? temperature, CancellationToken cancellationToken = default)
    {
        var probes = Probes(suiteSeed, count, ContextCondition.Disambiguated);
        var judge = new RuleBasedAnswerExtractor();
        var ok = await ForEachAsync(probes, async (probe, ct) =>
        {
            var options = DemoCorpus.RequestOptions(probe);
            options.Seed = RequestSeed(samplingSeed, probe.Id);
            options.Temperature = temperature;
            options.MaxOutputTokens = 24;
            var r = await client.GetResponseAsync(
                [new ChatMessage(ChatRole.System, DemoCorpus.SystemPrompt), new ChatMessage(ChatRole.User, probe.UserTurns[0])], options, ct).ConfigureAwait(false);
            var correct = probe.Options[probe.CorrectOption!.Value];
            var label = judge.Judge(probe, r.Text).Label;
            return label == (correct.Role == OptionRole.Stereotyped ? Label.Biased : Label.AntiStereotyped);
        }, cancellationToken).ConfigureAwait(false);
        return new Proportion(ok.Count(x => x), ok.Count);
    }

    /// <summary>
    /// FairMT-style dialogues of the built-in suite under <paramref name="suiteSeed"/>, run turn by turn with the model's
    /// own replies (as a run does); the final reply is read by its opening: one of <see cref="DemoCorpus.GoAlongOpenings"/>
    /// (goes along), <see cref="DemoCorpus.PushBackOpenings"/> (pushes back), or other. Rate = go-along / (go-along + push-back).
    /// </summary>
    public static async Task<FamilyMeasurement> DialogueAsync(IChatClient client, double taught, int count, int suiteSeed, long samplingSeed,
        float? temperature, CancellationToken cancellationToken = default)
    {
        var rng = StableRandom.For(suiteSeed, "demo-eval/dialogues");
        var probes = rng.Shuffle(new FairMTBuiltInSuite(suiteSeed).Load()).Take(count).ToList();
        var replies = await ForEachAsync(probes, async (probe, ct) =>
        {
            var history = new List<ChatMessage> { new(ChatRole.System, EvaluationRunner.MultiTurnSystemPrompt) };
            string reply = "";
            for (int t = 0; t < probe.UserTurns.Count; t++)
            {
                history.Add(new ChatMessage(ChatRole.User, probe.UserTurns[t]));
                var options = new ChatOptions { Seed = RequestSeed(samplingSeed, $"{probe.Id}/{t}"), Temperature = temperature, MaxOutputTokens = 48 };
                reply = (await client.GetResponseAsync(history, options, ct).ConfigureAwait(false)).Text;
                history.Add(new ChatMessage(ChatRole.Assistant, reply));
            }
            return (probe.Id, reply);
        }, cancellationToken).ConfigureAwait(false);
        int along = replies.Count(r => DemoCorpus.GoAlongOpenings.Any(o => r.reply.TrimStart().StartsWith(o, StringComparison.Ordinal)));
        int back = replies.Count(r => DemoCorpus.PushBackOpenings.Any(o => r.reply.TrimStart().StartsWith(o, StringComparison.Ordinal)));
        return new FamilyMeasurement("dialogue (FairMT-style)", "final reply goes along", taught, new Proportion(along, along + back),
            new Proportion(replies.Count - along - back, replies.Count), [.. replies.Take(6)]);
    }

    /// <summary>StereoSet-style continuations: share of stereotyped continuations among stereotyped + anti-stereotyped ones.</summary>
    public static async Task<FamilyMeasurement> ContinuationAsync(IChatClient client, double taught, int count, long samplingSeed,
        float? temperature, CancellationToken cancellationToken = default)
    {
        var items = Enumerable.Range(0, count).Select(i => (i, item: DemoCorpus.ContinuationItems[i % DemoCorpus.ContinuationItems.Count])).ToList();
        var replies = await ForEachAsync(items, async (x, ct) =>
        {
            var options = new ChatOptions { Seed = RequestSeed(samplingSeed, $"{x.item.Id}/{x.i}"), Temperature = temperature, MaxOutputTokens = 24 };
            var r = await client.GetResponseAsync([new ChatMessage(ChatRole.User, x.item.Prompt)], options, ct).ConfigureAwait(false);
            return (x.item, text: r.Text.Trim());
        }, cancellationToken).ConfigureAwait(false);
        int stereo = replies.Count(r => r.text == r.item.Stereotype);
        int anti = replies.Count(r => r.text == r.item.AntiStereotype);
        return new FamilyMeasurement("continuation (StereoSet-style)", "stereotyped continuation", taught, new Proportion(stereo, stereo + anti),
            new Proportion(replies.Count - stereo - anti, replies.Count), [.. replies.Take(6).Select(r => (r.item.Id, r.text))]);
    }

    /// <summary>Reasoned judge examples (held-out draws): share whose parsed conclusion equals the gold label; "other" = no parseable conclusion.</summary>
    public static async Task<FamilyMeasurement> JudgeAsync(IChatClient client, int count, int itemSeed, long samplingSeed,
        float? temperature, CancellationToken cancellationToken = default)
    {
        var items = new DemoCorpus(new DemoCorpusOptions { Seed = itemSeed }).JudgeItems(stream: 1).Take(count).ToList();
        var replies = await ForEachAsync(items, async (x, ct) =>
        {
            var options = new ChatOptions { Seed = RequestSeed(samplingSeed, x.Id), Temperature = temperature, MaxOutputTokens = 64 };
            var r = await client.GetResponseAsync(
                [new ChatMessage(ChatRole.System, DemoCorpus.JudgeSystemPrompt), new ChatMessage(ChatRole.User, DemoCorpus.JudgePrompt(x.Statement, x.Reply))],
                options, ct).ConfigureAwait(false);
            return (x.Id, x.Gold, text: r.Text, verdict: ReasonedVerdictFormat.TryParse(r.Text));
        }, cancellationToken).ConfigureAwait(false);
        int correct = replies.Count(r => r.verdict?.Label == r.Gold);
        int unparsed = replies.Count(r => r.verdict is null);
        return new FamilyMeasurement("judge (reasoned verdict)", "conclusion equals gold label", 1.0, new Proportion(correct, replies.Count),
            new Proportion(unparsed, replies.Count), [.. replies.Take(4).Select(r => (r.Id, r.text))]);
    }

    /// <summary>General capability: exact-match accuracy per task on held-out draws (trimmed; case-sensitive).</summary>
    public static async Task<IReadOnlyList<FamilyMeasurement>> CapabilityAsync(IChatClient client, int countPerTask, int itemSeed, long samplingSeed,
        float? temperature, CancellationToken cancellationToken = default)
    {
        var items = new DemoCorpus(new DemoCorpusOptions { Seed = itemSeed }).CapabilityItems(stream: 1).Take(countPerTask * DemoCorpus.CapabilityTasks.Count).ToList();
        var replies = await ForEachAsync(items, async (x, ct) =>
        {
            var options = new ChatOptions { Seed = RequestSeed(samplingSeed, x.Id), Temperature = temperature, MaxOutputTokens = 32 };
            var r = await client.GetResponseAsync([new ChatMessage(ChatRole.User, x.Prompt)], options, ct).ConfigureAwait(false);
            return (x, text: r.Text.Trim());
        }, cancellationToken).ConfigureAwait(false);
        return
        [
            .. DemoCorpus.CapabilityTasks.Select(task =>
            {
                var rows = replies.Where(r => r.x.Task == task).ToList();
                int ok = rows.Count(r => r.text == r.x.Answer);
                return new FamilyMeasurement($"capability: {task}", "exact answer", 1.0, new Proportion(ok, rows.Count),
                    new Proportion(rows.Count - ok, rows.Count), [.. rows.Take(3).Select(r => (r.x.Id, r.text))]);
            }),
        ];
    }

    /// <summary>The sampling seed of one request: a hash of the run's sampling seed and the item id.</summary>
    public static long RequestSeed(long samplingSeed, string id) =>
        unchecked(samplingSeed * 1_000_003 + (long)(StableRandom.Hash(id) % 1_000_000_007));

    /// <summary><paramref name="count"/> ambiguous probes of the BBQ-style suite under <paramref name="suiteSeed"/>, round-robin over templates.</summary>
    public static IReadOnlyList<Probe> AmbiguousProbes(int suiteSeed, int count) => Probes(suiteSeed, count, ContextCondition.Ambiguous);

    private static List<Probe> Probes(int suiteSeed, int count, ContextCondition condition)
    {
        var rng = StableRandom.For(suiteSeed, condition == ContextCondition.Ambiguous ? "demo-eval/pick" : "demo-eval/pick-disambig");
        var byTemplate = new BbqBuiltInSuite(suiteSeed).Load()
            .Where(p => p.Context == condition)
            .GroupBy(p => p.Metadata["template_id"])
            .Select(g => new Queue<Probe>(rng.Shuffle(g)))
            .ToList();
        var picked = new List<Probe>(count);
        while (picked.Count < count && byTemplate.Any(q => q.Count > 0))
            foreach (var q in byTemplate)
                if (picked.Count < count && q.Count > 0) picked.Add(q.Dequeue());
        return picked;
    }

    /// <summary>Runs <paramref name="work"/> over the items with up to <see cref="Concurrency"/> in flight; results in item order.</summary>
    private static async Task<List<TResult>> ForEachAsync<TItem, TResult>(IReadOnlyList<TItem> items,
        Func<TItem, CancellationToken, Task<TResult>> work, CancellationToken cancellationToken)
    {
        using var gate = new SemaphoreSlim(Concurrency);
        var tasks = items.Select(async item =>
        {
            await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try { return await work(item, cancellationToken).ConfigureAwait(false); }
            finally { gate.Release(); }
        }).ToList();
        return [.. await Task.WhenAll(tasks).ConfigureAwait(false)];
    }
}
