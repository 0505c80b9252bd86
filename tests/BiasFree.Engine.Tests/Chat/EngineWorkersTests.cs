using BiasFree.Engine.Chat;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Lora;
using BiasFree.Engine.Models;
using Microsoft.Extensions.AI;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests.Chat;

/// <summary>
/// Several model workers in one <see cref="EngineChatClient"/>: replicas compute what the model computes, a seeded
/// request's tokens do not depend on the number of workers or on which worker ran it, hooked requests stay on the given
/// model, statistics add up, and each worker's thread keeps its own torch thread count.
/// </summary>
public class EngineWorkersTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly CausalLM _model;
    private readonly CancellationToken _ct = TestContext.Current.CancellationToken;

    public EngineWorkersTests() => _model = TinyModels.SavedAndLoaded("llama", _dir);

    public void Dispose()
    {
        _model.Dispose();
        _dir.Dispose();
    }

    private EngineChatClient Client(int workers, long? seed = null, long kvCacheBytes = ContinuousBatchOptions.DefaultKvCacheBytes) =>
        new(_model, new ByteTokenizer97(), new PlainFormatter97(), new EngineChatClientOptions { Workers = workers, Seed = seed, KvCacheBytes = kvCacheBytes });

    /// <summary>
    /// Forty requests in groups of four that share a context (like a BBQ context's questions), with different sampling
    /// settings and seeds; every fifth is greedy.
    /// </summary>
    private static List<(string Text, ChatOptions Options)> Requests() =>
        Enumerable.Range(0, 40).Select(i => (
            $"context {i / 4} about {(char)('a' + i / 4)}{new string('x', i / 4 % 5)}; question {i % 4}",
            new ChatOptions
            {
                MaxOutputTokens = 6 + i % 7,
                Temperature = i % 5 == 0 ? 0 : 0.6f + 0.1f * (i % 6),
                TopK = i % 3 == 0 ? 12 : null,
                TopP = i % 4 == 1 ? 0.85f : null,
                Seed = 500 + i,
            })).ToList();

    private async Task<string[]> AnswerAll(EngineChatClient client) =>
        (await Task.WhenAll(Requests().Select(r => client.GetResponseAsync([new ChatMessage(ChatRole.User, r.Text)], r.Options, _ct))))
        .Select(r => r.Text).ToArray();

    [Fact]
    public async Task TwoWorkersGiveTheSameTokensAsOneForSeededAndGreedyRequests()
    {
        string[] one, two;
        using (var single = Client(1)) one = await AnswerAll(single);
        using (var pair = Client(2))
        {
            Assert.Equal(2, pair.Workers);
            two = await AnswerAll(pair);
            // Both workers served requests, so the equality below compares replicas with the given model.
            var perWorker = pair.WorkerStatistics;
            Assert.Equal(2, perWorker.Count);
            Assert.All(perWorker, s => Assert.True(s.Completed > 0, "a worker served no request"));
            Assert.Equal(40, perWorker.Sum(s => s.Completed));
        }
        Assert.Equal(one, two);
        // The seeds matter: the texts are not all alike, so the equality is not trivially true.
        Assert.True(one.Distinct().Count() > 20, $"only {one.Distinct().Count()} distinct replies");
    }

    [Fact]
    public async Task UnseededRequestsDrawTheSameClientStreamWithTwoWorkers()
    {
        async Task<string[]> Run(int workers)
        {
            using var client = new EngineChatClient(_model, new ByteTokenizer97(), new PlainFormatter97(),
                new EngineChatClientOptions { Workers = workers, Seed = 9, DefaultTemperature = 1 });
            var texts = new List<string>();
            for (int i = 0; i < 6; i++) texts.Add((await client.GetResponseAsync([new ChatMessage(ChatRole.User, $"abc {i}")], new ChatOptions { MaxOutputTokens = 8 }, _ct)).Text);
            return [.. texts];
        }
        Assert.Equal(await Run(1), await Run(2));
    }

    [Fact]
    public async Task PromptsSharingAContextGoToOneWorkerSoPrefixSharingStillFindsThem()
    {
        using var client = Client(2);
        await AnswerAll(client);
        using var single = Client(1);
        await AnswerAll(single);
        // All requests are queued at once: with contexts split across workers, far fewer positions would be shared.
        var shared = client.Statistics.SharedPromptTokens;
        Assert.True(shared > 0);
        Assert.True(shared >= single.Statistics.SharedPromptTokens * 0.75,
            $"two workers shared {shared} prompt positions, one worker {single.Statistics.SharedPromptTokens}");
    }

    [Fact]
    public async Task AModelWideHookKeepsEveryRequestOnTheGivenModel()
    {
        // A hook registered on the given model (steering) must act on every request: with two workers they all run there.
        using var generator = new TorchSharp.torch.Generator(3);
        using var shift = randn([_model.Config.HiddenSize], generator: generator) * 4;
        Func<int, Tensor, Tensor> steer = (layer, h) => layer == 0 ? h + shift : h;
        string[] expected;
        _model.OnLayer = steer;
        try
        {
            using (var single = Client(1)) expected = await AnswerAll(single);
            using var pair = Client(2);
            Assert.Equal(expected, await AnswerAll(pair));
            Assert.Equal(0, pair.WorkerStatistics[1].Completed);
        }
        finally
        {
            _model.OnLayer = null;
        }
        using var unsteered = Client(1);
        Assert.NotEqual(expected, await AnswerAll(unsteered));
    }

    [Fact]
    public async Task RequestsWithTheirOwnHooksRunOnWorkerZero()
    {
        using var client = Client(2);
        int calls = 0;
        var hooks = new EngineRequestHooks
        {
            CreateOnLayer = _ => (layer, h) =>
            {
                Interlocked.Increment(ref calls);
                return h;
            },
        };
        var tasks = Enumerable.Range(0, 12).Select(i => client.GetResponseAsync([new ChatMessage(ChatRole.User, $"hooked {i}")],
            new ChatOptions { MaxOutputTokens = 4, Seed = i, Temperature = 1, AdditionalProperties = new() { [EngineChatClient.RequestHooksKey] = hooks } }, _ct));
        await Task.WhenAll(tasks);
        Assert.True(calls > 0);
        Assert.Equal(12, client.WorkerStatistics[0].Completed);
        Assert.Equal(0, client.WorkerStatistics[1].Completed);
    }

    [Fact]
    public async Task StatisticsAddUpOverWorkersAndTheBudgetIsSplit()
    {
        using var probe = SlotKVCache.For(_model);
        long budget = probe.BytesPerToken * 400;
        using var client = Client(2, kvCacheBytes: budget);
        await AnswerAll(client);
        var parts = client.WorkerStatistics;
        var all = client.Statistics;
        Assert.Equal(2, all.Workers);
        Assert.Equal(40, all.Requests);
        Assert.Equal(parts.Sum(p => p.GeneratedTokens), all.GeneratedTokens);
        Assert.Equal(parts.Sum(p => p.DecodeRowSteps), all.DecodeRowSteps);
        Assert.Equal(parts.Max(p => p.LargestBatch), all.LargestBatch);
        Assert.Equal(budget, all.CacheBudgetBytes);
        Assert.All(parts, p => Assert.Equal(budget / 2, p.CacheBudgetBytes));
        Assert.True(all.PeakCacheBytes <= budget, $"peak {all.PeakCacheBytes} > budget {budget}");
        Assert.Equal(0, all.ReservedTokens);
        // The client's busy time covers the workers' overlapping busy periods once.
        Assert.True(all.BusySeconds > 0 && all.BusySeconds <= parts.Sum(p => p.BusySeconds) + 1e-6);
        Assert.Equal(1, all.BusyPeriods);
        Assert.Contains("×2", all.Describe());
    }

    [Fact]
    public void CombineAddsCountsAndKeepsTheLargestOfMaxima()
    {
        var a = new BatchStatistics { MaxBatchSize = 32, CacheBudgetBytes = 100, CacheBytesPerToken = 4, Completed = 3, DecodeSteps = 10, DecodeRowSteps = 40, LargestBatch = 5, MaxQueueWaitSeconds = 0.5, PeakCacheBytes = 60, PromptTokens = 30, SharedPromptTokens = 10, GeneratedTokens = 7 };
        var b = new BatchStatistics { MaxBatchSize = 32, CacheBudgetBytes = 100, CacheBytesPerToken = 4, Completed = 2, DecodeSteps = 30, DecodeRowSteps = 60, LargestBatch = 8, MaxQueueWaitSeconds = 0.25, PeakCacheBytes = 30, PromptTokens = 50, SharedPromptTokens = 30, GeneratedTokens = 13 };
        var c = BatchStatistics.Combine([a, b], busySeconds: 4, busyPeriods: 2);
        Assert.Equal(2, c.Workers);
        Assert.Equal(5, c.Requests);
        Assert.Equal(2.5, c.MeanBatchRows); // 100 rows over 40 worker steps
        Assert.Equal(8, c.LargestBatch);
        Assert.Equal(0.5, c.MaxQueueWaitSeconds);
        Assert.Equal(200, c.CacheBudgetBytes);
        Assert.Equal(90, c.PeakCacheBytes);
        Assert.Equal(5, c.TokensPerSecond); // 20 tokens in 4 busy seconds
        Assert.Equal(1.0 / 3, c.SharedPromptFraction, 12); // 40 copied of 120 positions
        Assert.Equal(32, c.MaxBatchSize);
        Assert.DoesNotContain("×", a.Describe());
    }

    [Fact]
    public async Task EachWorkerThreadRunsItsShareOfTorchThreadsAndTheProcessDefaultStays()
    {
        int before = get_num_threads();
        using var client = Client(2);
        int onWorker = 0;
        var hooks = new EngineRequestHooks
        {
            // Runs on worker 0's thread (hooked requests go there).
            CreateOnLayer = _ => (layer, h) =>
            {
                onWorker = get_num_threads();
                return h;
            },
        };
        await client.GetResponseAsync([new ChatMessage(ChatRole.User, "threads")],
            new ChatOptions { MaxOutputTokens = 2, AdditionalProperties = new() { [EngineChatClient.RequestHooksKey] = hooks } }, _ct);
        Assert.Equal(Math.Max(1, before / 2), onWorker);
        Assert.Equal(before, get_num_threads());
        // A thread started afterwards inherits the process default, not the workers' share.
        int fresh = await Task.Factory.StartNew(() => get_num_threads(), _ct, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        Assert.Equal(before, fresh);
    }

    [Fact]
    public void AReplicaComputesTheSameLogitsAndOwnsItsWeights()
    {
        using var replica = _model.Replicate();
        using var ids = _model.IdsTensor([[1, 5, 17, 42, 8, 93, 3]]);
        using var a = _model.Forward(ids);
        using var b = replica.Forward(ids);
        Assert.True(a.Logits.equal(b.Logits).all().item<bool>(), "the replica's logits differ");
        using (no_grad()) replica.named_parameters().First().parameter.add_(1);
        using var c = _model.Forward(ids);
        Assert.True(a.Logits.equal(c.Logits).all().item<bool>(), "changing the replica changed the model");
    }

    [Fact]
    public void ModelsThatCannotBeSplitRunOneWorker()
    {
        // A LoRA-wrapped model has no exact replica; client-wide logits processors are shared by all requests.
        using var loraDir = new TempDir();
        using var lora = TinyModels.SavedAndLoaded("llama", loraDir);
        LoraAdapter.Apply(lora, new LoraOptions { Rank = 2, Alpha = 4, TargetModules = ["q_proj"], Seed = 1 });
        Assert.False(lora.CanReplicate);
        Assert.Throws<NotSupportedException>(() => lora.Replicate());
        using (var client = new EngineChatClient(lora, new ByteTokenizer97(), new PlainFormatter97(), new EngineChatClientOptions { Workers = 2 }))
            Assert.Equal(1, client.Workers);
        Assert.Equal(1, EngineChatClient.AutoWorkers(lora));
        var processor = new DelegateLogitsProcessor((l, _) => l);
        using (var client = new EngineChatClient(_model, new ByteTokenizer97(), new PlainFormatter97(), new EngineChatClientOptions { Workers = 2, LogitsProcessors = [processor] }))
            Assert.Equal(1, client.Workers);
    }

    [Fact]
    public void AutoWorkersGivesOnePerCoreWhenEachShareHoldsAFullContext()
    {
        Assert.Equal(Math.Clamp(Environment.ProcessorCount, 1, EngineChatClient.MaxAutoWorkers), EngineChatClient.AutoWorkers(_model));
        using var probe = SlotKVCache.For(_model);
        long oneContext = probe.BytesFor(1, _model.Config.MaxPositionEmbeddings);
        Assert.Equal(1, EngineChatClient.AutoWorkers(_model, oneContext));
        Assert.Equal(Math.Min(2, Math.Clamp(Environment.ProcessorCount, 1, EngineChatClient.MaxAutoWorkers)), EngineChatClient.AutoWorkers(_model, 2 * oneContext + 1));
    }
}
