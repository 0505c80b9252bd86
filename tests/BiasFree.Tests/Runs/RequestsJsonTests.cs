using System.Text;
using System.Text.Json;
using BiasFree.Runs;

namespace BiasFree.Tests.Runs;

/// <summary>
/// The store's hand-written <c>requests</c> column (<see cref="RequestsJson"/>) against the serializer it replaced:
/// byte for byte the same JSON for every shape a result row's requests take, and a buffer reused between rows that
/// keeps nothing of the previous one.
/// </summary>
public class RequestsJsonTests
{
    private const string Hostile = "it's \"quoted\" </script><b>&amp;</b> '); DROP TABLE results; -- \u0000\u001f\t\r\n\u2028 é中 \U0001F600 \\";

    public static TheoryData<int> Cases() => [.. Enumerable.Range(0, Shapes().Count)];

    private static List<IReadOnlyList<RecordedRequest>> Shapes() =>
    [
        [],
        [new RecordedRequest([new RecordedMessage("user", "q")], "a", Cached: false)],
        [new RecordedRequest([new RecordedMessage("user", "q")], null, Cached: true)],
        [new RecordedRequest([], "", Cached: false, new Dictionary<string, string>())],
        [new RecordedRequest([new RecordedMessage("system", Hostile), new RecordedMessage("user", Hostile), new RecordedMessage("assistant", "")], Hostile, false,
            new Dictionary<string, string> { ["biasfree.gate"] = "1", [Hostile] = Hostile, ["k\u00e9"] = "" })],
        [.. Enumerable.Range(0, 5).Select(i => new RecordedRequest(
            [.. Enumerable.Range(0, i + 1).Select(j => new RecordedMessage(j % 2 == 0 ? "user" : "assistant", new string((char)('a' + j), 3000 * i)))],
            i % 2 == 0 ? $"reply {i}" : null, i % 3 == 0))],
    ];

    [Theory]
    [MemberData(nameof(Cases))]
    public void WritesWhatTheSerializerWrites(int shape)
    {
        var requests = Shapes()[shape];
        var json = new RequestsJson();
        Assert.Equal(JsonSerializer.Serialize(requests, StoreJsonOptions.Reflection), Encoding.UTF8.GetString(json.Write(requests).Utf8));
    }

    [Fact]
    public void TheReusedBufferHoldsOnlyTheLastRows()
    {
        var json = new RequestsJson();
        var shapes = Shapes();
        // Longest first, so that a shorter row written after it would show any bytes left over.
        foreach (var requests in shapes.OrderByDescending(r => JsonSerializer.Serialize(r, StoreJsonOptions.Reflection).Length).Concat(shapes))
        {
            var written = Encoding.UTF8.GetString(json.Write(requests).Utf8);
            Assert.Equal(JsonSerializer.Serialize(requests, StoreJsonOptions.Reflection), written);
            Assert.Equal(requests.Count, JsonSerializer.Deserialize<List<RecordedRequest>>(written, StoreJsonOptions.Reflection)!.Count);
        }
    }
}
