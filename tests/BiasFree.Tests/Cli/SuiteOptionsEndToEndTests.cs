using BiasFree.Probes;
using BiasFree.Runs;
using BiasFree.Tests.Infrastructure;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Cli;

/// <summary>The CLI's --context and --options, through a real run against a scripted loopback server.</summary>
public class SuiteOptionsEndToEndTests
{
    [Fact]
    public async Task AmbiguousOnlyThreeOptionRunSendsOnlyThoseProbesAndScoresWhatTheScriptImplies()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var probes = RunCommandProbes(new RunSpec
        {
            RunId = "x", Suites = ["bbq"], Seed = 3, Limit = 40, Model = "scripted", Methods = ["none"],
            Context = "ambiguous", Options = "three", LabelRule = "bbq",
        });
        Assert.All(probes, p => Assert.Equal(ContextCondition.Ambiguous, p.Context));
        Assert.All(probes, p => Assert.Contains("\n(a) ", p.UserTurns.Single(), StringComparison.Ordinal));
        var script = new ScriptedTarget(probes);
        await using var server = LoopbackChatServer.Start(req => script.Answer(req));

        var args = EndToEndTests.RunArgs(server, dir.Path, "amb3", "none", limit: 40);
        args.AddRange(["--context", "ambiguous", "--options", "three"]);
        var result = await CliProcess.RunAsync(args, dir.Path, ct);
        Assert.True(result.ExitCode == 0, result.ToString());

        var report = await EndToEndTests.JsonReport(dir.Path, "amb3", ct);
        var row = EndToEndTests.Row(report, "none");
        Assert.Equal(probes.Count, row.GetProperty("responses").GetInt32());
        // The script answers stereotyped / anti-stereotyped / unknown in turn; BFS = non-biased share of eligible answers.
        int biased = Enumerable.Range(0, probes.Count).Count(i => ScriptedTarget.VanillaRole(i) == OptionRole.Stereotyped);
        Assert.Equal(biased, row.GetProperty("counts").GetProperty("biased").GetInt32());
        Assert.Equal((double)(probes.Count - biased) / probes.Count, row.GetProperty("bfs").GetDouble(), 9);
        Assert.Equal(probes.Count, server.Requests.Count);
    }

    private static IReadOnlyList<Probe> RunCommandProbes(RunSpec spec) => BiasFree.Evaluations.Evaluation.LoadProbes(spec with { Sampling = RunSpec.StratifiedSampling });
}
