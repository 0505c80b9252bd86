using System.Text.Json;
using BiasFree.Runs;

namespace BiasFree.Tests.Runs;

/// <summary>
/// The store's JSON columns read and written through source-generated metadata (<see cref="StoreJson"/>) against the
/// reflection-based serializer calls they replaced: the same values read from every text the store holds or an older
/// version wrote (properties missing, null, reordered, unknown, hostile), the same text written for a reply's details,
/// and the same failures for text that does not read.
/// </summary>
public class StoreJsonTests
{
    private const string Hostile = "it's \"quoted\" </script><b>&amp;</b> '); DROP TABLE results; -- \u0000\u001f\t\r\n\u2028 é中 \U0001F600 \\";

    public static TheoryData<string> RequestTexts() =>
    [
        "[]",
        "null",
        """[{"Messages":[{"Role":"user","Text":"q"}],"Response":"a","Cached":false}]""",
        """[{"Messages":[],"Cached":true}]""",
        """[{"Cached":false,"Response":null,"Messages":[{"Text":"t","Role":"system"}],"Details":{"biasfree.gate":"1","k":""}}]""",
        """[{"Messages":[{"Role":"user","Text":"q","Extra":1}],"Response":"a","Cached":false,"Unknown":{"x":[1,2]}}]""",
        """[{"Messages":[{"Role":"user","Text":"q"}],"Response":"a"}]""",
        """[{"Messages":[{"Role":"user"}],"Response":"a","Cached":true}]""",
        """[{"Messages":[{"Role":"user","Text":"q"}],"Response":"a","Cached":"yes"}]""",
        """[{"Messages":[{"Role":"user","Text":"q"}],"Response":"a","Cached":false,"Details":{"k":null}}]""",
        """{"Messages":[]}""",
        JsonSerializer.Serialize(new List<RecordedRequest>
        {
            new([new RecordedMessage("system", Hostile), new RecordedMessage("user", Hostile)], Hostile, false, new Dictionary<string, string> { [Hostile] = Hostile }),
            new([new RecordedMessage("user", new string('x', 20_000))], null, true),
        }, StoreJsonOptions.Reflection),
    ];

    [Theory]
    [MemberData(nameof(RequestTexts))]
    public void RequestsReadAsTheReflectionReaderReadsThem(string text)
    {
        Assert.Equal(Outcome(() => JsonSerializer.Deserialize<List<RecordedRequest>>(text, StoreJsonOptions.Reflection)),
            Outcome(() => JsonSerializer.Deserialize(text, StoreJson.Default.ListRecordedRequest)));
    }

    public static TheoryData<string> DetailTexts() =>
    [
        "{}",
        "null",
        """{"biasfree.fairsteer.gate":"fired","biasfree.scores":"0.1,0.2"}""",
        """{"k":null}""",
        """{"k":1}""",
        """{"k":"a","k":"b"}""",
        "[]",
        JsonSerializer.Serialize(new Dictionary<string, string> { [Hostile] = Hostile, ["é"] = "" }),
    ];

    [Theory]
    [MemberData(nameof(DetailTexts))]
    public void DetailsReadAsTheReflectionReaderReadsThem(string text)
    {
        Assert.Equal(Outcome(() => JsonSerializer.Deserialize<Dictionary<string, string>>(text)),
            Outcome(() => JsonSerializer.Deserialize(text, StoreJson.Default.DictionaryStringString)));
    }

    [Fact]
    public void DetailsAreWrittenAsTheReflectionSerializerWroteThem()
    {
        IReadOnlyDictionary<string, string>[] cases =
        [
            new Dictionary<string, string>(),
            new Dictionary<string, string> { ["biasfree.gate"] = "1", ["b"] = "" },
            new Dictionary<string, string> { [Hostile] = Hostile, ["k\u00e9"] = "\u2028" },
            new Dictionary<string, string> { ["null"] = null! },
            new SortedDictionary<string, string> { ["z"] = "1", ["a"] = "2" },
        ];
        foreach (var details in cases)
        {
            Assert.Equal(JsonSerializer.Serialize(details), JsonSerializer.Serialize(details, StoreJson.Default.IReadOnlyDictionaryStringString));
        }
    }

    /// <summary>What a read gave, written with the reflection serializer, or the type of the exception it threw.</summary>
    private static string Outcome<T>(Func<T> read)
    {
        try
        {
            return JsonSerializer.Serialize(read(), StoreJsonOptions.Reflection);
        }
        catch (JsonException ex)
        {
            return ex.GetType().Name;
        }
    }
}
