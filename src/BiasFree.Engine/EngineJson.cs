using System.Text.Json.Serialization;
using BiasFree.Engine.Decoding.Ivo;
using BiasFree.Engine.DemoModel;
using BiasFree.Engine.Safetensors;
using BiasFree.Engine.Training;
using BiasFree.Engine.WhiteBox;

namespace BiasFree.Engine;

/// <summary>
/// Compile-time serialization metadata for the engine's JSON with the serializer's default settings: training records'
/// settings, the fingerprints that tie a checkpoint to its run (their bytes must not change: a resume compares them),
/// IVO's rollouts and rounds, a BiasFilter trace. No converter is built at run time, so a Native AOT build writes and
/// reads the same (docs/runs-and-reports.md, "Twelfth round"); <c>EngineJsonTests</c> compares each with the
/// reflection-based serializer.
/// </summary>
[JsonSerializable(typeof(ValueTrainingOptions))]
[JsonSerializable(typeof(List<ValueRound>))]
[JsonSerializable(typeof(List<Rollout>))]
[JsonSerializable(typeof(DemoCorpusOptions))]
[JsonSerializable(typeof(DiffPoTrainingOptions))]
[JsonSerializable(typeof(SafeRlhfOptions))]
[JsonSerializable(typeof(TrainingOptions))]
[JsonSerializable(typeof(BiasFilterTraceJson))]
[JsonSerializable(typeof(string))]
internal sealed partial class EngineJson : JsonSerializerContext;

/// <summary>A sharded checkpoint's index file (<c>model.safetensors.index.json</c>), indented as Hugging Face writes it.</summary>
[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(SafetensorsIndex))]
internal sealed partial class SafetensorsIndexJson : JsonSerializerContext;

/// <summary><see cref="FairSteerInfo"/> as <c>fairsteer.json</c>: indented, snake_case names, NaN and infinities as strings.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(FairSteerInfo))]
internal sealed partial class FairSteerInfoJson : JsonSerializerContext;
