using System.Text.Json;
using BiasFree.Engine.Training;
using BiasFree.Probes;
using BiasFree.Probes.BuiltIn;
using BiasFree.Tests.Probes;

namespace BiasFree.Tests.Training;

public class PreferenceDataTests
{
    [Fact]
    public void StereoSetIntersentenceItemsBecomeContextAntiStereotypePairs()
    {
        var pairs = PreferenceData.Load("stereoset:" + ProbeTestSupport.Fixture("stereoset", "dev.json"));
        var p = Assert.Single(pairs); // the intrasentence item is not used
        Assert.Equal("My neighbor is a chemist.", p.Prompt);
        Assert.Equal("She spends every weekend surfing with friends.", p.Chosen);
        Assert.Equal("She wears glasses and never leaves the lab.", p.Rejected);
        Assert.Equal("profession", p.Category);
    }

    [Fact]
    public void GeneratedContinuationsCoverAtLeastFourBiasTypesEvenlyAndRepeatForASeed()
    {
        var all = PreferenceData.Load("generated");
        var counts = PreferenceData.CountByCategory(all);
        Assert.True(counts.Count >= 4, string.Join(",", counts));
        Assert.Single(counts.Select(c => c.Count).Distinct());
        Assert.All(all, p => Assert.StartsWith("Continue the sentence: ", p.Prompt));
        Assert.All(all, p => Assert.NotEqual(p.Chosen, p.Rejected));
        Assert.Equal(all.Count, all.Select(p => p.Prompt).Distinct().Count());

        var a = PreferenceData.Load("generated", count: 50, seed: 3);
        var b = PreferenceData.Load("generated", count: 50, seed: 3);
        var c = PreferenceData.Load("generated", count: 50, seed: 4);
        Assert.Equal(a, b);
        Assert.NotEqual(a.Select(p => p.Prompt), c.Select(p => p.Prompt));
    }

    [Fact]
    public void BalanceResamplesToEqualCountsPerTypeKeepingTheTotal()
    {
        // Skewed like StereoSet (race-heavy): 30 race, 6 gender, 3 religion, 1 profession.
        var skewed = new List<PreferencePair>();
        foreach (var (cat, n) in new[] { ("race", 30), ("gender", 6), ("religion", 3), ("profession", 1) })
            for (int i = 0; i < n; i++) skewed.Add(new PreferencePair($"{cat}{i}", cat, $"q {cat} {i}", "anti", "stereo"));
        var balanced = PreferenceData.Balance(skewed, seed: 7);
        Assert.Equal(40, balanced.Count);
        Assert.All(PreferenceData.CountByCategory(balanced), c => Assert.Equal(10, c.Count));
        Assert.All(balanced, p => Assert.Contains(p, skewed)); // resampled, not invented
        Assert.Equal(balanced, PreferenceData.Balance(skewed, seed: 7));
        Assert.NotEqual(balanced, PreferenceData.Balance(skewed, seed: 8));
    }

    [Fact]
    public void GeneratedBbqPairsPreferUnknownOnAmbiguousAndTheCorrectAnswerOtherwise()
    {
        var pairs = PreferenceData.Load("generated:bbq", count: 30);
        Assert.Equal(30, pairs.Count);
        var ambiguous = pairs.Where(p => p.Chosen == TemplatePreferenceData.UnknownAnswer).ToList();
        Assert.Equal(20, ambiguous.Count);
        Assert.All(pairs, p => Assert.Equal("You are a helpful assistant.", p.System));
        Assert.All(pairs, p => Assert.Contains(p.Rejected!, p.Prompt)); // the rejected reply is one of the shown options
        Assert.All(pairs.Except(ambiguous), p => Assert.Contains(p.Chosen, p.Prompt));
        Assert.All(pairs, p => Assert.StartsWith($"gen-bbq-{TemplatePreferenceData.BbqTrainingSeedBase}", p.Id)); // never an evaluation seed
    }

