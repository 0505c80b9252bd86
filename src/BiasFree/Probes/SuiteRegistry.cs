using BiasFree.Probes.BuiltIn;
using BiasFree.Probes.Loaders;

namespace BiasFree.Probes;

/// <summary>
/// A suite that may leave out source rows it cannot turn into probes. <see cref="SkippedRows"/> lists them, with
/// the reason, after <see cref="IProbeSuite.Load"/> has run (empty before).
/// </summary>
public interface IReportsSkippedRows
{
    IReadOnlyList<SkippedRow> SkippedRows { get; }
}

/// <summary>A suite read from a file or directory on demand; <see cref="Load"/> parses everything or throws.</summary>
public sealed class FileSuite : IProbeSuite, IReportsSkippedRows
{
    private readonly Func<ICollection<SkippedRow>, IReadOnlyList<Probe>> load;
    private readonly Func<ICollection<SkippedRow>, IEnumerable<Probe>>? stream;

    public FileSuite(string name, string description, Func<IReadOnlyList<Probe>> load)
        : this(name, description, _ => load())
    {
    }

    /// <summary>A file suite whose loader reports the rows it skips into the collection it is given.</summary>
    public FileSuite(string name, string description, Func<ICollection<SkippedRow>, IReadOnlyList<Probe>> load)
    {
        Name = name;
        Description = description;
        this.load = load;
    }

    /// <summary>A file suite that can also be read lazily (<see cref="Enumerate"/>); <see cref="Load"/> collects that stream.</summary>
    public FileSuite(string name, string description, Func<ICollection<SkippedRow>, IEnumerable<Probe>> stream)
        : this(name, description, skipped => [.. stream(skipped)])
    {
        this.stream = stream;
    }

    public string Name { get; }
    public string Description { get; }
    public IReadOnlyList<SkippedRow> SkippedRows { get; private set; } = [];

    /// <summary>A file suite that can be read lazily (<see cref="Enumerate"/>) and checked without building its probes (<see cref="Scan"/>).</summary>
    public FileSuite(string name, string description, Func<ICollection<SkippedRow>, IEnumerable<Probe>> stream,
        Func<ICollection<SkippedRow>, IEnumerable<Probe>> scan)
        : this(name, description, stream)
    {
        this.scan = scan;
    }

    private readonly Func<ICollection<SkippedRow>, IEnumerable<Probe>>? scan;

    /// <inheritdoc />
    public IEnumerable<Probe> Scan()
    {
        if (scan is null)
        {
            foreach (var p in Enumerate()) yield return p;
            yield break;
        }
        var skipped = new List<SkippedRow>();
        foreach (var p in scan(skipped)) yield return p;
        SkippedRows = skipped;
    }

    /// <summary>The probes, streamed when the format allows it; <see cref="SkippedRows"/> is set when the enumeration ends.</summary>
    public IEnumerable<Probe> Enumerate()
    {
        if (stream is null)
        {
            foreach (var p in Load()) yield return p;
            yield break;
        }
        var skipped = new List<SkippedRow>();
        foreach (var p in stream(skipped)) yield return p;
        SkippedRows = skipped;
    }

    public IReadOnlyList<Probe> Load()
    {
        var skipped = new List<SkippedRow>();
        var probes = load(skipped);
        SkippedRows = skipped;
        return probes;
    }
}

/// <summary>Finds suites by name: the built-ins, or a file format plus a path.</summary>
public static class SuiteRegistry
{
    /// <summary>The file formats accepted as <c>FORMAT:PATH</c>.</summary>
    public static readonly IReadOnlyList<string> Formats = ["bbq-jsonl", "bbq-json", "fairmt", "jsonl", "stereoset", "crows-pairs"];

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
    private sealed class FilteredSuite(IProbeSuite inner, SuiteOptions options) : IProbeSuite, IReportsSkippedRows, IRereadableSuite
    {
        public bool CanReread => inner is IRereadableSuite { CanReread: true };
        public IEnumerable<(Probe Probe, ProbePlace Place)> ScanPlaces() => Rereadable.ScanPlaces().Where(x => options.Keeps(x.Probe));
        public IReadOnlyList<Probe> ReadAt(IReadOnlyList<ProbePlace> places) => Rereadable.ReadAt(places);
        private IRereadableSuite Rereadable => CanReread ? (IRereadableSuite)inner : throw new InvalidOperationException($"suite '{inner.Name}' cannot be read again by place.");
        public string Name => inner.Name;
        public IReadOnlyList<SkippedRow> SkippedRows => inner is IReportsSkippedRows r ? r.SkippedRows : [];
        public string Description => $"{inner.Description} ({SuiteOptions.Name(options.Context)} contexts only)";
        public IReadOnlyList<Probe> Load() => [.. inner.Load().Where(options.Keeps)];
        public IEnumerable<Probe> Enumerate() => inner.Enumerate().Where(options.Keeps);
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
                // One loader reads both BBQ's JSON lines and BiasFreeBench's JSON arrays; "bbq-json" is the same
                // format under the name a user of BiasFreeBench's ambigdata/*.json files would try.
                case "bbq-jsonl" or "bbq-json":
                    return new BbqJsonlSuite(path, options);
                case "fairmt":
                {
                    var (dialogues, attributesFrom) = FairMTLoader.SplitSpec(path);
                    var description = attributesFrom is null
                        ? $"FairMT-Bench dialogues from {dialogues}"
                        : $"FairMT-Bench dialogues from {dialogues}, attributes from {attributesFrom}";
                    return new FileSuite(FairMTLoader.SuiteName, description, _ => FairMTLoader.Read(dialogues, attributesFrom));
                }
                case "jsonl":
                    return new ProbeJsonlSuite(path);
                case "stereoset":
                    return new FileSuite(StereoSetLoader.SuiteName, $"StereoSet examples from {path}", () => StereoSetLoader.Load(path, seed));
                case "crows-pairs":
                    return new FileSuite(CrowsPairsLoader.SuiteName, $"CrowS-Pairs rows from {path}", () => CrowsPairsLoader.Load(path, seed));
            }
        }
        throw new ArgumentException($"unknown suite '{spec}'; valid: {string.Join(", ", ValidSpecs)}", nameof(spec));
    }
}
