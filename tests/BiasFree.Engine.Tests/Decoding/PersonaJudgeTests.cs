using BiasFree.Engine.Chat;
using BiasFree.Engine.Decoding;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using Microsoft.Extensions.AI;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests.Decoding;

public class PersonaJudgeTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly CausalLM _model;
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private static readonly int[] Eos = [257];
    private static readonly IReadOnlyList<int> DraftPrompt = [.. "system: be brief\nuser: who?\nassistant: "u8.ToArray().Select(b => (int)b)];
    private static readonly IReadOnlyList<int> JudgePrompt = [.. "system: be fair to all\nuser: who?\nassistant: "u8.ToArray().Select(b => (int)b)];

    public PersonaJudgeTests()
    {
        using (var m = CausalLM.Create(TinyModels.Config("llama") with { VocabSize = 258, EosTokenIds = [257] }, ScalarType.Float32, "cpu", 5))
            m.Save(_dir.Path);
        _model = CausalLM.Load(_dir.Path);
    }

    public void Dispose()
    {
        _model.Dispose();
        _dir.Dispose();
        GC.SuppressFinalize(this);
    }

    private static GenerationOptions Greedy(int max) => new() { MaxNewTokens = max, EosTokenIds = Eos };

    [Fact]
    public void Greedy_with_fixed_roles_reproduces_the_judge_persona_alone_through_rejections_and_cache_rollbacks()
    {
        // Greedy p and q are one-hot: a draft token survives only if it is the judge's argmax, and a rejection is
        // replaced by the judge's argmax. So the reply must equal greedy decoding under the judge persona alone; any
        // error in rolling back either KV cache would change it.
        var settings = new PersonaJudgeSettings { Temperature = 0, Schedule = PersonaRoleSchedule.Fixed, DraftTokens = 3 };
        var result = PersonaJudgeDecoder.Generate(_model, DraftPrompt, JudgePrompt, settings, 40, Eos, seed: 1, cancellationToken: _ct);
        var alone = _model.Generate([JudgePrompt], Greedy(40), _ct)[0];
        Assert.Equal(alone.Tokens, result.Tokens);
        Assert.Equal(alone.FinishReason, result.FinishReason);
        var s = result.Statistics;
        Assert.True(s.Accepted < s.Drafted, $"no rejection happened ({s}); the test would not exercise the rollback");
        Assert.True(s.Accepted > 0, $"no draft token was accepted ({s})");
        Assert.Equal(s.Rounds, s.JudgePasses);
        Assert.Equal(s.Drafted, s.DraftPasses);
    }

    [Theory]
    [InlineData(PersonaRoleSchedule.Alternate)]
    [InlineData(PersonaRoleSchedule.SwapOnce)]
    public void Greedy_rounds_are_the_judging_personas_own_continuation_of_the_prefix(PersonaRoleSchedule schedule)
    {
        // When roles swap, the former drafter's cache (rolled back after rejections) becomes the judge's, so every
        // round checks both caches: round r must equal greedy decoding under its judging persona's prompt + the reply so far.
        var settings = new PersonaJudgeSettings { Temperature = 0, Schedule = schedule, DraftTokens = 3 };
        var r = PersonaJudgeDecoder.Generate(_model, DraftPrompt, JudgePrompt, settings, 36, Eos, seed: 1, cancellationToken: _ct);
        Assert.True(r.RoundLengths.Count >= 4, $"only {r.RoundLengths.Count} rounds");
        Assert.True(r.Statistics.Accepted < r.Statistics.Drafted && r.Statistics.Accepted > 0, r.Statistics.ToString());
        int at = 0;
        for (int round = 0; round < r.RoundLengths.Count; round++)
        {
            var prompt = (r.JudgePersonaJudged[round] ? JudgePrompt : DraftPrompt).Concat(r.Tokens.Take(at)).ToList();
            int n = r.RoundLengths[round];
            var expected = _model.Generate([prompt], Greedy(n), _ct)[0].Tokens;
            Assert.Equal(expected, r.Tokens.Skip(at).Take(n));
            at += n;
        }
        Assert.Equal(r.Tokens.Count, at);
    }

    [Fact]
    public void Schedules_decide_which_persona_judges_each_round()
    {
        // Fixed roles the other way round reproduce the other persona alone.
        var fixedBa = PersonaJudgeDecoder.Generate(_model, JudgePrompt, DraftPrompt, new() { Temperature = 0, Schedule = PersonaRoleSchedule.Fixed, DraftTokens = 2 }, 30, Eos, 1, cancellationToken: _ct);
        Assert.Equal(_model.Generate([DraftPrompt], Greedy(30), _ct)[0].Tokens, fixedBa.Tokens);

        bool[] Judges(PersonaRoleSchedule schedule) =>
            [.. PersonaJudgeDecoder.Generate(_model, DraftPrompt, JudgePrompt, new() { Temperature = 1, Schedule = schedule, DraftTokens = 2 }, 40, [], 3, cancellationToken: _ct).JudgePersonaJudged];
        var alternate = Judges(PersonaRoleSchedule.Alternate);
        var once = Judges(PersonaRoleSchedule.SwapOnce);
        var never = Judges(PersonaRoleSchedule.Fixed);
        Assert.True(alternate.Length >= 4 && once.Length >= 4 && never.Length >= 4);
        Assert.Equal(Enumerable.Range(0, alternate.Length).Select(i => i % 2 == 0), alternate);
        Assert.Equal(Enumerable.Range(0, once.Length).Select(i => i == 0), once);
        Assert.All(never, Assert.True);
    }

    [Fact]
    public void Same_persona_in_both_roles_accepts_every_draft_token()
    {
        foreach (var schedule in Enum.GetValues<PersonaRoleSchedule>())
        {
            var settings = new PersonaJudgeSettings { Temperature = 1.0, TopK = null, TopP = null, Schedule = schedule, DraftTokens = 4 };
            var r = PersonaJudgeDecoder.Generate(_model, JudgePrompt, JudgePrompt, settings, 30, Eos, seed: 9, cancellationToken: _ct);
            var s = r.Statistics;
            Assert.Equal(s.Drafted, s.Accepted);
            Assert.Equal(1.0, s.AcceptanceRate);
            // Every round but a last one cut short by EOS or the limit yields γ + 1 tokens per judge pass.
            Assert.True(s.Rounds == 1 || s.BonusTokens >= s.Rounds - 1, s.ToString());
            if (r.FinishReason == FinishReason.Length) Assert.Equal(30, r.Tokens.Count);
        }
    }

    [Fact]
    public void Same_seed_gives_the_same_reply_and_the_length_limit_holds()
    {
        var settings = new PersonaJudgeSettings();
        var a = PersonaJudgeDecoder.Generate(_model, DraftPrompt, JudgePrompt, settings, 17, Eos, seed: 42, cancellationToken: _ct);
        var b = PersonaJudgeDecoder.Generate(_model, DraftPrompt, JudgePrompt, settings, 17, Eos, seed: 42, cancellationToken: _ct);
        Assert.Equal(a.Tokens, b.Tokens);
        Assert.True(a.Tokens.Count <= 17);
        Assert.DoesNotContain(257, a.Tokens);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Method_step_decodes_under_the_personas_through_the_dispatcher_or_directly(bool dispatcher)
    {
        using var engine = new EngineChatClient(_model, new ByteTokenizer(), new PlainFormatter());
        var seen = new List<ChatOptions?>();
        IChatClient target = dispatcher ? new DecodingStrategyChatClient(engine) : engine;
        // What a run's recording layer would see, between the method step and the target.
        var observed = new ObservingClient(target, seen);
        var options = new PersonaJudgeOptions
        {
            DraftPersona = "be brief",
            JudgePersona = "be fair to all",
            Settings = new PersonaJudgeSettings { Temperature = 0, Schedule = PersonaRoleSchedule.Fixed },
        };
        var client = new PersonaJudgeChatClient(observed, options);
        ChatMessage[] messages = [new(ChatRole.System, "You are a helpful assistant."), new(ChatRole.User, "who?")];
        var reply = await client.GetResponseAsync(messages, new ChatOptions { MaxOutputTokens = 20 }, _ct);
        // Greedy + fixed roles = the judge persona alone, through the engine's own sampler.
        var alone = await new PersonaChatClient(engine, "be fair to all").GetResponseAsync(messages, new ChatOptions { MaxOutputTokens = 20, Temperature = 0 }, _ct);
        Assert.Equal(alone.Text, reply.Text);
        Assert.NotNull(reply.AdditionalProperties);
        Assert.True(reply.AdditionalProperties!.ContainsKey("biasfree.persona_judge.accepted"));
        var (totals, replies, _) = client.Strategy.Statistics;
        Assert.Equal(1, replies);
        Assert.True(totals.JudgePasses > 0);
        // Through a dispatcher the request passes the layers in between (recording, cache) with its sampling filters.
        Assert.Equal(dispatcher ? 1 : 0, seen.Count);
        if (dispatcher) Assert.Equal(20, seen[0]!.TopK);
    }

    [Fact]
    public async Task A_prompting_method_combines_outside_persona_judge()
    {
        // self-awareness+persona-judge: the reminder is added to the user turn, then Persona-judge decodes. Greedy with
        // fixed roles, that must equal self-awareness over sampling under the judge persona alone.
        using var engine = new EngineChatClient(_model, new ByteTokenizer(), new PlainFormatter());
        var seen = new List<IReadOnlyList<ChatMessage>>();
        var options = new PersonaJudgeOptions { JudgePersona = "be fair to all", Settings = new PersonaJudgeSettings { Temperature = 0, Schedule = PersonaRoleSchedule.Fixed } };
        var combined = BiasFree.Mitigations.PromptingMitigations.Apply(
            new PersonaJudgeChatClient(new MessageLog(new DecodingStrategyChatClient(engine), seen), options), "self-awareness");
        ChatMessage[] messages = [new(ChatRole.System, "You are a helpful assistant."), new(ChatRole.User, "who?")];
        var reply = await combined.GetResponseAsync(messages, new ChatOptions { MaxOutputTokens = 16 }, _ct);
        var expected = await BiasFree.Mitigations.PromptingMitigations.Apply(new PersonaChatClient(engine, "be fair to all"), "self-awareness")
            .GetResponseAsync(messages, new ChatOptions { MaxOutputTokens = 16, Temperature = 0 }, _ct);
        Assert.Equal(expected.Text, reply.Text);
        var userTurn = Assert.Single(seen)[^1].Text;
        Assert.StartsWith("who?", userTurn, StringComparison.Ordinal);
        Assert.True(userTurn.Length > "who?".Length, "the self-awareness reminder did not reach persona-judge");
    }

    [Fact]
    public async Task Dispatcher_passes_requests_without_a_strategy_to_the_engine()
    {
        using var engine = new EngineChatClient(_model, new ByteTokenizer(), new PlainFormatter());
        var via = await new DecodingStrategyChatClient(engine).GetResponseAsync([new(ChatRole.User, "hi")], new ChatOptions { MaxOutputTokens = 8, Temperature = 0 }, _ct);
        var direct = await engine.GetResponseAsync([new(ChatRole.User, "hi")], new ChatOptions { MaxOutputTokens = 8, Temperature = 0 }, _ct);
        Assert.Equal(direct.Text, via.Text);
        Assert.Equal(2, engine.Statistics.Requests);
    }

    [Fact]
    public void Persona_replaces_the_default_system_prompt_and_keeps_a_methods_one()
    {
        var plain = PersonaJudgeOptions.WithPersona([new(ChatRole.System, "You are a helpful assistant."), new(ChatRole.User, "q")], "P");
        Assert.Equal("P", plain[0].Text);
        Assert.Equal(2, plain.Count);
        var method = PersonaJudgeOptions.WithPersona([new(ChatRole.System, "Avoid gender bias."), new(ChatRole.User, "q")], "P");
        Assert.Equal("P\nAvoid gender bias.", method[0].Text);
        var none = PersonaJudgeOptions.WithPersona([new(ChatRole.User, "q")], "P");
        Assert.Equal(ChatRole.System, none[0].Role);
        Assert.Equal(2, none.Count);
    }

    [Fact]
    public async Task A_remote_target_is_refused_with_the_reason()
    {
        var client = new PersonaJudgeChatClient(new NoModelClient());
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => client.GetResponseAsync([new(ChatRole.User, "q")], null, _ct));
        Assert.Contains("in-process model", e.Message);
    }
}

/// <summary>A target without an in-process model (what an HTTP endpoint looks like to a method).</summary>
internal sealed class NoModelClient : IChatClient
{
    public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, "remote")));
    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException();
    public object? GetService(Type serviceType, object? serviceKey = null) => null;
    public void Dispose() { }
}

/// <summary>Records the options of each request that passes (stands in for the run's recording layer).</summary>
internal sealed class ObservingClient(IChatClient inner, List<ChatOptions?> seen) : DelegatingChatClient(inner)
{
    public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        seen.Add(options);
        return base.GetResponseAsync(messages, options, cancellationToken);
    }
}

/// <summary>Records the messages of each request that passes.</summary>
internal sealed class MessageLog(IChatClient inner, List<IReadOnlyList<ChatMessage>> seen) : DelegatingChatClient(inner)
{
    public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var list = messages.ToList();
        seen.Add(list);
        return base.GetResponseAsync(list, options, cancellationToken);
    }
}
