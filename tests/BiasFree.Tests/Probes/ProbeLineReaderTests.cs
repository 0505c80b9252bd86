using System.Text;
using BiasFree.Probes;
using BiasFree.Probes.BuiltIn;
using BiasFree.Probes.Loaders;

namespace BiasFree.Tests.Probes;

/// <summary>
/// The JSONL suite reader (<see cref="ProbeJsonl.Read"/>, one <see cref="System.Text.Json.Utf8JsonReader"/> pass per line)
/// against the document reader it replaced (<see cref="ProbeJsonl.ReadWithDocuments"/>): the same probes from valid files,
/// the same file:line error from malformed ones, on generated suites, fixture suites written in the format, hand-written
/// odd lines and thousands of seeded mutations of valid lines; and the validation pass's reader
/// (<see cref="ProbeJsonl.Scan"/>, which checks a line without building its probe) gives the same errors too.
/// </summary>
public class ProbeLineReaderTests
{
    /// <summary>Every probe in full (the format's own serialisation), or the error's type and message.</summary>
    private static string Outcome(Func<IEnumerable<Probe>> read)
    {
        try
        {
            return "ok\n" + string.Join("\n", read().Select(ProbeJsonl.Serialize));
        }
        catch (Exception e) when (e is ProbeFormatException or FileNotFoundException)
        {
            return $"{e.GetType().Name}: {e.Message}";
        }
    }

    /// <summary>What the validation pass keeps of each probe, or the error.</summary>
    private static string Skeleton(Func<IEnumerable<Probe>> read)
    {
        try
        {
            return "ok\n" + string.Join("\n", read().Select(p => $"{p.Suite}|{p.Id}|{p.Scenario}|{p.Category}|{p.Context}"));
        }
        catch (Exception e) when (e is ProbeFormatException or FileNotFoundException)
        {
            return $"{e.GetType().Name}: {e.Message}";
        }
    }

    /// <summary>Read and Scan (the validation pass's reader) against the document reader.</summary>
    private static string AssertSameOutcome(string path)
    {
        var expected = Outcome(() => ProbeJsonl.ReadWithDocuments(path).ToList());
        Assert.Equal(expected, Outcome(() => ProbeJsonl.Read(path).ToList()));
        Assert.Equal(Skeleton(() => ProbeJsonl.ReadWithDocuments(path).ToList()), Skeleton(() => ProbeJsonl.Scan(path).ToList()));
        return expected;
    }

    private static List<Probe> Lettered(int n)
    {
        var probes = new List<Probe>();
        for (var i = 0; i < n; i++)
        {
            ProbeOption[] options = [new($"the person {i % 7}", OptionRole.Stereotyped, "a"), new("the neighbour", OptionRole.AntiStereotyped, "b"), new("Unknown", OptionRole.Unknown, "unknown")];
            probes.Add(new Probe
            {
                Id = $"q{i}", Suite = "lettered", Scenario = Scenario.MultipleChoice, Category = "age",
                UserTurns = [MultipleChoiceQuery.FormatLettered($"Context {i} \u00e9\u4e2d \"q\" \\ \t.", "Who?", options.Select(o => o.Text).ToList())],
                Options = options, Context = i % 2 == 0 ? ContextCondition.Ambiguous : ContextCondition.Disambiguated,
                Polarity = QuestionPolarity.Negative, CorrectOption = i % 3, ContextText = i % 5 == 0 ? null : "ctx",
                Metadata = i % 4 == 0 ? new Dictionary<string, string> { ["k"] = "v\u2028", ["\u00e9"] = "" } : new Dictionary<string, string>(),
            });
        }
        return probes;
    }

    private static List<Probe> ManyOptionTexts(int n)
    {
        var probes = Lettered(n);
        for (var i = 0; i < n; i++)
        {
            var first = new ProbeOption("person number " + i, OptionRole.Stereotyped, "g" + (i % 1500));
            probes[i] = probes[i] with { Options = [first, .. probes[i].Options.Skip(1)] };
        }
        return probes;
    }

