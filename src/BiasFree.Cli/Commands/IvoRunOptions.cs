using System.CommandLine;
using System.Security.Cryptography;
using BiasFree.Engine.Decoding.Ivo;
using BiasFree.Engine.Training;
using BiasFree.Methods;
using BiasFree.Runs;

namespace BiasFree.Cli.Commands;

/// <summary><c>biasfree run</c> options of the IVO methods (<c>ivo</c>, <c>ivo-block</c>).</summary>
internal sealed class IvoRunOptions
{
    private static readonly IvoSettings Defaults = new();

    public Option<string?> ValueModel { get; } = new("--value-model") { Description = "IVO: value model folder from `biasfree value train` (for --method ivo, ivo-block)." };
    public Option<double?> Beta { get; } = new("--ivo-beta") { Description = $"IVO tokenwise: β, weight of the value bonus in logit units (default {Defaults.Beta}; 0 = plain sampling)." };
    public Option<int?> Candidates { get; } = new("--ivo-candidates") { Description = $"IVO tokenwise: k, top-k candidates scored per step (default {Defaults.Candidates})." };
    public Option<int?> BlockTokens { get; } = new("--ivo-block-tokens") { Description = $"IVO blockwise: L, tokens per block (default {Defaults.BlockTokens}; the paper uses 2 and 4)." };
    public Option<int?> Beams { get; } = new("--ivo-beams") { Description = $"IVO blockwise: W, beams kept (default {Defaults.Beams})." };
    public Option<int?> Blocks { get; } = new("--ivo-blocks") { Description = $"IVO blockwise: B, blocks sampled per beam (default {Defaults.BlocksPerBeam})." };

    public Option[] All => [ValueModel, Beta, Candidates, BlockTokens, Beams, Blocks];

    /// <summary>True when a method (or a part of a combined one) is an IVO method.</summary>
    public static bool Uses(IEnumerable<string> methods) =>
        methods.SelectMany(m => m.Split(MethodRegistry.CombineSeparator, StringSplitOptions.TrimEntries)).Any(IvoMethods.IsIvo);

    /// <summary>The spec for a new run: null unless an IVO method runs; IVO options without one are an error.</summary>
    public static IvoSpec? ToSpec(IReadOnlyList<string> methods, string? valueModel, double? beta, int? candidates, int? blockTokens, int? beams, int? blocks)
    {
        if (!Uses(methods))
        {
            if (valueModel is not null || beta is not null || candidates is not null || blockTokens is not null || beams is not null || blocks is not null)
                throw new UserErrorException($"--value-model and --ivo-* apply only to --method {string.Join("|", IvoMethods.Names)}.");
            return null;
        }
        if (valueModel is null) throw new UserErrorException("--method ivo / ivo-block needs --value-model DIR (make one with `biasfree value train --out DIR`).");
        var full = Path.GetFullPath(valueModel);
        var settings = new IvoSettings
        {
            Beta = beta ?? Defaults.Beta,
            Candidates = candidates ?? Defaults.Candidates,
            BlockTokens = blockTokens ?? Defaults.BlockTokens,
            Beams = beams ?? Defaults.Beams,
            BlocksPerBeam = blocks ?? Defaults.BlocksPerBeam,
        };
        try
        {
            settings.Validate();
        }
        catch (ArgumentException ex)
        {
            throw new UserErrorException(ex.Message);
        }
        return new IvoSpec(full, Hash(full), settings.Beta, settings.Candidates, settings.BlockTokens, settings.Beams, settings.BlocksPerBeam);
    }

    /// <summary>Engine options from a stored spec (null: none).</summary>
    public static IvoOptions? ToOptions(IvoSpec? spec) => spec is null ? null : new IvoOptions(spec.ValueModel, new IvoSettings
    {
        Beta = spec.Beta,
        Candidates = spec.Candidates,
        BlockTokens = spec.BlockTokens,
        Beams = spec.Beams,
        BlocksPerBeam = spec.BlocksPerBeam,
    });

    /// <summary>SHA-256 of the value model's weights and head: a retrained value model changes the replies.</summary>
    private static string Hash(string folder)
    {
        using var sha = SHA256.Create();
        foreach (var f in new[] { "model.safetensors", ScoreModel.HeadFile })
        {
            var path = Path.Combine(folder, f);
            if (!File.Exists(path)) throw new UserErrorException($"--value-model {folder}: {f} is missing (make the folder with `biasfree value train --out DIR`).");
            using var stream = File.OpenRead(path);
            var bytes = SHA256.HashData(stream);
            sha.TransformBlock(bytes, 0, bytes.Length, null, 0);
        }
        sha.TransformFinalBlock([], 0, 0);
        return Convert.ToHexStringLower(sha.Hash!)[..16];
    }
}
