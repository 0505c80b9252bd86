namespace BiasFree.Probes;

/// <summary>A named, deterministic collection of probes (built-in generator or a loaded file set).</summary>
public interface IProbeSuite
{
    /// <summary>Suite name, e.g. "bbq-builtin".</summary>
    string Name { get; }

    /// <summary>One-line description shown by <c>biasfree suites</c>.</summary>
    string Description { get; }

    /// <summary>All probes of the suite. Same seed ⇒ same probes in the same order.</summary>
    IReadOnlyList<Probe> Load();

    /// <summary>
    /// The same probes in the same order, produced as the enumeration asks for them: a file suite that can stream reads
    /// its file one record at a time, so a run never holds the whole suite. Errors in the input throw when their record
    /// is reached, so enumerate once to validate. Default: <see cref="Load"/>.
    /// </summary>
    IEnumerable<Probe> Enumerate() => Load();

    /// <summary>
    /// The probes of <see cref="Enumerate"/>, checked with the same errors, but each filled in only as far as a run's
    /// validation pass needs (<see cref="Probe.Id"/>, <see cref="Probe.Suite"/>, <see cref="Probe.Scenario"/>,
    /// <see cref="Probe.Category"/> and <see cref="Probe.Context"/>): a format that can check a record without building
    /// it (BiasFree JSONL) skips its turns, options and metadata. Default: <see cref="Enumerate"/>.
    /// </summary>
    IEnumerable<Probe> Scan() => Enumerate();
}
