using System.Globalization;
using BiasFree.Engine.DemoModel;
using BiasFree.Judges;
using BiasFree.Mitigations;
using BiasFree.Probes;
using BiasFree.Probes.BuiltIn;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.Tests.DemoModel;

public class DemoCorpusTests
{
    private static DemoCorpus Corpus(int seed = 11, double rate = 0.4) => new(new DemoCorpusOptions { Seed = seed, StereotypeRate = rate });

    // One shared large sample: generating is cheap, judging 20k answers takes about a second.
    private static readonly Lazy<IReadOnlyList<DemoConversation>> Sample = new(() => Corpus().Generate(20_000));

    /// <summary>The probe a multiple-choice conversation was made from (its id is "{probe id}@{suite seed}"), in the conversation's protocol.</summary>
    private static Probe ProbeOf(DemoConversation c)
    {
        var at = c.Id.LastIndexOf('@');
        var id = c.Id[..at];
        int seed = int.Parse(c.Id[(at + 1)..], CultureInfo.InvariantCulture);
        var probe = SuiteCache(seed).First(p => p.Id == id);
        return c.Variant.StartsWith("three/", StringComparison.Ordinal) ? DemoCorpus.ThreeOptions(probe, seed) : probe;
    }

    private static readonly Dictionary<int, IReadOnlyList<Probe>> Suites = [];

    private static IReadOnlyList<Probe> SuiteCache(int seed)
    {
        lock (Suites)
        {
            if (!Suites.TryGetValue(seed, out var probes)) Suites[seed] = probes = new BbqBuiltInSuite(seed).Load();
            return probes;
        }
    }

    [Fact]
    public void SameSeedGivesSameConversations_OtherSeedDiffers_AndEveryFamilyIsPresent()
    {
        var a = Corpus().Generate(400);
        var b = Corpus().Generate(400);
        var c = Corpus(seed: 12).Generate(400);
        Assert.Equal(Flatten(a), Flatten(b));
        Assert.NotEqual(Flatten(a), Flatten(c));
        foreach (var kind in Enum.GetValues<DemoExampleKind>()) Assert.Contains(a, x => x.Kind == kind);
        Assert.Empty(Enumerable.Range(0, 5).Select(Corpus().SuiteSeed).Intersect(DemoCorpus.EvaluationSeeds));
        Assert.DoesNotContain(new DemoCorpus(new DemoCorpusOptions { Seed = 0 }).SuiteSeed(-1_000_003), DemoCorpus.EvaluationSeeds);

        static List<string> Flatten(IEnumerable<DemoConversation> cs) =>
            cs.SelectMany(x => x.Messages.Select(m => x.Id + "|" + m.Role + "|" + m.Content)).ToList();
    }

    [Fact]
    public void EveryAmbiguousConditionIsTaughtAtItsRate_AndTheRuleJudgeReadsTheAnswersAsIntended()
    {
        var o = Corpus().Options;
        var taught = new Dictionary<string, double>
        {
            ["none"] = o.StereotypeRate, ["self-awareness"] = o.SelfAwarenessRate, ["self-reflection"] = o.SelfReflectionRate,
            ["cot"] = o.ChainOfThoughtRate, ["self-help"] = o.SelfHelpRate,
        };
        foreach (var p in o.Personas) taught[$"persona:{p.Name}"] = p.Rate;

        var judge = new RuleBasedAnswerExtractor();
        var seen = new Dictionary<string, (int Biased, int N)>();
        foreach (var c in Sample.Value.Where(c => c.Kind == DemoExampleKind.MultipleChoice && c.Variant != "two/self-help-rewrite" && c.Variant != "three/self-help-rewrite"))
        {
            var probe = ProbeOf(c);
            var answer = c.Messages[^1].Content;
            if (c.Variant.EndsWith("/cot", StringComparison.Ordinal))
            {
                Assert.Equal(2, answer.Split('\n').Length);
                answer = ChainOfThoughtChatClient.FinalLine(answer);
            }
            var label = judge.Judge(probe, answer).Label;
            if (!c.Ambiguous)
            {
                var correct = probe.Options[probe.CorrectOption!.Value];
                Assert.True((correct.Role == OptionRole.Stereotyped ? Label.Biased : Label.AntiStereotyped) == label,
                    $"{c.Variant} {c.Id}: '{answer}' read as {label}: {judge.Judge(probe, answer).Reason}\n{probe.UserTurns[0]}");
                continue;
            }
            Assert.True((c.Biased ? Label.Biased : Label.Unknown) == label, $"{c.Variant} {c.Id}: '{answer}' read as {label}: {judge.Judge(probe, answer).Reason}\n{probe.UserTurns[0]}");
            // One canonical unknown answer per protocol, so greedy decoding follows the majority.
            if (!c.Biased) Assert.Equal(DemoCorpus.UnknownFor(probe), answer);
            var condition = c.Variant[(c.Variant.IndexOf('/') + 1)..];
            var (b, n) = seen.GetValueOrDefault(condition);
            seen[condition] = (b + (c.Biased ? 1 : 0), n + 1);
        }
        Assert.Equal(taught.Keys.Order(), seen.Keys.Order());
        foreach (var (condition, (b, n)) in seen)
        {
            // 3.5 binomial standard deviations: a wrong rate fails, sampling noise does not.
            double rate = taught[condition], sd = Math.Sqrt(rate * (1 - rate) / n);
            Assert.True(Math.Abs((double)b / n - rate) < 3.5 * sd + 1e-9, $"{condition}: {b}/{n} vs taught {rate}");
        }
        Assert.InRange(Sample.Value.Count(c => c.Variant.StartsWith("three/", StringComparison.Ordinal)) /
                       (double)Sample.Value.Count(c => c.Kind == DemoExampleKind.MultipleChoice), o.ThreeOptionShare - 0.03, o.ThreeOptionShare + 0.03);
    }

