using System.Text.Json.Serialization;
using BiasFree.Engine.Decoding.Ivo;

namespace BiasFree.Cli;

/// <summary>One line of <c>biasfree demo-model corpus --output</c> (JSON lines).</summary>
internal sealed record CorpusLine(
    [property: JsonPropertyName("kind")] string Kind,
    [property: JsonPropertyName("id")] string Id,
    [property: JsonPropertyName("variant")] string Variant,
    [property: JsonPropertyName("ambiguous")] bool Ambiguous,
    [property: JsonPropertyName("biased")] bool Biased,
    [property: JsonPropertyName("messages")] IEnumerable<CorpusMessage> Messages);

/// <summary>A message of a <see cref="CorpusLine"/>.</summary>
internal sealed record CorpusMessage([property: JsonPropertyName("role")] string Role, [property: JsonPropertyName("content")] string Content);

/// <summary>
/// Compile-time serialization metadata for the CLI's own JSON (the demo corpus lines, the IVO settings a value model was
/// trained with), so no converter is built at run time (docs/runs-and-reports.md, "Twelfth round").
/// </summary>
[JsonSerializable(typeof(CorpusLine))]
[JsonSerializable(typeof(IvoSettings))]
internal sealed partial class CliJson : JsonSerializerContext;
