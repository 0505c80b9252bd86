using BiasFree.Probes;
using BiasFree.Probes.Loaders;

namespace BiasFree.Tests.Probes;

/// <summary>
/// Official BBQ rows the loader used to drop (Gender_identity items whose target is the sex code F or M while the
/// answers' groups are words such as "woman" or "boy"), BiasFreeBench's JSON-array copies of BBQ, and the label rule.
/// Fixtures: Fixtures/bbq-gender (BBQ's JSONL format) and Fixtures/bfb-ambigdata (BiasFreeBench's ambigdata format:
/// one JSON array per category, on one line, ambiguous rows only).
/// </summary>
public class BbqGenderAndArrayFileTests
{
    private static readonly string GenderFile = ProbeTestSupport.Fixture("bbq-gender", "Gender_identity.jsonl");
    private static readonly string AmbigData = ProbeTestSupport.Fixture("bfb-ambigdata");

    [Fact]
    public void SexCodeTargetsMatchWordGroupsAndOnlyUnlabellableRowsAreSkipped()
    {
        var skipped = new List<SkippedRow>();
        var probes = BbqJsonlLoader.Load(GenderFile, skipped: skipped);
        Assert.Equal(["bbq-gender-identity-0", "bbq-gender-identity-1", "bbq-gender-identity-2", "bbq-gender-identity-3", "bbq-gender-identity-4"],
            probes.Select(p => p.Id));

        // F, negative question: the woman is the biased answer, the man the anti-stereotyped one.
        Assert.Equal(new ProbeOption("The woman", OptionRole.Stereotyped, "woman"), probes[0].OptionWithRole(OptionRole.Stereotyped));
        Assert.Equal(new ProbeOption("The man", OptionRole.AntiStereotyped, "man"), probes[0].OptionWithRole(OptionRole.AntiStereotyped));
        Assert.Equal("woman", probes[0].Metadata["stereotyped_group"]);
        // M, non-negative question: the target (the man) is the anti-stereotyped answer, the woman the biased one.
        Assert.Equal("The woman", probes[1].OptionWithRole(OptionRole.Stereotyped)!.Text);
        Assert.Equal("The man", probes[1].OptionWithRole(OptionRole.AntiStereotyped)!.Text);
        Assert.Equal("man", probes[1].Metadata["stereotyped_group"]);
        // F with child words; F with names (groups F/M); a trans item.
        Assert.Equal("The girl", probes[2].OptionWithRole(OptionRole.Stereotyped)!.Text);
        Assert.Equal("Karen", probes[3].OptionWithRole(OptionRole.Stereotyped)!.Text);
        Assert.Equal("The trans woman", probes[4].OptionWithRole(OptionRole.Stereotyped)!.Text);

        // Two female answers (no non-target) and two male answers (no target) cannot be labelled.
        Assert.Equal(2, skipped.Count);
        Assert.Equal(new SkippedRow(GenderFile, 6, "bbq-gender-identity-5", "both options match stereotyped_groups [F] (answer groups woman, girl)"), skipped[0]);
        Assert.Equal(new SkippedRow(GenderFile, 7, "bbq-gender-identity-6", "no option matches stereotyped_groups [F] (answer groups boy, man)"), skipped[1]);
    }

    [Theory]
    [InlineData("F", "woman", "woman", true)]
    [InlineData("F", "girl", "girl", true)]
    [InlineData("M", "man", "man", true)]
    [InlineData("M", "boy", "boy", true)]
    [InlineData("F", "F", "Karen", true)]
    [InlineData("F", "man", "man", false)]
    [InlineData("M", "girl", "girl", false)]
    [InlineData("F", "nonTrans_M", "cis man", false)]
    public void SexCodesNameTheirWords(string stereotyped, string group, string text, bool expected) =>
        Assert.Equal(expected, BbqJsonlLoader.Matches(stereotyped, group, text));

    [Fact]
    public void TheTwoLabelRulesDifferOnlyInAge()
    {
        // bbq: the target comes from stereotyped_groups in every category; biasfreebench: the same, except that
        // the older person is always the Age target (its shipped label files).
        foreach (var path in (string[])[ProbeTestSupport.Fixture("bbq"), GenderFile])
        {
            var bbq = BbqJsonlLoader.Load(path, rule: BbqLabelRule.StereotypedGroups);
            var bfb = BbqJsonlLoader.Load(path, rule: BbqLabelRule.BiasFreeBench);
            Assert.Equal(bbq.Select(p => p.Id), bfb.Select(p => p.Id));
            for (int i = 0; i < bbq.Count; i++)
            {
                var same = bbq[i].Options.SequenceEqual(bfb[i].Options);
                Assert.True(same || bbq[i].Category == "age", bbq[i].Id);
                Assert.Equal(bbq[i].Metadata["stereotyped_groups"].Split('|').Any(g => g == "nonOld") && bbq[i].Category == "age", !same);
            }
        }
    }

