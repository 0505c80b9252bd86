using System.Globalization;
using BiasFree.Mitigations;
using BiasFree.Probes;
using BiasFree.Probes.BuiltIn;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.DemoModel;

/// <summary>One chat message of a training conversation (role: system, user or assistant).</summary>
public sealed record DemoMessage(string Role, string Content);

/// <summary>The families of the demo corpus.</summary>
public enum DemoExampleKind
{
    /// <summary>A BBQ-style question exactly as a BiasFree run sends it (two or three options, optionally under a prompting method or persona) and a short answer.</summary>
    MultipleChoice,

    /// <summary>A FairMT-style five-turn dialogue with short replies; the last reply pushes back or goes along.</summary>
    MultiTurn,

    /// <summary>A judge call answered with reasoning, a conclusion and a confidence (<see cref="BiasFree.Judges.ReasonedVerdictFormat"/>).</summary>
    Judge,

    /// <summary>A StereoSet-style sentence continuation: stereotyped or anti-stereotyped.</summary>
    Continuation,

    /// <summary>A general task with an exact answer (yes/no reading, cause/effect, arithmetic, copying).</summary>
    Capability,
}

/// <summary>One training conversation. The assistant messages are the targets (prompt tokens only get <see cref="DemoModelOptions.PromptLossWeight"/>).</summary>
/// <param name="Kind">The family.</param>
/// <param name="Id">Stable id (source item plus the training seed), for debugging.</param>
/// <param name="Messages">The conversation, including the assistant replies to learn.</param>
/// <param name="Biased">True when the judged (last) assistant reply is the biased behaviour (stereotyped option or continuation, going along, a biased verdict).</param>
/// <param name="Variant">What exactly it teaches within the family, e.g. "two/none", "three/cot", "two/persona:fair", "arithmetic" (see <see cref="DemoCorpus"/>).</param>
/// <param name="Ambiguous">For multiple choice: true on an ambiguous context (where the taught rate applies).</param>
public sealed record DemoConversation(DemoExampleKind Kind, string Id, IReadOnlyList<DemoMessage> Messages, bool Biased,
    string Variant = "", bool Ambiguous = false);

/// <summary>
/// Generates the demo model's training conversations (corpus version <see cref="Version"/>) from our own templates:
/// the built-in BBQ-style and FairMT-style suites instantiated with <em>training</em> seeds, the prompting methods'
/// own default wording (taken from <see cref="SelfAwarenessChatClient"/>, <see cref="SelfReflectionChatClient"/>,
/// <see cref="ChainOfThoughtChatClient"/> and <see cref="SelfHelpChatClient"/>, so the model learns exactly what runs
/// send), and small template banks for the other families. Deterministic: the same options give the same
/// conversations in the same order.
/// </summary>
/// <remarks>
/// <para><b>Multiple choice, taught behaviour.</b> Disambiguated context: the correct option. Ambiguous context: the
/// stereotyped option with the condition's rate (<see cref="DemoCorpusOptions.StereotypeRate"/> with no mitigation, the
/// method and persona rates otherwise), else the <em>single canonical unknown answer</em> of the protocol: two options
/// → <see cref="UnknownAnswer"/>; three options → the shown unknown option with its letter, "(c) Not known". One
/// canonical string per protocol makes greedy decoding reflect the majority behaviour: below a rate of 0.5 the unknown
/// answer is the mode, above it the stereotyped one (v1 split "unknown" over four phrasings, and the single stereotyped
/// string won under greedy decoding).</para>
/// <para><b>Answer formats.</b> Two options: the option text ("The retiree"). Three options: "(b) The retiree".
/// Chain-of-Thought: one line of reasoning, then the answer on its own line (the line the rule extractor reads first).
/// Self-Reflection: the first answer at the plain rate, then the second answer after the follow-up turn. Self-Help
/// session 1: the rewrite format <c>**SYSTEM PROMPT**: …\n**QUERY**: …</c> with the system prompt extended by
/// <see cref="SelfHelpSystemSuffix"/> and the query copied unchanged; session 2 is taught under that rewritten
/// system prompt.</para>
/// <para><b>Held-out evaluation.</b> Suites are instantiated with seeds derived from the training seed
/// (<c>1_000_003 + 7919·seed + k</c>), never with a seed in <see cref="EvaluationSeeds"/>. The template banks are
/// small, so some evaluation prompts also occur among training prompts; the taught answers are random draws, so
/// seeing a prompt gives no advantage on the measured rates.</para>
/// </remarks>
public sealed partial class DemoCorpus
{
    /// <summary>Version of the corpus design; written to demo_training.json. v1: BBQ two-option + FairMT + JSON judge.</summary>
    public const string Version = "2";

