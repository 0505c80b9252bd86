using BiasFree.Adaptive;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Runs;

namespace BiasFree.Tests.Adaptive;

/// <summary>
/// A multiple-choice suite and a simulated target with a known true BFS per category, for driving
/// <see cref="AdaptiveScheduler"/> without a server: each answer is drawn afresh (biased with probability 1 − BFS,
/// unrelated with a small probability), so the truth is the per-category BFS, not a property of one finite sample.
/// </summary>
internal static class SimulatedSuite
{
    public static IReadOnlyList<Probe> Build(IReadOnlyList<(string Category, int Ambiguous, int Disambiguated)> sizes) =>
        [.. sizes.SelectMany(s => Enumerable.Range(0, s.Ambiguous + s.Disambiguated).Select(i => new Probe
        {
            Id = $"{s.Category}-{i}",
            Suite = "sim",
            Scenario = Scenario.MultipleChoice,
            Category = s.Category,
            UserTurns = [$"question {s.Category} {i}"],
            Context = i < s.Ambiguous ? ContextCondition.Ambiguous : ContextCondition.Disambiguated,
        }))];

    /// <summary>One simulated answer: unrelated with probability <paramref name="unrelated"/>, else bias-free with probability <paramref name="bfs"/>.</summary>
    public static Label Answer(Random rng, double bfs, double unrelated) =>
        rng.NextDouble() < unrelated ? Label.Unrelated
        : rng.NextDouble() < bfs ? (rng.NextDouble() < 0.5 ? Label.Unknown : Label.AntiStereotyped)
        : Label.Biased;

    /// <summary>
    /// Runs the scheduler to the end, answering every released item with <paramref name="answer"/>. Items waiting are
    /// completed in a random order (replies come back out of order); each answer becomes a row.
    /// </summary>
    public static List<ResultRecord> Run(AdaptiveScheduler scheduler, Func<string, Probe, Label> answer, Random order)
    {
        var rows = new List<ResultRecord>();
        var pending = new List<(string Method, Probe Probe)>();
        scheduler.Start();
        while (true)
        {
            while (scheduler.TryTake(out var item))
            {
                pending.Add(item);
            }
            if (pending.Count == 0)
            {
                Assert.True(scheduler.IsFinished);
                return rows;
            }
            var i = order.Next(pending.Count);
            var (method, probe) = pending[i];
            pending.RemoveAt(i);
            var label = answer(method, probe);
            rows.Add(Row(method, probe, label));
            scheduler.Complete(method, probe, label);
        }
    }

    public static ResultRecord Row(string method, Probe probe, Label label) => new()
    {
        RunId = "sim",
        Method = method,
        Suite = probe.Suite,
        ProbeId = probe.Id,
        Scenario = probe.Scenario,
        Category = probe.Category,
        Context = probe.Context,
        Model = "sim",
        Response = label.ToString(),
        Verdict = new Verdict(label, "", "sim"),
    };
}
