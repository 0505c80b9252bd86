using System.Text.Json;
using BiasFree.Judges;
using BiasFree.Judges.Defences;

namespace BiasFree.Tests.Judges;

/// <summary>
/// The judges' JSON goes through source-generated metadata (no converter built at run time, as Native AOT needs): an
/// injection finding, a majority's votes and a moderation request must be written as the reflection-based serializer
/// wrote them with the same options, and a finding read back as it read it.
/// </summary>
public class JudgeJsonTests
{
    private const string Hostile = "it's \"quoted\" </script><b>&amp;</b> '); -- \u0000\u001f\t\r\n\u2028 é中 \U0001F600 \\";

    private static readonly JsonSerializerOptions CamelCase = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    [Fact]
    public void AnInjectionFindingIsWrittenAndReadAsBefore()
    {
        InjectionFinding[] findings =
        [
            new([], []),
            new([new InjectionSignal("role-play", Hostile), new InjectionSignal(InjectionFinding.SecondReadingFamily, "")], ["nfkc", Hostile]),
        ];
        foreach (var finding in findings)
        {
            var json = finding.ToJson();
            Assert.Equal(JsonSerializer.Serialize(finding, CamelCase), json);
            var read = InjectionFinding.FromJson(json)!;
            Assert.Equal(JsonSerializer.Serialize(JsonSerializer.Deserialize<InjectionFinding>(json, CamelCase), CamelCase), JsonSerializer.Serialize(read, CamelCase));
            Assert.Equal(finding.Signals, read.Signals);
            Assert.Equal(finding.Canonicalisation, read.Canonicalisation);
        }
        Assert.Null(InjectionFinding.FromJson("{not json"));
        Assert.Null(InjectionFinding.FromJson(" "));
        Assert.Equal(["x"], InjectionFinding.FromJson("""{"SIGNALS":[],"canonicalisation":["x"],"unknown":1}""")!.Canonicalisation);
    }

    [Fact]
    public void AMajoritysVotesAreWrittenAsBefore()
    {
        Verdict[] votes = [new(Label.Biased, Hostile, "judge-a", Hostile), new(Label.Unknown, "r", "judge-b"), new(Label.Unbiased, "", "judge-c", "")];
        var raw = MajorityJudge.Combine(votes, TieRule.Unbiased, "majority").RawOutput;
        var expected = JsonSerializer.Serialize(votes.Select(v => new { v.Judge, Label = v.Label.ToString(), v.Reason, Raw = v.RawOutput }).ToList(), CamelCase);
        Assert.Equal(expected, raw);
    }

    [Fact]
    public void AModerationRequestIsWrittenAsBefore()
    {
        foreach (var (model, input) in new[] { ("omni-moderation-latest", "hello"), (Hostile, Hostile), ("", "") })
        {
            Assert.Equal(JsonSerializer.Serialize(new { model, input }),
                JsonSerializer.Serialize(new ModerationJudge.ModerationRequest(model, input), ModerationJudge.ModerationJson.Default.ModerationRequest));
        }
    }
}
