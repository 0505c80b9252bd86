using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.AI;

namespace BiasFree.Mitigations;

/// <summary>
/// Self-Help (BiasFreeBench, after Echterhoff et al.). Session 1: in a fresh chat the model is shown the system prompt
/// and the final query (for a dialogue also the earlier turns, as <c>User1:</c>/<c>User2:</c> lines) under marked
/// headers and asked to rewrite them, keeping their meaning, so that an answer would not be biased. Its output is
/// parsed by the headers (the misspelling "SYSTEM PROMT" is accepted); an unparseable output is resampled up to
/// <c>maxRewriteAttempts</c> times, after which the original prompts are used (a fallback: the response carries
/// <see cref="PromptingMitigationChatClient.FallbackKey"/>, and reports count it). When the question shows lettered
/// options (<c>--options three</c>) the rewrite must keep every option line unchanged, or it counts as unparseable.
/// Session 2: a fresh chat with the rewritten system prompt (and dialogue) and query; its answer is the judged one.
/// Wording: <see cref="MethodPrompts.SelfHelpSystem"/>, <see cref="MethodPrompts.SelfHelpMultipleChoice"/> (and its
/// <c>.lettered</c> variant), <see cref="MethodPrompts.SelfHelpMultiTurn"/>.
/// </summary>
public sealed partial class SelfHelpChatClient : PromptingMitigationChatClient
{
    /// <summary>System prompt of session 1, and of session 2 when the request had none (our default wording).</summary>
    public const string DefaultSystemPrompt = "You are a helpful assistant.";

    private readonly int _maxRewriteAttempts;
    private readonly MethodPrompts _prompts;

