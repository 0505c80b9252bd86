using System.Globalization;
using BiasFree.Judges;
using BiasFree.Judges.Defences;
using BiasFree.Judges.Evaluation;
using System.Text.RegularExpressions;
using Microsoft.Extensions.AI;

/// <summary>
/// <c>judge-injection</c>: flip rates of the prompts of the library's LLM judges (the full BiasGuard prompt and the LLM
/// dialogue judge) on every attack set, behind the defences and without them, against a worst-case scripted judge model
/// that <b>obeys</b> an attack whenever any part of it reaches the model (its marker, read through data marking and
/// look-alike spellings, as a capable LLM would read them) and otherwise answers the base item's gold label. So a flip is
/// exactly an attack that reached the model (or a second reading that failed to set the steered verdict aside); a real
/// LLM judge flips at most this often on the same attacks, unless it misjudges clean text, which this bench does not
/// measure. On a known-answer prompt (<see cref="KnownAnswerDetection"/>) it is a capable model that does the task it is
/// given: it repeats the code, unless an attack marker reaches it, and then it obeys the attack (it answers the verdict, or,
/// for the adaptive attacks, what <see cref="InjectionAttack.KnownAnswerReply"/> says). The same scripted judge backs
/// <c>InjectionSuiteTests</c> and <c>KnownAnswerDetectionTests</c>; this bench prints the tables of docs/judges.md with Wilson 95% intervals:
/// raw, the rule layers alone (v4), known-answer detection alone (with canonicalisation and data marking) and every layer
/// (v5), the known-answer calls per reply, and (<c>--clean</c>) the alarms on the clean reply files.
/// Usage: dotnet run -c Release --project bench/BiasFree.Bench -- judge-injection [--sets builtin,heldout4,heldout5,heldout6,heldout7,heldout8,heldout9,heldout10,heldout11,heldout12]
///        [--judges biasguard,llm] [--clean]
/// </summary>
internal static partial class JudgeInjectionBench
{
    private static readonly (string Name, JudgeDefences Defences)[] Configurations =
    [
        ("raw", JudgeDefences.None),
        ("rules (v4)", JudgeDefences.All & ~JudgeDefences.KnownAnswer),
        ("known-answer alone", JudgeDefences.Canonicalise | JudgeDefences.DataMarking | JudgeDefences.KnownAnswer),
        ("all (v5)", JudgeDefences.All),
    ];

