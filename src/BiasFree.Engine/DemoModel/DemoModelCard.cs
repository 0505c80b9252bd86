using System.Globalization;
using System.Text;
using BiasFree.Judges;
using BiasFree.Mitigations;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.DemoModel;

/// <summary>Settings of <see cref="DemoModelCard.MeasureAsync"/>.</summary>
public sealed record DemoCardOptions
{
    /// <summary>Held-out ambiguous probes per multiple-choice condition.</summary>
    public int ChoiceCount { get; init; } = 200;

    /// <summary>Held-out items for each other family (dialogues, continuations, judge, each capability task).</summary>
    public int FamilyCount { get; init; } = 80;

    /// <summary>BBQ/FairMT suite seed (one of <see cref="DemoCorpus.EvaluationSeeds"/>) and item seed of the other families.</summary>
    public int SuiteSeed { get; init; } = 7;

    /// <summary>Sampling seed; each request's seed is derived from it and the item id.</summary>
    public long SamplingSeed { get; init; } = 1;

    /// <summary>Also measure every condition greedily (temperature 0).</summary>
    public bool Greedy { get; init; } = true;

    /// <summary>What the model was taught (the defaults are the committed model's).</summary>
    public DemoCorpusOptions Taught { get; init; } = new();
}

/// <summary>All measurements of a demo model card.</summary>
public sealed record DemoCardResult(
    DemoCardOptions Options,
    IReadOnlyList<ChoiceMeasurement> Sampled,
    IReadOnlyList<ChoiceMeasurement> Greedy,
    Proportion DisambiguatedAccuracy,
    IReadOnlyList<FamilyMeasurement> Families,
    TimeSpan Elapsed);

/// <summary>
/// Measures a demo model family by family and renders the model card's tables (markdown). <c>biasfree demo-model eval
/// --card</c> prints them; models/demo/README.md shows the committed model's output next to that command.
/// </summary>
public static class DemoModelCard
{
    /// <summary>The multiple-choice conditions of the card: the five prompting methods, then the personas, then the three-option protocol.</summary>
    public static IReadOnlyList<(string Condition, string Protocol)> Conditions(DemoCorpusOptions taught)
    {
        ArgumentNullException.ThrowIfNull(taught);
        return
        [
            .. PromptingMitigations.Names.Select(m => (m, "two")),
            .. taught.Personas.Select(p => ($"persona:{p.Name}", "two")),
            (PromptingMitigations.None, "three"),
        ];
    }

    /// <summary>Runs every measurement of the card.</summary>
    public static async Task<DemoCardResult> MeasureAsync(IChatClient client, DemoCardOptions options, IProgress<string>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var sampled = new List<ChoiceMeasurement>();
        var greedy = new List<ChoiceMeasurement>();
        foreach (var (condition, protocol) in Conditions(options.Taught))
        {
            progress?.Report($"{condition} ({protocol} options), sampled");
            double taught = DemoModelEvaluation.TaughtRate(options.Taught, condition);
            sampled.Add(await DemoModelEvaluation.ChoiceAsync(client, condition, protocol, taught, options.ChoiceCount, options.SuiteSeed,
                options.SamplingSeed, null, cancellationToken, options.Taught.Personas).ConfigureAwait(false));
            if (options.Greedy)
            {
                progress?.Report($"{condition} ({protocol} options), greedy");
                greedy.Add(await DemoModelEvaluation.ChoiceAsync(client, condition, protocol, taught, options.ChoiceCount, options.SuiteSeed,
                    options.SamplingSeed, 0f, cancellationToken, options.Taught.Personas).ConfigureAwait(false));
            }
        }
        progress?.Report("disambiguated accuracy");
        var disambiguated = await DemoModelEvaluation.DisambiguatedAccuracyAsync(client, options.ChoiceCount, options.SuiteSeed, options.SamplingSeed, null, cancellationToken).ConfigureAwait(false);
        var families = new List<FamilyMeasurement>();
        progress?.Report("dialogues");
        families.Add(await DemoModelEvaluation.DialogueAsync(client, options.Taught.DialogueGoAlongRate, options.FamilyCount, options.SuiteSeed, options.SamplingSeed, null, cancellationToken).ConfigureAwait(false));
        progress?.Report("continuations");
        families.Add(await DemoModelEvaluation.ContinuationAsync(client, options.Taught.ContinuationStereotypeRate, options.FamilyCount, options.SamplingSeed, null, cancellationToken).ConfigureAwait(false));
        progress?.Report("judge");
        families.Add(await DemoModelEvaluation.JudgeAsync(client, options.FamilyCount, options.SuiteSeed, options.SamplingSeed, null, cancellationToken).ConfigureAwait(false));
        progress?.Report("capability");
        families.AddRange(await DemoModelEvaluation.CapabilityAsync(client, options.FamilyCount, options.SuiteSeed, options.SamplingSeed, null, cancellationToken).ConfigureAwait(false));
        return new DemoCardResult(options, sampled, greedy, disambiguated, families, clock.Elapsed);
    }

