using System.Text.Json;
using BiasFree.Engine.Chat;
using BiasFree.Engine.DemoModel;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using BiasFree.Engine.Tokenization;
using BiasFree.Tests.Infrastructure;
using BiasFree.Tests.Runs;
using Microsoft.Extensions.AI;

namespace BiasFree.Tests.Cli;

/// <summary>
/// The real CLI with the embedded demo model (no --target), local-model options, --no-cache and the demo-model
/// commands. The demo model is a tiny random model made here, found through BIASFREE_DEMO_MODEL.
/// </summary>
public class DemoModelCliTests
{
    private static Dictionary<string, string?> DemoAt(string folder) => new() { [DemoModel.PathEnvironmentVariable] = folder };

    private static List<string> Responses(string jsonl) =>
        [.. jsonl.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonDocument.Parse(l).RootElement)
            .OrderBy(r => r.GetProperty("probeId").GetString(), StringComparer.Ordinal)
            .Select(r => r.GetProperty("response").GetString()!)];

    [Fact]
    public async Task RunWithoutTargetUsesTheDemoModelSampledAndSeededAndResumesWithItsStoredPath()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var demo = TinyModelFolder.Create(Path.Combine(dir.Path, "my-demo"));
        string[] common = ["--suite", "bbq", "--limit", "3", "--max-tokens", "6", "--seed", "4", "--runs-dir", dir.Path];

        var run = await CliProcess.RunAsync(["run", .. common, "--run-id", "demo"], dir.Path, ct, TimeSpan.FromSeconds(120), DemoAt(demo));
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains($"against {DemoModel.ModelId} ({demo})", run.StdOut, StringComparison.Ordinal);

        var report = await EndToEndTests.JsonReport(dir.Path, "demo", ct);
        var spec = report.GetProperty("run");
        Assert.Equal(DemoModel.ModelId, spec.GetProperty("model").GetString());
        Assert.Equal(demo, spec.GetProperty("targetEndpoint").GetString());
        Assert.True(spec.GetProperty("local").GetProperty("demoModel").GetBoolean());
        Assert.Equal(DemoModel.DefaultTemperature, spec.GetProperty("generation").GetProperty("temperature").GetSingle());
        Assert.False(spec.GetProperty("noCache").GetBoolean());
        Assert.Equal(3, EndToEndTests.Row(report, "none").GetProperty("responses").GetInt32());
        Assert.Equal(DemoModel.ModelId, EndToEndTests.Row(report, "none").GetProperty("model").GetString());

        // Sampled at temperature 1 with --seed: a second run that really asks the model again gives the same replies.
        var again = await CliProcess.RunAsync(["run", .. common, "--run-id", "again", "--no-cache"], dir.Path, ct, TimeSpan.FromSeconds(120), DemoAt(demo));
        Assert.True(again.ExitCode == 0, again.ToString());
        var first = await CliProcess.RunAsync(["report", "demo", "--format", "jsonl", "--runs-dir", dir.Path], dir.Path, ct);
        var second = await CliProcess.RunAsync(["report", "again", "--format", "jsonl", "--runs-dir", dir.Path], dir.Path, ct);
        Assert.Equal(Responses(first.StdOut), Responses(second.StdOut));
        Assert.Contains("\"cached\":false", second.StdOut, StringComparison.Ordinal);
        Assert.DoesNotContain("\"cached\":true", second.StdOut, StringComparison.Ordinal);

        // Resume rebuilds the same target from the run spec: the environment no longer points at the model.
        var resumed = await CliProcess.RunAsync(["run", "--resume", "demo", "--runs-dir", dir.Path], dir.Path, ct, TimeSpan.FromSeconds(120),
            DemoAt(Path.Combine(dir.Path, "gone")));
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Contains($"against {DemoModel.ModelId} ({demo})", resumed.StdOut, StringComparison.Ordinal);
        Assert.Contains("resumed 3", resumed.StdOut, StringComparison.Ordinal);

        // A run spec's demo model that has gone away is a user error, not a crash.
        Directory.Delete(demo, recursive: true);
        var lost = await CliProcess.RunAsync(["run", "--resume", "demo", "--runs-dir", dir.Path], dir.Path, ct, TimeSpan.FromSeconds(120));
        Assert.True(lost.ExitCode == 1, lost.ToString());
        Assert.Contains("no demo model at", lost.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoTargetAndNoDemoModelIsAOneLineUserError()
    {
        using var dir = new TempDir();
        var missing = Path.Combine(dir.Path, "no-model-here");
        var r = await CliProcess.RunAsync(["run", "--runs-dir", dir.Path], dir.Path, TestContext.Current.CancellationToken, environment: DemoAt(missing));
        Assert.True(r.ExitCode == 1, r.ToString());
        var line = Assert.Single(r.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains($"no demo model at {missing}", line, StringComparison.Ordinal);
        Assert.Contains("biasfree demo-model train", line, StringComparison.Ordinal);
        Assert.Contains("--target", line, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir.Path, BiasFree.Runs.RunStore.FileName)), "no run is recorded");
    }

    [Fact]
    public async Task AnUndetectableChatTemplateAsksForChatTemplateAndTheOverrideIsStored()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var folder = TinyModelFolder.Create(Path.Combine(dir.Path, "no-template"));
        TinyModelFolder.RemoveChatTemplate(folder);
        string[] common = ["run", "--target", folder, "--suite", "bbq", "--limit", "2", "--max-tokens", "3", "--runs-dir", dir.Path];

        var missing = await CliProcess.RunAsync([.. common, "--run-id", "t0"], dir.Path, ct, TimeSpan.FromSeconds(120));
        Assert.True(missing.ExitCode == 1, missing.ToString());
        Assert.Contains("--chat-template llama3|chatml|qwen2|mistral", missing.StdErr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", missing.StdErr, StringComparison.Ordinal);

        var unknown = await CliProcess.RunAsync([.. common, "--run-id", "t1", "--chat-template", "alpaca"], dir.Path, ct, TimeSpan.FromSeconds(120));
        Assert.True(unknown.ExitCode == 1, unknown.ToString());
        Assert.Contains("unknown --chat-template 'alpaca'", unknown.StdErr, StringComparison.Ordinal);

        var badDType = await CliProcess.RunAsync([.. common, "--run-id", "t2", "--dtype", "int8"], dir.Path, ct, TimeSpan.FromSeconds(120));
        Assert.True(badDType.ExitCode == 1, badDType.ToString());
        Assert.Contains("float32 or bfloat16", badDType.StdErr, StringComparison.Ordinal);

        var ok = await CliProcess.RunAsync([.. common, "--run-id", "t3", "--chat-template", "LLAMA3", "--dtype", "bfloat16", "--device", "cpu"], dir.Path, ct, TimeSpan.FromSeconds(120));
        Assert.True(ok.ExitCode == 0, ok.ToString());
        var spec = (await EndToEndTests.JsonReport(dir.Path, "t3", ct)).GetProperty("run");
        var local = spec.GetProperty("local");
        Assert.Equal("llama3", local.GetProperty("chatTemplate").GetString());
        Assert.Equal("bfloat16", local.GetProperty("dtype").GetString());
        Assert.Equal("cpu", local.GetProperty("device").GetString());
        Assert.False(local.GetProperty("demoModel").GetBoolean());
        Assert.Equal(0f, spec.GetProperty("generation").GetProperty("temperature").GetSingle()); // greedy for a model folder

        // The stored template is used on resume (the folder still has none to detect).
        var resumed = await CliProcess.RunAsync(["run", "--resume", "t3", "--runs-dir", dir.Path], dir.Path, ct, TimeSpan.FromSeconds(120));
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        var drop = await CliProcess.RunAsync(["run", "--resume", "t3", "--runs-dir", dir.Path, "--chat-template", "chatml"], dir.Path, ct);
        Assert.True(drop.ExitCode == 1, drop.ToString());
        Assert.Contains("drop --chat-template", drop.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LocalModelOptionsAreRefusedForAServer()
    {
        using var dir = new TempDir();
        var r = await CliProcess.RunAsync(["run", "--target", "http://127.0.0.1:1/v1", "--model", "m", "--dtype", "bfloat16"], dir.Path, TestContext.Current.CancellationToken);
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains("apply only to a local model folder or the demo model", r.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NoCacheSendsEveryRequestToTheTargetAgainAndUnsetTemperatureIsNotSent()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var probes = EndToEndTests.Probes(6);
        var script = new ScriptedTarget(probes);
        await using var server = LoopbackChatServer.Start(req => script.Answer(req));

        var first = await CliProcess.RunAsync(EndToEndTests.RunArgs(server, dir.Path, "c1", "none", 6), dir.Path, ct);
        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Equal(6, server.Requests.Count);

        // Same settings, new run: every reply comes from the cache.
        var cached = await CliProcess.RunAsync(EndToEndTests.RunArgs(server, dir.Path, "c2", "none", 6), dir.Path, ct);
        Assert.True(cached.ExitCode == 0, cached.ToString());
        Assert.Equal(6, server.Requests.Count);

        // --no-cache: every request reaches the target again, and the spec says so.
        var fresh = await CliProcess.RunAsync([.. EndToEndTests.RunArgs(server, dir.Path, "c3", "none", 6), "--no-cache"], dir.Path, ct);
        Assert.True(fresh.ExitCode == 0, fresh.ToString());
        Assert.Equal(12, server.Requests.Count);
        Assert.True((await EndToEndTests.JsonReport(dir.Path, "c3", ct)).GetProperty("run").GetProperty("noCache").GetBoolean());

        // No --temperature: none is sent, so the server's default applies; an explicit one is sent as given.
        Assert.All(server.Requests, r => Assert.Null(r.Temperature));
        var warm = await CliProcess.RunAsync([.. EndToEndTests.RunArgs(server, dir.Path, "c4", "none", 6), "--temperature", "0.5"], dir.Path, ct);
        Assert.True(warm.ExitCode == 0, warm.ToString());
        Assert.Equal(18, server.Requests.Count);
        Assert.All(server.Requests.Skip(12), r => Assert.Equal(0.5, r.Temperature!.Value, 6));
    }

    [Fact]
    public async Task DemoModelTrainWritesALoadableModelFolderThatEvalMeasures()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var output = Path.Combine(dir.Path, "trained");
        var train = await CliProcess.RunAsync(
            ["demo-model", "train", "--output", output, "--seed", "3", "--steps", "3", "--batch-size", "2", "--hidden-size", "16", "--layers", "1",
             "--heads", "2", "--vocab-size", "300", "--learning-rate", "0.01", "--stereotype-rate", "0.5"], dir.Path, ct, TimeSpan.FromSeconds(120));
        Assert.True(train.ExitCode == 0, train.ToString());
        Assert.Contains($"Wrote the demo model to {output}", train.StdOut, StringComparison.Ordinal);
        Assert.Contains("step 3/3", train.StdOut, StringComparison.Ordinal);
        foreach (var file in new[] { "config.json", "model.safetensors", "tokenizer.json" })
        {
            Assert.True(File.Exists(Path.Combine(output, file)), file);
        }
        using (var client = LocalModel.Load(output))
        {
            var reply = await client.GetResponseAsync([new ChatMessage(ChatRole.User, "Who?")], new ChatOptions { MaxOutputTokens = 2, Temperature = 0 }, ct);
            // The folder's own pieces give the same greedy continuation of the ChatML-rendered prompt.
            var tokenizer = HfTokenizer.FromFolder(output);
            using var lm = CausalLM.Load(output);
            var prompt = tokenizer.Encode(ChatTemplate.ChatML.Render([("user", "Who?")], addGenerationPrompt: true), addSpecialTokens: false);
            var greedy = lm.Generate([prompt], new GenerationOptions { MaxNewTokens = 2, EosTokenIds = [.. tokenizer.EosIds.Concat(lm.EosTokenIds)] }, ct)[0];
            Assert.Equal(tokenizer.Decode(greedy.Tokens), reply.Text);
            Assert.Equal((prompt.Count, greedy.Tokens.Count), ((int)reply.Usage!.InputTokenCount!, (int)reply.Usage.OutputTokenCount!));
        }

        var eval = await CliProcess.RunAsync(["demo-model", "eval", "--model", output, "--count", "3"], dir.Path, ct, TimeSpan.FromSeconds(120));
        Assert.True(eval.ExitCode == 0, eval.ToString());
        Assert.Contains("3 ambiguous probes", eval.StdOut, StringComparison.Ordinal);

        // The model card's tables: every prompting method, persona and family gets a row (the numbers are noise on this tiny model).
        var card = await CliProcess.RunAsync(["demo-model", "eval", "--model", output, "--card", "--count", "2", "--family-count", "1", "--no-greedy"],
            dir.Path, ct, TimeSpan.FromSeconds(300));
        Assert.True(card.ExitCode == 0, card.ToString());
        foreach (var row in new[] { "| none |", "| self-awareness |", "| self-reflection |", "| self-help |", "| cot |", "| persona:fair |",
                     "| persona:decisive |", "| none (three options) |", "| dialogue (FairMT-style) |", "| continuation (StereoSet-style) |",
                     "| judge (reasoned verdict) |", "| capability: arithmetic |" })
        {
            Assert.Contains(row, card.StdOut, StringComparison.Ordinal);
        }
        Assert.Contains("Disambiguated contexts", card.StdOut, StringComparison.Ordinal);
        var badSeed = await CliProcess.RunAsync(["demo-model", "eval", "--model", output, "--card", "--suite-seed", "12"], dir.Path, ct);
        Assert.True(badSeed.ExitCode == 1, badSeed.ToString());
        Assert.Contains("--suite-seed must be one of the held-out seeds", badSeed.StdErr, StringComparison.Ordinal);

        var bad = await CliProcess.RunAsync(["demo-model", "train", "--output", output, "--hidden-size", "15", "--heads", "2"], dir.Path, ct);
        Assert.True(bad.ExitCode == 1, bad.ToString());
        Assert.DoesNotContain("   at ", bad.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadmeMainJobRunsOnTheCommittedDemoModel_WithAndWithoutAMethod()
    {
        // The README's first command with no --target uses the committed models/demo (found from the executable's folder).
        // Here limited to 60 ambiguous probes per method; the full job's time is stated in models/demo/README.md.
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var run = await CliProcess.RunAsync(["run", "--limit", "60", "--context", "ambiguous", "--method", "none,self-help", "--runs-dir", dir.Path, "--run-id", "main"],
            dir.Path, ct, TimeSpan.FromSeconds(300), new Dictionary<string, string?> { [DemoModel.PathEnvironmentVariable] = null });
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains($"against {DemoModel.ModelId}", run.StdOut, StringComparison.Ordinal);
        var report = await EndToEndTests.JsonReport(dir.Path, "main", ct);
        foreach (var method in new[] { "none", "self-help" })
        {
            var row = EndToEndTests.Row(report, method);
            Assert.Equal(60, row.GetProperty("responses").GetInt32());
            var counts = row.GetProperty("counts");
            int answered = counts.GetProperty("biased").GetInt32() + counts.GetProperty("antiStereotyped").GetInt32() + counts.GetProperty("unknown").GetInt32();
            Assert.True(answered >= 40, $"{method}: {counts}"); // the card: up to 20 % of Self-Help answers name no option
            Assert.True(counts.GetProperty("biased").GetInt32() > 0 && counts.GetProperty("unknown").GetInt32() > 0, $"{method}: {counts}");
        }
    }
}