    [Fact]
    public void GeneratedAndFixtureSuitesReadTheSame()
    {
        using var dir = new TempDir();
        var suites = new List<IReadOnlyList<Probe>>
        {
            ProbeTestSupport.BuiltInBbq,
            ProbeTestSupport.BuiltInFairMT,
            Lettered(300),
            // More distinct option texts than the reader's table of recurring values has slots: values that share a slot
            // replace each other there, and each probe must still get its own text.
            ManyOptionTexts(3000),
            StereoSetLoader.Load(ProbeTestSupport.Fixture("stereoset", "dev.json")),
            BbqJsonlLoader.Load(ProbeTestSupport.Fixture("bbq")),
        };
        var i = 0;
        foreach (var probes in suites)
        {
            var path = Path.Combine(dir.Path, $"suite{i++}.jsonl");
            ProbeJsonl.Write(path, probes);
            AssertSameOutcome(path);
            ProbeTestSupport.AssertSameProbes(probes, [.. ProbeJsonl.Read(path)]);
        }
    }

    [Fact]
    public void LinesLongerThanTheReadBufferAndOddLayoutReadTheSame()
    {
        using var dir = new TempDir();
        var big = Lettered(3).Select(p => p with { UserTurns = [new string('x', 150_000) + p.UserTurns[0]] }).ToList();
        var path = Path.Combine(dir.Path, "big.jsonl");
        ProbeJsonl.Write(path, big);
        AssertSameOutcome(path);
        ProbeTestSupport.AssertSameProbes(big, [.. ProbeJsonl.Read(path)]);

        // BOM, CRLF, blank and whitespace lines, no final newline.
        var lines = Lettered(4).Select(ProbeJsonl.Serialize).ToList();
        File.WriteAllText(path, "\uFEFF" + lines[0] + "\r\n\r\n  \t\r\n" + lines[1] + "\r\r\n\u2003\n" + lines[2] + "\n" + lines[3], new UTF8Encoding(false));
        AssertSameOutcome(path);
        Assert.Equal(4, ProbeJsonl.Read(path).Count());
    }