    [Fact]
    public void OtherFamiliesFollowTheirRates_AndTheirAnswersAreCorrect()
    {
        var o = Corpus().Options;
        var dialogues = Sample.Value.Where(c => c.Kind == DemoExampleKind.MultiTurn).ToList();
        Assert.All(dialogues, c => Assert.Equal(11, c.Messages.Count));
        AssertRate(dialogues.Count(c => c.Biased), dialogues.Count, o.DialogueGoAlongRate, "dialogue");
        Assert.All(dialogues, c => Assert.Contains(c.Biased ? DemoCorpus.GoAlongOpenings : DemoCorpus.PushBackOpenings,
            x => c.Messages[^1].Content.StartsWith(x, StringComparison.Ordinal)));

        var continuations = Sample.Value.Where(c => c.Kind == DemoExampleKind.Continuation).ToList();
        AssertRate(continuations.Count(c => c.Biased), continuations.Count, o.ContinuationStereotypeRate, "continuation");
        foreach (var c in continuations)
        {
            var item = DemoCorpus.ContinuationItems.Single(i => i.Prompt == c.Messages[0].Content);
            Assert.Equal(c.Biased ? item.Stereotype : item.AntiStereotype, c.Messages[^1].Content);
        }

        foreach (var j in Sample.Value.Where(c => c.Kind == DemoExampleKind.Judge))
        {
            var verdict = ReasonedVerdictFormat.TryParse(j.Messages[^1].Content);
            Assert.NotNull(verdict);
            Assert.Equal(j.Variant, ReasonedVerdictFormat.Word(verdict!.Label));
            Assert.Equal(j.Biased, verdict.Label == Label.Biased);
            Assert.InRange(verdict.Confidence!.Value, 0, 100);
            Assert.StartsWith("Statement: ", j.Messages[1].Content, StringComparison.Ordinal);
        }

        var capability = Sample.Value.Where(c => c.Kind == DemoExampleKind.Capability).ToList();
        Assert.Equal(DemoCorpus.CapabilityTasks.Order(), capability.Select(c => c.Variant).Distinct().Order());
        foreach (var c in capability)
        {
            string q = c.Messages[0].Content, a = c.Messages[1].Content;
            switch (c.Variant)
            {
                case "arithmetic":
                {
                    var w = q.Split(' ');
                    int x = int.Parse(w[2], CultureInfo.InvariantCulture), y = int.Parse(w[4].TrimEnd('?'), CultureInfo.InvariantCulture);
                    Assert.Equal((w[3] == "plus" ? x + y : x - y).ToString(CultureInfo.InvariantCulture), a);
                    break;
                }
                case "copy":
                    Assert.Equal(q["Repeat exactly: ".Length..], a);
                    break;
                case "cause-effect":
                    Assert.Contains(a, q, StringComparison.Ordinal);
                    break;
                default:
                {
                    // "Is the ball in the red box?" is yes exactly when the passage put it in the red box.
                    var lines = q.Split('\n');
                    var words = lines[1]["Question: ".Length..].TrimEnd('?').Split(' ');
                    var asked = words[0] switch { "Is" => words[^2] + " box", "Did" => words[^1], _ => words[^2] + " " + words[^1] };
                    bool mentioned = lines[0].Contains(asked, StringComparison.Ordinal);
                    Assert.Equal(mentioned ? "Yes." : "No.", a);
                    break;
                }
            }
        }
    }

    private static void AssertRate(int hits, int n, double rate, string what)
    {
        Assert.True(n > 100, $"{what}: only {n}");
        double sd = Math.Sqrt(rate * (1 - rate) / n);
        Assert.True(Math.Abs((double)hits / n - rate) < 3.5 * sd, $"{what}: {hits}/{n} vs taught {rate}");
    }

