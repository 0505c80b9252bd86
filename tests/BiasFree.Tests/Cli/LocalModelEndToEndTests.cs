using BiasFree.Engine.Models;
using BiasFree.Engine.Tokenization;
using BiasFree.Tests.Runs;
using TorchSharp;

namespace BiasFree.Tests.Cli;

/// <summary>The real CLI with <c>--target FOLDER</c>: a tiny random Llama in Hugging Face format, run in-process by the engine.</summary>
public class LocalModelEndToEndTests
{
    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "BiasFree.slnx")))
            {
                return d.FullName;
            }
        }
        throw new InvalidOperationException("repository root not found");
    }

    [Fact]
    public async Task ALocalModelFolderIsATarget()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var folder = Directory.CreateDirectory(Path.Combine(dir.Path, "tiny-llama")).FullName;
        foreach (var f in Directory.GetFiles(Path.Combine(RepoRoot(), "tests", "BiasFree.Engine.Tests", "Fixtures", "tokenizers", "trained")))
        {
            File.Copy(f, Path.Combine(folder, Path.GetFileName(f)));
        }
        var tok = HfTokenizer.FromFolder(folder);
        var config = new ModelConfig
        {
            ModelType = "llama", VocabSize = tok.VocabSize, HiddenSize = 32, IntermediateSize = 48, NumHiddenLayers = 1,
            NumAttentionHeads = 2, NumKeyValueHeads = 1, HeadDim = 16, RmsNormEps = 1e-5, RopeTheta = 10000, MaxPositionEmbeddings = 512,
            BosTokenId = 1, EosTokenIds = [tok.TokenToId("<|eot_id|>")!.Value],
        };
        using (var model = CausalLM.Create(config, torch.ScalarType.Float32, "cpu", seed: 5))
        {
            model.Save(folder);
        }

        var run = await CliProcess.RunAsync(
            ["run", "--target", folder, "--suite", "bbq", "--limit", "3", "--max-tokens", "4", "--method", "none,self-awareness",
             "--runs-dir", dir.Path, "--run-id", "local"], dir.Path, ct, TimeSpan.FromSeconds(120));
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("against tiny-llama", run.StdOut, StringComparison.Ordinal);

        var report = await EndToEndTests.JsonReport(dir.Path, "local", ct);
        Assert.Equal(3, EndToEndTests.Row(report, "none").GetProperty("responses").GetInt32());
        Assert.Equal(3, EndToEndTests.Row(report, "self-awareness").GetProperty("responses").GetInt32());
        Assert.Equal(0, report.GetProperty("totals").GetProperty("targetErrors").GetInt32());
        Assert.True(report.GetProperty("totals").GetProperty("completionTokens").GetInt64() > 0);
    }
}