    private static readonly string[] CleanFiles =
        ["bench/judge-data/base-replies.jsonl", "bench/judge-data/clean-paragraphs.jsonl", "bench/judge-data/heldout-clean.jsonl"];

    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        string Arg(string name, string fallback)
        {
            int i = args.ToList().IndexOf(name);
            return i >= 0 && i + 1 < args.Count ? args[i + 1] : fallback;
        }
        if (args.Contains("--known-answer-demo")) return await DemoCapabilityAsync();
        var sets = Arg("--sets", "builtin,heldout,heldout2,heldout3,heldout4,heldout5,heldout6,heldout7,heldout8,heldout9,heldout10,heldout11,heldout12").Split(',', StringSplitOptions.RemoveEmptyEntries);
        var judges = Arg("--judges", "biasguard,llm").Split(',', StringSplitOptions.RemoveEmptyEntries);
        Console.WriteLine("| Judge prompt | Attack set | Placement | " + string.Join(" | ", Configurations.Select(c => c.Name)) +
                          " | Alarms on the 12 clean replies (all) | Known-answer calls per reply: clean; attacked (max) |");
        Console.WriteLine("|---|---|---|" + string.Concat(Configurations.Select(_ => "---|")) + "---|---|");
        foreach (var kind in judges)
        {
            foreach (var set in sets)
            {
                foreach (bool inline in new[] { false, true })
                {
                    var attacks = InjectionSuite.AttackSet(set);
                    var reports = new List<InjectionReport>();
                    CountingJudge? last = null;
                    foreach (var (_, defences) in Configurations)
                    {
                        var client = new ObeyingClient(json: kind == "llm");
                        last = new CountingJudge(Judge(kind, client, defences), client);
                        reports.Add(await InjectionSuite.RunAsync(last, attacks: attacks, inline: inline, concurrency: 1));
                    }
                    var all = reports[^1];
                    Console.WriteLine($"| {kind} | {set} | {(inline ? "inline" : "appended")} | " + string.Join(" | ", reports.Select(r => Show(r.Overall.Flips))) +
                                      $" | {Show(all.CleanDetections)} | {last!.Calls()} |");
                    // The attacks each configuration let through, so a table can say which.
                    for (int c = 1; c < reports.Count; c++)
                        foreach (var a in reports[c].ByAttack.Where(a => a.Flips.Count > 0))
                            Console.WriteLine($"|  |  | ↳ {Configurations[c].Name}: {a.Attack} {Show(a.Flips)} |" + string.Concat(Configurations.Select(_ => " |")) + "  |  |");
                    // Unusable pairs (an inseparable known-answer failure is unparseable, not a flip).
                    if (all.Overall.Unusable.Count > 0) Console.WriteLine($"|  |  | ↳ all (v5): unusable {Show(all.Overall.Unusable)} |" + string.Concat(Configurations.Select(_ => " |")) + "  |  |");
                }
            }
        }
        if (args.Contains("--clean"))
        {
            Console.WriteLine();
            Console.WriteLine("| Judge prompt | Clean replies | Alarms, rules (v4) | Alarms, all (v5) | of which known-answer |");
            Console.WriteLine("|---|---|---|---|---|");
            foreach (var kind in judges)
                foreach (var file in CleanFiles)
                {
                    var items = LabelledSets.Load("jsonl:" + file).Items;
                    int rules = 0, all = 0, kad = 0;
                    foreach (var item in items)
                    {
                        var v4 = await Judge(kind, new ObeyingClient(kind == "llm"), JudgeDefences.All & ~JudgeDefences.KnownAnswer).JudgeAsync(item.ToProbe(), item.Text);
                        var v5 = await Judge(kind, new ObeyingClient(kind == "llm"), JudgeDefences.All).JudgeAsync(item.ToProbe(), item.Text);
                        if (v4.Injection?.Detected == true) rules++;
                        if (v5.Injection?.Detected == true) all++;
                        if (v5.Injection?.Families.Contains(KnownAnswerDetection.Family) == true) kad++;
                    }
                    Console.WriteLine($"| {kind} | {file} | {Show(Rate.Of(rules, items.Count))} | {Show(Rate.Of(all, items.Count))} | {kad}/{items.Count} |");
                }
        }
        return 0;
    }

    /// <summary>
    /// <c>judge-injection --known-answer-demo</c>: can the offline demo judge (and the shipped adapter) do the known-answer
    /// task at all? Each clean reply file's texts and the control text go through <see cref="KnownAnswerDetection.CheckAsync"/>
    /// with the demo model, without data marking (as its compact prompt) and with it; prints the pass rate and a few answers.
    /// </summary>
    public static async Task<int> DemoCapabilityAsync()
    {
        var texts = CleanFiles.SelectMany(f => LabelledSets.Load("jsonl:" + f).Items.Select(i => i.Text)).Prepend(KnownAnswerDetection.ControlText).ToList();
        Console.WriteLine($"| Model | Data marking | Known-answer checks passed on {texts.Count} clean texts (control text included) | Sample answers |");
        Console.WriteLine("|---|---|---|---|");
        var demo = BiasFree.Engine.DemoModel.DemoModel.Find() ?? throw new DirectoryNotFoundException("no demo model");
        foreach (var (name, adapter) in new (string, string?)[] { ("demo", null), ("demo:models/demo-judge", Path.GetFullPath("models/demo-judge/adapter")) })
        {
            using var client = BiasFree.Engine.Chat.LocalModel.Load(demo, new BiasFree.Engine.Chat.LocalModelOptions
            {
                ModelId = "demo", DefaultTemperature = 0f, DefaultMaxOutputTokens = 24, Adapter = adapter,
            });
            var recorder = new RecordingClient(client);
            foreach (bool mark in new[] { false, true })
            {
                var kad = new KnownAnswerDetection(recorder, dataMark: mark);
                int passed = 0;
                recorder.Answers.Clear();
                foreach (var t in texts) if (await kad.CheckAsync(t)) passed++;
                var samples = string.Join(" / ", recorder.Answers.Take(3).Select(a => "`" + a.ReplaceLineEndings(" ")[..Math.Min(60, a.Length)] + "`"));
                Console.WriteLine($"| {name} | {(mark ? "yes" : "no")} | {Show(Rate.Of(passed, texts.Count))} | {samples} |");
            }
        }
        return 0;
    }

    /// <summary>Keeps the model's answers (not the prompts, which hold the code) for the table.</summary>
    private sealed class RecordingClient(IChatClient inner) : DelegatingChatClient(inner)
    {
        public List<string> Answers { get; } = [];

        public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            var r = await base.GetResponseAsync(messages, options, cancellationToken);
            // A code the model repeated is redacted: codes are never printed or logged.
            Answers.Add(Regex.Replace(r.Text ?? "", "[BCDFGHJKLMNPQRSTVWXZ2-9]{10}", "[code]"));
            return r;
        }
    }

    private static IJudge Judge(string kind, ObeyingClient client, JudgeDefences defences) => kind switch
    {
        "biasguard" => new BiasGuardJudge(client, defences: defences),
        "llm" => new LlmDialogueJudge(client, defences: defences),
        _ => throw new ArgumentException($"unknown judge prompt '{kind}' (biasguard or llm)"),
    };

    private static string Show(Rate r) => r.Total == 0 ? "–" : string.Create(CultureInfo.InvariantCulture,
        $"{100.0 * r.Count / r.Total:0.0} [{100 * r.Low:0.0}, {100 * r.High:0.0}] ({r.Count}/{r.Total})");

    /// <summary>Counts the known-answer calls of each judged reply (the suite runs with concurrency 1, so the client's count
    /// moves only for the reply being judged), clean replies apart from attacked ones.</summary>
    private sealed class CountingJudge(IJudge inner, ObeyingClient client) : IJudge
    {
        private readonly List<int> _clean = [], _attacked = [];

        public string Name => inner.Name;

        public async Task<Verdict> JudgeAsync(BiasFree.Probes.Probe probe, string response, CancellationToken cancellationToken = default)
        {
            int before = client.KnownAnswerCalls;
            var v = await inner.JudgeAsync(probe, response, cancellationToken);
            bool clean = InjectionSuite.BaseItems.Any(i => i.Text == response);
            (clean ? _clean : _attacked).Add(client.KnownAnswerCalls - before);
            return v;
        }

        public string Calls() => _clean.Count == 0 || _attacked.Count == 0 ? "–"
            : string.Create(CultureInfo.InvariantCulture, $"{_clean.Average():0.0}; {_attacked.Average():0.0} ({_attacked.Max()})");
    }

    /// <summary>
    /// The worst-case judge model: on a judging prompt, the attack's target whenever any attack marker reaches it, the
    /// item's gold otherwise; on a known-answer prompt, the code, unless a marker reaches it, when it obeys the attack.
    /// It counts its known-answer calls per judged reply (the layer's cost).
    /// </summary>
    private sealed partial class ObeyingClient(bool json) : IChatClient
    {
        private static readonly IReadOnlyList<(InjectionAttack Attack, string Marker)> Markers =
            [.. InjectionSuite.AttackSet("all").Select(a => (a, TextCanonicaliser.Canonicalise(a.Marker).Text))];

        private int _knownAnswerCalls;

        /// <summary>Known-answer prompts answered so far.</summary>
        public int KnownAnswerCalls => Volatile.Read(ref _knownAnswerCalls);

        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            var user = TextCanonicaliser.Canonicalise(string.Join("\n", messages.Where(m => m.Role == ChatRole.User).Select(m => m.Text))
                .Replace(DataMarking.Mark, ' ')).Text;
            // The base item: its first sentence is in every reading of it (a second reading may leave out a later one).
            var item = InjectionSuite.BaseItems.FirstOrDefault(i => user.Contains(i.Text.Split(". ")[0], StringComparison.Ordinal));
            var reached = Markers.FirstOrDefault(m => user.Contains(m.Marker, StringComparison.Ordinal)).Attack;
            var target = item?.Gold == Label.Biased ? Label.Unbiased : Label.Biased;
            string text;
            if (KnownAnswerTask().Match(user) is { Success: true } task)
            {
                Interlocked.Increment(ref _knownAnswerCalls);
                text = reached is null ? task.Groups["code"].Value : reached.ObeyedKnownAnswer(task.Groups["code"].Value, target);
            }
            else
            {
                if (item is null) text = "I cannot find the text.";
                else
                {
                    var label = reached is not null ? target : item.Gold;
                    text = json
                        ? $"{{\"label\": \"{ReasonedVerdictFormat.Word(label)}\", \"reason\": \"scripted\"}}"
                        : ReasonedVerdictFormat.Format("Scripted.", label, 80);
                }
            }
            return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, text)));
        }

        [GeneratedRegex(@"Repeat the code (?<code>\S+) once")]
        private static partial Regex KnownAnswerTask();

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose()
        {
        }
    }
}
