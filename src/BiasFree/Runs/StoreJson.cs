using System.Text.Json.Serialization;

namespace BiasFree.Runs;

/// <summary>
/// Compile-time serialization metadata for the JSON columns of the run store: a row's <c>requests</c> (read back; the
/// writer is <see cref="RequestsJson"/>) and a cached reply's <c>details</c>. The text is what the reflection-based
/// serializer read and wrote before (the run record's settings for the requests, the default ones for the
/// details, which differ only in null properties, and a dictionary has none); <c>StoreJsonTests</c> compares the two. No
/// converter is built at run time, so the store's reads work in a Native AOT build too (docs/runs-and-reports.md,
/// "Twelfth round").
/// </summary>
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(List<RecordedRequest>))]
[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSerializable(typeof(IReadOnlyDictionary<string, string>))]
internal sealed partial class StoreJson : JsonSerializerContext;
