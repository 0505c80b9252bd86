using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.Tokenization;

/// <summary>The chat formats we render natively (we do not interpret Jinja).</summary>
public enum ChatTemplateFamily
{
    /// <summary><c>&lt;|start_header_id|&gt;role&lt;|end_header_id|&gt;\n\ncontent&lt;|eot_id|&gt;</c></summary>
    Llama3,

    /// <summary><c>&lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;\n</c> (Qwen2 adds a default system prompt).</summary>
    ChatML,

    /// <summary><c>&lt;s&gt;[INST] user [/INST]assistant&lt;/s&gt;</c>, system folded into the first user turn.</summary>
    Mistral,
}

/// <summary>A chat template problem: unknown family, unsupported roles or order.</summary>
public sealed class ChatTemplateException(string message) : Exception(message);

/// <summary>
/// A built-in chat template. <see cref="Render(IReadOnlyList{ValueTuple{string, string}}, bool)"/> produces the same
/// text as the Jinja template <see cref="JinjaSource"/> (which mirrors the public model templates) rendered
/// by transformers' apply_chat_template. The text includes the BOS token where the family's template does,
/// so encode it with <c>addSpecialTokens: false</c>.
/// </summary>
public sealed class ChatTemplate
{
    /// <summary>The names <see cref="FromName"/> accepts.</summary>
    public static IReadOnlyList<string> KnownNames { get; } = ["llama3", "chatml", "qwen2", "mistral"];

    private const string UsageHint = "pass the family explicitly with --chat-template llama3|chatml|qwen2|mistral";

    private ChatTemplate(string name, ChatTemplateFamily family, string? bosToken, string? eosToken, string? defaultSystemPrompt, IReadOnlyList<string> stopStrings)
    {
        Name = name;
        Family = family;
        BosToken = bosToken;
        EosToken = eosToken;
        DefaultSystemPrompt = defaultSystemPrompt;
        StopStrings = stopStrings;
    }

    /// <summary>Canonical name: llama3, chatml, qwen2 or mistral.</summary>
    public string Name { get; }

    /// <summary>The family.</summary>
    public ChatTemplateFamily Family { get; }

    /// <summary>The BOS text the template starts with (Llama-3, Mistral), or null.</summary>
    public string? BosToken { get; }

    /// <summary>The EOS text that ends assistant turns in the Mistral template, or null.</summary>
    public string? EosToken { get; }

    /// <summary>ChatML: system prompt inserted when the conversation has none (Qwen2 behaviour), or null.</summary>
    public string? DefaultSystemPrompt { get; }

    /// <summary>Strings that end an assistant turn in this format.</summary>
    public IReadOnlyList<string> StopStrings { get; }

    /// <summary>Llama-3 family.</summary>
    public static ChatTemplate Llama3 { get; } = new("llama3", ChatTemplateFamily.Llama3, "<|begin_of_text|>", "<|eot_id|>", null, ["<|eot_id|>", "<|end_of_text|>"]);

    /// <summary>Plain ChatML without a default system prompt.</summary>
    public static ChatTemplate ChatML { get; } = new("chatml", ChatTemplateFamily.ChatML, null, "<|im_end|>", null, ["<|im_end|>", "<|endoftext|>"]);

    /// <summary>Qwen2's ChatML: "You are a helpful assistant." when no system message is given.</summary>
    public static ChatTemplate Qwen2 { get; } = new("qwen2", ChatTemplateFamily.ChatML, null, "<|im_end|>", "You are a helpful assistant.", ["<|im_end|>", "<|endoftext|>"]);

    /// <summary>Mistral instruct ([INST] ... [/INST]).</summary>
    public static ChatTemplate Mistral { get; } = new("mistral", ChatTemplateFamily.Mistral, "<s>", "</s>", null, ["</s>"]);

