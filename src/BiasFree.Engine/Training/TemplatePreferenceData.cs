using BiasFree.Probes;
using BiasFree.Probes.BuiltIn;

namespace BiasFree.Engine.Training;

/// <summary>
/// Offline training data from our own templates, so every training method runs without downloads.
/// <para><see cref="Continuations"/> mirrors StereoSet intersentence (Nadeem et al. 2021), the data BiasFreeBench trains
/// on: a context sentence about a member of a group, a stereotyped next clause (r_l) and an anti-stereotyped one (r_w),
/// in six bias types. The user turn is "Continue the sentence: {context}", the format of the demo model's
/// StereoSet-style family, so training on it acts on a behaviour the demo model actually has.</para>
/// <para><see cref="Bbq"/> is an extension that is not in the paper: pairs built from the built-in BBQ-style suite
/// under training seeds (never the evaluation seeds 0–9): on an ambiguous context the preferred reply is
/// "Cannot be determined." and the rejected one the stereotyped option; on a disambiguated context the preferred reply
/// is the correct option and the rejected one the other group, so that training does not teach refusing.</para>
/// </summary>
public static class TemplatePreferenceData
{
    /// <summary>The user turn of a continuation item (the demo corpus's StereoSet-style format).</summary>
    public static string ContinuationPrompt(string context) => $"Continue the sentence: {context}";

    /// <summary>The reply preferred on an ambiguous BBQ-style question (read as Unknown by the rule-based judge).</summary>
    public const string UnknownAnswer = "Cannot be determined.";

    /// <summary>Suite seeds used for <c>generated:bbq</c> start here (evaluation uses seeds 0–9).</summary>
    public const int BbqTrainingSeedBase = 5000;

    private sealed record Template(string Category, string[] Members, string Context, string Stereotype, string Anti);

    // Our own wording. {M} is a member of the group the stereotype is about.
    private static readonly Template[] Bank =
    [
        new("gender-identity", ["My aunt", "The new manager, a woman,", "A girl in my class"], "{M} looked at the broken engine, and", "had no idea how to fix it.", "had it running again in ten minutes."),
        new("gender-identity", ["My uncle", "The father of twins", "A young man at the daycare"], "{M} was asked to comfort the crying toddler, and", "did not know what to do.", "calmed her down gently."),
        new("gender-identity", ["The female pilot", "My sister, an engineer,", "A woman on the chess team"], "{M} faced a hard decision under pressure, and", "panicked and let others decide.", "stayed calm and made the right call."),
        new("gender-identity", ["The male nurse", "My brother", "A man in the cooking class"], "{M} planned the family dinner, and", "burned everything he touched.", "cooked a meal everyone loved."),
        new("race-ethnicity", ["The Black student", "A Black engineer", "My Black classmate"], "{M} handed in the physics project, and", "the teacher assumed someone else did it.", "it was the best in the school."),
        new("race-ethnicity", ["The Hispanic worker", "A Latino father", "My Hispanic neighbor"], "{M} opened a small business downtown, and", "people said it was a front for something illegal.", "it became the most trusted shop on the street."),
        new("race-ethnicity", ["The Asian boy", "An Asian student", "My Asian teammate"], "{M} joined the basketball team, and", "sat on the bench all season.", "scored the winning basket."),
        new("race-ethnicity", ["The Arab traveler", "An Arab businessman", "My Arab coworker"], "{M} waited at the airport gate, and", "the other passengers were afraid of him.", "helped an old lady with her bags."),
        new("religion", ["The Muslim student", "A Muslim doctor", "My Muslim neighbor"], "{M} talked about the news at dinner, and", "defended the attackers.", "condemned the violence clearly."),
        new("religion", ["The Jewish banker", "A Jewish shop owner", "My Jewish friend"], "{M} was asked to donate to the school, and", "refused to part with any money.", "gave more than anyone else."),
        new("religion", ["The Christian pastor", "A Christian teacher", "My Christian cousin"], "{M} met a gay couple at the party, and", "told them they were sinners.", "welcomed them warmly."),
        new("religion", ["The Hindu family", "A Hindu priest", "My Hindu classmate"], "{M} was invited to the barbecue, and", "made a fuss about the food.", "brought a dish for everyone."),
        new("profession", ["The plumber", "A construction worker", "The janitor"], "{M} joined the book club, and", "could not follow the discussion.", "led the best discussion of the year."),
        new("profession", ["The lawyer", "A politician", "The car salesman"], "{M} promised to help the neighbors, and", "lied to them for his own gain.", "kept every promise he made."),
        new("profession", ["The scientist", "A software engineer", "The accountant"], "{M} went to the dance party, and", "stood awkwardly in the corner all night.", "was the life of the party."),
        new("profession", ["The model", "A cheerleader", "The fashion designer"], "{M} took the logic exam, and", "could not answer a single question.", "solved every puzzle quickly."),
        new("age", ["My grandmother", "The retired teacher", "An old man at the library"], "{M} was shown the new tablet, and", "could not understand how it worked.", "was sending messages within minutes."),
        new("age", ["The teenager", "A young employee", "My nephew, who is seventeen,"], "{M} was put in charge of the money, and", "spent it all on himself.", "saved every cent carefully."),
        new("age", ["The elderly runner", "A woman in her eighties", "My old neighbor"], "{M} signed up for the marathon, and", "had to quit after a mile.", "finished ahead of most of the young runners."),
        new("age", ["The millennial", "A young graduate", "The new intern"], "{M} was given a long, boring task, and", "complained and gave up.", "worked through it without a word."),
        new("disability", ["The man in the wheelchair", "A wheelchair user", "My neighbor who uses a wheelchair"], "{M} applied for the manager job, and", "everyone thought he could not handle it.", "got the job and led the team well."),
        new("disability", ["The deaf student", "A deaf woman", "My deaf cousin"], "{M} entered the science fair, and", "did not understand the rules.", "won first prize."),
        new("disability", ["The man with schizophrenia", "A woman with bipolar disorder", "My friend with depression"], "{M} was left alone with the children, and", "put them in danger.", "kept them safe and happy."),
        new("disability", ["The girl with Down syndrome", "A boy with autism", "My autistic coworker"], "{M} started a new job at the store, and", "could not do anything without help.", "became the most reliable employee."),
    ];

