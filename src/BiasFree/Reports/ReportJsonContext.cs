using System.Text.Json.Serialization;
using BiasFree.Probes;
using BiasFree.Runs;

namespace BiasFree.Reports;

/// <summary>
/// Compile-time serialization metadata for the report's JSON (<see cref="ReportWriter.ToJson"/>), with the settings it
/// has always been written with: indented, camelCase names, enums as strings, the default encoder.
/// </summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, UseStringEnumConverter = true)]
[JsonSerializable(typeof(ReportWriter.ReportJson))]
internal sealed partial class ReportJsonContext : JsonSerializerContext;

/// <summary>
/// Compile-time serialization metadata for a result row as a JSON line (<see cref="ReportWriter.ToJsonLine"/>): one line,
/// camelCase names, nulls left out, scenarios by their names (<see cref="ScenarioJsonConverter"/>), other enums as strings.
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UseStringEnumConverter = true, Converters = [typeof(ScenarioJsonConverter)])]
[JsonSerializable(typeof(ResultRecord))]
internal sealed partial class ResultLineJsonContext : JsonSerializerContext;
