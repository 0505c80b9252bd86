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
}
