using BiasFree.Probes;
using BiasFree.Probes.BuiltIn;
using BiasFree.Probes.Loaders;

namespace BiasFree.Tests.Probes;

public class ProbeJsonlTests
{
    [Fact]
    public void BuiltInSuitesRoundTripExactly()
    {
        using var dir = new TempDir();
        foreach (var suite in new IProbeSuite[] { new BbqBuiltInSuite(0), new FairMTBuiltInSuite(0) })
        {
            var original = suite.Name == BbqBuiltInSuite.SuiteName ? ProbeTestSupport.BuiltInBbq : ProbeTestSupport.BuiltInFairMT;
            var path = System.IO.Path.Combine(dir.Path, suite.Name + ".jsonl");
            ProbeJsonl.Write(path, original);
            Assert.Equal(original.Count, File.ReadAllLines(path).Length);
            var loaded = ProbeJsonl.Load(path);
            ProbeTestSupport.AssertSameProbes(original, loaded);
            // And loading through the registry gives the same probes.
            ProbeTestSupport.AssertSameProbes(original, SuiteRegistry.Resolve("jsonl:" + path).Load());
        }
    }

    [Fact]
    public void LoadedSuitesRoundTripIncludingNullFieldsAndOddCharacters()
    {
        using var dir = new TempDir();
        var probes = new List<Probe>(StereoSetLoader.Load(ProbeTestSupport.Fixture("stereoset", "dev.json")))
        {
            new()
            {
                Id = "odd\"id\\1", Suite = "custom", Scenario = Scenario.MultipleChoice, Category = "religion",
                UserTurns = ["line1\nline2 \u00e9\u4e2d \"quoted\" </script>"],
                Options = [new("a", OptionRole.AntiStereotyped, "g"), new("b", OptionRole.Stereotyped, "h")],
                CorrectOption = 0, Polarity = QuestionPolarity.NonNegative,
            },
        };
        var path = System.IO.Path.Combine(dir.Path, "mixed.jsonl");
        ProbeJsonl.Write(path, probes);
        ProbeTestSupport.AssertSameProbes(probes, ProbeJsonl.Load(path));
        Assert.Null(ProbeJsonl.Load(path)[2].Context);
    }

    [Fact]
    public void SerializeUsesDocumentedFieldNames()
    {
        var p = ProbeTestSupport.BuiltInBbq[0];
        var line = ProbeJsonl.Serialize(p);
        Assert.StartsWith($"{{\"id\":\"{p.Id}\",\"suite\":\"bbq-builtin\",\"scenario\":\"multiple-choice\",\"category\":\"age\",\"user_turns\":[", line);
        Assert.Contains("\"role\":\"unknown\"", line);
        Assert.Contains("\"context\":\"ambiguous\",\"polarity\":\"negative\",\"correct_option\":2", line);
        Assert.DoesNotContain('\n', line);
    }
}
