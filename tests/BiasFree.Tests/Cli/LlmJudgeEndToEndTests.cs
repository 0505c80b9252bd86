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
}
