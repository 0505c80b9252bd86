using System.Globalization;
using System.Text.RegularExpressions;
using BiasFree.Engine.Chat;
using BiasFree.Engine.Generation;
using BiasFree.Tests.Cli;

namespace BiasFree.Tests.Docs;

/// <summary>The continuous-batching defaults that README.md and docs/engine-batching.md quote are the code's defaults.</summary>
public class EngineBatchingDocTests
{
    private static string Doc(params string[] path) =>
        Regex.Replace(File.ReadAllText(Path.Combine([TinyModelFolder.RepoRoot(), .. path])), @"\s+", " ");

    private static int Quoted(string doc, string pattern)
    {
        var m = Regex.Match(doc, pattern, RegexOptions.CultureInvariant);
        Assert.True(m.Success, $"no text matches /{pattern}/; update the test together with the document");
        return int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    [Fact]
    public void QuotedDefaultsAreTheDefaults()
    {
        var readme = Doc("README.md");
        var doc = Doc("docs", "engine-batching.md");
        var client = new EngineChatClientOptions();
        Assert.Equal(ContinuousBatchOptions.DefaultKvCacheBytes >> 20, Quoted(readme, @"`--kv-cache-mb` bounds its KV-cache memory \(default (\d+)\)"));
        Assert.Equal(client.KvCacheBytes >> 30, Quoted(doc, @"`KvCacheBytes`, default (\d+) GiB"));
        Assert.Equal(client.MaxBatchSize, Quoted(doc, @"\(`MaxBatchSize`, default (\d+)\)"));
        Assert.Equal(client.PrefillChunkTokens, Quoted(doc, @"`PrefillChunkTokens` \(default (\d+)\)"));
        Assert.Equal(new ContinuousBatchOptions().MaxBatchSize, client.MaxBatchSize);
        Assert.Equal(new ContinuousBatchOptions().PrefillChunkTokens, client.PrefillChunkTokens);
        // Model workers: the defaults of AutoWorkers that both documents quote.
        Assert.Equal(EngineChatClient.MaxAutoWorkers, Quoted(doc, @"one worker per processor, at most (\d+), for a model of up to \d+M parameters"));
        Assert.Equal(EngineChatClient.SmallModelParameters / 1_000_000, Quoted(doc, @"at most \d+, for a model of up to (\d+)M parameters"));
        Assert.Equal(EngineChatClient.SmallModelParameters / 1_000_000, Quoted(readme, @"A small model \(up to (\d+)M parameters"));
        Assert.Equal(1, client.Workers);
    }
}