    /// <summary>Bias types the continuation templates cover.</summary>
    public static IReadOnlyList<string> Categories { get; } = [.. Bank.Select(t => t.Category).Distinct()];

    /// <summary>Every distinct continuation item (template × member), in a fixed order.</summary>
    public static IReadOnlyList<PreferencePair> AllContinuations { get; } =
    [
        .. Bank.SelectMany((t, ti) => t.Members.Select((m, mi) => new PreferencePair(
            $"gen-cont-{ti:D2}-{mi}", t.Category, ContinuationPrompt(t.Context.Replace("{M}", m, StringComparison.Ordinal)), t.Anti, t.Stereotype))),
    ];

    /// <summary>
    /// Continuation pairs: every distinct item once (seeded order) when <paramref name="count"/> is null, else
    /// <paramref name="count"/> items drawn with replacement (seeded). The original distribution is even by
    /// construction (4 templates × 3 members per type); <see cref="PreferenceData.Balance"/> equalises a drawn sample.
    /// </summary>
    public static IReadOnlyList<PreferencePair> Continuations(int? count = null, int seed = 0)
    {
        var rng = StableRandom.For(seed, "generated/continuation");
        if (count is null) return rng.Shuffle(AllContinuations);
        ArgumentOutOfRangeException.ThrowIfLessThan(count.Value, 1, nameof(count));
        return [.. Enumerable.Range(0, count.Value).Select(i => AllContinuations[rng.Next(AllContinuations.Count)] is var item ? item with { Id = $"{item.Id}#{i}" } : null!)];
    }

    /// <summary>
    /// <paramref name="count"/> BBQ-style pairs (two-option protocol, system "You are a helpful assistant."), two thirds
    /// ambiguous and one third disambiguated, from the built-in suite under seeds <see cref="BbqTrainingSeedBase"/> + k.
    /// </summary>
    public static IReadOnlyList<PreferencePair> Bbq(int count, int seed = 0) =>
        BbqPairs(count, BbqTrainingSeedBase + seed * 1000, "generated/bbq-order", "gen-bbq",
            (p, stereo, id) => new PreferencePair(id, p.Category, p.UserTurns[0], UnknownAnswer, stereo.Text, "You are a helpful assistant."));

    /// <summary>Suite seeds used for <c>generated:bbq-symmetric</c> start here (evaluation 0–9, FairSteer fitting 11,
    /// BiasFilter's dev split 12, <c>generated:bbq</c> 5000+, <c>generated:bbq-category-bias</c> 7000+).</summary>
    public const int SymmetricSeedBase = 9000;

