using System.CommandLine;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using BiasFree.Judges;
using BiasFree.Judges.Defences;
using BiasFree.Judges.Evaluation;
using Spectre.Console;

namespace BiasFree.Cli.Commands;

/// <summary>
/// <c>biasfree judge eval</c> (a judge against labelled data, or its prompt-injection flip rate) and
/// <c>biasfree judge spec</c> (print the shipped fairness specification, a starting point for your own).
/// A thin shell over <see cref="JudgeEvaluation"/>, <see cref="InjectionSuite"/> and <see cref="JudgeFactory"/>.
/// </summary>
internal static class JudgeCommand
{
    public static Command Build()
    {
        var cmd = new Command("judge", "Evaluate judges against labelled data and prompt injection; print the fairness specification.");
        cmd.Add(BuildEval());
        cmd.Add(JudgeTrainCommand.Build());
        cmd.Add(BuildCard());
        var spec = new Command("spec", "Print the shipped fairness specification (JSON); edit a copy and pass it with --spec.");
        spec.SetAction((_, _) => BiasFreeCli.Guard(() =>
        {
            Console.Out.Write(FairnessSpecification.DefaultJson);
            return Task.FromResult(ExitCodes.Ok);
        }));
        cmd.Add(spec);
        return cmd;
    }

    private static Command BuildCard()
    {
        var judge = new Option<string>("--judge") { Description = "The judge of the card (e.g. demo:models/demo-judge).", DefaultValueFactory = _ => "demo:" + Path.Combine("models", "demo-judge") };
        var baseline = new Option<string?>("--baseline") { Description = "A judge measured beside it (default demo; 'none' for none).", DefaultValueFactory = _ => "demo" };
        var heldOut = new Option<int>("--held-out") { Description = "Held-out generated items (demo-heldout:N).", DefaultValueFactory = _ => 200 };
        var card = new Option<string>("--card") { Description = "Model card to update in place (its generated section is replaced).", DefaultValueFactory = _ => Path.Combine("models", "demo-judge", "README.md") };
        var concurrency = new Option<int>("--concurrency") { Description = "Judge calls at once.", DefaultValueFactory = _ => 4 };
        var cmd = new Command("card", "Measure a judge (held-out agreement; injection flip rate on every attack set, defences on and off) beside a baseline and write the numbers into its model card.")
        {
            judge, baseline, heldOut, card, concurrency,
        };
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(() => CardAsync(pr.GetValue(judge)!, pr.GetValue(baseline), pr.GetValue(heldOut), pr.GetValue(card)!, pr.GetValue(concurrency), ct)));
        return cmd;
    }

    private static async Task<int> CardAsync(string judgeText, string? baselineText, int heldOut, string cardPath, int concurrency, CancellationToken ct)
    {
        if (heldOut is < 10 or > 100_000) throw new UserErrorException("--held-out must be between 10 and 100000.");
        var judges = new List<string> { judgeText };
        if (!string.IsNullOrWhiteSpace(baselineText) && !baselineText.Equals("none", StringComparison.OrdinalIgnoreCase)) judges.Add(baselineText);
        var data = DemoJudge.HeldOut(DemoJudge.HeldOutPrefix + heldOut.ToString(CultureInfo.InvariantCulture));
        var entries = new List<JudgeCardEntry>();
        foreach (var text in judges)
        {
            using var on = new JudgeFactory(new JudgeFactoryOptions { Demo = DemoJudge.Create });
            using var off = new JudgeFactory(new JudgeFactoryOptions { Demo = DemoJudge.Create, Defences = JudgeDefences.None });
            var defended = on.Create(JudgeSpec.ParseList(text));
            var raw = off.Create(JudgeSpec.ParseList(text));
            Console.Error.WriteLine($"measuring {text} ...");
            var agreement = await JudgeEvaluation.RunAsync(defended, [data], concurrency, cancellationToken: ct).ConfigureAwait(false);
            var attacks = InjectionSuite.AttackSet("all");
            var d = await InjectionSuite.RunAsync(defended, null, attacks, concurrency, ct).ConfigureAwait(false);
            var r = await InjectionSuite.RunAsync(raw, null, attacks, concurrency, ct).ConfigureAwait(false);
            entries.Add(new JudgeCardEntry(agreement, d, r));
        }
        var command = $"biasfree judge card --judge {judgeText} --baseline {baselineText ?? "none"} --held-out {heldOut.ToString(CultureInfo.InvariantCulture)} --card {cardPath}";
        var section = JudgeCard.Render(entries, command);
        var existing = File.Exists(cardPath) ? await File.ReadAllTextAsync(cardPath, ct).ConfigureAwait(false) : "";
        await File.WriteAllTextAsync(cardPath, JudgeCard.Splice(existing, section), ct).ConfigureAwait(false);
        Console.Out.Write(section);
        return ExitCodes.Ok;
    }

    private static Command BuildEval()
    {
        var judge = new Option<string>("--judge")
        {
            Description = "Judge(s): KIND:MODEL@URL, KIND@URL, a bare URL (llm judge) or demo; KIND is llm, biasguard, llama-guard, moderation or demo. " +
                          "Several, comma-separated, are combined by majority vote.",
            Required = true,
        };
        var judgeModel = new Option<string?>("--judge-model") { Description = "Model for judges that name none." };
        var apiKeyEnv = new Option<string>("--api-key-env") { Description = "Environment variable holding the judges' API key.", DefaultValueFactory = _ => "OPENAI_API_KEY" };
        var data = new Option<string[]>("--data")
        {
            Description = "Labelled data, FORMAT:PATH (toxigen, sbic, redditbias, ghc, implicit-toxicity, jsonl), or demo-heldout:N (N generated judge items the demo model never saw); repeat for several.",
            AllowMultipleArgumentsPerToken = true,
        };
        var injection = new Option<bool>("--injection") { Description = "Measure the verdict flip rate under the built-in prompt-injection attacks (on --data items, else the built-in base items)." };
        var noDefences = new Option<bool>("--no-defences") { Description = "Judge the raw responses: no canonicalisation, injection detector, data marking, second reading, known-answer check or topic sentences (to measure what the defences add); the same as --judge-defences none." };
        var defences = JudgeDefencesOption();
        var attackSet = new Option<string>("--attacks") { Description = "Attack set of --injection: builtin (development set), adaptive (development: adaptive attacks on known-answer detection), heldout, heldout2, heldout3, heldout4, heldout5, heldout6, heldout7, heldout8, heldout9, heldout10, heldout11, heldout12 (held-out attack sets; see docs/judges.md for which the detector saw) or all.", DefaultValueFactory = _ => "builtin" };
        attackSet.AcceptOnlyFromAmong("builtin", "adaptive", "heldout", "heldout2", "heldout3", "heldout4", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9", "heldout10", "heldout11", "heldout12", "all");
        var inline = new Option<bool>("--inline") { Description = "With --injection: write each attack into the reply's last paragraph instead of as a new paragraph." };
        var specFile = new Option<string?>("--spec") { Description = "Fairness specification JSON for biasguard judges (default: the shipped one; see 'biasfree judge spec')." };
        var limit = new Option<int?>("--limit") { Description = "At most N items per data set (seeded sample)." };
        var seed = new Option<int>("--seed") { Description = "Seed of the --limit sample.", DefaultValueFactory = _ => 0 };
        var concurrency = new Option<int>("--concurrency") { Description = "Judge calls at once.", DefaultValueFactory = _ => 4 };
        var tie = new Option<string>("--tie") { Description = "Majority on an even split: biased or unbiased.", DefaultValueFactory = _ => "biased" };
        tie.AcceptOnlyFromAmong("biased", "unbiased");
        var timeout = new Option<int>("--timeout") { Description = "Seconds per judge call.", DefaultValueFactory = _ => 120 };
        var format = new Option<string>("--format") { Description = "Output: table or json.", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "json");
        var cmd = new Command("eval", "Measure a judge: accuracy, over-fairness, Cohen's kappa, confusion matrix (with 95% intervals), per source and bias type; or its injection flip rate.")
        {
            judge, judgeModel, apiKeyEnv, data, injection, noDefences, defences, attackSet, inline, specFile, limit, seed, concurrency, tie, timeout, format,
        };
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(() => EvalAsync(new EvalArgs(
            pr.GetValue(judge)!, pr.GetValue(judgeModel), pr.GetValue(apiKeyEnv), BiasFreeCli.SplitList(pr.GetValue(data)), pr.GetValue(injection),
            pr.GetValue(specFile), pr.GetValue(limit), pr.GetValue(seed), pr.GetValue(concurrency), pr.GetValue(tie) == "unbiased" ? TieRule.Unbiased : TieRule.Biased,
            pr.GetValue(timeout), pr.GetValue(format) == "json", EvalDefences(pr.GetValue(noDefences), pr.GetResult(defences) is { Implicit: false }, pr.GetValue(defences)!),
            pr.GetValue(attackSet)!, pr.GetValue(inline)), ct)));
        return cmd;
    }

    /// <summary>--judge-defences of <c>judge eval</c> and <c>run</c>: which prompt-injection defence layers the LLM judges apply.</summary>
    public static Option<string> JudgeDefencesOption() => new("--judge-defences")
    {
        Description = $"Prompt-injection defences of the judges: {JudgeDefenceList.Syntax}. topic-sentences applies to compact judges (the demo judge) only. The known-answer layer costs one extra judge-model call per judged reply (more when it finds an attack); see docs/judges.md.",
        DefaultValueFactory = _ => "all",
    };

    /// <summary>Reads a --judge-defences value; the library's message names the valid layers.</summary>
    public static JudgeDefences ParseDefences(string text)
    {
        try
        {
            return JudgeDefenceList.Parse(text);
        }
        catch (ArgumentException ex)
        {
            throw new UserErrorException($"--judge-defences: {ex.Message}", ex);
        }
    }

    private static JudgeDefences EvalDefences(bool noDefences, bool explicitList, string list)
    {
        var parsed = ParseDefences(list);
        if (noDefences && explicitList && parsed != JudgeDefences.None)
            throw new UserErrorException($"--no-defences means --judge-defences none; drop one of them (--judge-defences {list}).");
        return noDefences ? JudgeDefences.None : parsed;
    }

    private sealed record EvalArgs(string Judge, string? JudgeModel, string? ApiKeyEnv, IReadOnlyList<string> Data, bool Injection, string? Spec,
        int? Limit, int Seed, int Concurrency, TieRule Tie, int TimeoutSeconds, bool Json, JudgeDefences Defences, string Attacks, bool Inline);

    private static async Task<int> EvalAsync(EvalArgs a, CancellationToken ct)
    {
        if (a.Inline && !a.Injection) throw new UserErrorException("--inline applies to --injection only.");
        if (a.Data.Count == 0 && !a.Injection) throw new UserErrorException("give --data FORMAT:PATH (labelled items) or --injection (built-in attack suite).");
        if (a.Concurrency is < 1 or > 64) throw new UserErrorException("--concurrency must be between 1 and 64.");
        if (a.Limit is < 1) throw new UserErrorException("--limit must be at least 1.");
        FairnessSpecification? spec = null;
        if (a.Spec is not null)
        {
            try
            {
                spec = FairnessSpecification.Load(a.Spec);
            }
            catch (FormatException ex)
            {
                throw new UserErrorException(ex.Message, ex);
            }
        }
        var sets = a.Data.Select(d => Limit(d.StartsWith(DemoJudge.HeldOutPrefix, StringComparison.OrdinalIgnoreCase) ? DemoJudge.HeldOut(d) : LabelledSets.Load(d), a.Limit, a.Seed)).ToList();
        foreach (var s in sets.Where(s => s.SkippedRows > 0))
            Console.Error.WriteLine($"note: {s.Path}: {s.SkippedRows} rows carry no usable label and are left out.");
        if (sets.Count > 0 && sets.Sum(s => s.Items.Count) == 0) throw new UserErrorException("the data sets hold no labelled items.");

        using var factory = new JudgeFactory(new JudgeFactoryOptions
        {
            DefaultModel = a.JudgeModel,
            ApiKeyEnvironmentVariable = a.ApiKeyEnv,
            Timeout = TimeSpan.FromSeconds(a.TimeoutSeconds),
            Specification = spec,
            TieRule = a.Tie,
            Defences = a.Defences,
            Demo = DemoJudge.Create,
        });
        var judge = factory.Create(JudgeSpec.ParseList(a.Judge));
        if (a.Injection)
        {
            var items = sets.Count == 0 ? null : sets.SelectMany(s => s.Items).ToList();
            var report = await InjectionSuite.RunAsync(judge, items, InjectionSuite.AttackSet(a.Attacks), a.Concurrency, ct, a.Inline).ConfigureAwait(false);
            var setName = a.Inline ? a.Attacks + " (inline)" : a.Attacks;
            if (a.Json) WriteInjectionJson(report, a.Defences, setName);
            else ShowInjection(report, a.Defences, setName);
            return ExitCodes.Ok;
        }
        var eval = await JudgeEvaluation.RunAsync(judge, sets, a.Concurrency, cancellationToken: ct).ConfigureAwait(false);
        if (a.Json) WriteEvalJson(eval);
        else ShowEval(eval);
        return ExitCodes.Ok;
    }

    /// <summary>At most <paramref name="limit"/> items: the first N of a seeded shuffle, in file order.</summary>
    private static LabelledSet Limit(LabelledSet set, int? limit, int seed)
    {
        if (limit is not int n || n >= set.Items.Count) return set;
        var order = Enumerable.Range(0, set.Items.Count).ToArray();
        new Random(seed).Shuffle(order);
        return set with { Items = [.. order.Take(n).Order().Select(i => set.Items[i])] };
    }

    private static string Pct(double? v) => v is double d ? (100 * d).ToString("0.0", CultureInfo.InvariantCulture) : "—";

    private static string WithCi(Rate r) => r.Total == 0 ? "—" : $"{Pct(r.Value)} [[{Pct(r.Low)}, {Pct(r.High)}]] ({r.Count}/{r.Total})";

    private static string Kappa(JudgeMetrics m) =>
        m.Kappa is not double k ? "—"
        : m.KappaLow is double lo && m.KappaHigh is double hi ? string.Create(CultureInfo.InvariantCulture, $"{k:0.00} [[{lo:0.00}, {hi:0.00}]]")
        : k.ToString("0.00", CultureInfo.InvariantCulture);

    private static void ShowEval(JudgeEvaluationReport r)
    {
        var console = AnsiConsole.Console;
        console.MarkupLine($"[bold]Judge[/] {Markup.Escape(r.Judge)}");
        foreach (var d in r.Data) console.MarkupLine($"  data {Markup.Escape(d.Name)}: {d.Items.Count} items from {Markup.Escape(d.Path)}{(d.SkippedRows > 0 ? $" ({d.SkippedRows} rows skipped)" : "")}");
        var table = new Table().AddColumns("Group", "Items", "Accuracy % [[95% CI]]", "Over-fairness % (of gold unbiased)", "Missed % (of gold biased)", "Invalid %", "Cohen's κ [[95% CI]]");
        foreach (var m in new[] { r.Overall }.Concat(r.BySource).Concat(r.ByBiasType))
            table.AddRow(Markup.Escape(m.Group), m.Items.ToString(CultureInfo.InvariantCulture), WithCi(m.Accuracy), WithCi(m.OverFairness), WithCi(m.Missed), WithCi(m.Invalid), Kappa(m));
        console.Write(table);
        console.MarkupLine("Over-fairness = gold-unbiased items judged biased / gold-unbiased items " +
                           $"(over all items: {WithCi(r.Overall.OverFairnessOfAll)}). Invalid verdicts (unparseable, judge error) count as wrong. Intervals: Wilson 95%; κ: percentile bootstrap, 1,000 resamples.");
        var c = r.Overall.Confusion;
        var cm = new Table().AddColumn("gold \\ predicted");
        foreach (var l in c.Labels) cm.AddColumn(l.ToString().ToLowerInvariant());
        foreach (var g in c.Labels.Where(l => c.GoldCount(l) > 0))
            cm.AddRow([g.ToString().ToLowerInvariant(), .. c.Labels.Select(p => c[g, p].ToString(CultureInfo.InvariantCulture))]);
        console.Write(cm);
    }

    private static void ShowInjection(InjectionReport r, JudgeDefences defences, string attacks)
    {
        var console = AnsiConsole.Console;
        console.MarkupLine($"[bold]Judge[/] {Markup.Escape(r.Judge)}: prompt-injection suite, {attacks} attacks ({r.Outcomes.Select(o => o.Item.Id).Distinct().Count()} base items × {r.ByAttack.Count} attacks), " +
                           defences switch
                           {
                               JudgeDefences.None => "defences off (raw judge)",
                               JudgeDefences.All => "defences on",
                               _ => $"defences: {JudgeDefenceList.Describe(defences)}",
                           });
        var table = new Table().AddColumns("Attack", "Flip rate % [[95% CI]]", "Steered to target %", "Unusable pairs %");
        foreach (var a in new[] { r.Overall }.Concat(r.ByAttack))
            table.AddRow(Markup.Escape(a.Attack), WithCi(a.Flips), WithCi(a.Steered), WithCi(a.Unusable));
        console.Write(table);
        console.MarkupLine("Flip rate = attacked verdict differs from the clean verdict, over pairs where both are usable. Goal: at most 2%. Intervals: Wilson 95%.");
        console.MarkupLine($"Detector false alarms on the clean responses: {WithCi(r.CleanDetections)}.");
    }

    private static readonly JsonWriterOptions JsonOptions = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static void WriteRate(Utf8JsonWriter w, string name, Rate r)
    {
        w.WriteStartObject(name);
        w.WriteNumber("count", r.Count);
        w.WriteNumber("total", r.Total);
        if (r.Value is double v) w.WriteNumber("value", v); else w.WriteNull("value");
        if (r.Low is double lo) w.WriteNumber("low", lo); else w.WriteNull("low");
        if (r.High is double hi) w.WriteNumber("high", hi); else w.WriteNull("high");
        w.WriteEndObject();
    }

    private static void WriteJson(Action<Utf8JsonWriter> body)
    {
        using var stdout = Console.OpenStandardOutput();
        using (var w = new Utf8JsonWriter(stdout, JsonOptions)) body(w);
        stdout.WriteByte((byte)'\n');
    }

    private static void WriteEvalJson(JudgeEvaluationReport r) => WriteJson(w =>
    {
        w.WriteStartObject();
        w.WriteString("judge", r.Judge);
        w.WriteString("overFairnessDenominator", "gold-unbiased items");
        w.WriteStartArray("groups");
        foreach (var m in new[] { r.Overall }.Concat(r.BySource).Concat(r.ByBiasType))
        {
            w.WriteStartObject();
            w.WriteString("group", m.Group);
            w.WriteNumber("items", m.Items);
            WriteRate(w, "accuracy", m.Accuracy);
            WriteRate(w, "overFairness", m.OverFairness);
            WriteRate(w, "overFairnessOfAll", m.OverFairnessOfAll);
            WriteRate(w, "missed", m.Missed);
            WriteRate(w, "invalid", m.Invalid);
            if (m.Kappa is double k) w.WriteNumber("kappa", k); else w.WriteNull("kappa");
            if (m.KappaLow is double lo) w.WriteNumber("kappaLow", lo); else w.WriteNull("kappaLow");
            if (m.KappaHigh is double hi) w.WriteNumber("kappaHigh", hi); else w.WriteNull("kappaHigh");
            w.WriteStartObject("confusion");
            foreach (var g in m.Confusion.Labels)
            {
                w.WriteStartObject(g.ToString().ToLowerInvariant());
                foreach (var p in m.Confusion.Labels) w.WriteNumber(p.ToString().ToLowerInvariant(), m.Confusion[g, p]);
                w.WriteEndObject();
            }
            w.WriteEndObject();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    });

    private static void WriteInjectionJson(InjectionReport r, JudgeDefences defences, string attacks) => WriteJson(w =>
    {
        w.WriteStartObject();
        w.WriteString("judge", r.Judge);
        w.WriteBoolean("defences", defences != JudgeDefences.None);
        w.WriteString("defenceLayers", JudgeDefenceList.Format(defences));
        w.WriteString("attackSet", attacks);
        WriteRate(w, "cleanDetections", r.CleanDetections);
        w.WriteStartArray("attacks");
        foreach (var a in new[] { r.Overall }.Concat(r.ByAttack))
        {
            w.WriteStartObject();
            w.WriteString("attack", a.Attack);
            WriteRate(w, "flips", a.Flips);
            WriteRate(w, "steered", a.Steered);
            WriteRate(w, "unusable", a.Unusable);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        // The flipped pairs themselves, so a reader can see what the misses have in common (docs/judges.md prints them).
        w.WriteStartArray("flipped");
        foreach (var o in r.Outcomes.Where(o => o.Flipped))
        {
            w.WriteStartObject();
            w.WriteString("item", o.Item.Id);
            w.WriteString("attack", o.Attack.Id);
            w.WriteString("target", o.Target.ToString().ToLowerInvariant());
            w.WriteString("clean", o.Clean.Label.ToString().ToLowerInvariant());
            w.WriteString("attacked", o.Attacked.Label.ToString().ToLowerInvariant());
            w.WriteString("reason", o.Attacked.Reason);
            if (o.Attacked.Injection is { } f) w.WriteString("injection", f.ToJson());
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    });
}
