using System.Text.Json.Nodes;
using BiasFree.Engine.Tokenization;

namespace BiasFree.Engine.Tests.Tokenization;

public sealed class HfTokenizerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bf-hftok-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly string[] s_texts =
    [
        "Hello world", "naïve café — déjà vu", "Emoji 😀🚀 👩🏽‍💻 end😀word", "Math 𝐀𝐁𝐂letters 𝟙𝟚", "  runs   of  spaces  ",
        "Tabs\tand\nnewlines\n\n\r\n", "CJK 日本語 한국어", "I'M HERE, AREN'T I? it's 12,345.67", "\n", " ", "x",
    ];

    [Theory]
    [InlineData("trained")]
    [InlineData("qwen2")]
    [InlineData("llama3")]
    [InlineData("gpt2")]
    public void ByteLevel_RoundTrips(string fixture)
    {
        var tok = HfTokenizer.FromFolder(Fixtures.Path_(fixture));
        Assert.Equal(HfTokenizerKind.ByteLevelBpe, tok.Kind);
        foreach (var text in s_texts)
        {
            Assert.Equal(text, tok.Decode(tok.Encode(text)));
            Assert.Equal(text, tok.Decode(tok.Encode(text, addSpecialTokens: false), skipSpecialTokens: false));
        }
    }

    [Theory]
    [InlineData("llama2")]
    [InlineData("mistral")]
    public void SentencePiece_RoundTripsAndFallsBackToBytes(string fixture)
    {
        var tok = HfTokenizer.FromFolder(Fixtures.Path_(fixture));
        Assert.Equal(HfTokenizerKind.SentencePieceBpe, tok.Kind);
        foreach (var text in s_texts.Where(t => !char.IsWhiteSpace(t[0])))
        {
            // (llama2's <s> is a normalized added token, which HF, and so we, never skip when decoding.)
            Assert.Equal(text, tok.Decode(tok.Encode(text, addSpecialTokens: false)));
        }
        var ids = tok.Encode("😀", addSpecialTokens: false);
        Assert.Equal(["<0xF0>", "<0x9F>", "<0x98>", "<0x80>"], ids.Skip(ids.Count - 4).Select(i => tok.IdToToken(i)));
    }

    [Fact]
    public void Specials_FromConfigsAndPostProcessor()
    {
        var qwen = HfTokenizer.FromFolder(Fixtures.Path_("qwen2"));
        int endoftext = qwen.TokenToId("<|endoftext|>")!.Value, imEnd = qwen.TokenToId("<|im_end|>")!.Value;
        Assert.Equal([imEnd, endoftext], qwen.EosIds);
        Assert.Equal(endoftext, qwen.PadId);
        // The template source is the fixture's chat_template verbatim (the ChatML one that Qwen2 ships).
        Assert.Equal(Fixtures.ReadJson("qwen2", "tokenizer_config.json").GetProperty("chat_template").GetString(), qwen.ChatTemplateSource);
        Assert.Contains("<|im_start|>", qwen.ChatTemplateSource, StringComparison.Ordinal);
        Assert.True(qwen.IsSpecial(imEnd));
        Assert.False(qwen.IsSpecial(qwen.TokenToId("<tool_call>")!.Value));
        Assert.Equal(qwen.Encode("hi", addSpecialTokens: false), qwen.Encode("hi"));

        var llama = HfTokenizer.FromFolder(Fixtures.Path_("llama3"));
        int bos = llama.TokenToId("<|begin_of_text|>")!.Value;
        Assert.Equal(bos, llama.BosId);
        Assert.Equal([llama.TokenToId("<|eot_id|>")!.Value, llama.TokenToId("<|end_of_text|>")!.Value], llama.EosIds);
        Assert.Equal(bos, llama.Encode("hi")[0]);
        Assert.Null(llama.PadId);

        var l2 = HfTokenizer.FromFolder(Fixtures.Path_("llama2"));
        Assert.Equal(1, l2.BosId);
        Assert.Equal([2], l2.EosIds);
        Assert.Equal(0, l2.UnkId);
        Assert.Null(l2.ChatTemplateSource);
    }

    [Fact]
    public void IgnoreMerges_UsesWholeWordToken()
    {
        var llama = HfTokenizer.FromFolder(Fixtures.Path_("llama3"));
        Assert.Equal([llama.TokenToId("hello")!.Value], llama.Encode("hello", addSpecialTokens: false));
        var gpt2 = HfTokenizer.FromFolder(Fixtures.Path_("gpt2"));
        Assert.True(gpt2.Encode("hello", addSpecialTokens: false).Count > 1);
    }

    [Fact]
    public void AddedTokens_LStripRStrip()
    {
        var json = JsonNode.Parse(File.ReadAllText(Fixtures.Path_("qwen2", "tokenizer.json")))!;
        var mask = json["added_tokens"]![3]!; // <tool_call>
        mask["lstrip"] = true;
        mask["rstrip"] = true;
        var path = Path.Combine(_dir, "tokenizer.json");
        File.WriteAllText(path, json.ToJsonString());
        var tok = HfTokenizer.FromFiles(path);
        int tc = tok.TokenToId("<tool_call>")!.Value;
        Assert.Equal(tok.Encode("a") .Concat([tc]).Concat(tok.Encode("b")), tok.Encode("a  <tool_call>  b"));
    }

    private string WriteVariant(Action<JsonNode> edit, string fixture = "qwen2")
    {
        var json = JsonNode.Parse(File.ReadAllText(Fixtures.Path_(fixture, "tokenizer.json")))!;
        edit(json);
        var path = Path.Combine(_dir, "tokenizer.json");
        File.WriteAllText(path, json.ToJsonString());
        return path;
    }

    [Fact]
    public void Unsupported_ModelType_NamesFileAndPath()
    {
        var path = WriteVariant(j => j["model"]!["type"] = "WordPiece");
        var ex = Assert.Throws<TokenizerFormatException>(() => HfTokenizer.FromFiles(path));
        Assert.Equal(path, ex.FilePath);
        Assert.Equal("$.model", ex.JsonPath);
        Assert.Contains("WordPiece", ex.Message);
        Assert.Contains("unsupported", ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void Unsupported_PreTokenizer_NamesPath()
    {
        var path = WriteVariant(j => j["pre_tokenizer"]!["pretokenizers"]![0] = new JsonObject { ["type"] = "BertPreTokenizer" });
        var ex = Assert.Throws<TokenizerFormatException>(() => HfTokenizer.FromFiles(path));
        Assert.Equal("$.pre_tokenizer.pretokenizers[0]", ex.JsonPath);
        Assert.Contains("BertPreTokenizer", ex.Message);
    }

    [Fact]
    public void BadRegex_NamesPath()
    {
        var path = WriteVariant(j => j["pre_tokenizer"]!["pretokenizers"]![0]!["pattern"]!["Regex"] = "(unclosed");
        var ex = Assert.Throws<TokenizerFormatException>(() => HfTokenizer.FromFiles(path));
        Assert.Equal("$.pre_tokenizer.pretokenizers[0].pattern.Regex", ex.JsonPath);
    }

    [Fact]
    public void Malformed_Merge_NamesPath()
    {
        var path = WriteVariant(j => j["model"]!["merges"]![5] = 42);
        var ex = Assert.Throws<TokenizerFormatException>(() => HfTokenizer.FromFiles(path));
        Assert.Equal("$.model.merges[5]", ex.JsonPath);
    }

    [Fact]
    public void Merge_WithUnknownToken_NamesPath()
    {
        var path = WriteVariant(j => j["model"]!["merges"]![3] = "▁zz qq", "llama2");
        var ex = Assert.Throws<TokenizerFormatException>(() => HfTokenizer.FromFiles(path));
        Assert.Equal("$.model.merges[3]", ex.JsonPath);
    }

    [Fact]
    public void Missing_Vocab_And_BadJson()
    {
        var path = WriteVariant(j => j["model"]!.AsObject().Remove("vocab"));
        Assert.Equal("$.model", Assert.Throws<TokenizerFormatException>(() => HfTokenizer.FromFiles(path)).JsonPath);
        File.WriteAllText(path, "{ \"model\": ");
        var ex = Assert.Throws<TokenizerFormatException>(() => HfTokenizer.FromFiles(path));
        Assert.Contains("not valid JSON", ex.Message);
        Assert.Throws<FileNotFoundException>(() => HfTokenizer.FromFolder(Path.Combine(_dir, "nope")));
    }

    [Theory]
    [InlineData("llama2")]
    [InlineData("llama3")]
    public void Encode_IsThreadSafe(string fixture)
    {
        var tok = HfTokenizer.FromFolder(Fixtures.Path_(fixture));
        var expected = s_texts.Select(t => tok.Encode(t).ToArray()).ToArray();
        Parallel.For(0, 200, i => Assert.Equal(expected[i % s_texts.Length], tok.Encode(s_texts[i % s_texts.Length])));
    }

    [Fact]
    public void PossessiveQuantifiers_AreRewrittenAsAtomicGroups()
    {
        Assert.Equal(@"(?>\p{L}+)", CodePointRegex.ConvertPossessive(@"\p{L}++"));
        Assert.Equal(@"(?i:'s|'t)|(?>[^\r\n]*)x(?>(ab)?)", CodePointRegex.ConvertPossessive(@"(?i:'s|'t)|[^\r\n]*+x(ab)?+"));
        Assert.Equal(CodePointRegex.Llama3Pattern, CodePointRegex.ConvertPossessive(CodePointRegex.Llama3Pattern));
    }
}

public sealed class StreamingDecoderTests
{
    [Theory]
    [InlineData("trained")]
    [InlineData("qwen2")]
    [InlineData("llama3")]
    [InlineData("llama2")]
    [InlineData("mistral")]
    [InlineData("metaspace-split")]
    public void Deltas_ConcatenateToDecode(string fixture)
    {
        var tok = HfTokenizer.FromFolder(Fixtures.Path_(fixture));
        foreach (var c in Fixtures.ReadJson("expected.json").GetProperty("fixtures").GetProperty(fixture).GetProperty("cases").EnumerateArray())
        {
            var ids = c.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            foreach (bool skip in new[] { true, false })
            {
                var stream = new StreamingDecoder(tok, skip);
                var sb = new System.Text.StringBuilder();
                foreach (int id in ids)
                {
                    string delta = stream.Push(id);
                    Assert.DoesNotContain('\uFFFD', delta);
                    sb.Append(delta);
                }
                sb.Append(stream.Flush());
                Assert.Equal(tok.Decode(ids, skip), sb.ToString());
            }
        }
    }

    [Fact]
    public void HoldsBackIncompleteUtf8()
    {
        var tok = HfTokenizer.FromFolder(Fixtures.Path_("mistral"));
        var ids = tok.Encode("😀", addSpecialTokens: false);
        var stream = new StreamingDecoder(tok);
        var deltas = ids.Select(stream.Push).ToList();
        Assert.Equal("😀", string.Concat(deltas));
        Assert.All(deltas.Take(deltas.Count - 1), d => Assert.Equal("", d));
    }
}

public sealed class ChatTemplateFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bf-ct-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void ChatTemplate_FromSeparateFiles_AndNamedList()
    {
        File.Copy(Fixtures.Path_("gpt2", "tokenizer.json"), Path.Combine(_dir, "tokenizer.json"));
        Assert.Null(HfTokenizer.FromFolder(_dir).ChatTemplateSource);
        File.WriteAllText(Path.Combine(_dir, "chat_template.json"), """{"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}""");
        Assert.Equal("D", HfTokenizer.FromFolder(_dir).ChatTemplateSource);
        File.WriteAllText(Path.Combine(_dir, "chat_template.jinja"), "{{ '<|im_start|>' }}");
        Assert.Equal("{{ '<|im_start|>' }}", HfTokenizer.FromFolder(_dir).ChatTemplateSource);
        File.WriteAllText(Path.Combine(_dir, "tokenizer_config.json"), """{"chat_template": "C"}""");
        Assert.Equal("C", HfTokenizer.FromFolder(_dir).ChatTemplateSource);
    }
}