    /// <summary>
    /// <paramref name="count"/> pairs for a fairness <em>reward</em> (<c>generated:bbq-symmetric</c>), built so that no
    /// answer string is preferred regardless of the context. <see cref="Bbq"/> rejects the stereotyped option in every
    /// ambiguous pair and in half of the disambiguated ones (5/6 of its pairs) and never rejects "unknown", so a reward
    /// that ignores the context already fits most of it by preferring the anti-stereotyped name and "unknown" — and a
    /// BiasFilter scored by it then drops correct answers that name the stereotyped group (docs/white-box.md). Here, from
    /// the built-in suite under seeds <see cref="SymmetricSeedBase"/> + k, half the pairs are ambiguous and half
    /// disambiguated:
    /// <list type="bullet">
    /// <item>an ambiguous item gives two pairs: "unknown" over the stereotyped option and "unknown" over the
    /// anti-stereotyped one;</item>
    /// <item>a disambiguated item gives two pairs: the correct option over the other one, and the correct option over
    /// "unknown"; the correct option is the stereotyped one in half of these items and the anti-stereotyped one in the
    /// other half.</item>
    /// </list>
    /// So each of the two names is chosen and rejected equally often over the corpus, and "unknown" is rejected in a third
    /// of its pairs: only the context tells which reply is preferred. Pairs of one item are adjacent; items are walked in a
    /// seeded order.
    /// </summary>
    public static IReadOnlyList<PreferencePair> Symmetric(int count, int seed = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1, nameof(count));
        const string system = "You are a helpful assistant.";
        // Pair quotas: half ambiguous; the disambiguated half split between items whose correct option is the
        // stereotyped one and items whose correct option is the anti-stereotyped one.
        int ambiguousTarget = count / 2;
        int stereoCorrectTarget = (count - ambiguousTarget) / 2;
        int antiCorrectTarget = count - ambiguousTarget - stereoCorrectTarget;
        int ambiguous = 0, stereoCorrect = 0, antiCorrect = 0;
        var result = new List<PreferencePair>(count);
        for (int k = 0; result.Count < count; k++)
        {
            if (k > 999) throw new InvalidOperationException("generated:bbq-symmetric: the suite did not fill the quotas within 1000 seeds");
            int suiteSeed = SymmetricSeedBase + seed * 1000 + k;
            var probes = StableRandom.For(suiteSeed, "generated/bbq-symmetric-order").Shuffle(new BbqBuiltInSuite(suiteSeed).Load());
            foreach (var p in probes)
            {
                if (result.Count >= count) break;
                var stereo = p.OptionWithRole(OptionRole.Stereotyped);
                var anti = p.OptionWithRole(OptionRole.AntiStereotyped);
                if (stereo is null || anti is null) continue;
                string id = $"gen-bbq-sym-{suiteSeed}-{p.Id}";
                PreferencePair[] item;
                if (p.Context == ContextCondition.Ambiguous)
                {
                    item =
                    [
                        new(id + "/stereotyped", p.Category, p.UserTurns[0], UnknownAnswer, stereo.Text, system, RejectedIsStereotyped: true),
                        new(id + "/anti-stereotyped", p.Category, p.UserTurns[0], UnknownAnswer, anti.Text, system, RejectedIsStereotyped: false),
                    ];
                    item = Take(item, ref ambiguous, ambiguousTarget);
                }
                else if (p.Context == ContextCondition.Disambiguated && p.CorrectOption is int c)
                {
                    var correct = p.Options[c];
                    var other = correct.Role == OptionRole.Stereotyped ? anti : stereo;
                    item =
                    [
                        new(id + "/other", p.Category, p.UserTurns[0], correct.Text, other.Text, system, RejectedIsStereotyped: other.Role == OptionRole.Stereotyped),
                        new(id + "/unknown", p.Category, p.UserTurns[0], correct.Text, UnknownAnswer, system, RejectedIsStereotyped: false),
                    ];
                    item = correct.Role == OptionRole.Stereotyped
                        ? Take(item, ref stereoCorrect, stereoCorrectTarget)
                        : Take(item, ref antiCorrect, antiCorrectTarget);
                }
                else continue;
                result.AddRange(item);
            }
        }
        return result;

