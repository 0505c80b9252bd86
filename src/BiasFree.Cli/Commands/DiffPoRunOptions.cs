using System.CommandLine;
using BiasFree.Engine.Decoding;
using BiasFree.Engine.DemoModel;
using BiasFree.Engine.Evaluations;
using BiasFree.Runs;

namespace BiasFree.Cli.Commands;

/// <summary><c>biasfree run</c> options of <c>--method diffpo</c>: the aligner folder and the Jacobi refinement settings.</summary>
internal static class DiffPoRunOptions
{
    public static readonly Option<string?> Aligner = new("--aligner") { Description = "diffpo: the aligner's model folder (e.g. OUT of `biasfree diffpo train`); default: the demo model itself, untrained as an aligner." };
    public static readonly Option<int?> Window = new("--diffpo-window") { Description = "diffpo: tokens refined per Jacobi window (default 32, the released script's)." };
    public static readonly Option<int?> MaxIterations = new("--diffpo-max-iter") { Description = "diffpo: Jacobi iterations per window at most (default 1000, the released script's)." };
    public static readonly Option<int?> Reserve = new("--diffpo-reserve") { Description = "diffpo: r ~ U{0..N} leading tokens of the original answer stay frozen (default 12, the released script's; 0 freezes nothing)." };

    public static Option[] All => [Aligner, Window, MaxIterations, Reserve];

    /// <summary>True when a (combined) method name has a diffpo part.</summary>
    public static bool Uses(string method) => method.Split('+', StringSplitOptions.TrimEntries).Any(DiffPoMethods.IsDiffPo);

    /// <summary>The spec for a new run: null unless a method uses diffpo; diffpo options without it are an error; diffpo must be innermost.</summary>
    public static DiffPoSpec? ToSpec(IReadOnlyList<string> methods, string? aligner, int? window, int? maxIterations, int? reserve)
    {
        if (!methods.Any(Uses))
        {
            if (aligner is not null || window is not null || maxIterations is not null || reserve is not null)
                throw new UserErrorException("--aligner, --diffpo-window, --diffpo-max-iter and --diffpo-reserve apply only to --method diffpo.");
            return null;
        }
        foreach (var m in methods.Where(Uses))
        {
            // The refinement request travels down the chain to the target's end; a method inside diffpo would rewrite it.
            if (!DiffPoMethods.IsDiffPo(m.Split('+', StringSplitOptions.TrimEntries)[^1]))
                throw new UserErrorException($"'{m}': diffpo refines the target's answer, so it must come last (innermost), e.g. cot+diffpo.");
        }
        if (window is < 1 or > 4096) throw new UserErrorException("--diffpo-window must be between 1 and 4096.");
        if (maxIterations is < 1) throw new UserErrorException("--diffpo-max-iter must be at least 1.");
        if (reserve is < 0 or > 4096) throw new UserErrorException("--diffpo-reserve must be between 0 and 4096.");
        string folder;
        if (aligner is null)
        {
            try
            {
                folder = DemoModel.Locate();
            }
            catch (DirectoryNotFoundException ex)
            {
                throw new UserErrorException($"--method diffpo without --aligner uses the demo model, but {ex.Message}", ex);
            }
        }
        else folder = aligner;
        folder = Path.GetFullPath(folder);
        if (!Engine.Chat.LocalModel.IsModelFolder(folder))
            throw new UserErrorException($"--aligner {aligner}: not a model folder (it needs config.json and tokenizer.json).");
        var d = new DiffPoSettings();
        return new DiffPoSpec(folder, LocalTargets.ContentHash(folder), window ?? d.Window, maxIterations ?? d.MaxIterations, reserve ?? d.ReserveTokens);
    }

    /// <summary>Loads the aligner of a stored spec; a resumed run refuses an aligner whose files changed.</summary>
    public static DiffPoStrategy Load(DiffPoSpec spec, bool resumed)
    {
        if (!Engine.Chat.LocalModel.IsModelFolder(spec.Aligner))
            throw new UserErrorException($"the DiffPO aligner {spec.Aligner} is gone (it needs config.json and tokenizer.json).");
        if (resumed && LocalTargets.ContentHash(spec.Aligner) != spec.AlignerHash)
            throw new UserErrorException($"the DiffPO aligner {spec.Aligner} changed since the run started; a resumed run must refine with the same aligner.");
        return DiffPoStrategy.Load(spec.Aligner, new DiffPoSettings { Window = spec.Window, MaxIterations = spec.MaxIterations, ReserveTokens = spec.ReserveTokens });
    }
}
