using System.Globalization;
using System.Text.Json;
using BiasFree.Mitigations;
using BiasFree.Runs;
using BiasFree.Tests.Infrastructure;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Cli;

/// <summary>
/// The real CLI against the loopback server: prompt templates from a file, Self-Help fallbacks in every report,
/// and runs that stop on failures every request would repeat.
/// </summary>
public class MethodsAndFaultsEndToEndTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static bool IsRewriteRequest(LoopbackRequest r)
    {
        var last = r.Messages.Last(m => m.Role == "user").Content;
        return last.Contains("**SYSTEM PROMPT**:", StringComparison.Ordinal) && last.Contains("**QUERY**:", StringComparison.Ordinal);
    }

    [Fact]
    public async Task SelfHelpFallbacksAreCountedPerMethodInEveryReport()
    {
        using var dir = new TempDir();
        var probes = EndToEndTests.Probes(12);
        var script = new ScriptedTarget(probes);
        // Self-Help's rewrite request gets an answer without the sections for every probe i with i % 4 == 1
        // (i = 1, 5, 9), on every attempt: those 3 probes fall back to the original prompt.
        var noRewrite = Enumerable.Range(0, probes.Count).Where(i => i % 4 == 1).ToHashSet();
        await using var server = LoopbackChatServer.Start(req =>
            IsRewriteRequest(req) && noRewrite.Contains(script.FindProbe(req.Messages)) ? new LoopbackReply(Content: "Sorry, I would rather not rewrite this.") : script.Answer(req));

        var run = await CliProcess.RunAsync(EndToEndTests.RunArgs(server, dir.Path, "fb", "none,self-help", 12), dir.Path, Ct);
        Assert.True(run.ExitCode == 0, run.ToString());

        // Each fallback probe made all 10 rewrite attempts before answering the original prompt.
        Assert.Equal(noRewrite.Count * 10 + (probes.Count - noRewrite.Count), server.Requests.Count(IsRewriteRequest));

        var json = await EndToEndTests.JsonReport(dir.Path, "fb", Ct);
        var byMethod = json.GetProperty("fallbacks").EnumerateArray().ToDictionary(f => f.GetProperty("method").GetString()!, f => (F: f.GetProperty("fallbacks").GetInt32(), N: f.GetProperty("rows").GetInt32()));
        Assert.Equal((0, 12), byMethod["none"]);
        Assert.Equal((3, 12), byMethod["self-help"]);
        Assert.Equal(3, EndToEndTests.Row(json, "self-help").GetProperty("fallbacks").GetInt32());
        var perCategory = probes.Select((p, i) => (p.Category, i)).Where(x => noRewrite.Contains(x.i)).GroupBy(x => x.Category).ToDictionary(g => g.Key, g => g.Count());
        foreach (var (category, count) in perCategory)
        {
            Assert.Equal(count, EndToEndTests.Row(json, "self-help", category).GetProperty("fallbacks").GetInt32());
        }

        var md = await CliProcess.RunAsync(["report", "fb", "--runs-dir", dir.Path], dir.Path, Ct);
        Assert.True(md.ExitCode == 0, md.ToString());
        Assert.Contains("| Fallbacks (original prompt answered) | none 0 of 12, self-help 3 of 12 |", md.StdOut, StringComparison.Ordinal);
        Assert.Contains("| Prompt templates | default wording |", md.StdOut, StringComparison.Ordinal);

        var csvFile = Path.Combine(dir.Path, "fb.csv");
        var csv = await CliProcess.RunAsync(["report", "fb", "--format", "csv", "--output", csvFile, "--runs-dir", dir.Path], dir.Path, Ct);
        Assert.True(csv.ExitCode == 0, csv.ToString());
        var lines = await File.ReadAllLinesAsync(csvFile, Ct);
        var header = lines[0].Split(',');
        var rows = lines.Skip(1).Select(l => l.Split(',')).ToList();
        string Cell(string[] r, string column) => r[Array.IndexOf(header, column)];
        Assert.Equal("3", Cell(rows.Single(r => Cell(r, "method") == "self-help" && Cell(r, "category") == "all"), "fallbacks"));
        Assert.Equal("0", Cell(rows.Single(r => Cell(r, "method") == "none" && Cell(r, "category") == "all"), "fallbacks"));

        var jsonl = await CliProcess.RunAsync(["report", "fb", "--format", "jsonl", "--runs-dir", dir.Path], dir.Path, Ct);
        var samples = jsonl.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(3, samples.Count(s => s.GetProperty("fallback").GetBoolean()));
    }

    [Fact]
    public async Task ATemplateFileWordsEveryRequestIsStoredAndIsReusedOnResume()
    {
        using var dir = new TempDir();
        var prompts = Path.Combine(dir.Path, "paper-prompts.json");
        await File.WriteAllTextAsync(prompts, """
            {
              "_source": "wording under test",
              "system.multiple-choice": "You are a careful assistant.",
              "self-awareness.multiple-choice": ["{query}", "[Mind {bias_type}.]"]
            }
            """, Ct);
        var probes = EndToEndTests.Probes(9);
        var script = new ScriptedTarget(probes);
        var failing = true;
        await using var server = LoopbackChatServer.Start(req =>
            failing && script.FindProbe(req.Messages) is 4 or 7 ? new LoopbackReply(400, "bad request for this probe") : script.Answer(req));

        var first = await CliProcess.RunAsync([.. EndToEndTests.RunArgs(server, dir.Path, "tpl", "none,self-awareness", 9), "--prompts", prompts], dir.Path, Ct);
        Assert.True(first.ExitCode == 2, first.ToString());

        var refused = await CliProcess.RunAsync(["run", "--resume", "tpl", "--prompts", prompts, "--runs-dir", dir.Path], dir.Path, Ct);
        Assert.True(refused.ExitCode == 1, refused.ToString());
        Assert.Contains("drop --prompts", refused.StdErr, StringComparison.Ordinal);

        // The resume is given no file: the stored templates word the retried requests too.
        await File.WriteAllTextAsync(prompts, "{ \"system.multiple-choice\": \"changed after the run started\" }", Ct);
        failing = false;
        var before = server.Requests.Count;
        var second = await CliProcess.RunAsync(["run", "--resume", "tpl", "--runs-dir", dir.Path], dir.Path, Ct);
        Assert.True(second.ExitCode == 0, second.ToString());
        var resumed = server.Requests.Skip(before).ToList();
        Assert.Equal(4, resumed.Count); // probes 4 and 7, under both methods

        Assert.All(server.Requests, r => Assert.Equal("You are a careful assistant.", r.Messages[0].Content));
        foreach (var r in server.Requests.Where(r => r.Messages[^1].Content.Contains("[Mind", StringComparison.Ordinal)))
        {
            var probe = probes[script.FindProbe(r.Messages)];
            Assert.Equal($"{probe.UserTurns[0]}\n[Mind {BiasTypes.ForCategory(probe.Category)}.]", r.Messages[^1].Content);
        }
        // 9 in the first session (probes 4 and 7 failed there) and those 2 again on resume.
        Assert.Equal(11, server.Requests.Count(r => r.Messages[^1].Content.Contains("[Mind", StringComparison.Ordinal)));
        Assert.Equal(2, resumed.Count(r => r.Messages[^1].Content.Contains("[Mind", StringComparison.Ordinal)));

        var json = await EndToEndTests.JsonReport(dir.Path, "tpl", Ct);
        var stored = json.GetProperty("run").GetProperty("prompts");
        Assert.Equal("{query}\n[Mind {bias_type}.]", stored.GetProperty(MethodPrompts.SelfAwarenessMultipleChoice).GetString());
        Assert.Equal(MethodPrompts.Default[MethodPrompts.ChainOfThoughtMultipleChoice], stored.GetProperty(MethodPrompts.ChainOfThoughtMultipleChoice).GetString());
        var md = await CliProcess.RunAsync(["report", "tpl", "--runs-dir", dir.Path], dir.Path, Ct);
        Assert.Contains($"| Prompt templates | {Path.GetFullPath(prompts)}: system.multiple-choice, self-awareness.multiple-choice (full text in the JSON report) |", md.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheDefaultTemplatesPrintAsAFileThatRunsAccept()
    {
        using var dir = new TempDir();
        var printed = await CliProcess.RunAsync(["prompts"], dir.Path, Ct);
        Assert.True(printed.ExitCode == 0, printed.ToString());
        var file = Path.Combine(dir.Path, "mine.json");
        await File.WriteAllTextAsync(file, printed.StdOut, Ct);
        var check = await CliProcess.RunAsync(["prompts", "--check", file], dir.Path, Ct);
        Assert.True(check.ExitCode == 0, check.ToString());
        Assert.Equal(printed.StdOut, check.StdOut);
        Assert.Contains("\"cot.multiple-choice\"", printed.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ABadTemplateFileIsRefusedWithFileLineAndFieldBeforeAnythingRuns()
    {
        using var dir = new TempDir();
        var file = Path.Combine(dir.Path, "bad.json");
        await File.WriteAllTextAsync(file, "{\n  \"cot.multi-turn\": \"{query}\",\n  \"cot.multiple-choice\": \"{query} {final_answer}\"\n}\n", Ct);
        await using var server = LoopbackChatServer.Start("unknown");
        var r = await CliProcess.RunAsync([.. EndToEndTests.RunArgs(server, dir.Path, "bad", "cot", 3), "--prompts", file], dir.Path, Ct);
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains($"{file}:3: field 'cot.multiple-choice': unknown placeholder {{final_answer}}; allowed: {{query}}, {{bias_type}}", r.StdErr, StringComparison.Ordinal);
        Assert.Empty(server.Requests);
        Assert.False(File.Exists(Path.Combine(dir.Path, RunStore.FileName)));
    }

    public static TheoryData<string, int, string> Unusable => new()
    {
        { "401", 401, "HTTP 401; the server refused the API key: check the environment variable BIASFREE_TEST_KEY" },
        { "403", 403, "HTTP 403; the server refused the API key" },
        { "html", 200, "not an OpenAI-compatible API: check the URL" },
    };

    [Theory]
    [MemberData(nameof(Unusable))]
    public async Task ATargetThatCannotBeUsedStopsTheRunWithOneMessage(string kind, int status, string message)
    {
        using var dir = new TempDir();
        await using var server = LoopbackChatServer.Start(_ => kind == "html"
            ? new LoopbackReply(RawBody: "<html><body>Sign in</body></html>", ContentType: "text/html")
            : new LoopbackReply(status, "Incorrect API key provided"));
        var args = EndToEndTests.RunArgs(server, dir.Path, "stop", "none", 40);
        args[args.IndexOf("--concurrency") + 1] = "1";
        var r = await CliProcess.RunAsync(args, dir.Path, Ct);
        Assert.True(r.ExitCode == 1, r.ToString());
        Assert.Contains(message, r.StdErr, StringComparison.Ordinal);
        Assert.Equal(1, r.StdErr.Split('\n').Count(l => l.StartsWith("error:", StringComparison.Ordinal)));
        Assert.Contains("--resume stop", r.StdErr, StringComparison.Ordinal);
        Assert.Equal(EvaluationRunner.PersistentFailuresBeforeStop, server.Requests.Count);
        Assert.DoesNotContain("sk-test-secret-never-stored", r.StdErr + r.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AMissingKeyVariableIsWarnedAboutOnce()
    {
        using var dir = new TempDir();
        var probes = EndToEndTests.Probes(6);
        var script = new ScriptedTarget(probes);
        await using var server = LoopbackChatServer.Start(req => script.Answer(req));
        var unset = "BIASFREE_UNSET_" + Guid.NewGuid().ToString("N");
        var args = EndToEndTests.RunArgs(server, dir.Path, "nokey", "none", 6);
        args[args.IndexOf("--api-key-env") + 1] = unset;
        var r = await CliProcess.RunAsync(args, dir.Path, Ct);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Equal(1, r.StdErr.Split('\n').Count(l => l.StartsWith($"warning: environment variable {unset}", StringComparison.Ordinal)));

        var withKey = await CliProcess.RunAsync(EndToEndTests.RunArgs(server, dir.Path, "key", "none", 6), dir.Path, Ct);
        Assert.True(withKey.ExitCode == 0, withKey.ToString());
        Assert.DoesNotContain("warning:", withKey.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ResumingARunThatNeverStartedSaysSo()
    {
        using var dir = new TempDir();
        var noStore = await CliProcess.RunAsync(["run", "--resume", "early", "--runs-dir", dir.Path], dir.Path, Ct);
        Assert.True(noStore.ExitCode == 1, noStore.ToString());
        Assert.Contains("never started and has nothing to resume: start it again with the same options", noStore.StdErr, StringComparison.Ordinal);

        // A store with other runs in it, but not this one.
        var probes = EndToEndTests.Probes(3);
        var script = new ScriptedTarget(probes);
        await using var server = LoopbackChatServer.Start(req => script.Answer(req));
        Assert.Equal(0, (await CliProcess.RunAsync(EndToEndTests.RunArgs(server, dir.Path, "other", "none", 3), dir.Path, Ct)).ExitCode);
        var notThere = await CliProcess.RunAsync(["run", "--resume", "early", "--runs-dir", dir.Path], dir.Path, Ct);
        Assert.True(notThere.ExitCode == 1, notThere.ToString());
        Assert.Contains("no run 'early' to resume", notThere.StdErr, StringComparison.Ordinal);
        Assert.Contains("the run never started", notThere.StdErr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheBenchmarkAnswersHelp()
    {
        // The benchmark is built with the solution, next to this test project, in the same configuration.
        var here = AppContext.BaseDirectory;
        var root = new DirectoryInfo(here);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "BiasFree.slnx")))
        {
            root = root.Parent;
        }
        var configuration = here.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";
        var bin = root is null ? null : Path.Combine(root.FullName, "bench", "BiasFree.Bench", "bin", configuration);
        var dll = bin is null || !Directory.Exists(bin) ? null : Directory.EnumerateFiles(bin, "BiasFree.Bench.dll", SearchOption.AllDirectories).FirstOrDefault();
        if (dll is null)
        {
            Assert.Skip("the benchmark is not built in this configuration");
        }

        var psi = CliProcess.StartInfo(["--help"], Path.GetTempPath());
        psi.ArgumentList[0] = dll;
        using var p = System.Diagnostics.Process.Start(psi)!;
        var stdout = await p.StandardOutput.ReadToEndAsync(Ct);
        await p.WaitForExitAsync(Ct);
        Assert.Equal(0, p.ExitCode);
        Assert.Contains("--quick", stdout, StringComparison.Ordinal);
        Assert.Contains("--batches", stdout, StringComparison.Ordinal);
        Assert.Contains("--peer", stdout, StringComparison.Ordinal); // the engine-vs-PyTorch comparison can be switched off
        Assert.Contains("LoRA SFT training throughput", stdout, StringComparison.Ordinal); // the training subcommand is registered
        Assert.Contains("IVO tokenwise and blockwise vs plain sampling", stdout, StringComparison.Ordinal); // so is ivo
        Assert.Contains("Persona-judge (two personas, speculative) vs plain sampling", stdout, StringComparison.Ordinal); // and persona-judge
        Assert.Contains("Peak RSS of a whole run", stdout, StringComparison.Ordinal); // and memory
        Assert.Contains("Harness overhead of the real run path", stdout, StringComparison.Ordinal); // and harness
        Assert.DoesNotContain("engine benchmark —", stdout, StringComparison.Ordinal); // help only: nothing was benchmarked
    }
}
