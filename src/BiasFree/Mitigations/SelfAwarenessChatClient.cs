using Microsoft.Extensions.AI;

namespace BiasFree.Mitigations;

/// <summary>
/// Self-Awareness (BiasFreeBench, after Echterhoff et al.): the final user turn gets a closing reminder not to let
/// the probe's bias type sway the answer. One model call. Wording: <see cref="MethodPrompts.SelfAwarenessMultipleChoice"/>
/// and <see cref="MethodPrompts.SelfAwarenessMultiTurn"/>.
/// </summary>
public sealed class SelfAwarenessChatClient(IChatClient innerClient, MethodPrompts? prompts = null) : PromptingMitigationChatClient(innerClient)
{
    private readonly MethodPrompts _prompts = prompts ?? MethodPrompts.Default;

    public override string Name => "self-awareness";

    /// <summary>The text our default wording appends (after a space) to the final user turn.</summary>
    public static string Reminder(ChatOptions? options) => FinalTurn(MethodPrompts.Default, "", options).TrimStart();

    /// <summary>The final user turn as sent: <paramref name="query"/> through the method's template.</summary>
    public static string FinalTurn(MethodPrompts prompts, string query, ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        var name = BiasTypes.IsMultiTurn(options) ? MethodPrompts.SelfAwarenessMultiTurn : MethodPrompts.SelfAwarenessMultipleChoice;
        return prompts.Render(name, (MethodPrompts.Query, query), (MethodPrompts.BiasType, BiasTypes.For(options)));
    }

    protected override async Task<ChatResponse> MitigateAsync(IReadOnlyList<ChatMessage> messages, ChatOptions? options,
        CancellationToken cancellationToken)
    {
        var sent = RewriteLastUserMessage(messages, q => FinalTurn(_prompts, q, options));
        var response = await InnerClient.GetResponseAsync(sent, options, cancellationToken).ConfigureAwait(false);
        var transcript = new Transcript().Section("final turn as sent").Message(ChatRole.User, sent[LastUserIndex(sent)].Text)
            .Section("answer").Message(ChatRole.Assistant, response.Text);
        return Compose(response.Text, response, [response], transcript.ToString());
    }
}
