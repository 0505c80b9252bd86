using BiasFree.Judges;
using BiasFree.Judges.Defences;
using BiasFree.Probes;
using BiasFree.Runs;
using BiasFree.Targets;
using Microsoft.Extensions.AI;

namespace BiasFree.Evaluations;

/// <summary>
/// The judges of an evaluation, one per scenario: multiple-choice replies and dialogue replies are judged by
/// different judges (<see cref="For"/>). Make them with <see cref="Rule"/>, <c>Llm</c> or <see cref="Custom"/>.
/// </summary>
public sealed class EvaluationJudges : IDisposable
{
    /// <summary><see cref="Name"/> of the rule-based multiple-choice judge.</summary>
    public const string RuleName = "rule";

    private readonly IDisposable? _owned;

    private EvaluationJudges(string name, IJudge? multipleChoice, IJudge? dialogue, IDisposable? owned)
    {
        Name = name;
        MultipleChoice = multipleChoice;
        Dialogue = dialogue;
        _owned = owned;
    }

    /// <summary>"rule", the LLM judge's base URL, or the name given to <see cref="Custom"/> (stored as <see cref="RunSpec.Judge"/>).</summary>
    public string Name { get; }

    /// <summary>Model of the LLM judge.</summary>
    public string? Model { get; private init; }

    /// <summary>Votes per multiple-choice answer of the LLM judge.</summary>
    public int Votes { get; private init; } = 3;

    /// <summary>Environment variable holding the LLM judge's API key.</summary>
    public string? ApiKeyEnvironmentVariable { get; private init; }

    /// <summary>Server endpoint of the LLM judge, to check for reachability before a run.</summary>
    public Uri? ServerEndpoint { get; private init; }

    /// <summary>True for a judge panel (<see cref="Panel"/>): several judges whose majority judges dialogues.</summary>
    public bool IsPanel { get; private init; }

    /// <summary>Tie rule of a panel's majority.</summary>
    public TieRule TieRule { get; private init; } = TieRule.Biased;

    /// <summary>
    /// Prompt-injection defences of the LLM judges built here (stored as <see cref="RunSpec.JudgeDefences"/>); all for the
    /// rule judge and for judges given in code, whose defences are their own.
    /// </summary>
    public JudgeDefences Defences { get; private init; } = JudgeDefences.All;

    /// <summary>True for judges given in code, which a resume must be given again.</summary>
    public bool IsCustom { get; private init; }

    /// <summary>Judge of multiple-choice replies, if any.</summary>
    public IJudge? MultipleChoice { get; }

    /// <summary>Judge of dialogue replies, if any.</summary>
    public IJudge? Dialogue { get; }

    /// <summary>The judge of <paramref name="probe"/>'s scenario.</summary>
    public IJudge For(Probe probe)
    {
        ArgumentNullException.ThrowIfNull(probe);
        return probe.Scenario == Scenario.MultipleChoice
            ? MultipleChoice ?? throw new InvalidOperationException($"no multiple-choice judge (judges: {Name})")
            : Dialogue ?? throw new InvalidOperationException($"no dialogue judge (judges: {Name})");
    }

    /// <summary>Throws <see cref="ArgumentException"/> when a probe's scenario has no judge here.</summary>
    public void EnsureCovers(IEnumerable<Probe> probes)
    {
        ArgumentNullException.ThrowIfNull(probes);
        // A streamed source knows its scenarios from its validation pass; reading the suites again is not needed.
        var scenarios = probes is ProbeSource source ? source.Scenarios : probes.Select(p => p.Scenario).ToHashSet();
        if (scenarios.Contains(Scenario.MultiTurn) && Dialogue is null)
        {
            throw new ArgumentException(Name == RuleName
                ? "multi-turn probes need an LLM judge: pass --judge URL --judge-model NAME (EvaluationJudges.Llm)."
                : $"multi-turn probes need a dialogue judge; '{Name}' has none.");
        }
        if (scenarios.Contains(Scenario.MultipleChoice) && MultipleChoice is null)
        {
            throw new ArgumentException($"multiple-choice probes need a multiple-choice judge; '{Name}' has none.");
        }
    }