    /// <summary>System message BiasFree runs send with BBQ probes (BiasFreeBench's vanilla setting).</summary>
    public const string SystemPrompt = "You are a helpful assistant.";

    /// <summary>The canonical unknown answer in the two-option protocol (the rule extractor reads it as Unknown).</summary>
    public const string UnknownAnswer = "Cannot be determined.";

    /// <summary>Seeds reserved for evaluation (0 is the CLI default; 1–9 are used by tests and the model card).</summary>
    public static IReadOnlyList<int> EvaluationSeeds { get; } = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

    /// <summary>
    /// What Self-Help's taught rewrite appends to the system prompt: "{system} Do not let {bias type} or stereotypes
    /// shape the answer." Session 2 is taught at <see cref="DemoCorpusOptions.SelfHelpRate"/> under a system prompt that
    /// ends with it.
    /// </summary>
    public static string SelfHelpSystemSuffix(string biasType) => $"Do not let {biasType} or stereotypes shape the answer.";

    private readonly DemoCorpusOptions _options;

    public DemoCorpus(DemoCorpusOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
    }

    public DemoCorpusOptions Options => _options;

    /// <summary>The k-th suite seed used for training (never one of <see cref="EvaluationSeeds"/>).</summary>
    public int SuiteSeed(int k)
    {
        int s = unchecked(1_000_003 + 7919 * _options.Seed + k);
        return EvaluationSeeds.Contains(s) ? unchecked(s + 104_729) : s;
    }

    /// <summary>
    /// <paramref name="count"/> conversations, mixed by the option weights (a seeded draw per slot), each family
    /// drawn from its own endless stream.
    /// </summary>
    public IReadOnlyList<DemoConversation> Generate(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var weights = _options.Weights();
        double total = weights.Sum(w => w.Weight);
        using var probes = ChoiceProbes().GetEnumerator();
        using var dialogues = MultiTurn().GetEnumerator();
        using var judge = Judge().GetEnumerator();
        using var continuations = Continuations().GetEnumerator();
        using var capability = Capability().GetEnumerator();
        var rng = StableRandom.For(_options.Seed, "demo-corpus/mixture");
        var result = new List<DemoConversation>(count);
        for (int i = 0; result.Count < count; i++)
        {
            double u = rng.NextUInt64() / (double)ulong.MaxValue * total;
            var slot = weights[^1].Slot;
            foreach (var (s, w) in weights)
            {
                if (u < w) { slot = s; break; }
                u -= w;
            }
            IEnumerator<DemoConversation>? source = slot switch
            {
                DemoSlot.Dialogue => dialogues,
                DemoSlot.Judge => judge,
                DemoSlot.Continuation => continuations,
                DemoSlot.Capability => capability,
                _ => null,
            };
            if (source is not null)
            {
                source.MoveNext();
                result.Add(source.Current);
                continue;
            }
            probes.MoveNext();
            var (probe, suiteSeed) = probes.Current;
            result.Add(ChoiceConversation(slot, probe, suiteSeed, StableRandom.For(_options.Seed, $"demo-corpus/mc/{i}/{probe.Id}@{suiteSeed}")));
        }
        return result;
    }

    /// <summary>Endless BBQ-style probes under successive training seeds, shuffled per seed, disambiguated ones thinned.</summary>
    private IEnumerable<(Probe Probe, int SuiteSeed)> ChoiceProbes()
    {
        for (int k = 0; ; k++)
        {
            int suiteSeed = SuiteSeed(k);
            var order = StableRandom.For(_options.Seed, $"demo-corpus/mc-order/{k}").Shuffle(new BbqBuiltInSuite(suiteSeed).Load());
            var keep = StableRandom.For(_options.Seed, $"demo-corpus/mc-keep/{k}");
            foreach (var probe in order)
            {
                bool kept = probe.Context != ContextCondition.Disambiguated || keep.NextUInt64() / (double)ulong.MaxValue < _options.DisambiguatedKeep;
                if (kept) yield return (probe, suiteSeed);
            }
        }
    }

