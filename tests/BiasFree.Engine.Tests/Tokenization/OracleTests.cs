using System.Collections.Concurrent;
using System.Text.Json;
using BiasFree.Engine.Tokenization;

namespace BiasFree.Engine.Tests.Tokenization;

/// <summary>Our ids and decodings equal HF tokenizers' (expected.json, made by tools/oracle/make-expected.mjs).</summary>
public sealed class OracleTests
{
    private static readonly ConcurrentDictionary<string, HfTokenizer> s_tokenizers = new();

    private static HfTokenizer Load(string fixture) => s_tokenizers.GetOrAdd(fixture, f => HfTokenizer.FromFolder(Fixtures.Path_(f)));

    public static TheoryData<string, int> Cases()
    {
        var data = new TheoryData<string, int>();
        foreach (var f in Fixtures.ReadJson("expected.json").GetProperty("fixtures").EnumerateObject())
        {
            int n = f.Value.GetProperty("cases").GetArrayLength();
            for (int i = 0; i < n; i++) data.Add(f.Name, i);
        }
        return data;
    }

    private static JsonElement Case(string fixture, int index) =>
        Fixtures.ReadJson("expected.json").GetProperty("fixtures").GetProperty(fixture).GetProperty("cases")[index];

    private static int[] Ids(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    [Theory]
    [MemberData(nameof(Cases))]
    public void Encode_MatchesHf(string fixture, int index)
    {
        var c = Case(fixture, index);
        var tok = Load(fixture);
        string text = c.GetProperty("text").GetString()!;
        Assert.Equal(Ids(c.GetProperty("ids")), tok.Encode(text).ToArray());
        Assert.Equal(Ids(c.GetProperty("ids_no_special")), tok.Encode(text, addSpecialTokens: false).ToArray());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decode_MatchesHf(string fixture, int index)
    {
        var c = Case(fixture, index);
        var tok = Load(fixture);
        var ids = Ids(c.GetProperty("ids"));
        Assert.Equal(c.GetProperty("decoded").GetString(), tok.Decode(ids));
        Assert.Equal(c.GetProperty("decoded_with_special").GetString(), tok.Decode(ids, skipSpecialTokens: false));
    }

    [Fact]
    public void VocabSizes_MatchHf()
    {
        foreach (var f in Fixtures.ReadJson("expected.json").GetProperty("fixtures").EnumerateObject())
        {
            Assert.Equal(f.Value.GetProperty("vocab_size").GetInt32(), Load(f.Name).VocabSize);
        }
    }
}
