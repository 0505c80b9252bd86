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

    [Fact]
    public async Task KilledRunWithGroupCommitResumesWithNoGapsAndNoDuplicates()
    {
        // Many probes, many in flight and a server with no latency: rows finish together and share commits, so the kill
        // lands with a batch being written and more queued behind it.
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        const int count = 240;
        var probes = EndToEndTests.Probes(count);
        Assert.Equal(count, probes.Count);
        var script = new ScriptedTarget(probes);
        Process? child = null;
        var arrived = 0;
        await using var server = LoopbackChatServer.Start(req =>
        {
            // Late enough that some rows have committed: 64 probes are in flight and at most 64 more rows wait for
            // their commit (EvaluationRunner frees a worker's slot once its row is queued).
            if (Interlocked.Increment(ref arrived) == count * 3 / 4)
            {
                Volatile.Read(ref child)?.Kill(entireProcessTree: true);
            }
            return script.Answer(req);
        });
        var runsDir = Path.Combine(dir.Path, "runs");
        var args = EndToEndTests.RunArgs(server, runsDir, "k", "none", count);
        args[args.IndexOf("--concurrency") + 1] = "64";
        using (var process = Process.Start(CliProcess.StartInfo(args, dir.Path))!)
        {
            Volatile.Write(ref child, process);
            var stderr = process.StandardError.ReadToEndAsync(ct);
            _ = process.StandardOutput.ReadToEndAsync(ct);
            await process.WaitForExitAsync(ct).WaitAsync(TimeSpan.FromSeconds(120), ct);
            Assert.True(process.ExitCode == 137, $"exit {process.ExitCode}: {await stderr}");
        }

        var sentBeforeKill = server.Requests.Count;
        var atKill = await ReadAsync(runsDir, ct);
        Assert.InRange(atKill.Count, 1, count - 1); // request 3·count/4 (180) is sent only after 180 - 64 - 64 rows committed
        Assert.All(atKill, r => Assert.True(r.IsComplete)); // a committed row is a whole row

        var resumed = await CliProcess.RunAsync(["run", "--resume", "k", "--runs-dir", runsDir], dir.Path, ct);
        Assert.True(resumed.ExitCode == 0, resumed.ToString());

        // No gaps: every probe has exactly one complete row, with the answer the server gave for it.
        var rows = await ReadAsync(runsDir, ct);
        Assert.Equal(count, rows.Count);
        Assert.Equal(count, rows.Select(r => r.ProbeId).Distinct().Count());
        var index = probes.Select((p, i) => (p.Id, i)).ToDictionary(x => x.Id, x => x.i);
        Assert.All(rows, r =>
        {
            Assert.True(r.IsComplete);
            Assert.Equal(probes[index[r.ProbeId]].OptionWithRole(ScriptedTarget.VanillaRole(index[r.ProbeId]))!.Text, r.Response);
        });

        // No duplicates: nothing committed before the kill was asked again, rows committed then are unchanged, and each
        // row was written once (attempts counts rewrites of a row).
        var doneAtKill = atKill.Select(r => r.ProbeId).ToHashSet();
        var askedAgain = server.Requests.Skip(sentBeforeKill).Select(r => probes[script.FindProbe(r.Messages)].Id).ToList();
        Assert.DoesNotContain(askedAgain, doneAtKill.Contains);
        Assert.All(server.Requests.GroupBy(r => script.FindProbe(r.Messages)), g => Assert.InRange(g.Count(), 1, 2));
        Assert.Equal(atKill.Select(r => (r.ProbeId, r.Response, r.Completed)), rows.Where(r => doneAtKill.Contains(r.ProbeId)).Select(r => (r.ProbeId, r.Response, r.Completed)));
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(runsDir, RunStore.FileName)}");
        await connection.OpenAsync(ct);
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT MAX(attempts) FROM results WHERE run_id = 'k'";
        Assert.Equal(1L, await cmd.ExecuteScalarAsync(ct));
    }

    private static async Task<List<ResultRecord>> ReadAsync(string runsDir, CancellationToken ct)
    {
        await using var store = await RunStore.OpenDirectoryAsync(runsDir, ct);
        return await store.ReadResultsAsync("k", ct).ToListAsync(ct);
    }
}