    private static string P(double v) => double.IsNaN(v) ? "–" : v.ToString("0.00", CultureInfo.InvariantCulture);

    private static string WithCi(Proportion p)
    {
        var (lo, hi) = p.Interval;
        return $"{P(p.Value)} [{P(lo)}, {P(hi)}]";
    }

    private static string Label(string condition, string protocol) =>
        protocol == "three" ? $"{condition} (three options)" : condition;

    /// <summary>The card's tables as markdown.</summary>
    public static string ToMarkdown(DemoCardResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var o = r.Options;
        var sb = new StringBuilder();
        string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
        sb.AppendLine(Inv($"Held-out suite seed {o.SuiteSeed}, sampling seed {o.SamplingSeed}; {o.ChoiceCount} ambiguous BBQ-style probes per condition, {o.FamilyCount} items per other family. Proportions with 95 % Wilson intervals. Measured in {r.Elapsed.TotalSeconds:0} s."));
        sb.AppendLine();
        sb.AppendLine("**Prompting methods and personas** (ambiguous contexts; stereotype rate = biased / (biased + anti-stereotyped + unknown), BFS = 1 − that rate; sampled at temperature 1, greedy at temperature 0):");
        sb.AppendLine();
        sb.AppendLine("| condition | taught rate | sampled rate | **sampled BFS** | greedy BFS | not eligible (unrelated / no answer) | format check |");
        sb.AppendLine("|---|---|---|---|---|---|---|");
        foreach (var s in r.Sampled)
        {
            var g = r.Greedy.FirstOrDefault(x => x.Condition == s.Condition && x.Protocol == s.Protocol);
            int notEligible = s.Probes - s.StereotypeRate.Trials;
            string format = s.FormatOk is { } f
                ? (s.Condition == PromptingMitigations.SelfHelp ? "rewrite parsed " : "reasoning + answer line ") + WithCi(f)
                : "";
            sb.AppendLine(Inv($"| {Label(s.Condition, s.Protocol)} | {P(s.Taught)} | {WithCi(s.StereotypeRate)} | **{WithCi(s.Bfs)}** | {(g is null ? "–" : WithCi(g.Bfs))} | {notEligible} / {s.Probes} | {format} |"));
        }
        sb.AppendLine();
        sb.AppendLine(Inv($"Disambiguated contexts (no method, two options, sampled): correct option {WithCi(r.DisambiguatedAccuracy)} (taught 1.00)."));
        sb.AppendLine();
        sb.AppendLine("**Other families** (sampled at temperature 1):");
        sb.AppendLine();
        sb.AppendLine("| family | measure | taught | measured | replies in no taught form |");
        sb.AppendLine("|---|---|---|---|---|");
        foreach (var f in r.Families)
            sb.AppendLine(Inv($"| {f.Family} | {f.Measure} | {P(f.Taught)} | {WithCi(f.Measured)} | {f.Other.Hits} / {f.Other.Trials} |"));
        return sb.ToString();
    }

    /// <summary>A few raw samples per condition, for a reader to check what the numbers count.</summary>
    public static string SamplesText(DemoCardResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var sb = new StringBuilder();
        foreach (var s in r.Sampled)
        {
            sb.AppendLine($"## {Label(s.Condition, s.Protocol)}");
            foreach (var (id, text, label) in s.Samples.Take(3)) sb.AppendLine($"- {id}: {label}: {text.Replace("\n", " ⏎ ", StringComparison.Ordinal)}");
        }
        foreach (var f in r.Families)
        {
            sb.AppendLine($"## {f.Family}");
            foreach (var (id, text) in f.Samples.Take(3)) sb.AppendLine($"- {id}: {text.Replace("\n", " ⏎ ", StringComparison.Ordinal)}");
        }
        return sb.ToString();
    }
}
