using System.Text.Json;
using System.Text.Json.Nodes;
using BiasFree.Engine;
using BiasFree.Engine.Decoding.Ivo;
using BiasFree.Engine.DemoModel;
using BiasFree.Engine.Safetensors;
using BiasFree.Engine.Training;
using BiasFree.Engine.WhiteBox;
using BiasFree.Tests;

namespace BiasFree.Engine.Tests;

/// <summary>
/// The engine's JSON goes through source-generated metadata (no converter built at run time, as Native AOT needs). Several
/// texts are fingerprints a resume compares (the value model's, DiffPO's and the LoRA trainers' settings) or files other
/// tools read (fairsteer.json, a sharded index, training records), so each must be byte for byte what the
/// reflection-based serializer wrote with the same options, for settings with every property set (filled by reflection,
/// so a property added later is covered) and with the defaults; and what is read back must be what it read.
/// </summary>
public class EngineJsonTests
{
    private const string Hostile = "it's \"quoted\" </script><b>&amp;</b> '); -- \u0000\u001f\t\r\n\u2028 é中 \U0001F600 \\";

    [Fact]
    public void SettingsAndFingerprintTextsAreWhatTheReflectionSerializerWrote()
    {
        Same(new ValueTrainingOptions(), EngineJson.Default.ValueTrainingOptions);
        Same(Sample<ValueTrainingOptions>() with { Threads = null }, EngineJson.Default.ValueTrainingOptions);
        Same(new DemoCorpusOptions(), EngineJson.Default.DemoCorpusOptions);
        Same(Sample<DemoCorpusOptions>(), EngineJson.Default.DemoCorpusOptions);
        Same(Sample<DiffPoTrainingOptions>(), EngineJson.Default.DiffPoTrainingOptions);
        Same(new SafeRlhfOptions(), EngineJson.Default.SafeRlhfOptions);
        Same(Sample<SafeRlhfOptions>(), EngineJson.Default.SafeRlhfOptions);
        Same(new TrainingOptions(), EngineJson.Default.TrainingOptions);
        Same(Sample<TrainingOptions>() with { Threads = null }, EngineJson.Default.TrainingOptions);
        foreach (var name in new[] { "", "model.embed_tokens", Hostile })
        {
            Assert.Equal(JsonSerializer.Serialize(name), JsonSerializer.Serialize(name, EngineJson.Default.String));
        }

        static void Same<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> info)
        {
            Assert.Equal(JsonSerializer.Serialize(value), JsonSerializer.Serialize(value, info));
            Assert.Equal(JsonSerializer.SerializeToNode(value)!.ToJsonString(), JsonSerializer.SerializeToNode(value, info)!.ToJsonString());
        }
    }

    [Fact]
    public void IvoRolloutsAndRoundsAreWrittenAndReadAsBefore()
    {
        var rounds = new List<ValueRound> { Sample<ValueRound>(), Sample<ValueRound>() with { AmbiguousBiasFree = null, FitLoss = null } };
        var rollouts = new List<Rollout> { Sample<Rollout>(), Sample<Rollout>() with { Reply = [] } };
        Assert.Equal(JsonSerializer.Serialize(rounds), JsonSerializer.Serialize(rounds, EngineJson.Default.ListValueRound));
        Assert.Equal(JsonSerializer.Serialize(rollouts), JsonSerializer.Serialize(rollouts, EngineJson.Default.ListRollout));
        // A checkpoint's state is read back through a JsonNode, as LoadCheckpoint does.
        var state = new JsonObject { ["rounds"] = JsonSerializer.SerializeToNode(rounds, EngineJson.Default.ListValueRound), ["rollouts"] = JsonSerializer.SerializeToNode(rollouts, EngineJson.Default.ListRollout) };
        var parsed = JsonNode.Parse(state.ToJsonString())!;
        Assert.Equal(JsonSerializer.Serialize(parsed["rounds"].Deserialize<List<ValueRound>>()), JsonSerializer.Serialize(parsed["rounds"].Deserialize(EngineJson.Default.ListValueRound)));
        Assert.Equal(JsonSerializer.Serialize(parsed["rollouts"].Deserialize<List<Rollout>>()), JsonSerializer.Serialize(parsed["rollouts"].Deserialize(EngineJson.Default.ListRollout)));
    }

    [Fact]
    public void FairSteerInfoIsWrittenAndReadAsBefore()
    {
        var options = new JsonSerializerOptions
        {
            WriteIndented = true,
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        };
        var info = Sample<FairSteerInfo>();
        var json = JsonSerializer.Serialize(info, FairSteerInfoJson.Default.FairSteerInfo);
        Assert.Equal(JsonSerializer.Serialize(info, options), json);
        Assert.Equal(JsonSerializer.Serialize(JsonSerializer.Deserialize<FairSteerInfo>(json, options), options),
            JsonSerializer.Serialize(JsonSerializer.Deserialize(json, FairSteerInfoJson.Default.FairSteerInfo), options));
        // A validation accuracy of NaN (a probe fitted on one class) is written as the string "NaN" and read back as NaN.
        var withNaN = info with { Alpha = double.NaN, ProbeValidationAccuracy = [double.NaN, double.PositiveInfinity] };
        var nanJson = JsonSerializer.Serialize(withNaN, FairSteerInfoJson.Default.FairSteerInfo);
        Assert.Equal(JsonSerializer.Serialize(withNaN, options), nanJson);
        Assert.Contains("\"NaN\"", nanJson, StringComparison.Ordinal);
        Assert.True(double.IsNaN(JsonSerializer.Deserialize(nanJson, FairSteerInfoJson.Default.FairSteerInfo)!.Alpha));
        // An older file lacks the properties added since: with each one left out in turn, and with all, the file reads as
        // with the reflection reader (the initialisers' values), as FairSteerModel.Load reads it.
        var full = JsonNode.Parse(json)!.AsObject();
        foreach (var name in full.Select(p => p.Key).Append(null))
        {
            var older = full.DeepClone().AsObject();
            if (name is null) older.Clear(); else older.Remove(name);
            var text = older.ToJsonString();
            Assert.Equal(JsonSerializer.Serialize(JsonSerializer.Deserialize<FairSteerInfo>(text, options), options),
                JsonSerializer.Serialize(InitialisedJson.Read(text, FairSteerInfoJson.Default.FairSteerInfo, new FairSteerInfo()), options));
        }
        // Text that does not read throws a JsonException in both (the generated reader's message names the record, not
        // the property's type: a malformed fairsteer.json is reported with its line either way).
        var broken = json.Replace("\"hidden_size\": ", "\"hidden_size\": \"x\" ,\"x\": ", StringComparison.Ordinal);
        Assert.ThrowsAny<JsonException>(() => JsonSerializer.Deserialize<FairSteerInfo>(broken, options));
        Assert.ThrowsAny<JsonException>(() => InitialisedJson.Read(broken, FairSteerInfoJson.Default.FairSteerInfo, new FairSteerInfo()));
    }

    [Fact]
    public void ABiasFilterTraceAndAShardIndexAreWrittenAsTheAnonymousObjectsWere()
    {
        var trace = new BiasFilterTrace(
            [[new BiasFilterCandidate(-1, 0.123456, 4, false, true), new BiasFilterCandidate(0, -1.5, 8, true, false, -3.14159265)], []], 42, 7);
        var expected = JsonSerializer.Serialize(new
        {
            target_tokens = trace.TargetTokens,
            output_tokens = trace.OutputTokens,
            steps = trace.Steps.Select(s => s.Select(c => c.TargetLogLikelihood is { } ll
                ? (object)new { parent = c.Parent, score = Math.Round(c.Score, 4), tokens = c.Tokens, finished = c.Finished, kept = c.Kept, target_loglik = Math.Round(ll, 4) }
                : new { parent = c.Parent, score = Math.Round(c.Score, 4), tokens = c.Tokens, finished = c.Finished, kept = c.Kept })),
        });
        Assert.Equal(expected, trace.ToJson());

        var map = new SortedDictionary<string, string>(StringComparer.Ordinal) { ["lm_head.weight"] = "model-00002-of-00002.safetensors", [Hostile] = "a" };
        Assert.Equal(JsonSerializer.Serialize(new { metadata = new { total_size = 123456789012L }, weight_map = map }, new JsonSerializerOptions { WriteIndented = true }),
            JsonSerializer.Serialize(new SafetensorsIndex(new SafetensorsIndexMetadata(123456789012L), map), SafetensorsIndexJson.Default.SafetensorsIndex));
    }

    private static T Sample<T>()
    {
        var seed = typeof(T).Name.Length;
        return (T)SampleValues.Fill(typeof(T), ref seed);
    }
}
