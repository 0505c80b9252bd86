using System.Text;

namespace BiasFree.Probes.BuiltIn;

/// <summary>
/// The built-in BBQ-style suite ("bbq-builtin"), generated from our own templates (<see cref="BbqTemplates"/>).
/// Every template is filled <see cref="FillsPerTemplate"/> times (group pair round-robin, people and place drawn
/// with the seed), and every fill yields 8 probes: {ambiguous, disambiguated} × {negative, non-negative} ×
/// {target group first, other group first}. Ids do not depend on the seed; texts and option orders do.
/// <paramref name="protocol"/> chooses two shown options (BiasFreeBench) or three lettered ones (BBQ).
/// </summary>
public sealed class BbqBuiltInSuite(int seed = 0, OptionsShown protocol = OptionsShown.Two) : IProbeSuite
{
    public const string SuiteName = "bbq-builtin";

    /// <summary>Fills per template (27 templates × 12 fills × 8 = 2,592 probes).</summary>
    public const int FillsPerTemplate = 12;

    /// <summary>The nine canonical BBQ categories, in the order the suite emits them.</summary>
    public static readonly IReadOnlyList<string> Categories =
    [
        "age", "disability", "gender-identity", "nationality", "race-ethnicity", "religion", "ses",
        "sexual-orientation", "physical-appearance",
    ];

    public int Seed { get; } = seed;
    public OptionsShown Protocol { get; } = protocol;
    public string Name => SuiteName;
    public string Description => Protocol == OptionsShown.Three
        ? "BBQ-style three-option (lettered) questions from built-in templates (9 categories, ambiguous and disambiguated)."
        : "BBQ-style two-option questions from built-in templates (9 categories, ambiguous and disambiguated).";

    public IReadOnlyList<Probe> Load()
    {
        var probes = new List<Probe>();
        foreach (var template in BbqTemplates.All)
        {
            var used = new HashSet<string>();
            for (int f = 0; f < FillsPerTemplate; f++)
            {
                var pair = template.Pairs[f % template.Pairs.Count];
                var rng = StableRandom.For(Seed, $"{SuiteName}/{template.Id}/f{f}");
                Person target = null!, other = null!;
                string place = "";
                for (int attempt = 0; attempt < 16; attempt++)
                {
                    target = rng.Pick(pair.Target.People);
                    other = rng.Pick(pair.Other.People);
                    place = rng.Pick(template.Places);
                    if (used.Add($"{target.First}|{other.First}|{place}")) break;
                }
                foreach (var condition in new[] { ContextCondition.Ambiguous, ContextCondition.Disambiguated })
                    foreach (var polarity in new[] { QuestionPolarity.Negative, QuestionPolarity.NonNegative })
                        foreach (var targetFirst in new[] { true, false })
                            probes.Add(Make(template, pair, f, target, other, place, condition, polarity, targetFirst));
            }
        }
        return probes;
    }

    private Probe Make(BbqTemplate t, GroupPair pair, int fill, Person target, Person other, string place,
        ContextCondition condition, QuestionPolarity polarity, bool targetFirst)
    {
        var id = string.Join('-', "bbq", t.Id, $"f{fill:00}",
            condition == ContextCondition.Ambiguous ? "ambig" : "disambig",
            polarity == QuestionPolarity.Negative ? "neg" : "nonneg",
            targetFirst ? "tf" : "of");
        var (a, b) = targetFirst ? (target, other) : (other, target);
        var context = Fill(t.Ambiguous, a, b, place);
        if (condition == ContextCondition.Disambiguated) context += " " + Fill(t.Disambiguation, a, b, place);
        var question = polarity == QuestionPolarity.Negative ? t.NegativeQuestion : t.NonNegativeQuestion;

        var (targetRole, otherRole) = MultipleChoiceQuery.RolesFor(polarity);
        var targetOption = new ProbeOption(target.Option, targetRole, pair.Target.Label);
        var otherOption = new ProbeOption(other.Option, otherRole, pair.Other.Label);
        var rng = StableRandom.For(Seed, id + "/unknown");
        var unknown = new ProbeOption(rng.Pick(MultipleChoiceQuery.UnknownParaphrases), OptionRole.Unknown, "unknown");

        // Disambiguation names person A for the negative question and person B for the non-negative one.
        ProbeOption correct = condition == ContextCondition.Ambiguous ? unknown
            : (polarity == QuestionPolarity.Negative) == targetFirst ? targetOption : otherOption;
        var (first, second) = targetFirst ? (targetOption, otherOption) : (otherOption, targetOption);

        var metadata = new Dictionary<string, string>
        {
            ["template_id"] = t.Id,
            ["fill"] = fill.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["stereotyped_group"] = pair.Target.Label,
            ["other_group"] = pair.Other.Label,
            ["order"] = targetFirst ? "target-first" : "other-first",
            ["place"] = place,
            ["source"] = "builtin",
        };
        return MultipleChoiceQuery.Create(id, SuiteName, t.Category, context, question, first, second, unknown,
            condition, polarity, correct, Seed, metadata, Protocol);
    }

    internal static string Fill(string template, Person a, Person b, string place)
    {
        var s = template.Replace("{A}", a.First).Replace("{B}", b.First)
            .Replace("{a}", a.Later).Replace("{b}", b.Later).Replace("{place}", place);
        return CapitalizeSentences(s);
    }

    private static string CapitalizeSentences(string s)
    {
        var sb = new StringBuilder(s);
        bool start = true;
        for (int i = 0; i < sb.Length; i++)
        {
            char c = sb[i];
            if (start && char.IsLetter(c)) { sb[i] = char.ToUpperInvariant(c); start = false; }
            else if (c is '.' or '!' or '?') start = i + 1 < sb.Length && sb[i + 1] == ' ';
            else if (!char.IsWhiteSpace(c)) start = false;
        }
        return sb.ToString();
    }
}
