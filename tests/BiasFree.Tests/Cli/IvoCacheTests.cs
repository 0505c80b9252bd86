using BiasFree.Engine.Decoding.Ivo;
using BiasFree.Engine.Safetensors;
using BiasFree.Engine.Training;
using BiasFree.Runs;
using BiasFree.Tests.Runs;
using TorchSharp;

namespace BiasFree.Tests.Cli;

/// <summary>
/// IVO replies and the response cache: keyed by the value model's content hash and the settings of the IVO mode
/// (<see cref="RunSpec.CacheIdentityFor"/>), so an identical run reads them back and a changed β or a retrained value
/// model does not.
/// </summary>
public class IvoCacheTests
{
    private static readonly string[] Methods = ["none", "ivo", "ivo-block", "cot+ivo"];

    private static string[] TrainArgs(string baseDir, string outDir) =>
        ["value", "train", "--model", baseDir, "--out", outDir, "--prompts", "8", "--rollouts", "2", "--iterations", "0", "--fit-steps", "5",
         "--batch-size", "4", "--lora-rank", "4", "--max-tokens", "4", "--seed", "3", "--threads", "1"];

    private static async Task<List<ResultRecord>> ReadAsync(string runsDir, string runId, CancellationToken ct)
    {
        await using var store = await RunStore.OpenDirectoryAsync(runsDir, ct);
        return (await store.ReadResultsAsync(runId, ct).ToListAsync(ct)).OrderBy(r => r.Method, StringComparer.Ordinal).ThenBy(r => r.ProbeId, StringComparer.Ordinal).ToList();
    }

    private static (string, string, string?, string) Row(ResultRecord r) =>
        (r.Method, r.ProbeId, r.Response,
         string.Join(";", (r.Requests[^1].Details ?? new Dictionary<string, string>()).OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}")));

    private static ISet<string> CachedMethods(List<ResultRecord> rows) =>
        rows.GroupBy(r => r.Method).Where(g => g.All(r => r.Requests.All(q => q.Cached))).Select(g => g.Key).ToHashSet();

    private static ISet<string> UncachedMethods(List<ResultRecord> rows) =>
        rows.GroupBy(r => r.Method).Where(g => g.All(r => r.Requests.All(q => !q.Cached))).Select(g => g.Key).ToHashSet();

    [Fact]
    public async Task IvoRepliesComeFromTheCacheOnlyWhileValueModelAndSettingsAreUnchanged()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var baseDir = TinyModelFolder.Create(Path.Combine(dir.Path, "tiny-base"));
        var valueDir = Path.Combine(dir.Path, "value");
        var train = await CliProcess.RunAsync(TrainArgs(baseDir, valueDir), dir.Path, ct, TimeSpan.FromSeconds(300));
        Assert.True(train.ExitCode == 0, train.ToString());

        async Task<List<ResultRecord>> Run(string runId, params string[] extra)
        {
            var run = await CliProcess.RunAsync(["run", "--target", baseDir, "--suite", "bbq", "--limit", "3", "--max-tokens", "6", "--temperature", "1", "--seed", "2",
                "--runs-dir", dir.Path, "--value-model", valueDir, "--method", string.Join(",", Methods), "--run-id", runId, .. extra], dir.Path, ct, TimeSpan.FromSeconds(300));
            Assert.True(run.ExitCode == 0, run.ToString());
            return await ReadAsync(dir.Path, runId, ct);
        }

        var first = await Run("a");
        Assert.Equal(Methods.ToHashSet(), UncachedMethods(first));

        // The same run again: every reply, IVO ones included, is read back with the details IVO recorded.
        var again = await Run("b");
        Assert.Equal(Methods.ToHashSet(), CachedMethods(again));
        Assert.Equal(first.Select(Row), again.Select(Row));

        // Another β: tokenwise IVO (alone and under cot) generates again; blockwise does not read β, so it stays cached.
        var beta = await Run("c", "--ivo-beta", "1");
        Assert.Equal(new HashSet<string> { "none", "ivo-block" }, CachedMethods(beta));
        Assert.Equal(new HashSet<string> { "ivo", "cot+ivo" }, UncachedMethods(beta));

        // Another value model in the same folder. Training on this tiny model has all-zero rewards, so a second `value
        // train` writes the same bytes (and rightly keeps the hash); a head with other weights stands in for a retrain.
        string? hashBefore;
        await using (var store = await RunStore.OpenDirectoryAsync(dir.Path, ct)) hashBefore = (await store.GetRunAsync("a", ct))!.Ivo!.ValueModelHash;
        var headPath = Path.Combine(valueDir, ScoreModel.HeadFile);
        torch.Tensor weight, bias;
        using (var head = SafetensorsFile.Open(headPath))
        {
            // Read copies the tensors out of the file, so it can be closed before it is overwritten.
            weight = head.Read("score.weight", torch.ScalarType.Float32);
            bias = head.Read("score.bias", torch.ScalarType.Float32);
        }
        using (var generator = new torch.Generator(11))
        using (var noise = torch.randn(weight.shape, generator: generator))
        using (var other = weight + noise)
        {
            SafetensorsWriter.Save(headPath, [new("score.weight", other), new("score.bias", bias)]);
        }
        weight.Dispose();
        bias.Dispose();
        var retrained = await Run("d");
        await using (var store = await RunStore.OpenDirectoryAsync(dir.Path, ct)) Assert.NotEqual(hashBefore, (await store.GetRunAsync("d", ct))!.Ivo!.ValueModelHash);
        Assert.Equal(new HashSet<string> { "none" }, CachedMethods(retrained));
        Assert.Equal(new HashSet<string> { "ivo", "ivo-block", "cot+ivo" }, UncachedMethods(retrained));
    }

