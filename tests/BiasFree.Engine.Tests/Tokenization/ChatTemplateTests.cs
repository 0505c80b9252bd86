using BiasFree.Engine.Tokenization;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.Tests.Tokenization;

public sealed class ChatTemplateTests
{
    public static TheoryData<int> Renderings()
    {
        var data = new TheoryData<int>();
        int n = Fixtures.ReadJson("chat_expected.json").GetProperty("renderings").GetArrayLength();
        for (int i = 0; i < n; i++) data.Add(i);
        return data;
    }

    /// <summary>Render equals @huggingface/jinja rendering our Jinja source (chat_expected.json).</summary>
    [Theory]
    [MemberData(nameof(Renderings))]
    public void Render_MatchesJinjaOracle(int index)
    {
        var r = Fixtures.ReadJson("chat_expected.json").GetProperty("renderings")[index];
        var template = ChatTemplate.FromName(r.GetProperty("family").GetString()!);
        var messages = r.GetProperty("messages").EnumerateArray()
            .Select(m => (m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!)).ToList();
        bool addGenerationPrompt = r.GetProperty("add_generation_prompt").GetBoolean();
        if (r.GetProperty("error").ValueKind == System.Text.Json.JsonValueKind.String)
        {
            Assert.Throws<ChatTemplateException>(() => template.Render(messages, addGenerationPrompt));
        }
        else
        {
            Assert.Equal(r.GetProperty("output").GetString(), template.Render(messages, addGenerationPrompt));
        }
    }

    // Templates in the style of the public model families (written for this test).
    private const string Llama3Like =
        "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + " +
        "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}" +
        "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

    private const string Qwen2Like =
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}" +
        "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    private const string Qwen25Like =
        "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}" +
        "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, a helpful assistant.<|im_end|>\\n' }}{%- endif %}";

    private const string MistralLike =
        "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}" +
        "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% endif %}{% endfor %}";

    [Fact]
    public void Detect_ChoosesFamilyByMarkers()
    {
        Assert.Same(ChatTemplate.Llama3, ChatTemplate.Detect(Llama3Like));
        Assert.Same(ChatTemplate.Qwen2, ChatTemplate.Detect(Qwen2Like));
        Assert.Same(ChatTemplate.Mistral, ChatTemplate.Detect(MistralLike));
        Assert.Same(ChatTemplate.ChatML, ChatTemplate.Detect(ChatTemplate.ChatML.JinjaSource));
        var qwen25 = ChatTemplate.Detect(Qwen25Like);
        Assert.Equal(ChatTemplateFamily.ChatML, qwen25.Family);
        Assert.Equal("You are Qwen, a helpful assistant.", qwen25.DefaultSystemPrompt);
        foreach (var t in new[] { ChatTemplate.Llama3, ChatTemplate.ChatML, ChatTemplate.Qwen2, ChatTemplate.Mistral })
        {
            Assert.Equal(t.Name, ChatTemplate.Detect(t.JinjaSource).Name);
        }
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}")]
    public void Detect_Unknown_ThrowsWithHint(string? source)
    {
        var ex = Assert.Throws<ChatTemplateException>(() => ChatTemplate.Detect(source));
        Assert.Contains("--chat-template llama3|chatml", ex.Message);
    }

    [Fact]
    public void FromName_KnowsAliasesAndRejectsOthers()
    {
        Assert.Same(ChatTemplate.Llama3, ChatTemplate.FromName("Llama-3"));
        Assert.Same(ChatTemplate.Qwen2, ChatTemplate.FromName("qwen"));
        Assert.Same(ChatTemplate.ChatML, ChatTemplate.FromName("CHATML"));
        Assert.Same(ChatTemplate.Mistral, ChatTemplate.FromName("mistral"));
        var ex = Assert.Throws<ChatTemplateException>(() => ChatTemplate.FromName("vicuna"));
        Assert.Contains("llama3", ex.Message);
    }

    [Fact]
    public void Render_AcceptsChatMessages()
    {
        var messages = new[] { new ChatMessage(ChatRole.System, "Be fair."), new ChatMessage(ChatRole.User, "Hi") };
        Assert.Equal("<|im_start|>system\nBe fair.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
            ChatTemplate.ChatML.Render(messages, addGenerationPrompt: true));
        Assert.Equal("<s>[INST] Be fair.\n\nHi [/INST]", ChatTemplate.Mistral.Render(messages, addGenerationPrompt: true));
    }

    [Fact]
    public void Render_Mistral_RejectsUnsupportedRole()
    {
        Assert.Throws<ChatTemplateException>(() => ChatTemplate.Mistral.Render([("user", "a"), ("tool", "b")], false));
    }

    [Fact]
    public void StopStrings_PerFamily()
    {
        Assert.Contains("<|eot_id|>", ChatTemplate.Llama3.StopStrings);
        Assert.Contains("<|im_end|>", ChatTemplate.ChatML.StopStrings);
        Assert.Contains("<|im_end|>", ChatTemplate.Qwen2.StopStrings);
        Assert.Contains("</s>", ChatTemplate.Mistral.StopStrings);
    }

    [Fact]
    public void For_UsesTokenizerTemplateAndSpecials()
    {
        var tok = HfTokenizer.FromFolder(Fixtures.Path_("mistral"));
        var t = ChatTemplate.For(tok);
        Assert.Equal(ChatTemplateFamily.Mistral, t.Family);
        var prompt = t.Render([("user", "Who is smarter?")], addGenerationPrompt: true);
        var ids = tok.Encode(prompt, addSpecialTokens: false);
        Assert.Equal(tok.BosId, ids[0]);
        Assert.Equal(tok.TokenToId("[INST]"), ids[1]);
        Assert.Equal(ChatTemplateFamily.Llama3, ChatTemplate.For(HfTokenizer.FromFolder(Fixtures.Path_("trained"))).Family);
        Assert.Equal(ChatTemplateFamily.ChatML, ChatTemplate.For(tok, "chatml").Family);
    }
}
