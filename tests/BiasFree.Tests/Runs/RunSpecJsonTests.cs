using System.Collections;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text.Json;
using BiasFree.Runs;

namespace BiasFree.Tests.Runs;

/// <summary>
/// <see cref="RunSpec.ToJson"/> runs on source-generated metadata; a spec must be written exactly as the reflection-based
/// serializer (<see cref="RunSpec.Json"/>) wrote every run recorded so far, and read back (<see cref="RunSpec.FromJson"/>)
/// to the same spec, also from an older store's text that lacks properties (the generated reader would leave those null
/// instead of their initialisers' values, which is why reads stay reflection-based). Every settable property is filled
/// by reflection, so a property added later is compared too.
/// </summary>
public class RunSpecJsonTests
{
    [Fact]
    public void EveryPropertyWritesAndReadsAsWithTheReflectionSerializer()
    {
        var seed = 0;
        var full = (RunSpec)Fill(typeof(RunSpec), ref seed);
        var reflected = JsonSerializer.Serialize(full, RunSpec.Json);
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
        Assert.Equal(reflected, JsonSerializer.Serialize(JsonSerializer.Deserialize<RunSpec>(full.ToJson(), RunSpec.Json), RunSpec.Json));

        // The smallest spec (nulls left out, a temperature of null written as null) and one read from text a user's
        // older store holds: properties missing (their initialisers' values apply) and one this version does not know.
        var minimal = new RunSpec { RunId = "r", Suites = ["bbq"], Model = "m", Methods = ["baseline"], Created = DateTimeOffset.UnixEpoch, Generation = new(Temperature: null) };
        Assert.Equal(JsonSerializer.Serialize(minimal, RunSpec.Json), minimal.ToJson());
        Assert.Contains("\"Temperature\":null", minimal.ToJson(), StringComparison.Ordinal);
        const string old = """{"RunId":"old","Created":"2026-01-02T03:04:05+00:00","Suites":["jsonl:a.jsonl"],"Model":"m","Methods":["baseline","cot"],"Retired":1,"Generation":{"Temperature":0,"MaxTokens":64}}""";
        var read = RunSpec.FromJson(old);
        Assert.Equal(JsonSerializer.Serialize(JsonSerializer.Deserialize<RunSpec>(old, RunSpec.Json), RunSpec.Json), read.ToJson());
        Assert.Equal(64, read.Generation.MaxTokens);
        Assert.Equal(("all", "two", 3, 32), (read.Context, read.Options, read.JudgeVotes, read.Concurrency));
        Assert.Equal(["baseline", "cot"], read.Methods);
    }

    /// <summary>An instance of <paramref name="type"/> with every settable property given a distinct non-default value.</summary>
    private static object Fill(Type type, ref int seed)
    {
        var target = Nullable.GetUnderlyingType(type) ?? type;
        seed++;
        if (target == typeof(string)) return $"value-{seed}";
        if (target == typeof(int)) return 1000 + seed;
        if (target == typeof(long)) return 2000L + seed;
        if (target == typeof(double)) return seed + 0.25;
        if (target == typeof(float)) return seed + 0.5f;
        if (target == typeof(bool)) return true;
        if (target == typeof(DateTimeOffset)) return new DateTimeOffset(2026, 12, 2, 3, 4, 5, TimeSpan.FromHours(1)).AddMinutes(seed);
        if (target.IsGenericType && target.GetGenericTypeDefinition() == typeof(IReadOnlyList<>))
        {
            var element = target.GetGenericArguments()[0];
            var list = (IList)Activator.CreateInstance(typeof(List<>).MakeGenericType(element))!;
            list.Add(Fill(element, ref seed));
            list.Add(Fill(element, ref seed));
            return list;
        }
        if (target.IsGenericType && target.GetGenericTypeDefinition() == typeof(IReadOnlyDictionary<,>))
        {
            var arguments = target.GetGenericArguments();
            var dictionary = (IDictionary)Activator.CreateInstance(typeof(Dictionary<,>).MakeGenericType(arguments))!;
            dictionary.Add(Fill(arguments[0], ref seed), Fill(arguments[1], ref seed));
            return dictionary;
        }
        Assert.True(target.IsClass && !target.IsAbstract, $"no sample value for {target}");
        var instance = RuntimeHelpers.GetUninitializedObject(target);
        foreach (var property in target.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.SetMethod is { IsPublic: true }))
        {
            property.SetValue(instance, Fill(property.PropertyType, ref seed));
        }
        return instance;
    }
}