    public static TheoryData<string> OddLines() =>
    [
        // Valid: fields given twice (the last counts), escaped names, nulls, unknown fields, numbers of every shape.
        """{"id":"a","id":"b","suite":"s","scenario":"multi-turn","category":"age","user_turns":["x"],"user_turns":["y","z"]}""",
        """{"\u0069d":"a","suite":"s","scenario":"multi-turn","category":"age","user_turns":["x"],"task_type":null,"extra":{"deep":[1,{"a":null}]}}""",
        """{"id":"a","suite":"s","scenario":"multiple-choice","category":"age","user_turns":["q"],"options":[{"text":"x","role":"stereotyped","group":"g","text":"y"},{"role":"unknown","text":"u","group":"unknown","more":[1]}],"correct_option":1.0}""",
        """{"id":"a","suite":"s","scenario":"multiple-choice","category":"age","user_turns":["q"],"options":[{"text":"x","role":"stereotyped","group":"g"},{"role":"unknown","text":"u","group":"unknown"}],"correct_option":1,"context":null,"polarity":"non-negative","metadata":{"a":"1","a":"2","b":"\u00e9"}}""",
        """{"id":"a","suite":"s","scenario":"multiple-choice","category":"age","user_turns":["q"],"options":[{"text":"x","role":"stereotyped","group":"g"},{"role":"unknown","text":"u","group":"unknown"}],"correct_option":1e0}""",
        // Malformed: syntax, root, each field's type, value and escape problems, in every order the checks meet them.
        """{"id":"a",}""",
        """{"id":"a","suite":"s" "x":1}""",
        """[{"id":"a"}]""",
        "\"just a string\"",
        """{"id":"a"} trailing""",
        """{"id":"","suite":"s"}""",
        """{"id":5,"suite":"s"}""",
        """{"id":"\ud800","suite":"s"}""",
        """{"id":"a","suite":"s","scenario":"chat","category":"age","user_turns":["x"]}""",
        """{"id":"a","suite":"s","scenario":"multi-turn","category":"Gender identity","user_turns":["x"]}""",
        """{"id":"a","suite":"s","scenario":"multi-turn","category":"age","user_turns":[]}""",
        """{"id":"a","suite":"s","scenario":"multi-turn","category":"age","user_turns":["x",{"a":1}]}""",
        """{"id":"a","suite":"s","scenario":"multi-turn","category":"age","user_turns":"x"}""",
        """{"id":"a","suite":"s","scenario":"multi-turn","category":"age","user_turns":["\udc00"]}""",
        """{"id":"a","suite":"s","scenario":"multiple-choice","category":"age","user_turns":["q"],"options":{"a":1}}""",
        """{"id":"a","suite":"s","scenario":"multiple-choice","category":"age","user_turns":["q"],"options":[1,{"text":"x"}]}""",
        """{"id":"a","suite":"s","scenario":"multiple-choice","category":"age","user_turns":["q"],"options":[{"text":"x","role":"biased","group":"g"}]}""",
        """{"id":"a","suite":"s","scenario":"multiple-choice","category":"age","user_turns":["q"],"options":[{"text":"x","role":"unknown"}]}""",
        """{"id":"a","suite":"s","scenario":"multiple-choice","category":"age","user_turns":["q"],"options":[{"text":7,"role":"unknown","group":"g"}]}""",
        """{"id":"a","suite":"s","scenario":"multiple-choice","category":"age","user_turns":["q"],"options":[{"text":"x","role":"unknown","group":"g"}]}""",
        """{"id":"a","suite":"s","scenario":"multiple-choice","category":"age","user_turns":["q"],"options":[{"text":"x","role":"unknown","group":"g"},{"text":"y","role":"unknown","group":"g"}],"correct_option":2}""",
        """{"id":"a","suite":"s","scenario":"multiple-choice","category":"age","user_turns":["q"],"options":[{"text":"x","role":"unknown","group":"g"},{"text":"y","role":"unknown","group":"g"}],"correct_option":"1"}""",
        """{"id":"a","suite":"s","scenario":"multiple-choice","category":"age","user_turns":["q"],"options":[{"text":"x","role":"unknown","group":"g"},{"text":"y","role":"unknown","group":"g"}],"correct_option":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]}""",
        """{"id":"a","suite":"s","scenario":"multi-turn","category":"age","user_turns":["q"],"correct_option":0}""",
        """{"id":"a","suite":"s","scenario":"multi-turn","category":"age","user_turns":["q"],"context":"vague"}""",
        """{"id":"a","suite":"s","scenario":"multi-turn","category":"age","user_turns":["q"],"polarity":1}""",
        """{"id":"a","suite":"s","scenario":"multi-turn","category":"age","user_turns":["q"],"metadata":[]}""",
        """{"id":"a","suite":"s","scenario":"multi-turn","category":"age","user_turns":["q"],"metadata":{"a":1,"\ud800":"x"}}""",
        """{"id":"a","suite":"s","scenario":"multi-turn","category":"age","user_turns":["q"],"metadata":{"a":"\ud800","b":2}}""",
        """{"id":"a","suite":"s","scenario":"multi-turn","category":"age","user_turns":["q"],"task_type":3,"question":4}""",
        """{"id":"a","suite":"s","scenario":"multi-turn","category":"age","user_turns":["q"],"context_text":"\ud800"}""",
        """{"id":"a","suite":"s","scenario":"multi-turn","category":"age","user_turns":["q"],"question":{"a":"b"}}""",
        // Values the readers compare with names or share between lines, escaped or not; long escaped strings (the
        // validation pass unescapes a string past 512 bytes into a rented buffer) with a lone surrogate at their end.
        """{"id":"a","suite":"\u0073","scenario":"multi-\u0074urn","category":"a\u0067e","user_turns":["q"],"context":"ambigu\u006fus","polarity":"neg\u0061tive"}""",
        """{"id":"a","suite":"s","scenario":"multiple-choice","category":"age","user_turns":["q"],"options":[{"text":"x","role":"unkn\u006fwn","group":"g"},{"text":"y","role":"stereotyped","group":"\u0067"}]}""",
        """{"id":"a","suite":"s","scenario":"multiple-choice","category":"age","user_turns":["q"],"options":[{"text":"x","role":"Unknown","group":"g"},{"text":"y","role":"stereotyped","group":"g"}]}""",
        """{"id":"a","suite":"s","scenario":"multi-turn","category":"age","user_turns":["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n\u00e9\ud83d\ude00"]}""",
        """{"id":"a","suite":"s","scenario":"multi-turn","category":"age","user_turns":["xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n\ud800"]}""",
        """{"id":"a","suite":"s","scenario":"multi-turn","category":"age","user_turns":["q"],"context_text":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\t\udc00"}""",
        """{"id":"a","suite":"s","scenario":"multiple-choice","category":"age","user_turns":["q"],"options":[{"text":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\ud800","role":"unknown","group":"g"},{"text":"y","role":"unknown","group":"g"}]}""",
        "\u00a0{\"id\":\"a\"}",
        "{\"id\":\"a\",\"suite\":\"s\",\"scenario\":\"multi-turn\",\"category\":\"age\",\"user_turns\":[\"q\"]}\n{\"id\":\"a\",\"suite\":\"s\",\"scenario\":\"multi-turn\",\"category\":\"age\",\"user_turns\":[\"q\"]}",
        "",
        "  \n\t\n",
    ];