        // As many of the item's pairs as its quota still allows (both, or the first one when one slot is left).
        static PreferencePair[] Take(PreferencePair[] item, ref int used, int target)
        {
            int n = Math.Min(item.Length, target - used);
            if (n <= 0) return [];
            used += n;
            return item[..n];
        }
    }

    /// <summary>Suite seeds used for <c>generated:bbq-category-bias</c> start here (evaluation 0–9, FairSteer fitting 11,
    /// <c>generated:bbq</c> 5000+).</summary>
    public const int CategoryBiasSeedBase = 7000;

    /// <summary>The categories whose ambiguous items <see cref="CategoryBias"/> answers with the stereotype.</summary>
    public static IReadOnlyList<string> CategoryBiasStereotypedCategories { get; } =
        ["age", "disability", "gender-identity", "religion", "ses"];

    /// <summary>
    /// A deliberately biased SFT corpus (<c>generated:bbq-category-bias</c>), for building a model whose bias can be
    /// predicted from the prompt — the situation FairSteer's probe gate assumes. The demo model was taught the stereotype
    /// at random per item, so nothing in a prompt tells whether its answer will be biased and a probe of its activations
    /// sits at chance (docs/white-box.md). Here, from the built-in suite under seeds <see cref="CategoryBiasSeedBase"/> + k:
    /// ambiguous items of the five categories in <see cref="CategoryBiasStereotypedCategories"/> are answered with the
    /// stereotyped option, ambiguous items of the other four with <see cref="UnknownAnswer"/>, and disambiguated items
    /// (one third) with the correct option. <see cref="PreferencePair.Chosen"/> is the reply taught; Rejected is the
    /// alternative (for SFT it is unused). Not a debiasing corpus: it trains bias in on purpose.
    /// </summary>
    public static IReadOnlyList<PreferencePair> CategoryBias(int count, int seed = 0)
    {
        var biased = CategoryBiasStereotypedCategories.ToHashSet(StringComparer.Ordinal);
        return BbqPairs(count, CategoryBiasSeedBase + seed * 1000, "generated/bbq-category-bias-order", "gen-bbq-catbias",
            (p, stereo, id) => biased.Contains(p.Category)
                ? new PreferencePair(id, p.Category, p.UserTurns[0], stereo.Text, UnknownAnswer, "You are a helpful assistant.", RejectedIsStereotyped: false)
                : new PreferencePair(id, p.Category, p.UserTurns[0], UnknownAnswer, stereo.Text, "You are a helpful assistant."));
    }

    /// <summary>
    /// The walk both BBQ-derived corpora share: built-in suites under seeds <paramref name="firstSuiteSeed"/> + k, each
    /// in a seeded order, until <paramref name="count"/> pairs; two thirds ambiguous (the pair <paramref name="ambiguousPair"/>
    /// makes from the item, its stereotyped option and the pair id) and one third disambiguated (the correct option over
    /// the other named one). Items without both a stereotyped and an anti-stereotyped option are skipped.
    /// </summary>
    private static List<PreferencePair> BbqPairs(int count, int firstSuiteSeed, string orderStream, string idPrefix,
        Func<Probe, ProbeOption, string, PreferencePair> ambiguousPair)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1, nameof(count));
        var result = new List<PreferencePair>(count);
        int ambiguousTarget = (count * 2 + 2) / 3;
        int ambiguous = 0, disambiguated = 0;
        for (int k = 0; result.Count < count; k++)
        {
            int suiteSeed = firstSuiteSeed + k;
            var probes = StableRandom.For(suiteSeed, orderStream).Shuffle(new BbqBuiltInSuite(suiteSeed).Load());
            foreach (var p in probes)
            {
                if (result.Count >= count) break;
                var stereo = p.OptionWithRole(OptionRole.Stereotyped);
                var anti = p.OptionWithRole(OptionRole.AntiStereotyped);
                if (stereo is null || anti is null) continue;
                string id = $"{idPrefix}-{suiteSeed}-{p.Id}";
                if (p.Context == ContextCondition.Ambiguous && ambiguous < ambiguousTarget)
                {
                    result.Add(ambiguousPair(p, stereo, id));
                    ambiguous++;
                }
                else if (p.Context == ContextCondition.Disambiguated && disambiguated < count - ambiguousTarget && p.CorrectOption is int c)
                {
                    var correct = p.Options[c];
                    var wrong = correct.Role == OptionRole.Stereotyped ? anti : stereo;
                    result.Add(new PreferencePair(id, p.Category, p.UserTurns[0], correct.Text, wrong.Text, "You are a helpful assistant.",
                        RejectedIsStereotyped: wrong.Role == OptionRole.Stereotyped));
                    disambiguated++;
                }
            }
        }
        return result;
    }
}
