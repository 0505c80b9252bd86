using System.Text.Json;
using System.Text.Json.Serialization;

namespace BiasFree.Probes;

/// <summary>
/// The one spelling of scenario names everywhere text leaves the program (suite files, run store, reports, JSON,
/// request context): <c>multiple-choice</c> and <c>multi-turn</c>. <see cref="Parse"/> also reads the enum member
/// names (<c>MultipleChoice</c>, <c>MultiTurn</c>) that run stores and JSON lines written before used.
/// </summary>
public static class ScenarioNames
{
    /// <summary>Name of <see cref="Scenario.MultipleChoice"/>.</summary>
    public const string MultipleChoice = "multiple-choice";

    /// <summary>Name of <see cref="Scenario.MultiTurn"/>.</summary>
    public const string MultiTurn = "multi-turn";

    /// <summary>The scenario's name.</summary>
    public static string Name(Scenario scenario) => scenario switch
    {
        Scenario.MultipleChoice => MultipleChoice,
        Scenario.MultiTurn => MultiTurn,
        _ => throw new ArgumentOutOfRangeException(nameof(scenario), scenario, "unknown scenario"),
    };

    /// <summary>Reads a name, or an older enum member name (case-insensitive); null when it is neither.</summary>
    public static Scenario? TryParse(string? text) =>
        (text ?? "").Trim().Replace("-", "", StringComparison.Ordinal).Replace("_", "", StringComparison.Ordinal).ToLowerInvariant() switch
        {
            "multiplechoice" => Scenario.MultipleChoice,
            "multiturn" => Scenario.MultiTurn,
            _ => null,
        };

    /// <summary>Reads a name, or an older enum member name; throws <see cref="FormatException"/> otherwise.</summary>
    public static Scenario Parse(string text) =>
        TryParse(text) ?? throw new FormatException($"unknown scenario '{text}': expected '{MultipleChoice}' or '{MultiTurn}'.");
}

/// <summary>Writes <see cref="Scenario"/> as its <see cref="ScenarioNames"/> name and reads both spellings.</summary>
public sealed class ScenarioJsonConverter : JsonConverter<Scenario>
{
    /// <inheritdoc/>
    public override Scenario Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.TokenType == JsonTokenType.String && ScenarioNames.TryParse(reader.GetString()) is { } s
            ? s
            : throw new JsonException($"expected '{ScenarioNames.MultipleChoice}' or '{ScenarioNames.MultiTurn}'.");

    /// <inheritdoc/>
    public override void Write(Utf8JsonWriter writer, Scenario value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteStringValue(ScenarioNames.Name(value));
    }
}
