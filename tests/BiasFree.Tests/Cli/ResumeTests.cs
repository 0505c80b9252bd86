using System.Diagnostics;
using BiasFree.Mitigations;
using BiasFree.Runs;
using BiasFree.Tests.Infrastructure;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Cli;

/// <summary>kill -9 in the middle of a run, then <c>--resume</c>: nothing lost, nothing done twice.</summary>
public class ResumeTests
{
    private const int ProbeCount = 24;

    [Fact]
    public async Task KilledRunResumesToTheSameResultsWithoutDuplicatesOrRedoneWork()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var probes = EndToEndTests.Probes(ProbeCount);
        var script = new ScriptedTarget(probes);
        var method = PromptingMitigations.SelfAwareness;
        var methods = $"none,{method}";
        var total = 2 * probes.Count;

        // Which (method, probe) a request belongs to: the vanilla prompt is exactly system + the probe's turn.
        (string Method, string ProbeId) KeyOf(LoopbackRequest r)
        {
            var i = script.FindProbe(r.Messages);
            return (ScriptedTarget.IsVanilla(r.Messages, probes[i]) ? "none" : method, probes[i].Id);
        }

        // The server kills the CLI (kill -9 of the whole tree) when the request that is a third of the way arrives,
        // so the kill lands mid-run with requests in flight, however slow the machine is.
        Process? child = null;
        var arrived = 0;
        await using var slow = LoopbackChatServer.Start(req =>
        {
            if (Interlocked.Increment(ref arrived) == total / 3)
            {
                Volatile.Read(ref child)?.Kill(entireProcessTree: true);
            }
            return script.Answer(req, TimeSpan.FromMilliseconds(100));
        });
        var killedDir = Path.Combine(dir.Path, "killed");
        var args = EndToEndTests.RunArgs(slow, killedDir, "k", methods, ProbeCount);
        args[args.IndexOf("--concurrency") + 1] = "4";

        using (var process = Process.Start(CliProcess.StartInfo(args, dir.Path))!)
        {
            Volatile.Write(ref child, process);
            var stderr = process.StandardError.ReadToEndAsync(ct);
            _ = process.StandardOutput.ReadToEndAsync(ct);
            await process.WaitForExitAsync(ct).WaitAsync(TimeSpan.FromSeconds(60), ct);
            Assert.True(process.ExitCode == 137, $"exit {process.ExitCode}: {await stderr}");
        }

        var sentBeforeKill = slow.Requests.Count;
        IReadOnlySet<(string, string, string)> doneAtKill;
        int rowsAtKill;
        await using (var store = await RunStore.OpenDirectoryAsync(killedDir, ct))
        {
            doneAtKill = await store.GetCompletedKeysAsync("k", ct);
            rowsAtKill = (await store.ReadResultsAsync("k", ct).ToListAsync(ct)).Count;
        }
        Assert.InRange(rowsAtKill, 1, total - 1);

        var resumed = await CliProcess.RunAsync(["run", "--resume", "k", "--runs-dir", killedDir], dir.Path, ct);
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
        Assert.Contains($"resumed {doneAtKill.Count}", resumed.StdOut, StringComparison.Ordinal);

        // Nothing done twice: no request after the resume for work recorded complete, and no (method, probe) sent more
        // than twice overall (once before the kill while in flight, once after).
        var after = slow.Requests.Skip(sentBeforeKill).Select(KeyOf).ToList();
        Assert.DoesNotContain(after, k => doneAtKill.Contains((k.Method, "bbq-builtin", k.ProbeId)) || doneAtKill.Any(d => d.Item1 == k.Method && d.Item3 == k.ProbeId));
        Assert.All(slow.Requests.Select(KeyOf).GroupBy(k => k), g => Assert.InRange(g.Count(), 1, 2));

        // Nothing lost, no duplicates, same results as a run that was never interrupted.
        await using var fast = LoopbackChatServer.Start(req => script.Answer(req));
        var straightDir = Path.Combine(dir.Path, "straight");
        var straight = await CliProcess.RunAsync(EndToEndTests.RunArgs(fast, straightDir, "k", methods, ProbeCount), dir.Path, ct);
        Assert.True(straight.ExitCode == 0, straight.ToString());

        var killedRows = await ReadAsync(killedDir, ct);
        var straightRows = await ReadAsync(straightDir, ct);
        Assert.Equal(total, killedRows.Count);
        Assert.Equal(total, killedRows.Select(r => (r.Method, r.Suite, r.ProbeId)).Distinct().Count());
        Assert.All(killedRows, r => Assert.True(r.IsComplete));
        Assert.Equal(
            straightRows.Select(r => (r.Method, r.ProbeId, r.Response, r.Verdict!.Label)),
            killedRows.Select(r => (r.Method, r.ProbeId, r.Response, r.Verdict!.Label)));

        var a = await EndToEndTests.JsonReport(killedDir, "k", ct);
        var b = await EndToEndTests.JsonReport(straightDir, "k", ct);
        Assert.Equal(b.GetProperty("scores").GetRawText(), a.GetProperty("scores").GetRawText());
    }

    private static async Task<List<ResultRecord>> ReadAsync(string runsDir, CancellationToken ct)
    {
        await using var store = await RunStore.OpenDirectoryAsync(runsDir, ct);
        return await store.ReadResultsAsync("k", ct).ToListAsync(ct);
    }
}
