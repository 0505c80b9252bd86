using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using BiasFree.Runs;

namespace BiasFree.Tests.Runs;

/// <summary>
/// <see cref="RunSpec.ToJson"/> and <see cref="RunSpec.FromJson"/> run on source-generated metadata; a spec must be written
/// exactly as the reflection-based serializer (<see cref="StoreJsonOptions.Reflection"/>) wrote every run recorded so far, and read back
/// as the reflection-based reader reads it, also from an older store's text that lacks properties (the generated reader
/// alone would leave those at their types' defaults instead of their initialisers' values). Every settable property is
/// filled by reflection, so a property added later is compared too.
/// </summary>
public class RunSpecJsonTests
{
    [Fact]
    public void EveryPropertyWritesAndReadsAsWithTheReflectionSerializer()
    {
        var seed = 0;
        var full = (RunSpec)Fill(typeof(RunSpec), ref seed);
        var reflected = JsonSerializer.Serialize(full, StoreJsonOptions.Reflection);
        Assert.Equal(reflected, full.ToJson());
        // Each property of the graph is in the JSON with its own value (a property the generated metadata dropped, or
        // filled from the wrong member, would differ here or above).
        using (var document = JsonDocument.Parse(reflected))
        {
            var serialised = typeof(RunSpec).GetProperties(BindingFlags.Public | BindingFlags.Instance)
                .Where(p => p.GetCustomAttribute<System.Text.Json.Serialization.JsonIgnoreAttribute>() is null).Select(p => p.Name).Order(StringComparer.Ordinal);
            Assert.Equal(serialised, document.RootElement.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        }
        Assert.Equal(reflected, RunSpec.FromJson(reflected).ToJson());
        Assert.Equal(reflected, JsonSerializer.Serialize(JsonSerializer.Deserialize<RunSpec>(full.ToJson(), StoreJsonOptions.Reflection), StoreJsonOptions.Reflection));

        // The smallest spec (nulls left out, a temperature of null written as null) and one read from text a user's
        // older store holds: properties missing (their initialisers' values apply) and one this version does not know.
        var minimal = new RunSpec { RunId = "r", Suites = ["bbq"], Model = "m", Methods = ["baseline"], Created = DateTimeOffset.UnixEpoch, Generation = new(Temperature: null) };
        Assert.Equal(JsonSerializer.Serialize(minimal, StoreJsonOptions.Reflection), minimal.ToJson());
        Assert.Contains("\"Temperature\":null", minimal.ToJson(), StringComparison.Ordinal);
        const string old = """{"RunId":"old","Created":"2026-01-02T03:04:05+00:00","Suites":["jsonl:a.jsonl"],"Model":"m","Methods":["baseline","cot"],"Retired":1,"Generation":{"Temperature":0,"MaxTokens":64}}""";
        var read = RunSpec.FromJson(old);
        Assert.Equal(JsonSerializer.Serialize(JsonSerializer.Deserialize<RunSpec>(old, StoreJsonOptions.Reflection), StoreJsonOptions.Reflection), read.ToJson());
        Assert.Equal(64, read.Generation.MaxTokens);
        Assert.Equal(("all", "two", 3, 32), (read.Context, read.Options, read.JudgeVotes, read.Concurrency));
        Assert.Equal(["baseline", "cot"], read.Methods);
    }

    /// <summary>
    /// <see cref="RunSpec.FromJson"/> reads through source-generated metadata (what Native AOT needs) yet gives what the
    /// reflection-based reader gives for the text of any store: here for a fully set spec with each property, at every
    /// depth, left out in turn (an older store lacks what was added later; a required property's absence must still throw).
    /// </summary>
    [Fact]
    public void ASpecMissingAnyPropertyReadsAsTheReflectionReaderReadsIt()
    {
        var seed = 0;
        var full = JsonSerializer.SerializeToNode((RunSpec)Fill(typeof(RunSpec), ref seed), StoreJsonOptions.Reflection)!.AsObject();
        var paths = new List<string>();
        Paths(full, "", paths);
        Assert.True(paths.Count >= 86, $"only {paths.Count} property paths");
        var compared = 0;
        foreach (var path in paths)
        {
            var json = Without(full, path);
            var expected = Read(() => JsonSerializer.Deserialize<RunSpec>(json, StoreJsonOptions.Reflection)!);
            var actual = Read(() => RunSpec.FromJson(json));
            Assert.True(expected == actual, $"without {path}:\n reflection: {expected}\n FromJson:   {actual}");
            compared += expected.StartsWith('{') ? 1 : 0;
        }
        // Most removals leave a readable spec; the required properties' removals throw in both.
        Assert.True(compared >= paths.Count - 4, $"{paths.Count - compared} of {paths.Count} removals did not read");

        // The initialisers' values, which the generated reader alone would not give.
        var read = RunSpec.FromJson("""{"RunId":"r","Suites":["bbq"],"Model":"m","Methods":["baseline"]}""");
        Assert.Equal(("all", "two", "rule", 3, 32, 120.0, 3, (float?)0f, (int?)128), (read.Context, read.Options, read.Judge, read.JudgeVotes, read.Concurrency, read.TimeoutSeconds, read.Retries, read.Generation.Temperature, read.Generation.MaxTokens));
        Assert.InRange(read.Created, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddMinutes(1));
        Assert.Throws<InvalidDataException>(() => RunSpec.FromJson("null"));
        Assert.ThrowsAny<JsonException>(() => RunSpec.FromJson("[1]"));
        Assert.ThrowsAny<JsonException>(() => RunSpec.FromJson("""{"RunId":"r","Suites":["bbq"],"Model":"m"}"""));
        Assert.ThrowsAny<JsonException>(() => RunSpec.FromJson("""{"RunId":"r","Suites":["bbq"],"Model":"m","Methods":["a"],"JudgeVotes":"three"}"""));

        // What was read, written again with the reflection serializer; the creation time (an initialiser's "now" when the
        // text has none) is compared by being recent, or the exception's type when the text does not read.
        static string Read(Func<RunSpec> read)
        {
            try
            {
                var node = JsonSerializer.SerializeToNode(read(), StoreJsonOptions.Reflection)!.AsObject();
                if (Math.Abs((node["Created"]!.GetValue<DateTimeOffset>() - DateTimeOffset.UtcNow).TotalMinutes) < 1)
                {
                    node["Created"] = "now";
                }
                return node.ToJsonString();
            }
            catch (Exception ex) when (ex is JsonException or InvalidDataException)
            {
                return ex.GetType().Name;
            }
        }
    }

    /// <summary>The path of every property of <paramref name="node"/> and its objects, inside arrays too ("A.B", "A[0].C").</summary>
    private static void Paths(JsonNode? node, string prefix, List<string> paths)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (name, value) in o)
                {
                    var path = prefix.Length == 0 ? name : $"{prefix}.{name}";
                    paths.Add(path);
                    Paths(value, path, paths);
                }
                break;
            case JsonArray a:
                for (var i = 0; i < a.Count; i++)
                {
                    Paths(a[i], $"{prefix}[{i}]", paths);
                }
                break;
        }
    }

    /// <summary>The JSON of <paramref name="root"/> with the property at <paramref name="path"/> left out.</summary>
    private static string Without(JsonObject root, string path)
    {
        var copy = root.DeepClone().AsObject();
        JsonNode parent = copy;
        var steps = path.Replace("[", ".[", StringComparison.Ordinal).Split('.');
        foreach (var step in steps[..^1])
        {
            parent = step.StartsWith('[') ? parent[int.Parse(step[1..^1], System.Globalization.CultureInfo.InvariantCulture)]! : parent[step]!;
        }
        Assert.True(parent.AsObject().Remove(steps[^1]), path);
        return copy.ToJsonString();
    }

    private static object Fill(Type type, ref int seed) => SampleValues.Fill(type, ref seed);
}
