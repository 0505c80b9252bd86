using System.Text;
using BiasFree.Engine.Chat;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using Microsoft.Extensions.AI;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests;

/// <summary>ids = Latin-1 bytes; 256 = BOS, 257 = EOS.</summary>
internal sealed class ByteTokenizer : ITextTokenizer
{
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens)
    {
        var ids = Encoding.Latin1.GetBytes(text).Select(b => (int)b).ToList();
        if (addSpecialTokens) ids.Insert(0, 256);
        return ids;
    }

    public string Decode(IEnumerable<int> ids) => Encoding.Latin1.GetString(ids.Where(i => i < 256).Select(i => (byte)i).ToArray());
    public int? BosId => 256;
    public IReadOnlyList<int> EosIds => [257];
}

internal sealed class PlainFormatter : IChatFormatter
{
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt) =>
        string.Concat(messages.Select(m => $"{m.Role.Value}: {m.Text}\n")) + (addGenerationPrompt ? "assistant: " : "");
}

public class ChatClientTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly CausalLM _model;
    private readonly EngineChatClient _client;
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;
    private static readonly ChatMessage[] Messages = [new(ChatRole.User, "Hi there")];

    public ChatClientTests()
    {
        using (var m = CausalLM.Create(TinyModels.Config("llama") with { VocabSize = 258, EosTokenIds = [257] }, ScalarType.Float32, "cpu", 5))
            m.Save(_dir.Path);
        _model = CausalLM.Load(_dir.Path);
        _client = new EngineChatClient(_model, new ByteTokenizer(), new PlainFormatter());
    }

    public void Dispose()
    {
        _client.Dispose();
        _model.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task GreedyResponseMatchesGenerateAndReportsUsage()
    {
        var response = await _client.GetResponseAsync(Messages, new ChatOptions { MaxOutputTokens = 6 }, _ct);
        var prompt = new ByteTokenizer().Encode("user: Hi there\nassistant: ", false);
        var expected = _model.Generate([prompt], new GenerationOptions { MaxNewTokens = 6, EosTokenIds = [257] }, _ct)[0];
        Assert.Equal(new ByteTokenizer().Decode(expected.Tokens), response.Text);
        Assert.Equal(prompt.Count, response.Usage!.InputTokenCount);
        Assert.Equal(expected.Tokens.Count, response.Usage.OutputTokenCount);
        Assert.Equal(prompt.Count + expected.Tokens.Count, response.Usage.TotalTokenCount);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
        Assert.Equal(ChatRole.Assistant, response.Messages[0].Role);
    }

    [Fact]
    public async Task SeedMakesSamplingReproducible()
    {
        ChatOptions Opts(long seed) => new() { MaxOutputTokens = 10, Temperature = 1.5f, TopP = 0.95f, TopK = 50, Seed = seed };
        var a = await _client.GetResponseAsync(Messages, Opts(1), _ct);
        var b = await _client.GetResponseAsync(Messages, Opts(1), _ct);
        var c = await _client.GetResponseAsync(Messages, Opts(2), _ct);
        Assert.Equal(a.Text, b.Text);
        Assert.NotEqual(a.Text, c.Text);
    }

    [Fact]
    public async Task StopSequencesCutTheText()
    {
        var full = await _client.GetResponseAsync(Messages, new ChatOptions { MaxOutputTokens = 8 }, _ct);
        string stop = full.Text.Substring(3, 2);
        var cut = await _client.GetResponseAsync(Messages, new ChatOptions { MaxOutputTokens = 8, StopSequences = [stop] }, _ct);
        Assert.Equal(full.Text[..full.Text.IndexOf(stop, StringComparison.Ordinal)], cut.Text);
        Assert.Equal(ChatFinishReason.Stop, cut.FinishReason);

        var streamed = new StringBuilder();
        await foreach (var u in _client.GetStreamingResponseAsync(Messages, new ChatOptions { MaxOutputTokens = 8, StopSequences = [stop] }, _ct))
            streamed.Append(u.Text);
        Assert.Equal(cut.Text, streamed.ToString());
    }

    [Fact]
    public async Task StreamingConcatenatesToTheSameTextWithUsage()
    {
        var options = new ChatOptions { MaxOutputTokens = 7 };
        var whole = await _client.GetResponseAsync(Messages, options, _ct);
        var updates = new List<ChatResponseUpdate>();
        await foreach (var u in _client.GetStreamingResponseAsync(Messages, options, _ct)) updates.Add(u);
        Assert.True(updates.Count > 1);
        Assert.Equal(whole.Text, string.Concat(updates.Select(u => u.Text)));
        var usage = updates.SelectMany(u => u.Contents).OfType<UsageContent>().Single();
        Assert.Equal(whole.Usage!.OutputTokenCount, usage.Details.OutputTokenCount);
        var combined = updates.ToChatResponse();
        Assert.Equal(whole.Text, combined.Text);
    }

    [Fact]
    public async Task ConcurrentRequestsAreBatchedAndMatchLoneRequests()
    {
        var options = new ChatOptions { MaxOutputTokens = 5 };
        var questions = new[] { "Hi", "How are you today?", "x", "Tell me more about it", "ok", "Why?" };
        var alone = new List<string>();
        foreach (var q in questions) alone.Add((await _client.GetResponseAsync([new ChatMessage(ChatRole.User, q)], options, _ct)).Text);
        var before = _client.Statistics;

        var many = await Task.WhenAll(questions.Select(q => _client.GetResponseAsync([new ChatMessage(ChatRole.User, q)], options, _ct)));
        Assert.Equal(alone, many.Select(r => r.Text));
        var after = _client.Statistics;
        Assert.Equal(questions.Length, after.Requests - before.Requests);
        Assert.True(after.Batches - before.Batches <= questions.Length);

        // Streaming requests share batches too and still assemble to the lone text.
        var streams = await Task.WhenAll(questions.Select(async q =>
        {
            var sb = new StringBuilder();
            await foreach (var u in _client.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, q)], options, _ct)) sb.Append(u.Text);
            return sb.ToString();
        }));
        Assert.Equal(alone, streams);
        var metadata = Assert.IsType<ChatClientMetadata>(_client.GetService(typeof(ChatClientMetadata)));
        Assert.Equal(("biasfree-engine", "biasfree-engine", (Uri?)null), (metadata.ProviderName, metadata.DefaultModelId, metadata.ProviderUri));
        using (var named = new EngineChatClient(_model, new ByteTokenizer(), new PlainFormatter(), new EngineChatClientOptions { ModelId = "tiny-llama" }))
            Assert.Equal("tiny-llama", named.GetService<ChatClientMetadata>()!.DefaultModelId);
        Assert.Same(_model, _client.GetService(typeof(CausalLM)));
    }

    [Fact]
    public async Task CancelledRequestThrows()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => _client.GetResponseAsync(Messages, new ChatOptions { MaxOutputTokens = 50 }, cts.Token));
        var ok = await _client.GetResponseAsync(Messages, new ChatOptions { MaxOutputTokens = 2 }, _ct);
        Assert.Equal(2, ok.Usage!.OutputTokenCount);
    }
}
