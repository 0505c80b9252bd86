using System.CommandLine;
using System.Security.Cryptography;
using BiasFree.Engine.WhiteBox;
using BiasFree.Methods;
using BiasFree.Mitigations;
using BiasFree.Runs;
using Microsoft.Extensions.AI;

namespace BiasFree.Cli.Commands;

/// <summary>
/// <c>run</c>'s white-box options and method names: <c>fairsteer</c> (+ ablations) and <c>biasfilter</c>, alone or under
/// prompting methods joined by '+' (<c>cot+fairsteer</c>: the prompting method wraps the steered model).
/// </summary>
internal static class WhiteBoxRunOptions
{
    public const char Combine = '+';

    public static readonly Option<string?> Steering = new("--steering") { Description = "FairSteer folder from `biasfree steer fit` (for --method fairsteer, fairsteer-always, fairsteer-gate-only, fairsteer-random, fairsteer-prompt-gate)." };
    public static readonly Option<string?> RewardModel = new("--reward-model") { Description = "BiasFilter's π_fair: a preference-tuned model folder." };
    public static readonly Option<string?> RewardReference = new("--reward-ref") { Description = "BiasFilter's π_ref: the reference model folder of --reward-model." };
    public static readonly Option<double> Beta = new("--beta") { Description = "β of BiasFilter's implicit reward.", DefaultValueFactory = _ => 1.0 };
    public static readonly Option<int> Keep = new("--filter-keep") { Description = "BiasFilter's N: candidates kept after each segment.", DefaultValueFactory = _ => 4 };
    public static readonly Option<int> Children = new("--filter-children") { Description = "BiasFilter's N_children: continuations sampled per kept candidate.", DefaultValueFactory = _ => 4 };
    public static readonly Option<int> Segment = new("--segment-tokens") { Description = "BiasFilter's l: tokens per segment.", DefaultValueFactory = _ => 12 };

    public static readonly Option<double> Margin = new("--filter-margin") { Description = "BiasFilter's δ (ours): candidates scored within δ of the best count as equally fair and keep the target's sampling order; 0 = rank by the reward alone.", DefaultValueFactory = _ => 0.0 };

    public static readonly Option<double> LikelihoodWeight = new("--filter-likelihood-weight") { Description = "BiasFilter's λ (ours): rank candidates by β·reward + λ·(the target's log-probability of the reply), so the target's own reading decides where the reward cannot; 0 = rank by the reward alone (the paper).", DefaultValueFactory = _ => 0.0 };

    public static Option[] All => [Steering, RewardModel, RewardReference, Beta, Keep, Children, Segment, Margin, LikelihoodWeight];

    public static IEnumerable<string> MethodNames => PromptingMitigations.Names.Concat(WhiteBoxMethods.Names);

    /// <summary>Canonical name of a (combined) method; at most one white-box part, and it must come last (innermost).</summary>
    public static string Normalize(string method)
    {
        var parts = method.Split(Combine, StringSplitOptions.TrimEntries).Select(p => p.ToLowerInvariant()).ToList();
        foreach (var p in parts)
        {
            if (!WhiteBoxMethods.IsWhiteBox(p) && !PromptingMitigations.Names.Contains(p, StringComparer.OrdinalIgnoreCase))
            {
                throw new UserErrorException($"unknown method '{(p.Length == 0 ? method : p)}'; available: {string.Join(", ", MethodNames)} (combine a prompting method with a white-box one as cot{Combine}fairsteer).");
            }
        }
        if (parts.Count == 1)
        {
            return WhiteBoxMethods.IsWhiteBox(parts[0]) ? parts[0] : PromptingMitigations.Normalize(parts[0]);
        }
        if (parts.Count(WhiteBoxMethods.IsWhiteBox) != 1 || !WhiteBoxMethods.IsWhiteBox(parts[^1]))
        {
            throw new UserErrorException($"'{method}': a combination is prompting method(s) followed by one white-box method, e.g. cot{Combine}fairsteer.");
        }
        if (parts.Contains(PromptingMitigations.None) || parts.Distinct().Count() != parts.Count)
        {
            throw new UserErrorException($"'{method}': 'none' cannot be combined, and no method may appear twice.");
        }
        return string.Join(Combine, parts.Take(parts.Count - 1).Select(PromptingMitigations.Normalize).Append(parts[^1]));
    }

