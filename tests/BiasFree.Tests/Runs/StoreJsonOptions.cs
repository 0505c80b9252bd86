using System.Text.Json;
using System.Text.Json.Serialization;

namespace BiasFree.Tests.Runs;

/// <summary>
/// The reflection-based serializer's settings the run store wrote its run records and result rows with (compact, null
/// properties left out), before its JSON moved to source-generated metadata (RunSpecJson, StoreJson, RequestsJson): the
/// reference those tests compare the store's JSON with, so that every store written so far still reads and compares.
/// </summary>
internal static class StoreJsonOptions
{
    public static readonly JsonSerializerOptions Reflection = new()
    {
        WriteIndented = false,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}
