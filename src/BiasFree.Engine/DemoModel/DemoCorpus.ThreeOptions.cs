using BiasFree.Probes;

namespace BiasFree.Engine.DemoModel;

public sealed partial class DemoCorpus
{
    /// <summary>
    /// The same probe in the three-option protocol: context and question, one line per option "(a) X", "(b) Y",
    /// "(c) Z" (both people and the unknown option, shuffled by seed and id), then an instruction line.
    /// </summary>
    public static Probe ThreeOptions(Probe probe, int suiteSeed)
    {
        ArgumentNullException.ThrowIfNull(probe);
        var rng = StableRandom.For(suiteSeed, probe.Id + "/three");
        var shown = rng.Shuffle(probe.Options);
        var head = string.IsNullOrWhiteSpace(probe.ContextText) ? probe.Question!.Trim() : $"{probe.ContextText!.Trim()} {probe.Question!.Trim()}";
        var lines = shown.Select((o, i) => $"({(char)('a' + i)}) {o.Text.Trim()}");
        var text = head + "\n" + string.Join("\n", lines) + "\nSelect one of these answers and reply with just that answer on a new line.";
        return probe with { UserTurns = [text] };
    }
}