    /// <summary>The run's white-box settings from the options, checked against the methods; null when no white-box method runs.</summary>
    public static WhiteBoxSpec? SpecFor(IReadOnlyList<string> methods, string? steering, string? rewardModel, string? rewardRef, double beta, int keep, int children, int segment, double margin = 0, double likelihoodWeight = 0)
    {
        var white = methods.Select(m => m.Split(Combine)[^1]).Where(WhiteBoxMethods.IsWhiteBox).ToList();
        if (white.Count == 0)
        {
            if (steering is not null || rewardModel is not null || rewardRef is not null)
            {
                throw new UserErrorException("--steering, --reward-model and --reward-ref apply only to the white-box methods (fairsteer..., biasfilter).");
            }
            return null;
        }
        string? steeringFull = null, hash = null;
        if (white.Any(WhiteBoxMethods.IsFairSteer))
        {
            if (steering is null)
            {
                throw new UserErrorException("--method fairsteer needs --steering DIR (make one with `biasfree steer fit --out DIR`).");
            }
            steeringFull = Path.GetFullPath(steering);
            hash = SteeringHash(steeringFull);
        }
        if (white.Contains(WhiteBoxMethods.BiasFilter))
        {
            if (rewardModel is null || rewardRef is null)
            {
                throw new UserErrorException("--method biasfilter needs --reward-model FOLDER (π_fair) and --reward-ref FOLDER (π_ref).");
            }
            if (keep < 1 || children < 1 || segment < 1 || !(beta > 0) || !(margin >= 0) || double.IsInfinity(margin) || !(likelihoodWeight >= 0) || double.IsInfinity(likelihoodWeight))
            {
                throw new UserErrorException("--filter-keep, --filter-children and --segment-tokens must be at least 1, --beta positive, and --filter-margin and --filter-likelihood-weight finite numbers ≥ 0.");
            }
        }
        string? rewardFull = rewardModel is null ? null : Path.GetFullPath(rewardModel), refFull = rewardRef is null ? null : Path.GetFullPath(rewardRef);
        return new WhiteBoxSpec(steeringFull, hash, rewardFull, refFull, beta, keep, children, segment,
            RewardHash: rewardFull is null || refFull is null ? null : FolderHash([rewardFull, refFull]),
            Methods: white.Distinct(StringComparer.Ordinal).ToList(), Margin: margin, LikelihoodWeight: likelihoodWeight);
    }

    /// <summary>
    /// SHA-256 over the weights and settings files (top-level *.safetensors and *.json, names and contents, sorted) of
    /// the reward model folders, so BiasFilter's cached replies are keyed by the models' content, not their paths.
    /// </summary>
    public static string FolderHash(IReadOnlyList<string> folders)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var folder in folders)
        {
            if (!Directory.Exists(folder))
            {
                throw new UserErrorException($"'{folder}' is not a folder.");
            }
            var files = Directory.EnumerateFiles(folder)
                .Where(f => f.EndsWith(".safetensors", StringComparison.Ordinal) || f.EndsWith(".json", StringComparison.Ordinal))
                .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal);
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes("\0folder\0"));
            foreach (var f in files)
            {
                sha.AppendData(System.Text.Encoding.UTF8.GetBytes(Path.GetFileName(f) + "\0"));
                using var stream = File.OpenRead(f);
                var buffer = new byte[1 << 20];
                int n;
                while ((n = stream.Read(buffer)) > 0)
                {
                    sha.AppendData(buffer.AsSpan(0, n));
                }
            }
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset())[..16];
    }

    /// <summary>SHA-256 of the FairSteer files: a refit changes the replies, so it must change the cache identity.</summary>
    public static string SteeringHash(string folder)
    {
        using var sha = SHA256.Create();
        foreach (var f in new[] { FairSteerModel.InfoFile, FairSteerModel.TensorsFile })
        {
            var path = Path.Combine(folder, f);
            if (!File.Exists(path))
            {
                throw new UserErrorException($"--steering {folder}: {f} is missing (make the folder with `biasfree steer fit --out DIR`).");
            }
            var bytes = File.ReadAllBytes(path);
            sha.TransformBlock(bytes, 0, bytes.Length, null, 0);
        }
        sha.TransformFinalBlock([], 0, 0);
        return Convert.ToHexStringLower(sha.Hash!)[..16];
    }

    /// <summary>
    /// The CLI's method registry: the prompting methods worded by <paramref name="prompts"/>, plus the white-box methods
    /// configured by <paramref name="spec"/> (registered either way, so a missing option is reported by name).
    /// </summary>
    public static MethodRegistry Registry(MethodPrompts prompts, WhiteBoxSpec? spec)
    {
        var registry = new MethodRegistry(MethodRegistry.PromptingWith(prompts));
        var artifacts = new WhiteBoxArtifacts(); // lives as long as the run's process
        foreach (var name in WhiteBoxMethods.Names)
        {
            registry.Add(new MethodDefinition(name, WhiteBoxMethods.Descriptions[name],
                b => b.Use(inner => WhiteBoxMethods.Apply(inner, name, Settings(spec, name), artifacts)), MethodKind.WhiteBox));
        }
        return registry;
    }

    private static WhiteBoxSettings Settings(WhiteBoxSpec? spec, string method)
    {
        var w = spec ?? throw new UserErrorException($"method '{method}' needs its white-box options (--steering / --reward-model).");
        return new WhiteBoxSettings
        {
            SteeringFolder = w.Steering,
            BiasFilter = w.RewardModel is null ? null : new BiasFilterOptions
            {
                FairModel = w.RewardModel,
                ReferenceModel = w.RewardReference ?? "",
                Beta = w.Beta,
                Keep = w.Keep,
                Children = w.Children,
                SegmentTokens = w.SegmentTokens,
                Margin = w.Margin,
                LikelihoodWeight = w.LikelihoodWeight,
            },
        };
    }
}
