using System.Diagnostics;
using System.Text;

namespace BiasFree.Tests.Cli;

/// <summary>Result of one run of the real CLI.</summary>
public sealed record CliResult(int ExitCode, string StdOut, string StdErr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{StdOut}\n--- stderr\n{StdErr}";
}

/// <summary>Runs the real <c>biasfree</c> CLI (BiasFree.Cli.dll from the test output folder) as a child process.</summary>
public static class CliProcess
{
    public static string CliDll => Path.Combine(AppContext.BaseDirectory, "BiasFree.Cli.dll");

    public static ProcessStartInfo StartInfo(IEnumerable<string> args, string workingDirectory, IReadOnlyDictionary<string, string?>? environment = null)
    {
        // The dotnet host that runs the tests when the SDK set it (dotnet test), else the one on PATH.
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h) ? h : "dotnet";
        var psi = new ProcessStartInfo(host)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        psi.ArgumentList.Add(CliDll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment["CI"] = "1";
        psi.Environment["NO_COLOR"] = "1";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["BIASFREE_TEST_KEY"] = "sk-test-secret-never-stored";
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
        {
            psi.Environment[name] = value;
        }
        return psi;
    }

    public static async Task<CliResult> RunAsync(IEnumerable<string> args, string workingDirectory, CancellationToken ct, TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        using var process = Process.Start(StartInfo(args, workingDirectory, environment))!;
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>
    /// Starts the CLI, waits until <paramref name="ready"/> holds (typically: a checkpoint is on disk), then kills it as
    /// kill -9 would (Process.Kill sends SIGKILL on Linux) and waits for it to exit. Fails the test when the command exits
    /// first, or when <paramref name="within"/> passes first.
    /// </summary>
    public static async Task KillWhenAsync(IEnumerable<string> args, string workingDirectory, Func<bool> ready, TimeSpan within, CancellationToken ct)
    {
        using var process = Process.Start(StartInfo(args, workingDirectory))!;
        // Drained so that a full pipe never blocks the child before it gets that far.
        _ = process.StandardOutput.ReadToEndAsync(ct);
        _ = process.StandardError.ReadToEndAsync(ct);
        var deadline = DateTime.UtcNow + within;
        while (!ready() && !process.HasExited && DateTime.UtcNow < deadline) await Task.Delay(20, ct);
        Assert.False(process.HasExited, "the command finished before it could be killed");
        process.Kill();
        await process.WaitForExitAsync(ct);
        Assert.True(ready(), $"the command was killed after {within} without reaching the point to kill it at");
    }

    /// <summary><see cref="KillWhenAsync"/> once the training writing to <paramref name="outDir"/> has saved its first checkpoint.</summary>
    public static Task KillAtFirstCheckpointAsync(IEnumerable<string> args, string workingDirectory, string outDir, TimeSpan within, CancellationToken ct)
    {
        var state = Path.Combine(outDir, "checkpoint", "state.json");
        return KillWhenAsync(args, workingDirectory, () => File.Exists(state), within, ct);
    }
}