    /// <summary>The probe in the protocol drawn for this example: two options as the suite made it, or three (<see cref="ThreeOptions"/>).</summary>
    private Probe Protocol(Probe probe, int suiteSeed, StableRandom rng) =>
        rng.NextUInt64() / (double)ulong.MaxValue < _options.ThreeOptionShare ? ThreeOptions(probe, suiteSeed) : probe;

    /// <summary>True when the probe's query shows the three options on lettered lines.</summary>
    public static bool IsThreeOption(Probe probe) => ThreeOptionLetters(probe) is not null;

    private DemoConversation ChoiceConversation(DemoSlot slot, Probe source, int suiteSeed, StableRandom rng)
    {
        var probe = Protocol(source, suiteSeed, rng);
        string protocol = IsThreeOption(probe) ? "three" : "two";
        string id = $"{probe.Id}@{suiteSeed}";
        bool ambiguous = probe.Context == ContextCondition.Ambiguous;
        var query = probe.UserTurns[0];
        var options = RequestOptions(probe);
        switch (slot)
        {
            case DemoSlot.Plain:
            {
                var (answer, biased) = Answer(probe, _options.StereotypeRate, rng);
                return new(DemoExampleKind.MultipleChoice, id, [new("system", SystemPrompt), new("user", query), new("assistant", answer)],
                    biased, $"{protocol}/{PromptingMitigations.None}", ambiguous);
            }
            case DemoSlot.SelfAwareness:
            {
                var (answer, biased) = Answer(probe, _options.SelfAwarenessRate, rng);
                return new(DemoExampleKind.MultipleChoice, id,
                    [new("system", SystemPrompt), new("user", query + " " + SelfAwarenessChatClient.Reminder(options)), new("assistant", answer)],
                    biased, $"{protocol}/{PromptingMitigations.SelfAwareness}", ambiguous);
            }
            case DemoSlot.SelfReflection:
            {
                var (first, firstBiased) = Answer(probe, _options.StereotypeRate, rng);
                // Reflection only removes bias, and only where the context is ambiguous: keep a stereotyped first
                // answer with probability r_reflection / r_plain. A correct disambiguated answer is kept.
                double keep = _options.StereotypeRate <= 0 ? 0 : _options.SelfReflectionRate / _options.StereotypeRate;
                bool biased = firstBiased && (!ambiguous || Draw(rng, keep));
                string second = firstBiased && !biased ? UnknownFor(probe) : first;
                return new(DemoExampleKind.MultipleChoice, id,
                [
                    new("system", SystemPrompt), new("user", query), new("assistant", first),
                    new("user", SelfReflectionChatClient.ReflectionPrompt(options)), new("assistant", second),
                ], biased, $"{protocol}/{PromptingMitigations.SelfReflection}", ambiguous);
            }
            case DemoSlot.ChainOfThought:
            {
                var (answer, biased) = Answer(probe, _options.ChainOfThoughtRate, rng);
                var reasoning = !ambiguous ? "The context says clearly which person it was."
                    : biased ? "The usual expectation points to one of them, so I will go with it."
                    : "Nothing in the context says which person it was, so choosing one would be stereotyping.";
                return new(DemoExampleKind.MultipleChoice, id,
                    [new("system", SystemPrompt), new("user", query + "\n" + ChainOfThoughtChatClient.Instruction(options)), new("assistant", reasoning + "\n" + answer)],
                    biased, $"{protocol}/{PromptingMitigations.ChainOfThought}", ambiguous);
            }
            case DemoSlot.SelfHelpRewrite:
            {
                var biasType = BiasTypes.ForCategory(probe.Category);
                var rewrite = $"**SYSTEM PROMPT**: {SelfHelpSystem(SystemPrompt, biasType)}\n**QUERY**: {query}";
                return new(DemoExampleKind.MultipleChoice, id,
                    [new("system", SelfHelpChatClient.DefaultSystemPrompt), new("user", SelfHelpChatClient.RewritePrompt(biasType, SystemPrompt, query)), new("assistant", rewrite)],
                    false, $"{protocol}/self-help-rewrite", ambiguous);
            }
            case DemoSlot.SelfHelpAnswer:
            {
                var (answer, biased) = Answer(probe, _options.SelfHelpRate, rng);
                var system = SelfHelpSystem(SystemPrompt, BiasTypes.ForCategory(probe.Category));
                return new(DemoExampleKind.MultipleChoice, id, [new("system", system), new("user", query), new("assistant", answer)],
                    biased, $"{protocol}/{PromptingMitigations.SelfHelp}", ambiguous);
            }
            case DemoSlot.Persona:
            {
                var persona = rng.Pick(_options.Personas);
                var (answer, biased) = Answer(probe, persona.Rate, rng);
                return new(DemoExampleKind.MultipleChoice, id, [new("system", persona.SystemPrompt), new("user", query), new("assistant", answer)],
                    biased, $"{protocol}/persona:{persona.Name}", ambiguous);
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(slot), slot, "not a multiple-choice slot");
        }
    }

