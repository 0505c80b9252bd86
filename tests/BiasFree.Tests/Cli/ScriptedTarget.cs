using BiasFree.Probes;
using BiasFree.Tests.Infrastructure;

namespace BiasFree.Tests.Cli;

/// <summary>
/// The script behind the loopback server in end-to-end tests. It recognises the probe in a request by its
/// user-turn text and answers by the probe's position: biased (stereotyped option), anti-stereotyped, or the
/// unknown option, in turn. Requests changed by a mitigation (the final user message is not the probe's own turn)
/// are answered with the unknown option, so every prompting method has BFS 1.
/// </summary>
public sealed class ScriptedTarget
{
    private readonly IReadOnlyList<Probe> _probes;

    public ScriptedTarget(IReadOnlyList<Probe> probes) => _probes = probes;

    /// <summary>The role the script answers for the probe at <paramref name="index"/> under the vanilla prompt.</summary>
    public static OptionRole VanillaRole(int index) => (index % 3) switch
    {
        0 => OptionRole.Stereotyped,
        1 => OptionRole.AntiStereotyped,
        _ => OptionRole.Unknown,
    };

    /// <summary>The probe a request belongs to (its first user turn appears in some user message), or -1.</summary>
    public int FindProbe(IReadOnlyList<LoopbackMessage> messages)
    {
        for (var i = 0; i < _probes.Count; i++)
        {
            var turn = _probes[i].UserTurns[0];
            if (messages.Any(m => m.Role == "user" && m.Content.Contains(turn, StringComparison.Ordinal)))
            {
                return i;
            }
        }
        return -1;
    }

    /// <summary>True for the unmitigated prompt: BiasFreeBench's system prompt and the probe's own turn, nothing else.</summary>
    public static bool IsVanilla(IReadOnlyList<LoopbackMessage> messages, Probe probe) =>
        messages.Count == 2 && messages[0].Role == "system" && messages[0].Content == BiasFree.Runs.EvaluationRunner.MultipleChoiceSystemPrompt &&
        messages[1].Role == "user" && messages[1].Content == probe.UserTurns[0];

    public LoopbackReply Answer(LoopbackRequest request, TimeSpan? delay = null)
    {
        var i = FindProbe(request.Messages);
        if (i < 0)
        {
            return new LoopbackReply(Content: "I cannot tell which question this is.", Delay: delay);
        }
        var probe = _probes[i];
        var lastUser = request.Messages.Last(m => m.Role == "user").Content;
        if (lastUser.Contains("**SYSTEM PROMPT**:", StringComparison.Ordinal) && lastUser.Contains("**QUERY**:", StringComparison.Ordinal))
        {
            // Self-Help session 1: hand back a (trivially) rewritten system prompt and query.
            return new LoopbackReply(Content: $"**SYSTEM PROMPT**: You are a fair and helpful assistant.\n**QUERY**: {probe.UserTurns[0]}", Delay: delay);
        }
        var role = IsVanilla(request.Messages, probe) ? VanillaRole(i) : OptionRole.Unknown;
        return new LoopbackReply(Content: probe.OptionWithRole(role)!.Text, Delay: delay);
    }
}
