using System.Text.Json.Nodes;
using BiasFree.Evaluations;
using BiasFree.Reports;
using BiasFree.Runs;
using BiasFree.Targets;
using BiasFree.Tests.Infrastructure;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Targets;

/// <summary>The token limit goes out under the field the server reads, and the report says what was sent.</summary>
public class MaxTokensFieldTests
{
    private static Evaluation Run(Uri endpoint, string runId, MaxTokensParameter parameter, float? temperature) =>
        new(["bbq"], EvaluationTarget.OpenAICompatible(new OpenAICompatibleTargetOptions
        {
            Endpoint = endpoint, Model = "m", ApiKeyEnvironmentVariable = null, MaxRetries = 0, Timeout = TimeSpan.FromSeconds(20),
            MaxTokensParameter = parameter,
        }))
        {
            RunId = runId,
            Limit = 3,
            Settings = new EvaluationSettings { Temperature = temperature, MaxTokens = 77, Concurrency = 2 },
        };

    [Theory]
    [InlineData(MaxTokensParameter.Auto, "max_tokens")]
    [InlineData(MaxTokensParameter.MaxTokens, "max_tokens")]
    [InlineData(MaxTokensParameter.MaxCompletionTokens, "max_completion_tokens")]
    public async Task TheRequestCarriesTheLimitUnderOneFieldAndTheReportNamesIt(MaxTokensParameter parameter, string field)
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        await using var server = LoopbackChatServer.Start("Unknown");
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);

        await Run(server.BaseUrl, "r", parameter, temperature: null).RunAsync(store, cancellationToken: ct);
        Assert.Equal(3, server.Requests.Count);
        foreach (var request in server.Requests)
        {
            var json = JsonNode.Parse(request.Body)!.AsObject();
            Assert.Equal(77, json[field]!.GetValue<int>());
            var other = field == "max_tokens" ? "max_completion_tokens" : "max_tokens";
            Assert.False(json.ContainsKey(other), request.Body);
            // No temperature was set, so none is sent.
            Assert.False(json.ContainsKey("temperature"), request.Body);
        }

        // The stored spec reads back as "no temperature", not as 0, and the report says what went out.
        var spec = (await store.GetRunAsync("r", ct))!;
        Assert.Null(spec.Generation.Temperature);
        Assert.Equal(field, spec.MaxTokensField);
        var md = ReportWriter.ToMarkdown(await RunReport.BuildAsync(store, "r", cancellationToken: ct));
        Assert.Contains($"| Generation | no temperature sent (the target's default), seed 0, {field.Replace("_", "\\_", StringComparison.Ordinal)} 77 |", md, StringComparison.Ordinal);

        // A resume rebuilds the same settings: still no temperature, the same field.
        var resumed = Evaluation.FromSpec(spec);
        Assert.Null(resumed.Spec.Generation.Temperature);
        Assert.Equal(field, resumed.Spec.MaxTokensField);
        Assert.Empty(Evaluation.Differences(spec, resumed.Spec));
    }

    [Fact]
    public void AutoSendsMaxCompletionTokensOnlyToOpenAIsHosts()
    {
        Assert.Equal("max_completion_tokens", MaxTokensParameters.FieldFor(MaxTokensParameter.Auto, new Uri("https://api.openai.com/v1")));
        Assert.Equal("max_completion_tokens", MaxTokensParameters.FieldFor(MaxTokensParameter.Auto, new Uri("https://me.openai.azure.com/openai/v1")));
        Assert.Equal("max_tokens", MaxTokensParameters.FieldFor(MaxTokensParameter.Auto, new Uri("http://127.0.0.1:8000/v1")));
    }

    [Fact]
    public async Task ASetTemperatureIsSentAndReported()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        await using var server = LoopbackChatServer.Start("Unknown");
        await using var store = await RunStore.OpenDirectoryAsync(dir.Path, ct);
        await Run(server.BaseUrl, "t", MaxTokensParameter.Auto, temperature: 0).RunAsync(store, cancellationToken: ct);
        Assert.All(server.Requests, r => Assert.Equal(0, r.Temperature));
        var md = ReportWriter.ToMarkdown(await RunReport.BuildAsync(store, "t", cancellationToken: ct));
        Assert.Contains("| Generation | temperature 0, seed 0, max\\_tokens 77 |", md, StringComparison.Ordinal);
    }

    [Theory]
    // What the SDK sends: the name at the top level, and the same words inside a message and a nested object.
    [InlineData("{\"messages\":[{\"role\":\"user\",\"content\":\"say \\\"max_completion_tokens\\\": 5\"}],\"model\":\"m\",\"max_completion_tokens\":77,\"extra\":{\"max_completion_tokens\":1}}", true)]
    [InlineData("{\"max_completion_tokens\":77}", true)]
    [InlineData("{ \"model\" : \"m\" , \"max_completion_tokens\" : 12 , \"seed\" : [1, {\"max_completion_tokens\":2}] }", true)]
    // Only nested, or not at all: nothing to rename.
    [InlineData("{\"model\":\"m\",\"extra\":{\"max_completion_tokens\":1}}", false)]
    [InlineData("{\"model\":\"m\"}", false)]
    [InlineData("[{\"max_completion_tokens\":1}]", false)]
    // The name spelled with an escape, or both names: the tree path.
    [InlineData("{\"max_completion_\\u0074okens\":9}", true)]
    [InlineData("{\"max_tokens\":3,\"max_completion_tokens\":9}", true)]
    public void TheRenamedBodyHasTheLimitUnderMaxTokensAndEverythingElseAsSent(string body, bool renamed)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(body);
        var result = MaxTokensFieldHandler.Rewrite(bytes);
        if (!renamed)
        {
            Assert.Null(result);
            return;
        }
        Assert.NotNull(result);
        var before = JsonNode.Parse(body)!.AsObject();
        var after = JsonNode.Parse(result)!.AsObject();
        var limit = before["max_completion_tokens"]!.DeepClone();
        before.Remove("max_completion_tokens");
        before["max_tokens"] = limit;
        // The same members with the same values (order aside), the limit under max_tokens only.
        Assert.False(after.ContainsKey("max_completion_tokens"));
        Assert.Equal(before.Count, after.Count);
        foreach (var (name, value) in before)
        {
            Assert.True(JsonNode.DeepEquals(value, after[name]), name);
        }
    }
}