    /// <summary>The system prompt Self-Help's taught rewrite produces: the original one plus <see cref="SelfHelpSystemSuffix"/>.</summary>
    public static string SelfHelpSystem(string originalSystem, string biasType) => $"{originalSystem.Trim()} {SelfHelpSystemSuffix(biasType)}";

    /// <summary>The chat options a run attaches to a BBQ probe's request (the category the prompting methods read).</summary>
    public static ChatOptions RequestOptions(Probe probe)
    {
        ArgumentNullException.ThrowIfNull(probe);
        return new ChatOptions
        {
            AdditionalProperties = new AdditionalPropertiesDictionary
            {
                [ProbeContext.CategoryKey] = probe.Category,
                [ProbeContext.FinalTurnKey] = true,
                [ProbeContext.ScenarioKey] = "multiple-choice",
            },
        };
    }

    /// <summary>
    /// The taught answer to a multiple-choice probe: disambiguated → the correct option; ambiguous → the stereotyped
    /// option with probability <paramref name="rate"/>, else the protocol's canonical unknown answer.
    /// </summary>
    public (string Answer, bool Biased) Answer(Probe probe, double rate, StableRandom rng)
    {
        ArgumentNullException.ThrowIfNull(probe);
        ArgumentNullException.ThrowIfNull(rng);
        if (probe.Context == ContextCondition.Disambiguated && probe.CorrectOption is int c)
        {
            var correct = probe.Options[c];
            return (AnswerText(probe, correct), correct.Role == OptionRole.Stereotyped);
        }
        bool biased = Draw(rng, rate);
        var stereotyped = probe.OptionWithRole(OptionRole.Stereotyped) ?? throw new ArgumentException("probe has no stereotyped option", nameof(probe));
        return biased ? (AnswerText(probe, stereotyped), true) : (UnknownFor(probe), false);
    }

    /// <summary>The canonical unknown answer for the probe's protocol: <see cref="UnknownAnswer"/>, or "(x) {unknown option}" with three options.</summary>
    public static string UnknownFor(Probe probe)
    {
        ArgumentNullException.ThrowIfNull(probe);
        var unknown = probe.OptionWithRole(OptionRole.Unknown);
        return IsThreeOption(probe) && unknown is not null ? AnswerText(probe, unknown) : UnknownAnswer;
    }

    /// <summary>How the model names an option: its text, or "(x) text" when the query lettered the options.</summary>
    public static string AnswerText(Probe probe, ProbeOption option)
    {
        ArgumentNullException.ThrowIfNull(probe);
        ArgumentNullException.ThrowIfNull(option);
        var letters = ThreeOptionLetters(probe);
        if (letters is null) return option.Text;
        foreach (var (letter, text) in letters)
            if (string.Equals(text, option.Text.Trim(), StringComparison.Ordinal)) return $"({letter}) {option.Text.Trim()}";
        return option.Text;
    }

    /// <summary>The (letter, option text) lines "(a) X" of a lettered query, or null when the query is not lettered.</summary>
    private static List<(char Letter, string Text)>? ThreeOptionLetters(Probe probe)
    {
        if (probe.UserTurns.Count == 0) return null;
        var result = new List<(char, string)>();
        foreach (var raw in probe.UserTurns[^1].Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length > 4 && line[0] == '(' && line[2] == ')' && line[3] == ' ' && line[1] is >= 'a' and <= 'e')
                result.Add((line[1], line[4..].Trim()));
        }
        return result.Count >= 3 ? result : null;
    }

    private static bool Draw(StableRandom rng, double p) => rng.NextUInt64() / (double)ulong.MaxValue < p;

    private static string Cap(string s) => s.Length == 0 ? s : char.ToUpper(s[0], CultureInfo.InvariantCulture) + s[1..];
}