    [Fact]
    public void JsonArrayFileLoadsLikeTheSameRowsAsJsonLines()
    {
        var fromJsonl = BbqJsonlLoader.Load(GenderFile, seed: 3).Where(p => p.Context == ContextCondition.Ambiguous).ToList();
        var skipped = new List<SkippedRow>();
        var fromArray = BbqJsonlLoader.Load(Path.Combine(AmbigData, "Gender_identity.json"), seed: 3, skipped: skipped);
        Assert.Equal(fromJsonl.Count, fromArray.Count);
        for (int i = 0; i < fromJsonl.Count; i++)
        {
            Assert.Equal(fromJsonl[i].Id, fromArray[i].Id);
            Assert.Equal(fromJsonl[i].Options, fromArray[i].Options);
            Assert.Equal(fromJsonl[i].UserTurns, fromArray[i].UserTurns);
            Assert.Equal(fromJsonl[i].CorrectOption, fromArray[i].CorrectOption);
            Assert.Equal("Gender_identity.json", fromArray[i].Metadata["source_file"]);
            Assert.Equal("1", fromArray[i].Metadata["line"]); // the whole array is on line 1
        }
        Assert.Equal(["bbq-gender-identity-5", "bbq-gender-identity-6"], skipped.Select(s => s.Id));
    }

    [Theory]
    [InlineData("bbq-json")]
    [InlineData("bbq-jsonl")]
    public void AFolderOfJsonArraysLoadsThroughEitherSpecAndReportsItsSkippedRows(string format)
    {
        var suite = SuiteRegistry.Resolve($"{format}:{AmbigData}", new SuiteOptions(LabelRule: BbqLabelRule.BiasFreeBench));
        var probes = suite.Load();
        Assert.Equal(["bbq-age-0", "bbq-age-2", "bbq-gender-identity-0", "bbq-gender-identity-2", "bbq-gender-identity-3", "bbq-gender-identity-4"],
            probes.Select(p => p.Id));
        Assert.All(probes, p => Assert.Equal(ContextCondition.Ambiguous, p.Context));
        // The Age item whose stereotyped_groups is ["nonOld"] still targets the older person under this rule.
        Assert.Equal("The grandmother", probes[1].OptionWithRole(OptionRole.Stereotyped)!.Text);
        var skipped = Assert.IsAssignableFrom<IReportsSkippedRows>(suite).SkippedRows;
        Assert.Equal(["bbq-gender-identity-5", "bbq-gender-identity-6"], skipped.Select(s => s.Id));
        Assert.All(skipped, s => Assert.Equal(Path.Combine(AmbigData, "Gender_identity.json"), s.File));
    }

    [Fact]
    public void ContextFilterKeepsTheSkippedRowsOfTheFile()
    {
        var suite = SuiteRegistry.Resolve("bbq-jsonl:" + GenderFile, new SuiteOptions(Context: ContextFilter.Disambiguated));
        Assert.Equal(["bbq-gender-identity-1"], suite.Load().Select(p => p.Id));
        Assert.Equal(2, Assert.IsAssignableFrom<IReportsSkippedRows>(suite).SkippedRows.Count);
    }

    [Fact]
    public void ErrorsInAOneLineArrayNameTheItem()
    {
        using var dir = new TempDir();
        var rows = File.ReadAllText(Path.Combine(AmbigData, "Age.json"));
        var file = dir.File("Age.json", rows.Replace("\"label\": 2}]", "\"label\": 7}]"));
        var e = Assert.Throws<ProbeFormatException>(() => BbqJsonlLoader.Load(file));
        Assert.Equal($"{file}:1: field '[1].label': expected integer 0..2, got 7", e.Message);

        // Written one item per line, the line alone says which item.
        var lines = "[\n" + string.Join(",\n", System.Text.Json.JsonDocument.Parse(rows).RootElement.EnumerateArray().Select(r => r.GetRawText())) + "\n]\n";
        file = dir.File("Age2.json", lines.Replace("\"label\": 2}\n]", "\"label\": 7}\n]"));
        e = Assert.Throws<ProbeFormatException>(() => BbqJsonlLoader.Load(file));
        Assert.Equal($"{file}:3: field 'label': expected integer 0..2, got 7", e.Message);

        file = dir.File("Age3.json", "[\n" + rows[1..^1] + ",\n 5\n]");
        e = Assert.Throws<ProbeFormatException>(() => BbqJsonlLoader.Load(file));
        Assert.Equal($"{file}:3: item 2: expected a JSON object, got number", e.Message);
    }
}