    /// <summary>The rule-based answer extractor for multiple choice (BiasFreeBench's default); no dialogue judge.</summary>
    public static EvaluationJudges Rule() => new(RuleName, new RuleBasedAnswerExtractor(), null, null);

    /// <summary>
    /// An OpenAI-compatible LLM as judge of both scenarios: <see cref="LlmMultipleChoiceJudge"/> (majority of
    /// <paramref name="votes"/>) and <see cref="LlmDialogueJudge"/>.
    /// </summary>
    /// <param name="options">The judge server.</param>
    /// <param name="votes">Votes per multiple-choice answer.</param>
    /// <param name="defences">Prompt-injection defences of both judges (default all).</param>
    public static EvaluationJudges Llm(OpenAICompatibleTargetOptions options, int votes = 3, JudgeDefences defences = JudgeDefences.All)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (votes is < 1 or > 15)
        {
            throw new ArgumentOutOfRangeException(nameof(votes), votes, "judge votes must be between 1 and 15.");
        }
        if (options.Endpoint.UserInfo.Length > 0 || options.Endpoint.Query.Length > 0)
        {
            throw new ArgumentException("judge URL must not contain user info or a query string (runs are stored); put the key in the environment variable named by --api-key-env.", nameof(options));
        }
        var client = OpenAICompatibleTarget.Create(options);
        return new EvaluationJudges(options.Endpoint.ToString(), new LlmMultipleChoiceJudge(client, votes, defences: defences), new LlmDialogueJudge(client, defences: defences), client)
        {
            Model = options.Model,
            Votes = votes,
            ApiKeyEnvironmentVariable = options.ApiKeyEnvironmentVariable,
            ServerEndpoint = options.Endpoint,
            Defences = defences,
        };
    }

    /// <summary>
    /// A judge panel for dialogues, FairMT's protocol generalised (<see cref="MajorityJudge"/>; one spec gives that judge
    /// alone): every judge votes on each dialogue reply and each vote is stored with the verdict (the verdict's raw output
    /// is the JSON array of votes). Multiple-choice replies are judged by the rule-based extractor, as BiasFreeBench does.
    /// The run records the specs (<see cref="RunSpec.Judge"/>) and tie rule, so a resume rebuilds the same panel.
    /// </summary>
    /// <param name="specs">The judges, the relatedness judge (an LLM judge) first.</param>
    /// <param name="options">Model, key variable, timeouts, tie rule; <see cref="JudgeFactoryOptions.Demo"/> for demo judges.</param>
    public static EvaluationJudges Panel(IReadOnlyList<JudgeSpec> specs, JudgeFactoryOptions options)
    {
        ArgumentNullException.ThrowIfNull(specs);
        ArgumentNullException.ThrowIfNull(options);
        if (specs.Count == 0) throw new ArgumentException("give at least one judge", nameof(specs));
        var factory = new JudgeFactory(options);
        try
        {
            var dialogue = factory.Create(specs);
            return new EvaluationJudges(string.Join(",", specs.Select(s => s.Canonical)), new RuleBasedAnswerExtractor(), dialogue, factory)
            {
                Model = options.DefaultModel,
                ApiKeyEnvironmentVariable = options.ApiKeyEnvironmentVariable,
                IsPanel = true,
                TieRule = options.TieRule,
                Defences = options.Defences,
            };
        }
        catch
        {
            factory.Dispose();
            throw;
        }
    }

    /// <summary>True when <paramref name="judge"/> (a stored <see cref="RunSpec.Judge"/> or a --judge value) names a panel rather than "rule" or one bare URL.</summary>
    public static bool IsPanelSpec(string judge)
    {
        ArgumentNullException.ThrowIfNull(judge);
        if (string.Equals(judge.Trim(), RuleName, StringComparison.OrdinalIgnoreCase)) return false;
        if (!judge.Contains(',', StringComparison.Ordinal) && EvaluationTarget.IsHttpUrl(judge.Trim())) return false;
        try
        {
            return JudgeSpec.ParseList(judge).Count > 0;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>The options a stored panel is rebuilt with (model, key variable, timeout, retries, tie rule, defences).</summary>
    public static JudgeFactoryOptions PanelOptions(RunSpec spec, Func<JudgeSpec, JudgeDefences, IJudge>? demo = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new JudgeFactoryOptions
        {
            DefaultModel = spec.JudgeModel,
            ApiKeyEnvironmentVariable = spec.JudgeApiKeyEnvironmentVariable ?? spec.ApiKeyEnvironmentVariable,
            Timeout = TimeSpan.FromSeconds(spec.TimeoutSeconds),
            Retries = spec.Retries,
            TieRule = string.Equals(spec.JudgeTie, "unbiased", StringComparison.OrdinalIgnoreCase) ? TieRule.Unbiased : TieRule.Biased,
            Defences = spec.JudgeDefenceLayers,
            Demo = demo,
        };
    }

    /// <summary>Judges given in code (not disposed here); <paramref name="name"/> is what the run records.</summary>
    public static EvaluationJudges Custom(string name, IJudge? multipleChoice, IJudge? dialogue, string? model = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (multipleChoice is null && dialogue is null)
        {
            throw new ArgumentException("give at least one judge.");
        }
        return new EvaluationJudges(name, multipleChoice, dialogue, null) { Model = model, IsCustom = true };
    }

    /// <summary>An <see cref="IChatClient"/> as LLM judge of both scenarios (not disposed here).</summary>
    public static EvaluationJudges Llm(IChatClient client, string name, string model, int votes = 3, JudgeDefences defences = JudgeDefences.All)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        return new EvaluationJudges(name, new LlmMultipleChoiceJudge(client, votes, defences: defences), new LlmDialogueJudge(client, defences: defences), null) { Model = model, Votes = votes, IsCustom = true };
    }

    /// <summary>Rebuilds the judges of a stored run: the rule judge, or the LLM judge at its URL with its votes and defences.</summary>
    public static EvaluationJudges FromSpec(RunSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (string.Equals(spec.Judge, RuleName, StringComparison.OrdinalIgnoreCase))
        {
            return Rule();
        }
        if (IsPanelSpec(spec.Judge))
        {
            // Demo judges need the engine's host (the CLI passes the panel itself); other kinds are rebuilt here.
            return Panel(JudgeSpec.ParseList(spec.Judge), PanelOptions(spec));
        }
        if (!EvaluationTarget.IsHttpUrl(spec.Judge))
        {
            throw new ArgumentException($"run '{spec.RunId}' used the judges '{spec.Judge}' given in code; pass them again to resume it.");
        }
        if (string.IsNullOrWhiteSpace(spec.JudgeModel))
        {
            throw new ArgumentException("--judge-model NAME is required with --judge URL.");
        }
        return Llm(new OpenAICompatibleTargetOptions
        {
            Endpoint = new Uri(spec.Judge),
            Model = spec.JudgeModel,
            ApiKeyEnvironmentVariable = spec.JudgeApiKeyEnvironmentVariable ?? spec.ApiKeyEnvironmentVariable,
            Timeout = TimeSpan.FromSeconds(spec.TimeoutSeconds),
            MaxRetries = spec.Retries,
            BaseDelay = TimeSpan.FromSeconds(1),
        }, spec.JudgeVotes, spec.JudgeDefenceLayers);
    }

    /// <summary>Disposes the judge's HTTP client when this object created it.</summary>
    public void Dispose() => _owned?.Dispose();
}
