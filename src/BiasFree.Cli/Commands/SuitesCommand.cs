using System.CommandLine;
using System.Globalization;
using BiasFree.Probes;
using Spectre.Console;

namespace BiasFree.Cli.Commands;

/// <summary><c>biasfree suites</c> and <c>biasfree suites show SPEC</c>.</summary>
internal static class SuitesCommand
{
    public static Command Build()
    {
        var seed = new Option<int>("--seed") { Description = "Seed for generated suites.", DefaultValueFactory = _ => 0 };
        var cmd = new Command("suites", "List the built-in probe suites with their probe counts.") { seed };
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(() => ListAsync(pr.GetValue(seed), ct)));

        var spec = new Argument<string>("suite") { Description = "Built-in name (bbq, fairmt) or FORMAT:PATH." };
        var show = new Command("show", "Show a suite's counts per category and condition, and a sample probe.") { spec, seed };
        show.SetAction((pr, ct) => BiasFreeCli.Guard(() => ShowAsync(pr.GetValue(spec)!, pr.GetValue(seed), ct)));
        cmd.Add(show);
        return cmd;
    }

    private static Task<int> ListAsync(int seed, CancellationToken ct)
    {
        var table = new Table().AddColumns("Suite", "Scenario", "Probes", "Categories", "Description");
        foreach (var suite in SuiteRegistry.BuiltIns(seed))
        {
            ct.ThrowIfCancellationRequested();
            var probes = suite.Load();
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

    private static Task<int> ShowAsync(string spec, int seed, CancellationToken ct)
    {
        var suite = SuiteRegistry.Resolve(spec, seed);
        var probes = suite.Load();
        ct.ThrowIfCancellationRequested();
        AnsiConsole.MarkupLine($"[bold]{Markup.Escape(suite.Name)}[/]: {Markup.Escape(suite.Description)}");
        AnsiConsole.MarkupLine($"{probes.Count.ToString(CultureInfo.InvariantCulture)} probes");

        var table = new Table().AddColumns("Scenario", "Category", "Condition", "Polarity / task", "Probes");
        foreach (var g in probes
                     .GroupBy(p => (Scenario: Scenario(p.Scenario), p.Category, Context: p.Context?.ToString() ?? "–", Kind: p.Polarity?.ToString() ?? p.TaskType ?? "–"))
                     .OrderBy(g => g.Key.Scenario, StringComparer.Ordinal).ThenBy(g => g.Key.Category, StringComparer.Ordinal)
                     .ThenBy(g => g.Key.Context, StringComparer.Ordinal).ThenBy(g => g.Key.Kind, StringComparer.Ordinal))
        {
            table.AddRow(Markup.Escape(g.Key.Scenario), Markup.Escape(g.Key.Category), Markup.Escape(g.Key.Context), Markup.Escape(g.Key.Kind),
                g.Count().ToString(CultureInfo.InvariantCulture));
        }
        AnsiConsole.Write(table);

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
}
