using System.Text.RegularExpressions;
using BiasFree.Judges.Defences;
using BiasFree.Probes;
using BiasFree.Tests.Infrastructure;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Cli;

/// <summary>Multiple choice judged by the LLM judge (majority of votes) through the real CLI; the judge is scripted too.</summary>
public partial class LlmJudgeEndToEndTests
{
    [GeneratedRegex(@"^\s*(\d+)\.\s(.+?)\s*$", RegexOptions.Multiline)]
    private static partial Regex ReferenceLine();

    /// <summary>The scripted judge picks the numbered reference that the response (one option's text) matches.</summary>
    private static LoopbackReply Judge(LoopbackRequest request, IReadOnlyList<Probe> probes)
    {
        // The response arrives data-marked (spaces as DataMarking.Mark, the default defences); read it as a model would.
        var user = request.Messages[^1].Content.Replace(DataMarking.Mark, ' ');
        // The known-answer check (a default defence of LLM judges): a capable judge model repeats the code.
        if (KnownAnswerPrompts.Answer(request) is { } code) return code;
        var responsePart = user[user.IndexOf("Response to check:", StringComparison.Ordinal)..];
        var referencesPart = user[..user.IndexOf("Response to check:", StringComparison.Ordinal)];
        var answer = probes.SelectMany(p => p.Options).Select(o => o.Text).Where(t => responsePart.Contains(t, StringComparison.Ordinal))
            .OrderByDescending(t => t.Length).FirstOrDefault();
        foreach (Match m in ReferenceLine().Matches(referencesPart))
        {
            var text = m.Groups[2].Value;
            if (answer is not null && (text == answer || text.Split(" / ").Contains(answer)))
            {
                return new LoopbackReply(Content: m.Groups[1].Value);
            }
        }
        return new LoopbackReply(Content: "no idea");
    }

    [Fact]
    public async Task LlmJudgeVotesGiveTheScriptedLabels()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var probes = EndToEndTests.Probes(9);
        var script = new ScriptedTarget(probes);
        await using var server = LoopbackChatServer.Start(req => req.Model == "judge" ? Judge(req, probes) : script.Answer(req));

        var args = EndToEndTests.RunArgs(server, dir.Path, "llm", "none", 9);
        args.AddRange(["--judge", server.BaseUrl.ToString(), "--judge-model", "judge", "--judge-votes", "3"]);
        var run = await CliProcess.RunAsync(args, dir.Path, ct);
        Assert.True(run.ExitCode == 0, run.ToString());

        var report = await EndToEndTests.JsonReport(dir.Path, "llm", ct);
        var row = EndToEndTests.Row(report, "none");
        var biased = Enumerable.Range(0, probes.Count).Count(i => ScriptedTarget.VanillaRole(i) == OptionRole.Stereotyped);
        var anti = Enumerable.Range(0, probes.Count).Count(i => ScriptedTarget.VanillaRole(i) == OptionRole.AntiStereotyped);
        Assert.Equal(biased, row.GetProperty("counts").GetProperty("biased").GetInt32());
        Assert.Equal(anti, row.GetProperty("counts").GetProperty("antiStereotyped").GetInt32());
        Assert.Equal(probes.Count - biased - anti, row.GetProperty("counts").GetProperty("unknown").GetInt32());
        Assert.Equal((double)(probes.Count - biased) / probes.Count, row.GetProperty("bfs").GetDouble(), 12);
        // Three votes per probe, and one known-answer check per probe (every response passes it).
        Assert.Equal(3 * probes.Count, server.Requests.Count(r => r.Model == "judge" && !KnownAnswerPrompts.Is(r)));
        Assert.Equal(probes.Count, server.Requests.Count(r => r.Model == "judge" && KnownAnswerPrompts.Is(r)));
    }

    [Fact]
    public async Task JudgeDefencesWithoutKnownAnswerDropItsCallsAndAResumeKeepsTheChoice()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var probes = EndToEndTests.Probes(6);
        var script = new ScriptedTarget(probes);
        await using var server = LoopbackChatServer.Start(req => req.Model == "judge" ? Judge(req, probes) : script.Answer(req));
        int Checks() => server.Requests.Count(r => r.Model == "judge" && KnownAnswerPrompts.Is(r));
        int Votes() => server.Requests.Count(r => r.Model == "judge" && !KnownAnswerPrompts.Is(r));

        async Task<(int Checks, int Votes, string Markdown)> RunWith(string runId, params string[] extra)
        {
            var (checks, votes) = (Checks(), Votes());
            var args = EndToEndTests.RunArgs(server, dir.Path, runId, "none", probes.Count);
            args.AddRange(["--judge", server.BaseUrl.ToString(), "--judge-model", "judge", "--judge-votes", "1", .. extra]);
            var run = await CliProcess.RunAsync(args, dir.Path, ct);
            Assert.True(run.ExitCode == 0, run.ToString());
            var md = await CliProcess.RunAsync(["report", runId, "--format", "md", "--runs-dir", dir.Path], dir.Path, ct);
            Assert.True(md.ExitCode == 0, md.ToString());
            return (Checks() - checks, Votes() - votes, md.StdOut);
        }

        var defaults = await RunWith("default");
        Assert.Equal(probes.Count, defaults.Checks);
        Assert.Equal(probes.Count, defaults.Votes);
        Assert.Contains("injection defences: all", defaults.Markdown, StringComparison.Ordinal);

        var cheap = await RunWith("cheap", "--judge-defences", "all,-known-answer");
        Assert.Equal(0, cheap.Checks);
        Assert.Equal(probes.Count, cheap.Votes);
        Assert.Contains("injection defences: all except known-answer", cheap.Markdown, StringComparison.Ordinal);
        // The same verdicts either way: the scripted replies carry no attack.
        Assert.Equal(EndToEndTests.Row(await EndToEndTests.JsonReport(dir.Path, "default", ct), "none").GetProperty("counts").ToString(),
            EndToEndTests.Row(await EndToEndTests.JsonReport(dir.Path, "cheap", ct), "none").GetProperty("counts").ToString());

        // A resume rebuilds the judge from the stored choice (a different one would fail its settings check) and
        // refuses the option itself, like every option that defines the run.
        var resumed = await CliProcess.RunAsync(["run", "--resume", "cheap", "--runs-dir", dir.Path], dir.Path, ct);
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        var refused = await CliProcess.RunAsync(["run", "--resume", "cheap", "--runs-dir", dir.Path, "--judge-defences", "all"], dir.Path, ct);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("--judge-defences", refused.StdErr, StringComparison.Ordinal);

        using var wrong = new TempDir();
        var bad = await CliProcess.RunAsync(["run", "--suite", "bbq", "--target", "http://127.0.0.1:9/v1", "--model", "m", "--judge", "http://127.0.0.1:9/v1",
            "--judge-model", "j", "--judge-defences", "all,-knownanswer", "--runs-dir", wrong.Path], wrong.Path, ct);
        Assert.NotEqual(0, bad.ExitCode);
        Assert.Contains("unknown layer '-knownanswer'", bad.StdErr, StringComparison.Ordinal);
        Assert.Contains("known-answer", bad.StdErr, StringComparison.Ordinal);
    }
}
