using BiasFree.Engine.Decoding;
using BiasFree.Engine.Evaluations;
using BiasFree.Evaluations;
using BiasFree.Methods;
using BiasFree.Reports;
using BiasFree.Runs;
using BiasFree.Targets;
using BiasFree.Tests.Cli;
using BiasFree.Tests.Infrastructure;
using BiasFree.Tests.Runs;
using Microsoft.Extensions.AI;

namespace BiasFree.Tests.Evaluations;

/// <summary>
/// DiffPO through the library's evaluation: the target answers (a loopback OpenAI-compatible server, or an in-process
/// model), the in-process aligner refines, and the run store keeps both answers and the refinement's counts.
/// </summary>
public class DiffPoEvaluationTests
{
    private const string ServerAnswer = "The retiree";

    private static async Task<List<ResultRecord>> Rows(RunStore store, string runId, CancellationToken ct)
    {
        var rows = new List<ResultRecord>();
        await foreach (var r in store.ReadResultsAsync(runId, ct)) rows.Add(r);
        return rows;
    }

    /// <summary>Runs none, diffpo and cot+diffpo on 3 probes against <paramref name="target"/> and checks every diffpo row against a direct refinement.</summary>
    private static async Task<List<ResultRecord>> RunAndCheck(EvaluationTarget target, DiffPoStrategy strategy, string dir, CancellationToken ct)
    {
        var registry = DiffPoMethods.Register(new MethodRegistry(MethodRegistry.Prompting), strategy);
        var evaluation = new Evaluation(["bbq"], DiffPoMethods.WithAligner(target, strategy))
        {
            RunId = "dp",
            Limit = 3,
            Methods = ["none", "diffpo", "cot+diffpo"],
            MethodRegistry = registry,
            Settings = new EvaluationSettings { MaxTokens = 6, Temperature = 0, Concurrency = 2 },
        };
        await using var store = await RunStore.OpenDirectoryAsync(dir, ct);
        var outcome = await evaluation.RunAsync(store, null, ct);
        Assert.True(outcome.IsComplete);
        Assert.Equal(6, strategy.Statistics.Replies); // diffpo and cot+diffpo, 3 probes each: the aligner ran once per answer
        var rows = await Rows(store, "dp", ct);
        Assert.Equal(9, rows.Count);

        foreach (var row in rows.Where(r => r.Method.EndsWith("diffpo", StringComparison.Ordinal)))
        {
            // Request 1 went to the target; request 2 is the refinement [conversation, the target's answer].
            Assert.Equal(2, row.Requests.Count);
            var original = row.Requests[0].Response!;
            var refinement = row.Requests[1];
            Assert.Equal(new RecordedMessage("assistant", original), refinement.Messages[^1]);
            Assert.Equal(row.Requests[0].Messages, refinement.Messages.Take(refinement.Messages.Count - 1));
            Assert.True(int.Parse(refinement.Details![DiffPoMethods.IterationsKey], System.Globalization.CultureInfo.InvariantCulture) >= 1);
            Assert.Equal(row.Response, refinement.Response);

            // The judged reply is exactly what the aligner makes of that conversation (reserve 0: no seed involved).
            var conversation = refinement.Messages.Select(m => new ChatMessage(new ChatRole(m.Role), m.Text)).ToList();
            var direct = await strategy.RefineAsync(conversation, new ChatOptions { MaxOutputTokens = 6 }, ct);
            Assert.Equal(direct.Text, row.Response);
        }
        // The random tiny aligner writes something else than the target did, so the refinement really replaced answers.
        Assert.Contains(rows.Where(r => r.Method == "diffpo"), r => r.Response != r.Requests[0].Response);

        var report = await RunReport.BuildAsync(store, "dp", cancellationToken: ct);
        Assert.Equal(["cot+diffpo", "diffpo"], report.DiffPo.Select(d => d.Method));
        Assert.All(report.DiffPo, d => Assert.Equal(3, d.Replies));
        Assert.Contains("## DiffPO refinement", ReportWriter.Render(report, ReportFormat.Markdown), StringComparison.Ordinal);
        return rows;
    }

    [Fact]
    public async Task DiffPoRefinesAnOpenAICompatibleServersAnswersWithTheInProcessAligner()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var alignerFolder = TinyModelFolder.Create(Path.Combine(dir.Path, "aligner"), seed: 9);
        await using var server = LoopbackChatServer.Start(ServerAnswer);
        using var strategy = DiffPoStrategy.Load(alignerFolder, new DiffPoSettings { ReserveTokens = 0, Window = 4 });
        var target = EvaluationTarget.OpenAICompatible(new OpenAICompatibleTargetOptions
        {
            Endpoint = server.BaseUrl, Model = "m", ApiKeyEnvironmentVariable = null, MaxRetries = 0,
        });

        var rows = await RunAndCheck(target, strategy, dir.Path, ct);