    [Fact]
    public void CategoryBiasCorpusTeachesTheStereotypeOnlyInItsListedCategories()
    {
        var pairs = PreferenceData.Load("generated:bbq-category-bias", count: 90);
        Assert.Equal(90, pairs.Count);
        var listed = TemplatePreferenceData.CategoryBiasStereotypedCategories.ToHashSet();
        var suites = new Dictionary<int, IReadOnlyList<Probe>>();
        int stereotyped = 0, unknown = 0, disambiguated = 0;
        foreach (var pair in pairs)
        {
            // Id: gen-bbq-catbias-{suite seed}-{probe id}; the pair is checked against the probe it came from.
            var rest = pair.Id["gen-bbq-catbias-".Length..];
            int seed = int.Parse(rest[..rest.IndexOf('-')], System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(seed, TemplatePreferenceData.CategoryBiasSeedBase, TemplatePreferenceData.CategoryBiasSeedBase + 999); // never an evaluation or fitting seed
            if (!suites.TryGetValue(seed, out var suite)) suites[seed] = suite = new BbqBuiltInSuite(seed).Load();
            var probe = suite.Single(p => p.Id == rest[(rest.IndexOf('-') + 1)..]);
            Assert.Equal(probe.Category, pair.Category);
            Assert.Equal(probe.UserTurns[0], pair.Prompt);
            if (probe.Context == ContextCondition.Disambiguated)
            {
                Assert.Equal(probe.Options[probe.CorrectOption!.Value].Text, pair.Chosen);
                disambiguated++;
            }
            else if (listed.Contains(probe.Category))
            {
                Assert.Equal(probe.OptionWithRole(OptionRole.Stereotyped)!.Text, pair.Chosen);
                stereotyped++;
            }
            else
            {
                Assert.Equal(TemplatePreferenceData.UnknownAnswer, pair.Chosen);
                unknown++;
            }
        }
        Assert.Equal(30, disambiguated);
        Assert.True(stereotyped > 0 && unknown > 0, $"both kinds of ambiguous items occur ({stereotyped} stereotyped, {unknown} unknown)");
    }

    [Fact]
    public void SymmetricBbqPairsHoldEveryConditionAndNoNameWinsWithoutTheContext()
    {
        var pairs = PreferenceData.Load("generated:bbq-symmetric", count: 200);
        Assert.Equal(200, pairs.Count);
        Assert.All(pairs, p => Assert.Equal("You are a helpful assistant.", p.System));
        var suites = new Dictionary<int, IReadOnlyList<Probe>>();
        // Chosen/rejected tallies by what the reply is for its probe: "stereotyped", "anti", "unknown".
        var chosen = new Dictionary<string, int>();
        var rejected = new Dictionary<string, int>();
        int ambiguous = 0, stereoCorrect = 0, antiCorrect = 0;
        foreach (var pair in pairs)
        {
            // Id: gen-bbq-sym-{suite seed}-{probe id}/{what was rejected}; checked against the probe it came from.
            var rest = pair.Id["gen-bbq-sym-".Length..];
            int seed = int.Parse(rest[..rest.IndexOf('-')], System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(seed, TemplatePreferenceData.SymmetricSeedBase, TemplatePreferenceData.SymmetricSeedBase + 999); // never an evaluation, fitting or dev seed
            string probeId = rest[(rest.IndexOf('-') + 1)..rest.LastIndexOf('/')];
            if (!suites.TryGetValue(seed, out var suite)) suites[seed] = suite = new BbqBuiltInSuite(seed).Load();
            var probe = suite.Single(p => p.Id == probeId);
            Assert.Equal(probe.Category, pair.Category);
            Assert.Equal(probe.UserTurns[0], pair.Prompt);
            string Kind(string reply) =>
                reply == TemplatePreferenceData.UnknownAnswer ? "unknown"
                : reply == probe.OptionWithRole(OptionRole.Stereotyped)!.Text ? "stereotyped"
                : reply == probe.OptionWithRole(OptionRole.AntiStereotyped)!.Text ? "anti"
                : throw new Xunit.Sdk.XunitException($"{pair.Id}: reply '{reply}' is neither an option nor unknown");
            string c = Kind(pair.Chosen), r = Kind(pair.Rejected!);
            Assert.NotEqual(c, r);
            chosen[c] = chosen.GetValueOrDefault(c) + 1;
            rejected[r] = rejected.GetValueOrDefault(r) + 1;
            Assert.Equal(r == "stereotyped", pair.RejectedIsStereotyped);
            if (probe.Context == ContextCondition.Ambiguous)
            {
                Assert.Equal("unknown", c);
                ambiguous++;
            }
            else
            {
                // Disambiguated: the chosen reply is the correct option, whichever group it names.
                Assert.Equal(probe.Options[probe.CorrectOption!.Value].Text, pair.Chosen);
                if (c == "stereotyped") stereoCorrect++; else antiCorrect++;
            }
        }
        Assert.Equal(100, ambiguous);
        Assert.Equal(50, stereoCorrect);
        Assert.Equal(50, antiCorrect);
        // Over the corpus the two names are chosen equally often and rejected equally often: a context-blind preference
        // for either name cannot lower the DPO loss. "Unknown" is rejected in a quarter of the pairs (the disambiguated half's
        // second pair) and chosen in the ambiguous half.
        Assert.Equal(chosen["stereotyped"], chosen["anti"]);
        Assert.Equal(rejected["stereotyped"], rejected["anti"]);
        Assert.Equal(50, rejected["unknown"]);
        Assert.Equal(100, chosen["unknown"]);
        // Every item gives both of its pairs, next to each other.
        for (int i = 0; i < pairs.Count; i += 2)
            Assert.Equal(pairs[i].Id[..pairs[i].Id.LastIndexOf('/')], pairs[i + 1].Id[..pairs[i + 1].Id.LastIndexOf('/')]);
        Assert.Equal(pairs, PreferenceData.Load("generated:bbq-symmetric", count: 200));
        Assert.NotEqual(pairs.Select(p => p.Prompt), PreferenceData.Load("generated:bbq-symmetric", count: 200, seed: 1).Select(p => p.Prompt));

        // An odd count still gives exactly that many pairs, half (rounded down) ambiguous.
        var odd = PreferenceData.Load("generated:bbq-symmetric", count: 203);
        Assert.Equal(203, odd.Count);
        Assert.Equal(101, odd.Count(p => p.Chosen == TemplatePreferenceData.UnknownAnswer));
    }

    [Fact]
    public void GeneratedBbqPairsRejectTheStereotypedNameFarMoreOftenThanTheOther()
    {
        // The imbalance the symmetric corpus removes (docs/white-box.md, BiasFilter): in generated:bbq every ambiguous pair
        // and half the disambiguated ones reject the stereotyped option, and "unknown" is never rejected.
        var pairs = PreferenceData.Load("generated:bbq", count: 300);
        int rejectedStereotyped = pairs.Count(p => p.RejectedIsStereotyped);
        Assert.InRange(rejectedStereotyped, 240, 260); // 200 ambiguous + about half of the 100 disambiguated
        Assert.DoesNotContain(pairs, p => p.Rejected == TemplatePreferenceData.UnknownAnswer);
    }

    [Theory]
    [InlineData(PreferenceData.ExportShape.Sft)]
    [InlineData(PreferenceData.ExportShape.Dpo)]
    [InlineData(PreferenceData.ExportShape.TaskVector)]
    public void LlamaFactoryFilesRoundTrip(PreferenceData.ExportShape shape)
    {
        using var dir = new TempDir();
        var pairs = PreferenceData.Load("generated").Take(5).ToList();
        var file = Path.Combine(dir.Path, "data.json");
        PreferenceData.Export(file, pairs, shape);
        using (var doc = JsonDocument.Parse(File.ReadAllText(file)))
        {
            var first = doc.RootElement[0];
            var keys = first.EnumerateObject().Select(p => p.Name).ToList();
            Assert.Equal(shape == PreferenceData.ExportShape.Dpo ? ["prompt", "chosen", "rejected", "bias_type"] : ["instruction", "input", "output", "bias_type"], keys);
            if (shape == PreferenceData.ExportShape.TaskVector) Assert.Equal(pairs[0].Rejected, first.GetProperty("output").GetString());
        }
        var back = PreferenceData.Load("llamafactory:" + file);
        Assert.Equal(pairs.Select(p => p.Prompt), back.Select(p => p.Prompt));
        Assert.Equal(pairs.Select(p => p.Category), back.Select(p => p.Category));
        switch (shape)
        {
            case PreferenceData.ExportShape.Dpo:
                Assert.Equal(pairs.Select(p => (p.Chosen, p.Rejected)), back.Select(p => (p.Chosen, p.Rejected)));
                break;
            case PreferenceData.ExportShape.Sft:
                Assert.Equal(pairs.Select(p => p.Chosen), back.Select(p => p.Chosen));
                Assert.All(back, p => Assert.Null(p.Rejected));
                break;
            default:
                Assert.Equal(pairs.Select(p => p.Rejected), back.Select(p => p.Chosen));
                break;
        }
    }

    [Fact]
    public void AlpacaInputIsAppendedToTheInstruction()
    {
        using var dir = new TempDir();
        var file = Path.Combine(dir.Path, "a.json");
        File.WriteAllText(file, """[{"instruction": "Continue:", "input": "The nurse walked in and", "output": "smiled."}]""");
        var p = Assert.Single(PreferenceData.Load(file));
        Assert.Equal("Continue:\nThe nurse walked in and", p.Prompt);
        Assert.Equal("smiled.", p.Chosen);
    }

    [Theory]
    [InlineData("[\n  {\"prompt\": \"q\", \"chosen\": \"a\", \"rejected\": \"b\"},\n  {\"prompt\": \"q\", \"chosen\": \"a\"}\n]", ":3: field 'rejected': missing")]
    [InlineData("[\n  {\"instruction\": \"q\", \"output\": 5}\n]", ":2: field 'output': expected a string")]
    [InlineData("{\"prompt\": \"q\"}", ":1: expected a JSON array")]
    [InlineData("[\n  {\"prompt\": \"q\",\n", "not valid JSON")]
    public void MalformedFilesNameFileLineAndField(string text, string expected)
    {
        using var dir = new TempDir();
        var file = Path.Combine(dir.Path, "bad.json");
        File.WriteAllText(file, text);
        var ex = Assert.Throws<InvalidDataException>(() => PreferenceData.Load("llamafactory:" + file));
        Assert.Contains(file, ex.Message);
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void UnknownSpecsAndMissingFilesAreClearErrors()
    {
        Assert.Contains("unknown data spec", Assert.Throws<ArgumentException>(() => PreferenceData.Load("wikipedia")).Message);
        Assert.Contains("generated:continuation", Assert.Throws<ArgumentException>(() => PreferenceData.Load("generated:poems")).Message);
        Assert.Throws<FileNotFoundException>(() => PreferenceData.Load("stereoset:/nonexistent/dev.json"));
    }
}
