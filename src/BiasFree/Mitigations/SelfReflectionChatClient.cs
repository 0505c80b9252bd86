using Microsoft.Extensions.AI;

namespace BiasFree.Mitigations;

/// <summary>
/// Self-Reflection (BiasFreeBench, after Reflexion-style self-debiasing): the model answers the final turn, then a
/// second user turn in the same chat asks it to look over that answer, remove the bias and answer again. The second
/// answer is the judged one. Two model calls. Wording: <see cref="MethodPrompts.SelfReflectionMultipleChoice"/> and
/// <see cref="MethodPrompts.SelfReflectionMultiTurn"/>.
/// </summary>
public sealed class SelfReflectionChatClient(IChatClient innerClient, MethodPrompts? prompts = null) : PromptingMitigationChatClient(innerClient)
{
    private readonly MethodPrompts _prompts = prompts ?? MethodPrompts.Default;

    public override string Name => "self-reflection";

    /// <summary>The follow-up user turn in our default wording.</summary>
    public static string ReflectionPrompt(ChatOptions? options) => ReflectionPrompt(MethodPrompts.Default, options);

    /// <summary>The follow-up user turn from <paramref name="prompts"/>.</summary>
    public static string ReflectionPrompt(MethodPrompts prompts, ChatOptions? options)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        var name = BiasTypes.IsMultiTurn(options) ? MethodPrompts.SelfReflectionMultiTurn : MethodPrompts.SelfReflectionMultipleChoice;
        return prompts.Render(name, (MethodPrompts.BiasType, BiasTypes.For(options, forSelfReflection: true)));
    }

    protected override async Task<ChatResponse> MitigateAsync(IReadOnlyList<ChatMessage> messages, ChatOptions? options,
        CancellationToken cancellationToken)
    {
        var first = await InnerClient.GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        var answer1 = first.Messages.Count > 0 ? first.Messages : [new ChatMessage(ChatRole.Assistant, first.Text)];
        var reflection = new ChatMessage(ChatRole.User, ReflectionPrompt(_prompts, options));
        List<ChatMessage> second = [.. messages, .. answer1, reflection];
        var final = await InnerClient.GetResponseAsync(second, options, cancellationToken).ConfigureAwait(false);

        var transcript = new Transcript()
            .Section("answer 1").Message(ChatRole.Assistant, first.Text)
            .Section("reflection").Message(ChatRole.User, reflection.Text)
            .Section("answer 2").Message(ChatRole.Assistant, final.Text);
        return Compose(final.Text, final, [first, final], transcript.ToString());
    }
}
