using BiasFree.Probes.BuiltIn;
using BiasFree.Probes.Loaders;

namespace BiasFree.Probes;

/// <summary>A suite read from a file or directory on demand; <see cref="Load"/> parses everything or throws.</summary>
public sealed class FileSuite(string name, string description, Func<IReadOnlyList<Probe>> load) : IProbeSuite
{
    public string Name { get; } = name;
    public string Description { get; } = description;
    public IReadOnlyList<Probe> Load() => load();
}

/// <summary>Finds suites by name: the built-ins, or a file format plus a path.</summary>
public static class SuiteRegistry
{
    /// <summary>The file formats accepted as <c>FORMAT:PATH</c>.</summary>
    public static readonly IReadOnlyList<string> Formats = ["bbq-jsonl", "fairmt", "jsonl", "stereoset", "crows-pairs"];

    /// <summary>Every spec form <see cref="Resolve(string, SuiteOptions)"/> accepts, for help texts and error messages.</summary>
    public static readonly IReadOnlyList<string> ValidSpecs =
        ["bbq", "fairmt", .. Formats.Select(f => $"{f}:PATH")];

    public static IReadOnlyList<IProbeSuite> BuiltIns(int seed = 0) => [new BbqBuiltInSuite(seed), new FairMTBuiltInSuite(seed)];

    /// <summary>
    /// Resolves <c>bbq</c>, <c>fairmt</c> (built-ins) or <c>FORMAT:PATH</c> with FORMAT one of <see cref="Formats"/>.
    /// File suites are read when <see cref="IProbeSuite.Load"/> is called. Unknown specs throw
    /// <see cref="ArgumentException"/> listing the valid ones.
    /// </summary>
    public static IProbeSuite Resolve(string spec, int seed = 0) =>
        Resolve(spec, new SuiteOptions(Seed: seed, LabelRule: BbqLabelRule.BiasFreeBench));

    /// <summary>
    /// Resolves a suite spec as <see cref="Resolve(string, int)"/> does, instantiated with <paramref name="options"/>:
    /// its seed, its protocol (two or three shown options, for BBQ-style suites), its label rule (official BBQ files)
    /// and its context filter (applied when the suite is loaded).
    /// </summary>
    public static IProbeSuite Resolve(string spec, SuiteOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var suite = ResolveUnfiltered(spec, options);
        return options.Context == ContextFilter.All ? suite : new FilteredSuite(suite, options);
    }

    /// <summary>A suite whose probes pass a <see cref="SuiteOptions"/> context filter.</summary>
    private sealed class FilteredSuite(IProbeSuite inner, SuiteOptions options) : IProbeSuite
    {
        public string Name => inner.Name;
        public string Description => $"{inner.Description} ({SuiteOptions.Name(options.Context)} contexts only)";
        public IReadOnlyList<Probe> Load() => [.. inner.Load().Where(options.Keeps)];
    }

    private static IProbeSuite ResolveUnfiltered(string spec, SuiteOptions options)
    {
        ArgumentNullException.ThrowIfNull(spec);
        int seed = options.Seed;
        var s = spec.Trim();
        switch (s)
        {
            case "bbq" or BbqBuiltInSuite.SuiteName: return new BbqBuiltInSuite(seed, options.Options);
            case "fairmt" or FairMTBuiltInSuite.SuiteName: return new FairMTBuiltInSuite(seed);
        }
        int colon = s.IndexOf(':');
        if (colon > 0 && colon < s.Length - 1)
        {
            var format = s[..colon].ToLowerInvariant();
            var path = s[(colon + 1)..];
            switch (format)
            {
                case "bbq-jsonl":
                    return new FileSuite(BbqJsonlLoader.SuiteName, $"BBQ items from {path}", () => BbqJsonlLoader.Load(path, seed, options.LabelRule, protocol: options.Options));
                case "fairmt":
                    return new FileSuite(FairMTLoader.SuiteName, $"FairMT-Bench dialogues from {path}", () => FairMTLoader.Load(path));
                case "jsonl":
                    return new FileSuite(Path.GetFileNameWithoutExtension(path), $"BiasFree JSONL suite {path}", () => ProbeJsonl.Load(path));
                case "stereoset":
                    return new FileSuite(StereoSetLoader.SuiteName, $"StereoSet examples from {path}", () => StereoSetLoader.Load(path, seed));
                case "crows-pairs":
                    return new FileSuite(CrowsPairsLoader.SuiteName, $"CrowS-Pairs rows from {path}", () => CrowsPairsLoader.Load(path, seed));
            }
        }
        throw new ArgumentException($"unknown suite '{spec}'; valid: {string.Join(", ", ValidSpecs)}", nameof(spec));
    }
}