        // The server was asked once per (method, probe) and never saw a refinement: the aligner ran in-process.
        Assert.Equal(9, server.Requests.Count);
        Assert.All(server.Requests, q => Assert.DoesNotContain(q.Messages, m => m.Role == "assistant"));
        Assert.Equal(3, server.Requests.Count(q => q.Messages[^1].Content.Contains("step by step", StringComparison.Ordinal)));
        Assert.All(rows.Where(r => r.Method != "none"), r => Assert.Equal(ServerAnswer, r.Requests[0].Response));
    }

    [Fact]
    public void TheAlignerWrappedServerTargetKeepsItsRunRecord()
    {
        using var dir = new TempDir();
        var alignerFolder = TinyModelFolder.Create(Path.Combine(dir.Path, "aligner"), seed: 9);
        using var strategy = DiffPoStrategy.Load(alignerFolder, new DiffPoSettings { ReserveTokens = 0 });
        var target = EvaluationTarget.OpenAICompatible(new OpenAICompatibleTargetOptions
        {
            Endpoint = new Uri("http://127.0.0.1:9/v1"), AdditionalEndpoints = [new Uri("http://127.0.0.1:10/v1")], EndpointConcurrency = 3,
            Model = "m", ApiKeyEnvironmentVariable = null, MaxRetries = 2, Timeout = TimeSpan.FromSeconds(7),
        });
        var wrapped = DiffPoMethods.WithAligner(target, strategy);

        // Replicas, the per-endpoint limit and the token-limit field are part of the run record (and of a resume).
        var plain = new Evaluation(["bbq"], target).Spec;
        var spec = new Evaluation(["bbq"], wrapped).Spec;
        Assert.Equal(["http://127.0.0.1:10/v1"], spec.TargetReplicas!);
        Assert.Equal(plain.TargetReplicas, spec.TargetReplicas);
        Assert.Equal(3, spec.EndpointConcurrency);
        Assert.Equal(plain.MaxTokensField, spec.MaxTokensField);
        Assert.NotNull(spec.MaxTokensField);
        Assert.Equal((plain.TimeoutSeconds, plain.Retries, plain.TargetEndpoint, plain.TargetKind), (spec.TimeoutSeconds, spec.Retries, spec.TargetEndpoint, spec.TargetKind));
        Assert.Equal($"{target.CacheIdentity}|diffpo={strategy.CacheIdentity}", wrapped.CacheIdentity);
        using var client = wrapped.Open();
        Assert.IsType<DiffPoRefinementChatClient>(client);
    }

    [Fact]
    public async Task DiffPoRefinesAnInProcessTargetsAnswers()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var targetFolder = TinyModelFolder.Create(Path.Combine(dir.Path, "target"), seed: 5);
        var alignerFolder = TinyModelFolder.Create(Path.Combine(dir.Path, "aligner"), seed: 9);
        using var strategy = DiffPoStrategy.Load(alignerFolder, new DiffPoSettings { ReserveTokens = 0, Window = 4 });
        var rows = await RunAndCheck(LocalTargets.ModelFolder(targetFolder), strategy, dir.Path, ct);
        Assert.All(rows.Where(r => r.Method == "diffpo"), r => Assert.Equal(rows.Single(n => n.Method == "none" && n.ProbeId == r.ProbeId).Response, r.Requests[0].Response));
    }

    [Fact]
    public async Task WithoutTheRefinementClientTheStepRefinesByItselfAndTheCacheIdentityNamesTheAligner()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var alignerFolder = TinyModelFolder.Create(Path.Combine(dir.Path, "aligner"), seed: 9);
        await using var server = LoopbackChatServer.Start(ServerAnswer);
        using var strategy = DiffPoStrategy.Load(alignerFolder, new DiffPoSettings { ReserveTokens = 0 });
        using var target = OpenAICompatibleTarget.Create(new OpenAICompatibleTargetOptions { Endpoint = server.BaseUrl, Model = "m", ApiKeyEnvironmentVariable = null, MaxRetries = 0 });
        using var client = DiffPoMethods.Register(new MethodRegistry(MethodRegistry.Prompting), strategy).Apply(target, "diffpo");
        List<ChatMessage> question = [new(ChatRole.System, "You are a helpful assistant."), new(ChatRole.User, "Who forgot? 'The retiree' or 'The student'?")];
        var reply = await client.GetResponseAsync(question, new ChatOptions { MaxOutputTokens = 5 }, ct);
        var direct = await strategy.RefineAsync([.. question, new ChatMessage(ChatRole.Assistant, ServerAnswer)], new ChatOptions { MaxOutputTokens = 5 }, ct);
        Assert.Equal(direct.Text, reply.Text);
        Assert.NotNull(reply.AdditionalProperties?[DiffPoMethods.ChangedTokensKey]);
        Assert.Single(server.Requests);

        // Another aligner or other settings must not be answered from this one's cache.
        var baseTarget = EvaluationTarget.Custom(target, "m", cacheIdentity: "server");
        using var other = DiffPoStrategy.Load(alignerFolder, new DiffPoSettings { ReserveTokens = 3 });
        Assert.NotEqual(DiffPoMethods.WithAligner(baseTarget, strategy).CacheIdentity, DiffPoMethods.WithAligner(baseTarget, other).CacheIdentity);
        Assert.StartsWith(baseTarget.CacheIdentity + "|diffpo=", DiffPoMethods.WithAligner(baseTarget, strategy).CacheIdentity, StringComparison.Ordinal);
    }
}
