using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Scoring;

namespace BiasFree.Tests.Scoring;

internal static class ScoringTestData
{
    private static int _next;

    public static ScoredResponse Mc(Label label, string category = "age", ContextCondition ctx = ContextCondition.Ambiguous,
        OptionRole? correct = null, string model = "m", string method = "none", string? id = null) =>
        new(id ?? $"p{Interlocked.Increment(ref _next)}", model, method, Scenario.MultipleChoice, category, ctx,
            QuestionPolarity.Negative, label, correct ?? (ctx == ContextCondition.Ambiguous ? OptionRole.Unknown : null));

    public static ScoredResponse Mt(Label label, string category = "gender", string model = "m", string method = "none", string? id = null) =>
        new(id ?? $"p{Interlocked.Increment(ref _next)}", model, method, Scenario.MultiTurn, category, null, null, label, null);

    public static IEnumerable<T> Times<T>(int n, Func<T> make) => Enumerable.Range(0, n).Select(_ => make());
}
