using System.Globalization;
using BiasFree.Evaluations;
using BiasFree.Probes;
using BiasFree.Runs;
using BiasFree.Tests.Infrastructure;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Cli;

/// <summary>Dialogues through the real CLI: turns in order, replies kept in history, only the last reply judged by an LLM judge.</summary>
public class MultiTurnEndToEndTests
{
    [Fact]
    public async Task DialoguesAreRunTurnByTurnAndOnlyTheFinalReplyIsJudged()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var probes = Evaluation.LoadProbes(new RunSpec { Sampling = RunSpec.StratifiedSampling, RunId = "x", Suites = ["fairmt"], Seed = 1, Limit = 8, Model = "scripted", Methods = ["none"] });
        Assert.All(probes, p => Assert.True(p.UserTurns.Count >= 2));

        int ProbeOf(IReadOnlyList<LoopbackMessage> messages)
        {
            var users = messages.Where(m => m.Role == "user").Select(m => m.Content).ToList();
            for (var i = 0; i < probes.Count; i++)
            {
                if (users.Count <= probes[i].UserTurns.Count && users.SequenceEqual(probes[i].UserTurns.Take(users.Count)))
                {
                    return i;
                }
            }
            return -1;
        }

        await using var server = LoopbackChatServer.Start(req =>
        {
            if (req.Model == "judge")
            {
                if (KnownAnswerPrompts.Answer(req) is { } code) return code;
                var biased = req.Messages.Any(m => m.Content.Contains("FINAL-BIASED", StringComparison.Ordinal));
                return new LoopbackReply(Content: biased ? """{"label": "biased", "reason": "S1"}""" : """{"label": "unbiased", "reason": "S4"}""");
            }
            var i = ProbeOf(req.Messages);
            if (i < 0)
            {
                return new LoopbackReply(Content: "lost");
            }
            var turn = req.Messages.Count(m => m.Role == "user");
            return new LoopbackReply(Content: turn < probes[i].UserTurns.Count
                ? $"reply {turn.ToString(CultureInfo.InvariantCulture)} to {probes[i].Id}"
                : i % 2 == 0 ? $"FINAL-BIASED {probes[i].Id}" : $"FINAL-FAIR {probes[i].Id}");
        });

        var run = await CliProcess.RunAsync(
            ["run", "--suite", "fairmt", "--limit", "8", "--seed", "1", "--target", server.BaseUrl.ToString(), "--model", "scripted",
             "--judge", server.BaseUrl.ToString(), "--judge-model", "judge", "--runs-dir", dir.Path, "--run-id", "mt", "--retries", "0"],
            dir.Path, ct);
        Assert.True(run.ExitCode == 0, run.ToString());

        var report = await EndToEndTests.JsonReport(dir.Path, "mt", ct);
        var all = EndToEndTests.Row(report, "none");
        Assert.Equal("multi-turn", all.GetProperty("scenario").GetString());
        var biased = Enumerable.Range(0, probes.Count).Count(i => i % 2 == 0);
        Assert.Equal(biased, all.GetProperty("counts").GetProperty("biased").GetInt32());
        Assert.Equal(probes.Count - biased, all.GetProperty("counts").GetProperty("unbiased").GetInt32());
        Assert.Equal((double)(probes.Count - biased) / probes.Count, all.GetProperty("bfs").GetDouble(), 12);

        // Every turn was sent once, in order, with the model's own earlier replies in the history.
        var target = server.Requests.Where(r => r.Model == "scripted").ToList();
        Assert.Equal(probes.Sum(p => p.UserTurns.Count), target.Count);
        foreach (var r in target)
        {
            var i = ProbeOf(r.Messages);
            Assert.True(i >= 0);
            Assert.Equal("system", r.Messages[0].Role);
            var assistants = r.Messages.Where(m => m.Role == "assistant").Select(m => m.Content).ToList();
            Assert.Equal(Enumerable.Range(1, assistants.Count).Select(k => $"reply {k.ToString(CultureInfo.InvariantCulture)} to {probes[i].Id}"), assistants);
        }
        // Only final replies reached the judge: one judge call per dialogue (and one known-answer check, which passes).
        var judged = server.Requests.Where(r => r.Model == "judge" && !KnownAnswerPrompts.Is(r)).ToList();
        Assert.Equal(probes.Count, server.Requests.Count(r => r.Model == "judge" && KnownAnswerPrompts.Is(r)));
        Assert.Equal(probes.Count, judged.Count);
        Assert.All(judged, r => Assert.Contains("FINAL-", r.Messages[^1].Content, StringComparison.Ordinal));
    }
}
