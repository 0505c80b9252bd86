using System.Reflection;
using System.Security.Cryptography;
using BiasFree.Probes;
using BiasFree.Runs;

namespace BiasFree.Evaluations;

/// <summary>
/// A BiasFree JSONL suite's validation pass, recorded in the run store under the file's content and this build, so that
/// a later run of the same file into the same store (a cache-only rerun, a resume, another method) starts without
/// reading it once more before its run reads it.
/// </summary>
/// <remarks>
/// <para><b>Why.</b> The validation pass (<see cref="ProbeSource.Open(RunSpec, Action{string, int}?)"/>) reads the whole
/// file before a run starts, so that a malformed line fails the run before any request, and counts the probes and their
/// scenarios. For a 50,000-probe suite (36 MB) it was about 240 ms of CPU on the start of every run, a tenth of a
/// Native AOT cache-only rerun's wall time (docs/runs-and-reports.md, "Thirteenth round"). Hashing the file takes a
/// fifth of that.</para>
/// <para><b>When a record is used.</b> Only what the pass of this build over these exact bytes found: the key is the
/// SHA-256 of the file's content with the library's version and commit, so an edited file, or a build whose checks may
/// differ, is checked again (and records its own result); a file that failed its check records nothing. Only runs of
/// one JSONL suite without a probe limit use it: the pass over several suites also checks that no probe appears in two,
/// and a limited run keeps each probe's stratum and hash to choose its sample, which a record does not hold. The run
/// itself still reads the file line by line and fails on a line it cannot read, and if the file changed after the
/// check the count no longer matches and the run says so (<see cref="ProbeSource"/>).</para>
/// </remarks>
internal sealed class SuiteCheck
{
    private SuiteCheck(IProbeSuite suite, string key, (int Probes, IReadOnlySet<Scenario> Scenarios)? recorded)
    {
        Suite = suite;
        Key = key;
        Recorded = recorded;
    }

    /// <summary>The spec's one suite, resolved (what a run that takes the record reads).</summary>
    public IProbeSuite Suite { get; }

    /// <summary>The file's content and this build, hashed (what a record is stored under).</summary>
    public string Key { get; }

    /// <summary>What this build's pass found in the same content earlier, or null (none recorded).</summary>
    public (int Probes, IReadOnlySet<Scenario> Scenarios)? Recorded { get; }

    // The build whose checks a record stands for: version and commit (e.g. "0.1.0+198667c...").
    private static readonly string Build =
        typeof(SuiteCheck).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    /// <summary>
    /// The check of <paramref name="spec"/>'s suite as <paramref name="store"/> recorded it, or null when the spec is not
    /// one JSONL suite without a limit (or its file cannot be read: the pass then reports that, with its own message).
    /// </summary>
    public static async Task<SuiteCheck?> FindAsync(RunSpec spec, RunStore store, CancellationToken cancellationToken)
    {
        if (!AppliesTo(spec) || SuiteRegistry.Resolve(spec.Suites[0], spec.SuiteOptions) is not ProbeJsonlSuite suite)
        {
            return null;
        }
        string key;
        try
        {
            key = KeyOf(suite.FilePath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
        return new SuiteCheck(suite, key, await store.FindSuiteCheckAsync(key, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>True for the runs a record may stand in for: one suite, no limit (the remarks say why).</summary>
    internal static bool AppliesTo(RunSpec spec) => spec.Suites.Count == 1 && spec.Limit is null;

    /// <summary>The key of a file's content checked by this build.</summary>
    internal static string KeyOf(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        return $"jsonl:{Build}:{Convert.ToHexStringLower(SHA256.HashData(file))}";
    }
}
