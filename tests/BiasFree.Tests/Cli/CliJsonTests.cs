using System.Text.Json;
using System.Text.Json.Nodes;
using BiasFree.Cli;
using BiasFree.Cli.Commands;
using BiasFree.Engine.Decoding.Ivo;

namespace BiasFree.Tests.Cli;

/// <summary>
/// The CLI's own JSON through source-generated metadata: a demo-corpus line is written as the anonymous object it
/// replaced was, and the IVO settings a value model was trained with are read from its record as the reflection reader
/// read them, also from a record that lacks settings added since (their initialisers' values apply).
/// </summary>
public class CliJsonTests
{
    [Fact]
    public void ACorpusLineIsWrittenAsBefore()
    {
        const string hostile = "it's \"quoted\" </script> \u2028 é中 \U0001F600 \\";
        var messages = new[] { (Role: "user", Content: hostile), (Role: "assistant", Content: "") };
        var expected = JsonSerializer.Serialize(new
        {
            kind = "MultipleChoice", id = "mc-1", variant = hostile, ambiguous = true, biased = false,
            messages = messages.Select(m => new { role = m.Role, content = m.Content }),
        });
        var actual = JsonSerializer.Serialize(new CorpusLine("MultipleChoice", "mc-1", hostile, true, false, messages.Select(m => new CorpusMessage(m.Role, m.Content))),
            CliJson.Default.CorpusLine);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void TheTrainedGuideReadsAsWithTheReflectionReader()
    {
        var dir = Directory.CreateTempSubdirectory("biasfree-guide-");
        try
        {
            var full = JsonSerializer.SerializeToNode(new IvoSettings { Beta = 2.5, Candidates = 7, BlockTokens = 3, Beams = 5, BlocksPerBeam = 6 })!.AsObject();
            foreach (var name in full.Select(p => p.Key).Append(null).ToList())
            {
                var guide = full.DeepClone().AsObject();
                if (name is null) guide.Clear(); else guide.Remove(name);
                File.WriteAllText(Path.Combine(dir.FullName, ValueTrainer.RecordFile), new JsonObject { ["settings"] = new JsonObject { ["Guide"] = guide } }.ToJsonString());
                Assert.Equal(JsonSerializer.Serialize(JsonSerializer.Deserialize<IvoSettings>(guide.ToJsonString())), JsonSerializer.Serialize(ValueCommand.TrainedGuide(dir.FullName)));
            }
            File.WriteAllText(Path.Combine(dir.FullName, ValueTrainer.RecordFile), """{"settings":{}}""");
            Assert.Null(ValueCommand.TrainedGuide(dir.FullName));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
