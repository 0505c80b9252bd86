using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using BiasFree.Probes;
using BiasFree.Probes.Loaders;
using Spectre.Console;

namespace BiasFree.Cli.Commands;

/// <summary><c>biasfree suites</c> and <c>biasfree suites show SPEC</c>, as tables or (<c>--format json</c>) JSON.</summary>
internal static class SuitesCommand
{
    public static Command Build()
    {
        var seed = new Option<int>("--seed") { Description = "Seed for generated suites.", DefaultValueFactory = _ => 0 };
        var format = FormatOption();
        var cmd = new Command("suites", "List the built-in probe suites with their probe counts.") { seed, format };
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(() => ListAsync(pr.GetValue(seed), pr.GetValue(format) == "json", ct)));

        var spec = new Argument<string>("suite") { Description = "Built-in name (bbq, fairmt) or FORMAT:PATH." };
        var showFormat = FormatOption();
        var context = new Option<string>("--context") { Description = "BBQ contexts to count: all, ambiguous or disambiguated (as in run).", DefaultValueFactory = _ => "all" };
        context.AcceptOnlyFromAmong("all", "ambiguous", "disambiguated");
        var labelRule = new Option<string>("--label-rule") { Description = "Target group of official BBQ items: bbq or biasfreebench (as in run).", DefaultValueFactory = _ => "bbq" };
        labelRule.AcceptOnlyFromAmong("bbq", "biasfreebench");
        var show = new Command("show", "Show a suite's counts per category and condition, every row it skips with the reason, and a sample probe.")
        {
            spec, seed, showFormat, context, labelRule,
        };
        show.SetAction((pr, ct) => BiasFreeCli.Guard(() => ShowAsync(pr.GetValue(spec)!,
            new SuiteOptions(pr.GetValue(seed), SuiteOptions.ParseContext(pr.GetValue(context)!), OptionsShown.Two, SuiteOptions.ParseLabelRule(pr.GetValue(labelRule)!)),
            pr.GetValue(showFormat) == "json", ct)));
        cmd.Add(show);
        return cmd;
    }

    private static Option<string> FormatOption()
    {
        var format = new Option<string>("--format") { Description = "Output: table (for people) or json (for scripts).", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "json");
        return format;
    }

    private static readonly JsonWriterOptions JsonOptions = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static Task<int> ListAsync(int seed, bool json, CancellationToken ct)
    {
        var rows = new List<(IProbeSuite Suite, IReadOnlyList<Probe> Probes)>();
        foreach (var suite in SuiteRegistry.BuiltIns(seed))
        {
            ct.ThrowIfCancellationRequested();
            rows.Add((suite, suite.Load()));
        }
        if (json)
        {
            WriteJson(w =>
            {
                w.WriteStartObject();
                w.WriteStartArray("suites");
                foreach (var (suite, probes) in rows)
                {
                    w.WriteStartObject();
                    w.WriteString("name", suite.Name);
                    w.WriteStartArray("scenarios");
                    foreach (var s in probes.Select(p => Scenario(p.Scenario)).Distinct()) w.WriteStringValue(s);
                    w.WriteEndArray();
                    w.WriteNumber("probes", probes.Count);
                    w.WriteNumber("categories", probes.Select(p => p.Category).Distinct().Count());
                    w.WriteString("description", suite.Description);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            });
            return Task.FromResult(ExitCodes.Ok);
        }
        var table = new Table().AddColumns("Suite", "Scenario", "Probes", "Categories", "Description");
        foreach (var (suite, probes) in rows)
        {
            table.AddRow(
                Markup.Escape(suite.Name),
                Markup.Escape(string.Join(", ", probes.Select(p => Scenario(p.Scenario)).Distinct())),
                probes.Count.ToString(CultureInfo.InvariantCulture),
                probes.Select(p => p.Category).Distinct().Count().ToString(CultureInfo.InvariantCulture),
                Markup.Escape(suite.Description));
        }
        AnsiConsole.Write(table);
        return Task.FromResult(ExitCodes.Ok);
    }

    internal static string Scenario(Scenario s) => ScenarioNames.Name(s);

    private static Task<int> ShowAsync(string spec, SuiteOptions options, bool json, CancellationToken ct)
    {
        var suite = SuiteRegistry.Resolve(spec, options);
        var probes = suite.Load();
        ct.ThrowIfCancellationRequested();
        var skipped = suite is IReportsSkippedRows r ? r.SkippedRows : [];
        var groups = probes
            .GroupBy(p => (Scenario: Scenario(p.Scenario), p.Category, Context: Condition(p), Kind: Kind(p)))
            .OrderBy(g => g.Key.Scenario, StringComparer.Ordinal).ThenBy(g => g.Key.Category, StringComparer.Ordinal)
            .ThenBy(g => g.Key.Context, StringComparer.Ordinal).ThenBy(g => g.Key.Kind, StringComparer.Ordinal)
            .Select(g => (g.Key, Count: g.Count())).ToList();
        // FairMT_10K's two halves (and attributes taken from it): "stereotype" / "toxicity" per probe.
        var biasTypes = probes.Where(p => p.Scenario == Probes.Scenario.MultiTurn)
            .GroupBy(p => p.Metadata.TryGetValue("bias_type", out var b) ? b : "unspecified")
            .OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => (BiasType: g.Key, Count: g.Count())).ToList();

        if (json)
        {
            WriteJson(w =>
            {
                w.WriteStartObject();
                w.WriteString("name", suite.Name);
                w.WriteString("spec", spec);
                w.WriteString("description", suite.Description);
                w.WriteString("context", SuiteOptions.Name(options.Context));
                w.WriteString("label_rule", SuiteOptions.Name(options.LabelRule));
                w.WriteNumber("probes", probes.Count);
                w.WriteStartArray("groups");
                foreach (var (key, count) in groups)
                {
                    w.WriteStartObject();
                    w.WriteString("scenario", key.Scenario);
                    w.WriteString("category", key.Category);
                    w.WriteString("condition", key.Context);
                    w.WriteString("polarity_or_task", key.Kind);
                    w.WriteNumber("probes", count);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteStartObject("bias_types");
                foreach (var (biasType, count) in biasTypes) w.WriteNumber(biasType, count);
                w.WriteEndObject();
                w.WriteStartArray("skipped");
                foreach (var s in skipped)
                {
                    w.WriteStartObject();
                    w.WriteString("file", s.File);
                    w.WriteNumber("line", s.Line);
                    w.WriteString("id", s.Id);
                    w.WriteString("reason", s.Reason);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                if (probes.Count > 0)
                {
                    var p = probes[0];
                    w.WriteStartObject("sample");
                    w.WriteString("id", p.Id);
                    w.WriteString("category", p.Category);
                    w.WriteStartArray("user_turns");
                    foreach (var t in p.UserTurns) w.WriteStringValue(t);
                    w.WriteEndArray();
                    w.WriteStartArray("options");
                    foreach (var o in p.Options)
                    {
                        w.WriteStartObject();
                        w.WriteString("text", o.Text);
                        w.WriteString("role", ProbeJsonl.RoleName(o.Role));
                        w.WriteString("group", o.Group);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                w.WriteEndObject();
            });
            return Task.FromResult(ExitCodes.Ok);
        }

        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(suite.Name)}[/]: {Markup.Escape(suite.Description)}");
        AnsiConsole.MarkupLine($"{probes.Count.ToString(CultureInfo.InvariantCulture)} probes");

        var table = new Table().AddColumns("Scenario", "Category", "Condition", "Polarity / task", "Probes");
        foreach (var (key, count) in groups)
        {
            table.AddRow(Markup.Escape(key.Scenario), Markup.Escape(key.Category), Markup.Escape(key.Context), Markup.Escape(key.Kind),
                count.ToString(CultureInfo.InvariantCulture));
        }
        AnsiConsole.Write(table);

        if (biasTypes.Count > 0)
        {
            var split = new Table().AddColumns("Bias type", "Dialogues");
            foreach (var (biasType, count) in biasTypes) split.AddRow(Markup.Escape(biasType), count.ToString(CultureInfo.InvariantCulture));
            AnsiConsole.Write(split);
        }

        if (skipped.Count > 0)
        {
            AnsiConsole.MarkupLine($"[bold]{skipped.Count.ToString(CultureInfo.InvariantCulture)} rows skipped[/] (they cannot be labelled):");
            // One row per line, never wrapped, so the list can be searched.
            foreach (var s in skipped) Console.Out.WriteLine($"  {s}");
        }

        if (probes.Count > 0)
        {
            var p = probes[0];
            AnsiConsole.MarkupLine($"[bold]Sample probe[/] {Markup.Escape(p.Id)} ({Markup.Escape(p.Category)})");
            for (var i = 0; i < p.UserTurns.Count; i++)
            {
                AnsiConsole.MarkupLine($"  [grey]user {(i + 1).ToString(CultureInfo.InvariantCulture)}:[/] {Markup.Escape(p.UserTurns[i])}");
            }
            foreach (var o in p.Options)
            {
                AnsiConsole.MarkupLine($"  [grey]option:[/] {Markup.Escape(o.Text)} [grey]({o.Role}, {Markup.Escape(o.Group)})[/]");
            }
        }
        return Task.FromResult(ExitCodes.Ok);
    }

    private static string Condition(Probe p) => p.Context is { } c ? ProbeJsonl.ConditionName(c) : "–";

    private static string Kind(Probe p) => p.Polarity is { } q ? ProbeJsonl.PolarityName(q) : p.TaskType ?? "–";

    /// <summary>Writes one JSON document to stdout, UTF-8, bypassing Spectre's console so nothing is wrapped or coloured.</summary>
    private static void WriteJson(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, JsonOptions)) write(w);
        using var stdout = Console.OpenStandardOutput();
        stdout.Write(buffer.ToArray());
        stdout.Write("\n"u8);
    }
}
