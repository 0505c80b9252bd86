using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace BiasFree;

/// <summary>
/// Reads JSON into a type with <c>init</c> properties through source-generated metadata as the reflection-based reader
/// does. The generated reader gives a property the text lacks its type's default (null, 0), where the reflection-based
/// reader, which constructs the object first, keeps the property's initialiser's value; and files written by an older
/// version lack the properties added since. So each top-level property the text lacks is first taken from
/// <c>initial</c>, an instance constructed now, except the required ones, whose absence throws as before. Nested
/// objects must be positional records (their readers use the parameters' defaults either way). Compiled into each project
/// that reads such files (src/Shared); its tests leave out every property path of a full instance in turn
/// (<c>RunSpecJsonTests</c>, <c>EngineJsonTests</c>).
/// </summary>
internal static class InitialisedJson
{
    /// <summary>The object <paramref name="json"/> holds, missing top-level properties taken from <paramref name="initial"/>.</summary>
    public static T? Read<T>(string json, JsonTypeInfo<T> info, T initial)
    {
        ArgumentNullException.ThrowIfNull(json);
        ArgumentNullException.ThrowIfNull(info);
        List<string>? missing = null;
        using (var document = JsonDocument.Parse(json))
        {
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                foreach (var property in info.Properties)
                {
                    if (!property.IsRequired && property.Get is not null && property.Set is not null && !document.RootElement.TryGetProperty(property.Name, out _))
                    {
                        (missing ??= []).Add(property.Name);
                    }
                }
            }
            if (missing is not null)
            {
                // The text's own properties as they are (in order, duplicates too), then the missing ones' initial values.
                var values = JsonSerializer.SerializeToElement(initial, info);
                var buffer = new ArrayBufferWriter<byte>(json.Length + 256);
                using (var writer = new Utf8JsonWriter(buffer))
                {
                    writer.WriteStartObject();
                    foreach (var property in document.RootElement.EnumerateObject())
                    {
                        property.WriteTo(writer);
                    }
                    foreach (var name in missing)
                    {
                        if (values.TryGetProperty(name, out var value))
                        {
                            writer.WritePropertyName(name);
                            value.WriteTo(writer);
                        }
                    }
                    writer.WriteEndObject();
                }
                return JsonSerializer.Deserialize(buffer.WrittenSpan, info);
            }
        }
        return JsonSerializer.Deserialize(json, info);
    }
}
