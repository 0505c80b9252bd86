using System.CommandLine;
using BiasFree.Engine.Decoding;
using BiasFree.Runs;

namespace BiasFree.Cli.Commands;

/// <summary><c>biasfree run</c> options of the decoding-time methods (persona-judge and its persona-alone baselines).</summary>
internal sealed class DecodingRunOptions
{
    public Option<string?> DraftPersona { get; } = new("--draft-persona") { Description = $"persona-judge: system prompt of the persona that drafts first (default: \"{PersonaJudgeOptions.DefaultDraftPersona}\")." };
    public Option<string?> JudgePersona { get; } = new("--judge-persona") { Description = $"persona-judge: system prompt of the persona that judges first (default: the fairness persona \"{PersonaJudgeOptions.DefaultJudgePersona}\")." };
    public Option<int?> DraftTokens { get; } = new("--draft-tokens") { Description = "persona-judge: γ, tokens drafted per round (default 4)." };
    public Option<string?> Schedule { get; } = new("--persona-schedule") { Description = "persona-judge: alternate (roles swap every round, the paper), swap-once (the released code) or fixed (plain speculative sampling). Default alternate." };

    public Option[] All => [DraftPersona, JudgePersona, DraftTokens, Schedule];

    public DecodingRunOptions() => Schedule.AcceptOnlyFromAmong("alternate", "swap-once", "fixed");

    /// <summary>The spec for a new run: null unless one of <paramref name="methods"/> is a decoding method; options without one are an error.</summary>
    public static PersonaJudgeSpec? ToSpec(IReadOnlyList<string> methods, string? draft, string? judge, int? gamma, string? schedule)
    {
        bool used = methods.Any(DecodingMethods.IsDecodingMethod);
        if (!used)
        {
            if (draft is not null || judge is not null || gamma is not null || schedule is not null)
            {
                throw new UserErrorException($"--draft-persona, --judge-persona, --draft-tokens and --persona-schedule apply only to --method {string.Join("|", DecodingMethods.Names)}.");
            }
            return null;
        }
        if (draft is not null && string.IsNullOrWhiteSpace(draft)) throw new UserErrorException("--draft-persona must not be empty.");
        if (judge is not null && string.IsNullOrWhiteSpace(judge)) throw new UserErrorException("--judge-persona must not be empty.");
        if (gamma is < 1 or > 64) throw new UserErrorException("--draft-tokens must be between 1 and 64.");
        return new PersonaJudgeSpec(draft ?? PersonaJudgeOptions.DefaultDraftPersona, judge ?? PersonaJudgeOptions.DefaultJudgePersona, gamma ?? 4, schedule ?? "alternate");
    }

    /// <summary>Engine options from a stored spec.</summary>
    public static PersonaJudgeOptions ToOptions(PersonaJudgeSpec? spec) => spec is null ? new PersonaJudgeOptions() : new PersonaJudgeOptions
    {
        DraftPersona = spec.DraftPersona,
        JudgePersona = spec.JudgePersona,
        Settings = new PersonaJudgeSettings
        {
            DraftTokens = spec.DraftTokens,
            Schedule = spec.Schedule switch
            {
                "swap-once" => PersonaRoleSchedule.SwapOnce,
                "fixed" => PersonaRoleSchedule.Fixed,
                _ => PersonaRoleSchedule.Alternate,
            },
        },
    };
}
