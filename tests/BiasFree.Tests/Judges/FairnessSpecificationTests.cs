using BiasFree.Judges;
using BiasFree.Tests.Infrastructure;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Judges;

public class FairnessSpecificationTests
{
    [Fact]
    public void ShippedSpecificationLoadsWithEveryPart()
    {
        var spec = FairnessSpecification.Default;
        Assert.Equal("biasfree-fairness", spec.Id);
        Assert.Equal("1", spec.Version);
        Assert.Equal("biasfree-fairness@1", spec.Tag);
        Assert.Equal(9, spec.BiasTypes.Count);
        Assert.Equal(7, spec.Standards.Count);
        Assert.Equal(6, spec.SentenceTypes.Count);
        Assert.Equal(4, spec.Steps.Count);
        var guard = Assert.Single(spec.Standards, s => s.Id == "over-protection");
        Assert.StartsWith("Beware of over-protective judgments", guard.Question, StringComparison.Ordinal);
        Assert.Contains(spec.SentenceTypes, t => t.Id == "denial");
        var text = spec.Render();
        Assert.Contains("Fairness specification biasfree-fairness@1", text, StringComparison.Ordinal);
        Assert.Contains("J7. Beware of over-protective judgments", text, StringComparison.Ordinal);
        // The printed JSON is the same specification.
        Assert.Equal(spec.Render(), FairnessSpecification.Parse(FairnessSpecification.DefaultJson, "x").Render());
    }

    [Fact]
    public void AnotherVersionLoadsFromAFileAndNamesTheJudge()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "spec.json");
        File.WriteAllText(path, FairnessSpecification.DefaultJson.Replace("\"version\": \"1\"", "\"version\": \"2-draft\"", StringComparison.Ordinal)
            .Replace("Beware of over-protective judgments", "Do not over-protect", StringComparison.Ordinal));
        var spec = FairnessSpecification.Load(path);
        Assert.Equal("2-draft", spec.Version);
        Assert.Contains("Do not over-protect", spec.Render(), StringComparison.Ordinal);
        using var client = new ScriptedChatClient("unused");
        var judge = new BiasGuardJudge(client, spec);
        Assert.EndsWith("#biasfree-fairness@2-draft", judge.Name, StringComparison.Ordinal);
        Assert.EndsWith("#biasfree-fairness@1", new BiasGuardJudge(client).Name, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingVersionIsAnErrorWithFileAndField()
    {
        var json = FairnessSpecification.DefaultJson.Replace("\"version\": \"1\",", "", StringComparison.Ordinal);
        var ex = Assert.Throws<FormatException>(() => FairnessSpecification.Parse(json, "my-spec.json"));
        Assert.Equal("my-spec.json:1: field 'version': missing or empty", ex.Message);
    }

    [Fact]
    public void EmptyFieldOfAnEntryNamesItsLine()
    {
        var json = "{\n \"id\": \"x\",\n \"version\": \"1\",\n \"steps\": [\"a\"],\n \"biasTypes\": [\n  {\"id\": \"age\", \"name\": \"Age\", \"definition\": \"d\"},\n  {\"id\": \"race\", \"name\": \"\", \"definition\": \"d\"}\n ],\n" +
                   " \"standards\": [{\"id\": \"s\", \"question\": \"q\", \"biased\": \"b\", \"unbiased\": \"u\"}],\n \"sentenceTypes\": [{\"id\": \"t\", \"name\": \"n\", \"guidance\": \"g\"}]\n}";
        var ex = Assert.Throws<FormatException>(() => FairnessSpecification.Parse(json, "s.json"));
        Assert.Equal("s.json:7: field 'biasTypes[1].name': missing or empty", ex.Message);
    }

    [Fact]
    public void DuplicateIdsUnknownFieldsAndBadJsonAreErrors()
    {
        var dup = FairnessSpecification.DefaultJson.Replace("\"id\": \"evidence\"", "\"id\": \"stereotype\"", StringComparison.Ordinal);
        Assert.Contains("field 'standards': id 'stereotype' appears twice", Assert.Throws<FormatException>(() => FairnessSpecification.Parse(dup, "d.json")).Message, StringComparison.Ordinal);

        var unknown = FairnessSpecification.DefaultJson.Replace("\"version\": \"1\",", "\"version\": \"1\", \"verison\": \"2\",", StringComparison.Ordinal);
        Assert.StartsWith("u.json:", Assert.Throws<FormatException>(() => FairnessSpecification.Parse(unknown, "u.json")).Message, StringComparison.Ordinal);

        var broken = "{\n \"id\": \"x\",\n \"version\": 1\n}";
        Assert.StartsWith("b.json:3: field 'version':", Assert.Throws<FormatException>(() => FairnessSpecification.Parse(broken, "b.json")).Message, StringComparison.Ordinal);
    }
}
