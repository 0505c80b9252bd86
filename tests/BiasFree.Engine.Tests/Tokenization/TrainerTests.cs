using System.Diagnostics;
using System.Text;
using BiasFree.Engine.Tokenization;

namespace BiasFree.Engine.Tests.Tokenization;

public sealed class TrainerTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "bf-tok-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    internal static IEnumerable<string> SyntheticCorpus(int approxChars, int seed = 7)
    {
        string[] words =
        [
            "the", "nurse", "engineer", "doctor", "said", "that", "she", "he", "they", "was", "were", "tired", "because",
            "of", "work", "café", "naïve", "résumé", "Zoë", "1234", "2026", "don't", "it's", "we'll", "😀", "🚀", "日本",
            "bias", "fair", "answer", "question", "cannot", "determine", "unknown", "grandmother", "teenager", "Muslim",
            "Christian", "Jewish", "immigrant", "wealthy", "poor", "disabled", "person", "woman", "man",
        ];
        var rng = new Random(seed);
        int total = 0;
        while (total < approxChars)
        {
            var sb = new StringBuilder();
            int n = rng.Next(5, 25);
            for (int i = 0; i < n; i++)
            {
                if (i > 0) sb.Append(rng.Next(12) == 0 ? "  " : " ");
                sb.Append(words[rng.Next(words.Length)]);
                if (rng.Next(10) == 0) sb.Append(rng.Next(2) == 0 ? "," : ".");
            }
            if (rng.Next(5) == 0) sb.Append("\n\n\t");
            total += sb.Length;
            yield return sb.ToString();
        }
    }

    [Fact]
    public void TrainWriteLoad_RoundTrips()
    {
        var corpus = SyntheticCorpus(200_000).ToList();
        var bpe = BpeTrainer.Train(corpus, 400, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]);
        Assert.Equal(400, bpe.VocabSize);
        TokenizerJsonWriter.Write(_dir, bpe, new TokenizerWriteOptions { EosToken = "<|im_end|>", PadToken = "<|endoftext|>", ChatTemplate = ChatTemplate.ChatML.JinjaSource });
        var tok = HfTokenizer.FromFolder(_dir);
        Assert.Equal(400, tok.VocabSize);
        Assert.Equal(HfTokenizerKind.ByteLevelBpe, tok.Kind);
        Assert.Equal([399], tok.EosIds);
        Assert.Equal(397, tok.PadId);
        Assert.Null(tok.BosId);
        foreach (var text in corpus.Take(50).Append("<|im_start|>user\nHi there 😀 naïve café\t\t 12345<|im_end|>\n"))
        {
            var ids = tok.Encode(text);
            Assert.Equal(text, tok.Decode(ids, skipSpecialTokens: false));
        }
        Assert.Equal("ChatML", ChatTemplate.Detect(tok.ChatTemplateSource).Family.ToString());
        var ids2 = tok.Encode("the nurse said");
        Assert.True(ids2.Count < "the nurse said".Length);
    }

    [Fact]
    public void Train_IsDeterministic()
    {
        var corpus = SyntheticCorpus(50_000).ToList();
        var a = BpeTrainer.Train(corpus, 400, ["<s>"]);
        var b = BpeTrainer.Train(corpus, 400, ["<s>"]);
        Assert.Equal(a.Merges, b.Merges);
        Assert.Equal(TokenizerJsonWriter.TokenizerJson(a, new()), TokenizerJsonWriter.TokenizerJson(b, new()));
    }

    [Fact]
    public void Train_TwoMegabytes_LearnsMerges()
    {
        // Speed is measured by bench/, not asserted here.
        var corpus = SyntheticCorpus(2_000_000, seed: 3).ToList();
        var bpe = BpeTrainer.Train(corpus, 3000, ["<|endoftext|>"], new BpeTrainerOptions { MinFrequency = 1 });
        Assert.True(bpe.Merges.Count > 100);
    }
}