    [Fact]
    public void IvoKeysCarryHashAndModeSettingsAndOtherMethodsKeepThePlainIdentity()
    {
        var plain = new RunSpec { RunId = "r", Suites = ["bbq"], TargetEndpoint = "/models/tiny", Model = "tiny", Methods = ["none", "ivo"] };
        var ivo = new IvoSpec("/value", "0123456789abcdef", Beta: 2.5, Candidates: 7, BlockTokens: 3, Beams: 2, BlocksPerBeam: 5);
        var spec = plain with { Ivo = ivo };

        // Methods that are not IVO keep exactly the key they had before IVO was keyed.
        foreach (var m in new[] { "none", "cot", "ivo+cot", "fairsteer" }) Assert.Equal(plain.CacheIdentityFor(m), spec.CacheIdentityFor(m));
        Assert.Equal(plain.TargetIdentity, spec.CacheIdentityFor("none"));

        Assert.Equal(plain.TargetIdentity + "|ivo:0123456789abcdef|beta=2.5|k=7", spec.CacheIdentityFor("ivo"));
        Assert.Equal(spec.CacheIdentityFor("ivo"), spec.CacheIdentityFor("cot+ivo"));
        Assert.Equal(plain.TargetIdentity + "|ivo-block:0123456789abcdef|L=3|W=2|B=5", spec.CacheIdentityFor("ivo-block"));

        // Every setting the mode reads, and the hash, changes the key; a setting the mode does not read does not.
        Assert.NotEqual(spec.CacheIdentityFor("ivo"), (plain with { Ivo = ivo with { Beta = 3 } }).CacheIdentityFor("ivo"));
        Assert.NotEqual(spec.CacheIdentityFor("ivo"), (plain with { Ivo = ivo with { Candidates = 8 } }).CacheIdentityFor("ivo"));
        Assert.NotEqual(spec.CacheIdentityFor("ivo"), (plain with { Ivo = ivo with { ValueModelHash = "fedcba9876543210" } }).CacheIdentityFor("ivo"));
        Assert.Equal(spec.CacheIdentityFor("ivo"), (plain with { Ivo = ivo with { BlockTokens = 9 } }).CacheIdentityFor("ivo"));
        Assert.NotEqual(spec.CacheIdentityFor("ivo-block"), (plain with { Ivo = ivo with { BlockTokens = 9 } }).CacheIdentityFor("ivo-block"));
        Assert.NotEqual(spec.CacheIdentityFor("ivo-block"), (plain with { Ivo = ivo with { Beams = 3 } }).CacheIdentityFor("ivo-block"));
        Assert.NotEqual(spec.CacheIdentityFor("ivo-block"), (plain with { Ivo = ivo with { BlocksPerBeam = 6 } }).CacheIdentityFor("ivo-block"));
        Assert.NotEqual(spec.CacheIdentityFor("ivo-block"), (plain with { Ivo = ivo with { ValueModelHash = "fedcba9876543210" } }).CacheIdentityFor("ivo-block"));

        Assert.True(ivo.Cacheable);
        Assert.False((ivo with { ValueModelHash = null }).Cacheable);
        // The library's names are the engine's.
        Assert.All(IvoMethods.Names, n => Assert.True(IvoSpec.AppliesTo(n)));
        Assert.Equal(IvoMethods.Names.Order(StringComparer.Ordinal), new[] { IvoSpec.Tokenwise, IvoSpec.Blockwise }.Order(StringComparer.Ordinal));
    }
}
