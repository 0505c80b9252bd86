using BiasFree.Probes;
using BiasFree.Runs;

namespace BiasFree.Evaluations;

/// <summary>
/// The probes of a run spec without holding them: a count, the scenarios, and an enumeration that reads the suites again,
/// one probe at a time, each time it is asked (issue #11: a 50,000-probe run must not keep its suite in memory).
/// </summary>
/// <remarks>
/// <see cref="Open(RunSpec, Action{string, int}?)"/> reads every suite once (the validation pass): a malformed record throws there, with its file and
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

    /// <summary>True when the validation pass was not run because the store had recorded it for this file and build (<see cref="SuiteCheck"/>).</summary>
    internal bool FromRecordedCheck { get; private init; }

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
    public static ProbeSource Open(RunSpec spec, Action<string, int>? skippedRows = null) => Open(spec, skippedRows, check: null);

    /// <summary>
    /// <see cref="Open(RunSpec, Action{string, int}?)"/>, or, when <paramref name="check"/> holds what this build's pass found
    /// in the same file before, that result without the pass.
    /// </summary>
    internal static ProbeSource Open(RunSpec spec, Action<string, int>? skippedRows, SuiteCheck? check)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (check?.Recorded is { } recorded && SuiteCheck.AppliesTo(spec))
        {
            return new ProbeSource([(check.Suite, null)], recorded.Probes, recorded.Scenarios)
            {
                FromRecordedCheck = true,
            };
        }
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

    // What ScanKept recorded, per suite: the places of its kept probes (ProbePlace[], a re-readable file) or the probes
    // themselves (Probe[], any other format), and the ordinal of the suite's first kept probe.
    private object[]? _kept;
    private int[]? _firstOrdinal;

    /// <summary>
    /// The kept probes in the order <see cref="GetEnumerator"/> gives them (their ordinals 0, 1, ...), each built only as
    /// far as <see cref="IProbeSuite.Scan"/> builds it (id, suite, scenario, category, context), recording where each one
    /// is so that <see cref="ReadKept"/> can build it in full later: its place in the file for a suite that can be read
    /// again by place (<see cref="IRereadableSuite"/>: BiasFree JSONL), else the probe itself (other formats, which are
    /// read whole anyway). An adaptive run scans once (<see cref="Adaptive.AdaptiveScheduler"/>) and then holds 16 bytes
    /// per probe of a JSONL suite instead of the probe.
    /// </summary>
    internal IEnumerable<Probe> ScanKept()
    {
        var kept = new object[_suites.Count];
        var first = new int[_suites.Count];
        var ordinal = 0;
        for (var s = 0; s < _suites.Count; s++)
        {
            var (suite, keep) = _suites[s];
            first[s] = ordinal;
            var i = 0;
            if (suite is IRereadableSuite { CanReread: true } rereadable)
            {
                var places = new List<ProbePlace>(keep is null ? 0 : keep.Count(k => k));
                foreach (var (p, place) in rereadable.ScanPlaces())
                {
                    if (Kept(suite, keep, i++))
                    {
                        places.Add(place);
                        ordinal++;
                        yield return p;
                    }
                }
                kept[s] = places.ToArray();
            }
            else
            {
                var held = new List<Probe>();
                foreach (var p in suite.Enumerate())
                {
                    if (Kept(suite, keep, i++))
                    {
                        held.Add(p);
                        ordinal++;
                        yield return p;
                    }
                }
                kept[s] = held.ToArray();
            }
        }
        if (ordinal != Count)
        {
            throw new InvalidOperationException($"the suites have {ordinal} probes now and had {Count} when the run started (was a file changed?).");
        }
        _kept = kept;
        _firstOrdinal = first;
    }

    /// <summary>The probes with these ordinals (of <see cref="ScanKept"/>, which must have run to its end), built in full, in this order.</summary>
    internal IReadOnlyList<Probe> ReadKept(IReadOnlyList<int> ordinals)
    {
        ArgumentNullException.ThrowIfNull(ordinals);
        if (_kept is null || _firstOrdinal is null)
        {
            throw new InvalidOperationException("ScanKept has not run to its end.");
        }
        var result = new Probe[ordinals.Count];
        for (var s = 0; s < _suites.Count; s++)
        {
            var from = _firstOrdinal[s];
            var to = s + 1 < _suites.Count ? _firstOrdinal[s + 1] : Count;
            List<int>? at = null;
            List<ProbePlace>? places = null;
            for (var i = 0; i < ordinals.Count; i++)
            {
                var o = ordinals[i];
                if (o < from || o >= to)
                {
                    continue;
                }
                if (_kept[s] is Probe[] held)
                {
                    result[i] = held[o - from];
                }
                else
                {
                    (at ??= []).Add(i);
                    (places ??= []).Add(((ProbePlace[])_kept[s])[o - from]);
                }
            }
            if (places is not null)
            {
                var read = ((IRereadableSuite)_suites[s].Suite).ReadAt(places);
                for (var k = 0; k < read.Count; k++)
                {
                    result[at![k]] = read[k];
                }
            }
        }
        for (var i = 0; i < result.Length; i++)
        {
            if (result[i] is null)
            {
                throw new ArgumentOutOfRangeException(nameof(ordinals), ordinals[i], "no probe has this ordinal.");
            }
        }
        return result;
    }

    /// <summary>The kept probes in order, built only as far as <see cref="IProbeSuite.Scan"/> builds them; nothing is recorded.</summary>
    internal IEnumerable<Probe> Scanned()
    {
        foreach (var (suite, keep) in _suites)
        {
            var i = 0;
            foreach (var p in suite.Scan())
            {
                if (Kept(suite, keep, i++))
                {
                    yield return p;
                }
            }
        }
    }

    private static bool Kept(IProbeSuite suite, bool[]? keep, int i)
    {
        if (keep is not null && i >= keep.Length)
        {
            throw new InvalidOperationException($"suite '{suite.Name}' has more probes than when the run started (was its file changed?).");
        }
        return keep is null || keep[i];
    }
}
