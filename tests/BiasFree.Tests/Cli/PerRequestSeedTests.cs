using BiasFree.Targets;
using Microsoft.Extensions.AI;

namespace BiasFree.Tests.Cli;

/// <summary>In-process targets get a sampling seed per request, derived from the run's seed and the messages.</summary>
public class PerRequestSeedTests
{
    private sealed class SeedRecorder : IChatClient
    {
        public List<long?> Seeds { get; } = [];

        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            Seeds.Add(options?.Seed);
            return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, "ok")));
        }

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }

    [Fact]
    public async Task EachRequestGetsARepeatableSeedOfItsOwn()
    {
        var ct = TestContext.Current.CancellationToken;
        var inner = new SeedRecorder();
        using var client = new PerRequestSeedChatClient(inner);
        ChatMessage[] a = [new(ChatRole.System, "s"), new(ChatRole.User, "question A")];
        ChatMessage[] b = [new(ChatRole.System, "s"), new(ChatRole.User, "question B")];
        var options = new ChatOptions { Seed = 4, Temperature = 1 };

        await client.GetResponseAsync(a, options, ct);
        await client.GetResponseAsync(b, options, ct);
        await client.GetResponseAsync(a, options, ct);
        await client.GetResponseAsync(a, new ChatOptions { Seed = 5 }, ct);
        await client.GetResponseAsync(a, new ChatOptions(), ct);

        Assert.NotEqual(inner.Seeds[0], inner.Seeds[1]); // different probes draw different numbers
        Assert.Equal(inner.Seeds[0], inner.Seeds[2]);    // the same request, the same seed: reproducible
        Assert.NotEqual(inner.Seeds[0], inner.Seeds[3]); // the run's seed matters
        Assert.Null(inner.Seeds[4]);                     // no seed, none made up
        Assert.All(inner.Seeds.Take(4), s => Assert.True(s >= 0));
        Assert.Equal(4, options.Seed);                   // the caller's options are not changed
    }
}
