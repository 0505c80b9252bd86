using Microsoft.Extensions.AI;

namespace BiasFree.Mitigations;

/// <summary>
/// Chain-of-Thought (BiasFreeBench, after Ganguli et al.): the final user turn gets an instruction to reason step by
/// step about answering without bias or stereotyping and then to put only the final answer on a new line. One model call.
/// For multiple choice the response text is that last line (the full reasoning goes to the transcript); for
/// dialogues the whole reply is kept, as BiasFreeBench judges it. Wording: <see cref="MethodPrompts.ChainOfThoughtMultipleChoice"/>
/// (its <c>.lettered</c> variant asks for the option's letter and text when the options are lettered) and
/// <see cref="MethodPrompts.ChainOfThoughtMultiTurn"/>.
/// </summary>
public sealed class ChainOfThoughtChatClient(IChatClient innerClient, bool extractFinalAnswer = true, MethodPrompts? prompts = null)
    : PromptingMitigationChatClient(innerClient)
{
    private readonly MethodPrompts _prompts = prompts ?? MethodPrompts.Default;

    public override string Name => "cot";

    /// <summary>The instruction our default wording appends (on a new line) to the final user turn.</summary>
    public static string Instruction(ChatOptions? options) => FinalTurn(MethodPrompts.Default, "", options).TrimStart('\n');

    /// <summary>The final user turn as sent: <paramref name="query"/> through the method's template.</summary>
    public static string FinalTurn(MethodPrompts prompts, string query, ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        var name = BiasTypes.IsMultiTurn(options) ? MethodPrompts.ChainOfThoughtMultiTurn
            : ProbeContext.IsLettered(options) ? MethodPrompts.ChainOfThoughtMultipleChoiceLettered
            : MethodPrompts.ChainOfThoughtMultipleChoice;
        return prompts.Render(name, (MethodPrompts.Query, query), (MethodPrompts.BiasType, BiasTypes.For(options)));
    }

    /// <summary>The last non-empty line of <paramref name="text"/>, trimmed (the whole text trimmed when it has one line).</summary>
    public static string FinalLine(string text)
    {
        var lines = text.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
        return lines.Length == 0 ? text.Trim() : lines[^1];
    }

    protected override async Task<ChatResponse> MitigateAsync(IReadOnlyList<ChatMessage> messages, ChatOptions? options,
        CancellationToken cancellationToken)
    {
        var sent = RewriteLastUserMessage(messages, q => FinalTurn(_prompts, q, options));
        var response = await InnerClient.GetResponseAsync(sent, options, cancellationToken).ConfigureAwait(false);
        var full = response.Text;
        var final = extractFinalAnswer && !BiasTypes.IsMultiTurn(options) ? FinalLine(full) : full;
        var transcript = new Transcript().Section("final turn as sent").Message(ChatRole.User, sent[LastUserIndex(sent)].Text)
            .Section("reasoning and answer").Message(ChatRole.Assistant, full);
        return Compose(final, response, [response], transcript.ToString());
    }
}