    /// <summary>Looks up a family by name (llama3, llama-3, chatml, qwen2, qwen, mistral; case-insensitive).</summary>
    public static ChatTemplate FromName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.Trim().ToLowerInvariant() switch
        {
            "llama3" or "llama-3" or "llama3.1" or "llama-3.1" => Llama3,
            "chatml" => ChatML,
            "qwen2" or "qwen" or "qwen2.5" => Qwen2,
            "mistral" or "mistral-instruct" => Mistral,
            _ => throw new ChatTemplateException($"unknown chat template \"{name}\"; known: {string.Join(", ", KnownNames)}"),
        };
    }

    /// <summary>
    /// Chooses the family from a tokenizer_config.json chat_template by its distinctive markers.
    /// Throws <see cref="ChatTemplateException"/> when there is no template or it is not recognised.
    /// </summary>
    public static ChatTemplate Detect(string? jinjaSource)
    {
        if (string.IsNullOrWhiteSpace(jinjaSource))
        {
            throw new ChatTemplateException($"the model has no chat_template in tokenizer_config.json; {UsageHint}");
        }
        if (jinjaSource.Contains("<|start_header_id|>", StringComparison.Ordinal)) return Llama3;
        if (jinjaSource.Contains("<|im_start|>", StringComparison.Ordinal))
        {
            var m = Regex.Match(jinjaSource, @"<\|im_start\|>system\\n([^'""<\\{}]+)<\|im_end\|>");
            if (m.Success)
            {
                string prompt = m.Groups[1].Value;
                return prompt == Qwen2.DefaultSystemPrompt ? Qwen2 : new ChatTemplate("qwen2", ChatTemplateFamily.ChatML, null, "<|im_end|>", prompt, Qwen2.StopStrings);
            }
            return ChatML;
        }
        if (jinjaSource.Contains("[INST]", StringComparison.Ordinal)) return Mistral;
        throw new ChatTemplateException($"the chat_template in tokenizer_config.json is not one we recognise (no Llama-3, ChatML or Mistral markers); {UsageHint}");
    }

    /// <summary>
    /// The template for a tokenizer: the named family if <paramref name="familyName"/> is given, otherwise detected from
    /// its chat_template; BOS/EOS texts are taken from the tokenizer where it has them.
    /// </summary>
    public static ChatTemplate For(HfTokenizer tokenizer, string? familyName = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        var t = familyName is null ? Detect(tokenizer.ChatTemplateSource) : FromName(familyName);
        string? bos = tokenizer.BosId is int b ? tokenizer.IdToToken(b) : null;
        string? eos = tokenizer.EosIds.Count > 0 ? tokenizer.IdToToken(tokenizer.EosIds[0]) : null;
        return t.Family switch
        {
            ChatTemplateFamily.Mistral => t.WithSpecialTokens(bos ?? t.BosToken, eos ?? t.EosToken),
            ChatTemplateFamily.Llama3 => t.WithSpecialTokens(bos ?? t.BosToken, t.EosToken),
            _ => t,
        };
    }

    /// <summary>A copy using other BOS/EOS texts.</summary>
    public ChatTemplate WithSpecialTokens(string? bosToken, string? eosToken) =>
        new(Name, Family, bosToken, eosToken, DefaultSystemPrompt, StopStrings);

    /// <summary>Renders a conversation. Roles are lower-case strings (system, user, assistant, ...).</summary>
    public string Render(IReadOnlyList<(string Role, string Content)> messages, bool addGenerationPrompt)
    {
        ArgumentNullException.ThrowIfNull(messages);
        return Family switch
        {
            ChatTemplateFamily.Llama3 => RenderLlama3(messages, addGenerationPrompt),
            ChatTemplateFamily.ChatML => RenderChatML(messages, addGenerationPrompt),
            _ => RenderMistral(messages),
        };
    }

    /// <summary>Renders Microsoft.Extensions.AI chat messages (role value and text content).</summary>
    public string Render(IEnumerable<ChatMessage> messages, bool addGenerationPrompt)
    {
        ArgumentNullException.ThrowIfNull(messages);
        return Render(messages.Select(m => (m.Role.Value, m.Text)).ToList(), addGenerationPrompt);
    }

    private string RenderLlama3(IReadOnlyList<(string Role, string Content)> messages, bool addGenerationPrompt)
    {
        var sb = new StringBuilder();
        sb.Append(BosToken);
        foreach (var (role, content) in messages)
        {
            sb.Append("<|start_header_id|>").Append(role).Append("<|end_header_id|>\n\n").Append(JinjaTrim(content)).Append("<|eot_id|>");
        }
        if (addGenerationPrompt) sb.Append("<|start_header_id|>assistant<|end_header_id|>\n\n");
        return sb.ToString();
    }

    private string RenderChatML(IReadOnlyList<(string Role, string Content)> messages, bool addGenerationPrompt)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < messages.Count; i++)
        {
            if (i == 0 && DefaultSystemPrompt is not null && messages[0].Role != "system")
            {
                sb.Append("<|im_start|>system\n").Append(DefaultSystemPrompt).Append("<|im_end|>\n");
            }
            sb.Append("<|im_start|>").Append(messages[i].Role).Append('\n').Append(messages[i].Content).Append("<|im_end|>\n");
        }
        if (addGenerationPrompt) sb.Append("<|im_start|>assistant\n");
        return sb.ToString();
    }

    private string RenderMistral(IReadOnlyList<(string Role, string Content)> messages)
    {
        if (messages.Count == 0) throw new ChatTemplateException("the Mistral template needs at least one message");
        string? system = null;
        int start = 0;
        if (messages[0].Role == "system")
        {
            system = messages[0].Content;
            start = 1;
        }
        var sb = new StringBuilder();
        sb.Append(BosToken);
        for (int i = start; i < messages.Count; i++)
        {
            var (role, content) = messages[i];
            if ((role == "user") != ((i - start) % 2 == 0))
            {
                throw new ChatTemplateException("Mistral template: after the optional system message, roles must alternate user/assistant/user/assistant/...");
            }
            if (role == "user")
            {
                sb.Append("[INST] ");
                if (i == start && system is not null) sb.Append(system).Append("\n\n");
                sb.Append(content).Append(" [/INST]");
            }
            else if (role == "assistant")
            {
                sb.Append(content).Append(EosToken);
            }
            else
            {
                throw new ChatTemplateException($"Mistral template: role \"{role}\" is not supported (only user and assistant, with an optional first system message)");
            }
        }
        return sb.ToString();
    }

    /// <summary>Jinja's trim filter (Python str.strip: Unicode whitespace at both ends).</summary>
    private static string JinjaTrim(string s) => s.Trim();

    /// <summary>
    /// A Jinja template equivalent to <see cref="Render(IReadOnlyList{ValueTuple{string, string}}, bool)"/>, for writing into
    /// tokenizer_config.json (uses the bos_token/eos_token variables).
    /// </summary>
    public string JinjaSource => Family switch
    {
        ChatTemplateFamily.Llama3 => Llama3Jinja,
        ChatTemplateFamily.ChatML when DefaultSystemPrompt is null => ChatMLJinja,
        ChatTemplateFamily.ChatML => Qwen2Jinja.Replace("You are a helpful assistant.", DefaultSystemPrompt!.Replace("'", "\\'", StringComparison.Ordinal), StringComparison.Ordinal),
        _ => MistralJinja,
    };

    internal const string Llama3Jinja =
        "{{- bos_token }}{%- for message in messages %}" +
        "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}" +
        "{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";

    internal const string ChatMLJinja =
        "{%- for message in messages %}" +
        "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
        "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

    internal const string Qwen2Jinja =
        "{%- for message in messages %}" +
        "{%- if loop.first and messages[0]['role'] != 'system' %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}" +
        "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
        "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

    internal const string MistralJinja =
        "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}" +
        "{%- else %}{%- set loop_messages = messages %}{%- endif %}" +
        "{{- bos_token }}{%- for message in loop_messages %}" +
        "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{- raise_exception('After the optional system message, roles must alternate user/assistant/user/assistant/...') }}{%- endif %}" +
        "{%- if message['role'] == 'user' %}" +
        "{%- if loop.first and system_message is defined %}{{- '[INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}" +
        "{%- else %}{{- '[INST] ' + message['content'] + ' [/INST]' }}{%- endif %}" +
        "{%- elif message['role'] == 'assistant' %}{{- message['content'] + eos_token }}" +
        "{%- else %}{{- raise_exception('Only user and assistant roles are supported, with an optional first system message') }}{%- endif %}" +
        "{%- endfor %}";
}