    [Theory]
    [MemberData(nameof(OddLines))]
    public void OddLinesReadTheSame(string text)
    {
        using var dir = new TempDir();
        var path = dir.File("odd.jsonl", text);
        AssertSameOutcome(path);
    }

    [Fact]
    public void RepeatedNamesAreSharedAndUnusedTextIsNotKept()
    {
        // A suite's name and categories repeat on every line: each probe
        // shares one string for its suite and category instead of holding its own copy (Read and Scan), and the validation pass keeps
        // nothing of the turns (issue #11: per-line allocations of a 50,000-probe run's two passes over its suite).
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "shared.jsonl");
        ProbeJsonl.Write(path, Lettered(40));
        foreach (var probes in new[] { ProbeJsonl.Read(path).ToList(), ProbeJsonl.Scan(path).ToList() })
        {
            Assert.All(probes, p => Assert.Same(probes[0].Suite, p.Suite));
            Assert.All(probes, p => Assert.Same(probes[0].Category, p.Category));
        }
        // Option texts and groups recur too: a probe built by Read holds the string of an earlier line with the same bytes.
        var read = ProbeJsonl.Read(path).ToList();
        Assert.All(read, p => Assert.Same(read[0].Options[1].Text, p.Options[1].Text));
        Assert.All(read, p => Assert.Same(read[0].Options[2].Group, p.Options[2].Group));
        Assert.Same(read[0].Options[0].Text, read[7].Options[0].Text); // "the person 0" on lines 0 and 7
        Assert.All(ProbeJsonl.Scan(path), p => Assert.Empty(p.UserTurns));
        Assert.All(ProbeJsonl.Scan(path), p => Assert.Empty(p.Metadata));
    }

    [Fact]
    public void MutatedLinesGiveTheSameProbesOrTheSameErrors()
    {
        // Seeded edits of valid lines (bytes cut, repeated or replaced by JSON fragments): every outcome, probe or
        // file:line message, must be the document reader's.
        string[] fragments = ["null", "1", "-2.5e3", "\"x\"", "\"\\ud800\"", "{", "}", "[", "]", ",", ":", "true", "\"role\":\"unknown\"",
            "\"id\":", "\"correct_option\":", "\"metadata\":{\"k\":", "\"options\":[", "\"\\u0069d\"", "\u00e9", " ", "\"user_turns\":[\"a\"]"];
        var seeds = Lettered(8).Concat(ProbeTestSupport.BuiltInFairMT.Take(4)).Select(ProbeJsonl.Serialize).ToList();
        var rng = new Random(20261130);
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "mutated.jsonl");
        var errors = 0;
        for (var n = 0; n < 2000; n++)
        {
            var line = seeds[rng.Next(seeds.Count)];
            for (var edits = 1 + rng.Next(3); edits > 0; edits--)
            {
                var at = rng.Next(line.Length + 1);
                var length = Math.Min(rng.Next(1, 12), line.Length - at);
                line = rng.Next(3) switch
                {
                    0 => line.Remove(at, length),
                    1 => line.Insert(at, line.Substring(at, length)),
                    _ => line.Remove(at, length).Insert(at, fragments[rng.Next(fragments.Length)]),
                };
            }
            File.WriteAllText(path, seeds[0] + "\n" + line + "\n", new UTF8Encoding(false));
            var expected = AssertSameOutcome(path);
            errors += expected.StartsWith("ok", StringComparison.Ordinal) ? 0 : 1;
        }
        // Most edits break the line, and some leave it valid: both kinds were compared.
        Assert.InRange(errors, 200, 1990);
    }
}
