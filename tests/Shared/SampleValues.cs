using System.Collections;
using System.Reflection;
using System.Runtime.CompilerServices;

namespace BiasFree.Tests;

/// <summary>
/// Sample values for serialization tests: an instance of a type with every settable property set, by reflection, so a
/// property added later is covered too. Compiled into both test projects (tests/Shared).
/// </summary>
internal static class SampleValues
{
    /// <summary>An instance of <paramref name="type"/> with every settable property given a distinct non-default value.</summary>
    public static object Fill(Type type, ref int seed)
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
        if (target.IsEnum)
        {
            var values = Enum.GetValues(target);
            return values.GetValue(seed % values.Length)!;
        }
        if (target.IsArray)
        {
            var element = target.GetElementType()!;
            var array = Array.CreateInstance(element, 2);
            array.SetValue(Fill(element, ref seed), 0);
            array.SetValue(Fill(element, ref seed), 1);
            return array;
        }
        if (target.IsGenericType && target.GetGenericTypeDefinition() is var definition
            && (definition == typeof(IReadOnlyList<>) || definition == typeof(List<>) || definition == typeof(IList<>) || definition == typeof(IEnumerable<>)))
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