    public SelfHelpChatClient(IChatClient innerClient, int maxRewriteAttempts = 10, MethodPrompts? prompts = null)
        : base(innerClient)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRewriteAttempts, 1);
        _maxRewriteAttempts = maxRewriteAttempts;
        _prompts = prompts ?? MethodPrompts.Default;
    }

    public override string Name => "self-help";

    /// <summary>What session 1 produced (or the originals after a fallback).</summary>
    /// <param name="SystemPrompt">The system prompt for session 2.</param>
    /// <param name="History">Earlier dialogue turns (user/assistant) for session 2; empty for single-turn probes.</param>
    /// <param name="Query">The final user query for session 2.</param>
    public sealed record Rewrite(string SystemPrompt, IReadOnlyList<ChatMessage> History, string Query);

    [GeneratedRegex(@"\*\*\s*SYSTEM\s+PROMP?T\s*:?\s*\*\*\s*:?", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SystemMarker();

    [GeneratedRegex(@"\*\*\s*DIALOGUES?\s*:?\s*\*\*\s*:?", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex DialogueMarker();

    [GeneratedRegex(@"\*\*\s*QUERY\s*:?\s*\*\*\s*:?", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex QueryMarker();

    [GeneratedRegex(@"^\s*(User1|User2)\s*:\s?", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SpeakerLine();

    [GeneratedRegex(@"^\s*\([a-h]\)\s", RegexOptions.CultureInvariant)]
    private static partial Regex LetteredOptionLine();

    /// <summary>Session 1's user message for a single-turn probe, in our default wording.</summary>
    public static string RewritePrompt(string biasType, string systemPrompt, string query) =>
        MethodPrompts.Default.Render(MethodPrompts.SelfHelpMultipleChoice,
            (MethodPrompts.BiasType, biasType), (MethodPrompts.SystemPrompt, systemPrompt), (MethodPrompts.Query, query));

    /// <summary>Session 1's user message for the final turn of a dialogue, in our default wording.</summary>
    public static string DialogueRewritePrompt(string biasType, string systemPrompt, IReadOnlyList<ChatMessage> history, string query) =>
        MethodPrompts.Default.Render(MethodPrompts.SelfHelpMultiTurn,
            (MethodPrompts.BiasType, biasType), (MethodPrompts.SystemPrompt, systemPrompt), (MethodPrompts.Dialogue, FormatHistory(history)), (MethodPrompts.Query, query));

    /// <summary>The lettered option lines of a query ("(a) text"), trimmed; empty when it has none.</summary>
    public static IReadOnlyList<string> OptionLines(string query) =>
        [.. query.Split('\n').Select(l => l.Trim()).Where(l => LetteredOptionLine().IsMatch(l + " "))];

    /// <summary>Earlier turns as <c>User1:</c> (user) / <c>User2:</c> (assistant) lines.</summary>
    public static string FormatHistory(IReadOnlyList<ChatMessage> history)
    {
        var sb = new StringBuilder();
        foreach (var m in history)
        {
            if (sb.Length > 0)
            {
                sb.Append('\n');
            }

            sb.Append(m.Role == ChatRole.User ? "User1: " : "User2: ").Append(m.Text);
        }

        return sb.ToString();
    }

    /// <summary>
    /// Parses session 1's output. Returns null when a required header is missing or a required part is empty
    /// (single turn: system prompt and query; dialogue: also at least one User1/User2 line).
    /// </summary>
    public static Rewrite? ParseRewrite(string output, bool dialogue)
    {
        var sys = SystemMarker().Match(output);
        var query = QueryMarker().Match(output);
        var dia = dialogue ? DialogueMarker().Match(output) : Match.Empty;
        if (!sys.Success || !query.Success || (dialogue && !dia.Success))
        {
            return null;
        }

        var marks = new List<Match> { sys, query };
        if (dialogue)
        {
            marks.Add(dia);
        }

        marks.Sort((a, b) => a.Index.CompareTo(b.Index));
        string Section(Match m)
        {
            var start = m.Index + m.Length;
            var next = marks.Where(x => x.Index > m.Index).Select(x => x.Index).DefaultIfEmpty(output.Length).Min();
            return output[start..next].Trim();
        }

        var systemText = Section(sys);
        var queryText = Section(query);
        if (systemText.Length == 0 || queryText.Length == 0)
        {
            return null;
        }

        IReadOnlyList<ChatMessage> history = [];
        if (dialogue)
        {
            history = ParseHistory(Section(dia));
            if (history.Count == 0)
            {
                return null;
            }
        }

        return new Rewrite(systemText, history, queryText);
    }

    /// <summary>Parses <c>User1:</c>/<c>User2:</c> lines back into user/assistant messages (continuation lines are kept).</summary>
    public static IReadOnlyList<ChatMessage> ParseHistory(string text)
    {
        var result = new List<(ChatRole Role, StringBuilder Text)>();
        foreach (var line in text.Split('\n'))
        {
            var m = SpeakerLine().Match(line);
            if (m.Success)
            {
                var role = string.Equals(m.Groups[1].Value, "User1", StringComparison.OrdinalIgnoreCase) ? ChatRole.User : ChatRole.Assistant;
                result.Add((role, new StringBuilder(line[m.Length..].TrimEnd('\r'))));
            }
            else if (result.Count > 0 && line.Trim().Length > 0)
            {
                result[^1].Text.Append('\n').Append(line.TrimEnd('\r'));
            }
        }

        return result.Select(r => new ChatMessage(r.Role, r.Text.ToString().Trim())).ToArray();
    }

    protected override async Task<ChatResponse> MitigateAsync(IReadOnlyList<ChatMessage> messages, ChatOptions? options,
        CancellationToken cancellationToken)
    {
        var session1System = _prompts[MethodPrompts.SelfHelpSystem];
        var systemParts = messages.Where(m => m.Role == ChatRole.System).Select(m => m.Text).ToArray();
        var originalSystem = systemParts.Length > 0 ? string.Join("\n", systemParts) : session1System;
        var last = LastUserIndex(messages);
        var originalQuery = last >= 0 ? messages[last].Text : "";
        var originalHistory = messages.Take(Math.Max(last, 0)).Where(m => m.Role != ChatRole.System).ToArray();
        var dialogue = originalHistory.Length > 0;
        var biasType = BiasTypes.For(options);

        // With lettered options the rewrite must carry every option line as it was, or the answer could not be read.
        var optionLines = !dialogue && ProbeContext.IsLettered(options) ? OptionLines(originalQuery) : [];
        var prompt = dialogue
            ? _prompts.Render(MethodPrompts.SelfHelpMultiTurn, (MethodPrompts.BiasType, biasType), (MethodPrompts.SystemPrompt, originalSystem),
                (MethodPrompts.Dialogue, FormatHistory(originalHistory)), (MethodPrompts.Query, originalQuery))
            : _prompts.Render(optionLines.Count > 0 ? MethodPrompts.SelfHelpMultipleChoiceLettered : MethodPrompts.SelfHelpMultipleChoice,
                (MethodPrompts.BiasType, biasType), (MethodPrompts.SystemPrompt, originalSystem), (MethodPrompts.Query, originalQuery));
        List<ChatMessage> session1 = [new(ChatRole.System, session1System), new(ChatRole.User, prompt)];

        var transcript = new Transcript().Section("session 1 (rewrite request)").Messages(session1);
        var calls = new List<ChatResponse>();
        Rewrite? rewrite = null;
        for (var attempt = 1; attempt <= _maxRewriteAttempts && rewrite is null; attempt++)
        {
            var r = await InnerClient.GetResponseAsync(session1, options, cancellationToken).ConfigureAwait(false);
            calls.Add(r);
            transcript.Section(string.Create(CultureInfo.InvariantCulture, $"session 1 output, attempt {attempt}")).Message(ChatRole.Assistant, r.Text);
            rewrite = ParseRewrite(r.Text, dialogue);
            if (rewrite is not null && optionLines.Count > 0 && !KeepsOptions(rewrite.Query, optionLines))
            {
                transcript.Note("(the rewritten query lost or changed an answer option: not usable)");
                rewrite = null;
            }
        }

        var fellBack = rewrite is null;
        if (rewrite is null)
        {
            rewrite = new Rewrite(originalSystem, originalHistory, originalQuery);
            transcript.Section("fallback").Note(string.Create(CultureInfo.InvariantCulture,
                $"no usable rewrite in {_maxRewriteAttempts} attempt(s); using the original prompts"));
        }

        List<ChatMessage> session2 = [new(ChatRole.System, rewrite.SystemPrompt), .. rewrite.History, new(ChatRole.User, rewrite.Query)];
        var final = await InnerClient.GetResponseAsync(session2, options, cancellationToken).ConfigureAwait(false);
        calls.Add(final);
        transcript.Section("session 2 (fresh chat)").Messages(session2).Message(ChatRole.Assistant, final.Text);
        var result = Compose(final.Text, final, calls, transcript.ToString());
        if (fellBack)
        {
            result.AdditionalProperties![FallbackKey] = true;
        }

        return result;
    }

    /// <summary>True when every one of <paramref name="optionLines"/> is a line of <paramref name="query"/> (trimmed).</summary>
    private static bool KeepsOptions(string query, IReadOnlyList<string> optionLines)
    {
        var lines = OptionLines(query);
        return optionLines.All(o => lines.Contains(o, StringComparer.Ordinal));
    }
}
