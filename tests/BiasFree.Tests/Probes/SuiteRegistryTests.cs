using BiasFree.Probes;
using BiasFree.Probes.BuiltIn;

namespace BiasFree.Tests.Probes;

public class SuiteRegistryTests
{
    [Fact]
    public void BuiltInsAreBbqAndFairMTWithTheSeed()
    {
        var suites = SuiteRegistry.BuiltIns(4);
        Assert.Equal([BbqBuiltInSuite.SuiteName, FairMTBuiltInSuite.SuiteName], suites.Select(s => s.Name));
        Assert.All(suites, s => Assert.False(string.IsNullOrWhiteSpace(s.Description)));
        Assert.Equal(4, Assert.IsType<BbqBuiltInSuite>(suites[0]).Seed);
        Assert.Equal(4, Assert.IsType<FairMTBuiltInSuite>(suites[1]).Seed);
    }

    [Fact]
    public void ResolvesBuiltInNames()
    {
        Assert.Equal(7, Assert.IsType<BbqBuiltInSuite>(SuiteRegistry.Resolve("bbq", 7)).Seed);
        Assert.IsType<FairMTBuiltInSuite>(SuiteRegistry.Resolve("fairmt"));
    }

    [Theory]
    [InlineData("bbq-jsonl", "bbq", 4, "bbq-jsonl")]
    [InlineData("fairmt", "fairmt", 4, "fairmt")]
    [InlineData("stereoset", "stereoset/dev.json", 2, "stereoset")]
    [InlineData("crows-pairs", "crows/crows_pairs.csv", 5, "crows-pairs")]
    public void ResolvesFileFormats(string format, string fixture, int count, string name)
    {
        var suite = SuiteRegistry.Resolve($"{format}:{ProbeTestSupport.Fixture(fixture.Split('/'))}");
        Assert.Equal(name, suite.Name);
        var probes = suite.Load();
        Assert.Equal(count, probes.Count);
        Assert.Equal(probes.Count, probes.Select(p => p.Id).Distinct().Count());
    }

    [Theory]
    [InlineData("bbbq")]
    [InlineData("csv:/tmp/x.csv")]
    [InlineData("jsonl:")]
    [InlineData("")]
    public void UnknownSpecListsValidOnes(string spec)
    {
        var e = Assert.Throws<ArgumentException>(() => SuiteRegistry.Resolve(spec));
        Assert.Contains($"unknown suite '{spec}'", e.Message);
        foreach (var valid in new[] { "bbq", "fairmt", "bbq-jsonl:PATH", "fairmt:PATH", "jsonl:PATH", "stereoset:PATH", "crows-pairs:PATH" })
            Assert.Contains(valid, e.Message);
    }

    [Fact]
    public void MissingFileIsReportedOnLoad()
    {
        var suite = SuiteRegistry.Resolve("jsonl:/nonexistent/suite.jsonl");
        Assert.Equal("suite", suite.Name);
        Assert.Throws<FileNotFoundException>(() => suite.Load());
    }
}
