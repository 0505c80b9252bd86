using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Cli;

/// <summary>
/// The packages as a user gets them: pack the tool and the libraries, install the tool into a temporary tool path
/// from the packed folder only and run it from an empty folder; then build and run a console app that references the
/// BiasFree.Engine package only (demo model and TorchSharp's native load included in both).
/// </summary>
public class ToolPackageTests
{
    private static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h && File.Exists(h) ? h : "dotnet";

    private static async Task<CliResult> RunAsync(string file, IEnumerable<string> args, string workingDirectory, IReadOnlyDictionary<string, string?> environment, TimeSpan timeout, CancellationToken ct)
    {
        var psi = new ProcessStartInfo(file)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        // The test host's MSBuild variables would point a nested dotnet at the outer build.
        foreach (var name in psi.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            psi.Environment.Remove(name);
        }
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["NO_COLOR"] = "1";
        foreach (var (name, value) in environment)
        {
            psi.Environment[name] = value;
        }
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
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

    [Fact]
    public async Task PackInstallTheToolAndRunItFromAnEmptyFolderThenUseTheEnginePackageFromAnApp()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var root = TinyModelFolder.RepoRoot();
        // The configuration the tests were built in (bin/<Configuration>/...): pack what was built, without rebuilding.
        var configuration = AppContext.BaseDirectory.Contains($"{Path.DirectorySeparatorChar}Debug{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Debug" : "Release";
        var artifacts = Path.Combine(dir.Path, "artifacts");
        var env = new Dictionary<string, string?>
        {
            ["NUGET_PACKAGES"] = Path.Combine(dir.Path, "nuget-packages"), // nothing from an earlier install of the same version
            ["BIASFREE_DEMO_MODEL"] = null,
        };

        foreach (var project in new[] { "src/BiasFree.Cli/BiasFree.Cli.csproj", "src/BiasFree.Engine/BiasFree.Engine.csproj", "src/BiasFree/BiasFree.csproj" })
        {
            var pack = await RunAsync(Dotnet, ["pack", Path.Combine(root, project), "-c", configuration, "--no-build", "-o", artifacts], root, env, TimeSpan.FromMinutes(20), ct);
            Assert.True(pack.ExitCode == 0, pack.ToString());
        }

        // The engine package carries the native-load fix as a buildTransitive target, its XML docs and the demo model.
        using (var engine = ZipFile.OpenRead(Path.Combine(artifacts, "BiasFree.Engine.0.1.0.nupkg")))
        {
            var names = engine.Entries.Select(e => e.FullName).ToHashSet(StringComparer.Ordinal);
            Assert.Contains("buildTransitive/BiasFree.Engine.targets", names);
            Assert.Contains("buildTransitive/BiasFree.Engine.NativeFix.targets", names);
            Assert.Contains("lib/net10.0/BiasFree.Engine.xml", names);
            Assert.Contains("models/demo/model.safetensors", names);
            Assert.Contains("README.md", names);
        }

        var toolPath = Path.Combine(dir.Path, "tools");
        var install = await RunAsync(Dotnet, ["tool", "install", "BiasFree.Tool", "--tool-path", toolPath, "--add-source", artifacts], dir.Path, env, TimeSpan.FromMinutes(10), ct);
        Assert.True(install.ExitCode == 0, install.ToString());

        var empty = Directory.CreateDirectory(Path.Combine(dir.Path, "empty")).FullName;
        var runEnv = new Dictionary<string, string?>(env)
        {
            ["DOTNET_ROOT"] = Dotnet == "dotnet" ? Environment.GetEnvironmentVariable("DOTNET_ROOT") : Path.GetDirectoryName(Dotnet),
        };
        var run = await RunAsync(Path.Combine(toolPath, "biasfree"), ["run", "--limit", "3", "--run-id", "from-tool"], empty, runEnv, TimeSpan.FromMinutes(5), ct);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("against biasfree-demo", run.StdOut, StringComparison.Ordinal); // the demo model was found without a path
        Assert.Contains("Rows | 3 of 3", run.StdOut, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(empty, "runs", "biasfree.db")));

        // A console app that references only the BiasFree.Engine package (restored from the packed folder): the
        // buildTransitive target copies the demo model beside it and lets TorchSharp's native shim load.
        var app = Directory.CreateDirectory(Path.Combine(dir.Path, "app")).FullName;
        var globalPackages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } gp ? gp : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="artifacts" value="{artifacts}" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(app, "App.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <!-- TorchSharp and the other dependencies from the machine's package cache; BiasFree* only from artifacts. -->
                <RestoreAdditionalProjectFallbackFolders>{globalPackages}</RestoreAdditionalProjectFallbackFolders>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="BiasFree.Engine" Version="0.1.0" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), """
            using BiasFree.Engine.Evaluations;
            using BiasFree.Evaluations;
            using BiasFree.Runs;
            await using var store = await RunStore.OpenDirectoryAsync("runs");
            var evaluation = new Evaluation(["bbq"], LocalTargets.Demo()) { Limit = 3 };
            var outcome = await evaluation.RunAsync(store);
            Console.WriteLine($"model at {evaluation.Spec.TargetEndpoint}; {outcome.Completed} of {outcome.Total} rows");
            """);
        var consumer = await RunAsync(Dotnet, ["run", "-c", "Release"], app, env, TimeSpan.FromMinutes(15), ct);
        Assert.True(consumer.ExitCode == 0, consumer.ToString());
        Assert.Contains($"model at {Path.Combine(app, "bin", "Release", "net10.0", "models", "demo")}; 3 of 3 rows", consumer.StdOut, StringComparison.Ordinal);
    }
}
