using System.Collections.Concurrent;
using BiasFree.Engine.DemoModel;
using BiasFree.Mitigations;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.Tests.DemoModel;

/// <summary>
/// The model card's measurements must seed each inner request on its own: Self-Reflection asks twice per probe, and two
/// requests sampled with the same seed draw the same random numbers, which made the second answer track the first (the
/// card showed Self-Reflection equal to no method on every model until this was fixed).
/// </summary>
public class DemoModelEvaluationSeedTests
{
    /// <summary>Records the seed of every request and answers "Cannot be determined." (a boundary stand-in for a model).</summary>
    private sealed class SeedRecorder : IChatClient
    {
        public ConcurrentBag<(string LastUser, int Turns, long? Seed)> Calls { get; } = [];

        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            var list = messages.ToList();
            Calls.Add((list.First(m => m.Role == ChatRole.User).Text, list.Count(m => m.Role == ChatRole.User), options?.Seed));
            return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, "Cannot be determined.")));
        }

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose() { }
    }

    [Fact]
    public async Task SelfReflectionsTwoRequestsGetDifferentSeeds_Reproducibly()
    {
        var ct = TestContext.Current.CancellationToken;
        var first = new SeedRecorder();
        await DemoModelEvaluation.ChoiceAsync(first, PromptingMitigations.SelfReflection, "two", 0.22, 6, 7, 1, null, ct);
        var byProbe = first.Calls.GroupBy(c => c.LastUser).ToList();
        Assert.Equal(6, byProbe.Count);
        foreach (var g in byProbe)
        {
            var calls = g.OrderBy(c => c.Turns).ToList();
            Assert.Equal([1, 2], calls.Select(c => c.Turns));
            Assert.All(calls, c => Assert.NotNull(c.Seed));
            Assert.NotEqual(calls[0].Seed, calls[1].Seed);
        }
        Assert.Equal(6, first.Calls.Where(c => c.Turns == 1).Select(c => c.Seed).Distinct().Count());

        var again = new SeedRecorder();
        await DemoModelEvaluation.ChoiceAsync(again, PromptingMitigations.SelfReflection, "two", 0.22, 6, 7, 1, null, ct);
        Assert.Equal(first.Calls.Select(c => (c.LastUser, c.Turns, c.Seed)).Order(), again.Calls.Select(c => (c.LastUser, c.Turns, c.Seed)).Order());
    }
}
