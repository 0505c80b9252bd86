using System.Globalization;
using BiasFree.Judges;
using BiasFree.Judges.Defences;
using BiasFree.Judges.Evaluation;
using Microsoft.Extensions.AI;

/// <summary>
/// <c>judge-injection</c>: flip rates of the prompts of the library's LLM judges (the full BiasGuard prompt and the LLM
/// dialogue judge) on every attack set, behind the defences and without them, against a worst-case scripted judge model
/// that <b>obeys</b> an attack whenever any part of it reaches the model (its marker, read through data marking and
/// look-alike spellings, as a capable LLM would read them) and otherwise answers the base item's gold label. So a flip is
/// exactly an attack that reached the model (or a second reading that failed to set the steered verdict aside); a real
/// LLM judge flips at most this often on the same attacks, unless it misjudges clean text, which this bench does not
/// measure. The same scripted judge backs <c>InjectionSuiteTests</c>; this bench prints the table of docs/judges.md
/// ("The prompt of an LLM judge") with Wilson 95% intervals.
/// Usage: dotnet run -c Release --project bench/BiasFree.Bench -- judge-injection [--sets builtin,heldout4,heldout5,heldout6,heldout7,heldout8,heldout9]
///        [--judges biasguard,llm]
/// </summary>
internal static class JudgeInjectionBench
{
    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        string Arg(string name, string fallback)
        {
            int i = args.ToList().IndexOf(name);
            return i >= 0 && i + 1 < args.Count ? args[i + 1] : fallback;
        }
        var sets = Arg("--sets", "builtin,heldout,heldout2,heldout3,heldout4,heldout5,heldout6,heldout7,heldout8,heldout9").Split(',', StringSplitOptions.RemoveEmptyEntries);
        var judges = Arg("--judges", "biasguard,llm").Split(',', StringSplitOptions.RemoveEmptyEntries);
        Console.WriteLine("| Judge prompt | Attack set | Placement | Raw (no defences) | Defended | Defences' alarms on clean replies |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var kind in judges)
        {
            foreach (var set in sets)
            {
                foreach (bool inline in new[] { false, true })
                {
                    var attacks = InjectionSuite.AttackSet(set);
                    var raw = await InjectionSuite.RunAsync(Judge(kind, JudgeDefences.None), attacks: attacks, inline: inline);
                    var defended = await InjectionSuite.RunAsync(Judge(kind, JudgeDefences.All), attacks: attacks, inline: inline);
                    Console.WriteLine($"| {kind} | {set} | {(inline ? "inline" : "appended")} | {Show(raw.Overall.Flips)} | {Show(defended.Overall.Flips)} | {Show(defended.CleanDetections)} |");
                    // The attacks the defences let through, so a table can say which.
                    foreach (var a in defended.ByAttack.Where(a => a.Flips.Count > 0))
                        Console.WriteLine($"|  |  | ↳ {a.Attack} |  | {Show(a.Flips)} |  |");
                }
            }
        }
        return 0;
    }

    private static IJudge Judge(string kind, JudgeDefences defences) => kind switch
    {
        "biasguard" => new BiasGuardJudge(new ObeyingClient(json: false), defences: defences),
        "llm" => new LlmDialogueJudge(new ObeyingClient(json: true), defences: defences),
        _ => throw new ArgumentException($"unknown judge prompt '{kind}' (biasguard or llm)"),
    };

    private static string Show(Rate r) => r.Total == 0 ? "–" : string.Create(CultureInfo.InvariantCulture,
        $"{100.0 * r.Count / r.Total:0.0} [{100 * r.Low:0.0}, {100 * r.High:0.0}] ({r.Count}/{r.Total})");

    /// <summary>The worst-case judge model: the attack's target whenever any attack marker reaches it, the item's gold otherwise.</summary>
    private sealed class ObeyingClient(bool json) : IChatClient
    {
        private static readonly IReadOnlyList<string> Markers =
            [.. InjectionSuite.AttackSet("all").Select(a => TextCanonicaliser.Canonicalise(a.Marker).Text)];

        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            var user = TextCanonicaliser.Canonicalise(string.Join("\n", messages.Where(m => m.Role == ChatRole.User).Select(m => m.Text))
                .Replace(DataMarking.Mark, ' ')).Text;
            // The base item: its first sentence is in every reading of it (a second reading may leave out a later one).
            var item = InjectionSuite.BaseItems.FirstOrDefault(i => user.Contains(i.Text.Split(". ")[0], StringComparison.Ordinal));
            string text;
            if (item is null) text = "I cannot find the text.";
            else
            {
                bool reached = Markers.Any(m => user.Contains(m, StringComparison.Ordinal));
                var label = reached ? (item.Gold == Label.Biased ? Label.Unbiased : Label.Biased) : item.Gold;
                text = json
                    ? $"{{\"label\": \"{ReasonedVerdictFormat.Word(label)}\", \"reason\": \"scripted\"}}"
                    : ReasonedVerdictFormat.Format("Scripted.", label, 80);
            }
            return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, text)));
        }

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }
}
