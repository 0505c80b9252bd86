using System.Collections.Concurrent;
using BiasFree.Probes;
using BiasFree.Probes.BuiltIn;

namespace BiasFree.Engine.DemoModel;

public sealed partial class DemoCorpus
{
    // Three-option suites by seed (ids do not depend on the protocol). Bounded: the corpus walks seeds in order.
    private static readonly ConcurrentDictionary<int, IReadOnlyDictionary<string, Probe>> ThreeOptionSuites = new();

    /// <summary>
    /// The same probe in the three-option protocol, exactly as a run with <c>--options three</c> sends it: the built-in
    /// suite under the same seed with <see cref="OptionsShown.Three"/> (context and question, lines "(a) …", "(b) …",
    /// "(c) …" including the unknown option, then <see cref="MultipleChoiceQuery.LetteredInstruction"/>).
    /// </summary>
    public static Probe ThreeOptions(Probe probe, int suiteSeed)
    {
        ArgumentNullException.ThrowIfNull(probe);
        if (!ThreeOptionSuites.TryGetValue(suiteSeed, out var byId))
        {
            if (ThreeOptionSuites.Count >= 8) ThreeOptionSuites.Clear();
            byId = new BbqBuiltInSuite(suiteSeed, OptionsShown.Three).Load().ToDictionary(p => p.Id);
            ThreeOptionSuites[suiteSeed] = byId;
        }
        return byId.TryGetValue(probe.Id, out var three)
            ? three
            : throw new ArgumentException($"'{probe.Id}' is not a probe of the built-in BBQ-style suite", nameof(probe));
    }
}