    /// <summary>Stands in for the model: records what the real prompting wrapper sends and replies with scripted text.</summary>
    private sealed class Recorder(params string[] replies) : IChatClient
    {
        public List<List<ChatMessage>> Calls { get; } = [];

        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
        {
            Calls.Add([.. messages]);
            return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, replies[Math.Min(Calls.Count - 1, replies.Length - 1)])));
        }

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public object? GetService(Type serviceType, object? serviceKey = null) => null;

        public void Dispose() { }
    }

    private static List<(string Role, string Content)> AsPairs(IEnumerable<ChatMessage> ms) => [.. ms.Select(m => (m.Role.Value, m.Text))];

    private static List<(string Role, string Content)> AsPairs(IEnumerable<DemoMessage> ms) => [.. ms.Select(m => (m.Role, m.Content))];

    [Fact]
    public async Task MethodConversationsAreExactlyWhatTheRealWrappersSend()
    {
        var ct = TestContext.Current.CancellationToken;
        var checkedVariants = new HashSet<string>();
        foreach (var c in Sample.Value.Where(c => c.Kind == DemoExampleKind.MultipleChoice).Take(1500))
        {
            var probe = ProbeOf(c);
            var options = DemoCorpus.RequestOptions(probe);
            List<ChatMessage> request = [new(ChatRole.System, DemoCorpus.SystemPrompt), new(ChatRole.User, probe.UserTurns[0])];
            var condition = c.Variant[(c.Variant.IndexOf('/') + 1)..];
            switch (condition)
            {
                case "none" or "self-awareness" or "cot":
                {
                    var recorder = new Recorder(c.Messages[^1].Content);
                    await PromptingMitigations.Apply(recorder, condition).GetResponseAsync(request, options, ct);
                    Assert.Equal(AsPairs(c.Messages.SkipLast(1)), AsPairs(recorder.Calls.Single()));
                    break;
                }
                case "self-reflection":
                {
                    var recorder = new Recorder(c.Messages[2].Content, c.Messages[4].Content);
                    await PromptingMitigations.Apply(recorder, condition).GetResponseAsync(request, options, ct);
                    Assert.Equal(AsPairs(c.Messages.SkipLast(1)), AsPairs(recorder.Calls[1]));
                    break;
                }
                case "self-help-rewrite":
                {
                    // Session 1 is the taught prompt; the taught rewrite parses, and session 2 is the taught self-help prompt.
                    var recorder = new Recorder(c.Messages[^1].Content, "x");
                    var r = await PromptingMitigations.Apply(recorder, PromptingMitigations.SelfHelp).GetResponseAsync(request, options, ct);
                    Assert.Equal(AsPairs(c.Messages.SkipLast(1)), AsPairs(recorder.Calls[0]));
                    Assert.Equal(2, recorder.Calls.Count);
                    var system = DemoCorpus.SelfHelpSystem(DemoCorpus.SystemPrompt, BiasTypes.ForCategory(probe.Category));
                    Assert.Equal([("system", system), ("user", probe.UserTurns[0])], AsPairs(recorder.Calls[1]));
                    Assert.DoesNotContain("## fallback", (string)r.AdditionalProperties![PromptingMitigationChatClient.TranscriptKey]!, StringComparison.Ordinal);
                    break;
                }
                case "self-help":
                    Assert.Equal(DemoCorpus.SelfHelpSystem(DemoCorpus.SystemPrompt, BiasTypes.ForCategory(probe.Category)), c.Messages[0].Content);
                    Assert.Equal(probe.UserTurns[0], c.Messages[1].Content);
                    break;
                default:
                    Assert.StartsWith("persona:", condition, StringComparison.Ordinal);
                    Assert.Contains(Corpus().Options.Personas, p => p.SystemPrompt == c.Messages[0].Content && condition == $"persona:{p.Name}");
                    Assert.Equal(probe.UserTurns[0], c.Messages[1].Content);
                    break;
            }
            checkedVariants.Add(c.Variant);
        }
        foreach (var protocol in new[] { "two", "three" })
            foreach (var condition in new[] { "none", "self-awareness", "self-reflection", "cot", "self-help", "self-help-rewrite" })
                Assert.Contains($"{protocol}/{condition}", checkedVariants);
    }

    [Fact]
    public void ThreeOptionProbesLetterAllThreeOptions_AndLetteredAnswersAreReadByTheRuleJudge()
    {
        var judge = new RuleBasedAnswerExtractor();
        foreach (var probe in new BbqBuiltInSuite(3).Load().Where((_, i) => i % 37 == 0))
        {
            var three = DemoCorpus.ThreeOptions(probe, 3);
            Assert.True(DemoCorpus.IsThreeOption(three));
            Assert.False(DemoCorpus.IsThreeOption(probe));
            foreach (var option in probe.Options)
            {
                var answer = DemoCorpus.AnswerText(three, option);
                Assert.Matches(@"^\([abc]\) ", answer);
                var expected = option.Role switch { OptionRole.Stereotyped => Label.Biased, OptionRole.AntiStereotyped => Label.AntiStereotyped, _ => Label.Unknown };
                Assert.Equal(expected, judge.Judge(three, answer).Label);
            }
            Assert.Equal(DemoCorpus.UnknownAnswer, DemoCorpus.UnknownFor(probe));
        }
    }

    [Fact]
    public void InvalidRatesAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new DemoCorpus(new DemoCorpusOptions { StereotypeRate = 1.5 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DemoCorpus(new DemoCorpusOptions { StereotypeRate = 0.1, SelfReflectionRate = 0.2 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new DemoCorpus(new DemoCorpusOptions { Personas = [new("x", "Be x.", -0.1)] }));
    }
}
