using BiasFree.Probes;
using BiasFree.Runs;

namespace BiasFree.Evaluations;

/// <summary>
/// The probes of a run spec without holding them: a count, the scenarios, and an enumeration that reads the suites again,
/// one probe at a time, each time it is asked (issue #11: a 50,000-probe run must not keep its suite in memory).
/// </summary>
/// <remarks>
/// <see cref="Open"/> reads every suite once (the validation pass): a malformed record throws there, with its file and
/// line, before a run starts; the pass counts the probes, checks that no probe appears twice, notes the scenarios, and for
/// a run with a limit keeps each probe's stratum and seeded hash (<see cref="ProbeSampling.KeyOf"/>) to choose the sample
/// exactly as <see cref="ProbeSampling.Stratified"/> would on the loaded list. What stays afterwards is one flag per probe
/// of a limited suite. Enumerating reads the suites again (<see cref="IProbeSuite.Enumerate"/>: streamed for BiasFree
/// JSONL and BBQ JSON-lines files) and yields the kept probes in suite order, the order <see cref="Evaluation.LoadProbes(RunSpec, Action{string, int}?)"/>
/// returns.
/// </remarks>
public sealed class ProbeSource : IReadOnlyCollection<Probe>
{
    private readonly IReadOnlyList<(IProbeSuite Suite, bool[]? Keep)> _suites;

    private ProbeSource(IReadOnlyList<(IProbeSuite, bool[]?)> suites, int count, IReadOnlySet<Scenario> scenarios)
    {
        _suites = suites;
        Count = count;
        Scenarios = scenarios;
    }

    /// <summary>Probes of the run (after any limit).</summary>
    public int Count { get; }

    /// <summary>The scenarios the probes cover (what the judges must handle).</summary>
    public IReadOnlySet<Scenario> Scenarios { get; }

    /// <summary>
    /// Reads every suite of <paramref name="spec"/> once to validate and count it. Throws <see cref="ArgumentException"/>
    /// when a probe appears twice or no probe is left, <see cref="ProbeFormatException"/> for malformed input.
    /// </summary>
    /// <param name="spec">The run spec.</param>
    /// <param name="skippedRows">Told (suite spec, count) for each file suite that left rows out because they cannot be labelled.</param>
    public static ProbeSource Open(RunSpec spec, Action<string, int>? skippedRows = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var suites = new List<(IProbeSuite, bool[]?)>();
        var seen = new HashSet<(string, string)>();
        var scenarios = new HashSet<Scenario>();
        var count = 0;
        foreach (var s in spec.Suites)
        {
            var suite = SuiteRegistry.Resolve(s, spec.SuiteOptions);
            var ids = new List<(string Suite, string Id)>();
            var keys = spec.Limit is null ? null : new List<(string Stratum, ulong Hash)>();
            var suiteScenarios = new List<Scenario>();
            // Checked in full, built only as far as these lines need (IProbeSuite.Scan).
            foreach (var p in suite.Scan())
            {
                ids.Add((p.Suite, p.Id));
                keys?.Add(ProbeSampling.KeyOf(p, spec.Seed));
                suiteScenarios.Add(p.Scenario);
            }
            if (suite is IReportsSkippedRows { SkippedRows.Count: > 0 and var skipped })
            {
                skippedRows?.Invoke(s, skipped);
            }
            bool[]? keep = null;
            if (spec.Limit is int n && n < ids.Count)
            {
                var kept = spec.Sampling switch
                {
                    RunSpec.StratifiedSampling => ProbeSampling.StratifiedIndices(keys!, n, spec.Seed),
                    null => ProbeSampling.UniformLegacyIndices(ids.Count, n, spec.Seed),
                    var other => throw new ArgumentException($"unknown sampling '{other}' in run '{spec.RunId}'."),
                };
                keep = new bool[ids.Count];
                foreach (var i in kept)
                {
                    keep[i] = true;
                }
            }
            for (var i = 0; i < ids.Count; i++)
            {
                if (keep is not null && !keep[i])
                {
                    continue;
                }
                if (!seen.Add(ids[i]))
                {
                    throw new ArgumentException($"probe '{ids[i].Id}' of suite '{ids[i].Suite}' appears twice (is a suite given twice?).");
                }
                scenarios.Add(suiteScenarios[i]);
                count++;
            }
            suites.Add((suite, keep));
        }
        if (count == 0)
        {
            throw new ArgumentException("the suites contain no probes.");
        }
        return new ProbeSource(suites, count, scenarios);
    }

    /// <summary>The probes, read from the suites as the enumeration goes.</summary>
    public IEnumerator<Probe> GetEnumerator()
    {
        foreach (var (suite, keep) in _suites)
        {
            var i = 0;
            foreach (var p in suite.Enumerate())
            {
                if (keep is not null && i >= keep.Length)
                {
                    throw new InvalidOperationException($"suite '{suite.Name}' has more probes than when the run started (was its file changed?).");
                }
                if (keep is null || keep[i])
                {
                    yield return p;
                }
                i++;
            }
        }
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
