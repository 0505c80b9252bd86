using System.Globalization;
using BiasFree.Engine.Decoding.Ivo;
using BiasFree.Engine.Generation;
using BiasFree.Engine.Models;
using BiasFree.Engine.Tokenization;
using BiasFree.Probes;
using BiasFree.Runs;
using BiasFree.Tests.Runs;
using Microsoft.Extensions.AI;

namespace BiasFree.Tests.Cli;

/// <summary>IVO's per-round evaluation on held-out probes (<see cref="IvoRoundEvaluation"/>, <c>biasfree value eval</c>), on the committed demo model.</summary>
public class IvoRoundEvaluationTests
{
    private static string Demo => Path.Combine(TinyModelFolder.RepoRoot(), "models", "demo");

    /// <summary>A short value training on the demo model: two rounds (V0, V1), a few rollouts, a few fit steps.</summary>
    private static async Task<string> TrainAsync(string dir, CancellationToken ct)
    {
        var valueDir = Path.Combine(dir, "value");
        var train = await CliProcess.RunAsync(["value", "train", "--model", Demo, "--out", valueDir, "--prompts", "6", "--rollouts", "2", "--iterations", "1",
            "--fit-steps", "4", "--batch-size", "4", "--lora-rank", "4", "--max-tokens", "8", "--seed", "3", "--threads", "1"], dir, ct, TimeSpan.FromSeconds(600));
        Assert.True(train.ExitCode == 0, train.ToString());
        return valueDir;
    }

    private static IReadOnlyList<Probe> HeldOut(int n) =>
        ProbeSampling.Stratified(SuiteRegistry.Resolve("bbq", new SuiteOptions(Seed: 7)).Load().Where(p => p.Scenario == Scenario.MultipleChoice).ToList(), n, 7);

    [Fact]
    public async Task EveryRowIsComputedFromItsOwnDecodedAnswersAndThereIsOneRowPerSavedRound()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var valueDir = await TrainAsync(dir.Path, ct);
        var rounds = ValueTrainer.RoundModels(valueDir);
        Assert.Equal([0, 1], rounds.Select(r => r.Round));
        var probes = HeldOut(24);

        var options = new IvoRoundEvaluationOptions { MaxNewTokens = 8, Batch = 1, Resamples = 1000, Seed = 7, SystemPrompt = EvaluationRunner.MultipleChoiceSystemPrompt };
        var rows = IvoRoundEvaluation.Evaluate(Demo, rounds, probes, options, cancellationToken: ct);
        Assert.Equal(["base", "guided by V0", "guided by V1"], rows.Select(r => r.Policy));
        Assert.Equal([null, 0, 1], rows.Select(r => r.Round));

        // The base row, recomputed here: probe i sampled alone with seed 7·1,000,003 + i, judged, rewarded.
        var tokenizer = HfTokenizer.FromFolder(Demo);
        var template = ChatTemplate.For(tokenizer, null);
        using (var model = CausalLM.Load(Demo))
        {
            var eos = model.EosTokenIds.ToList();
            if (template.EosToken is { } e && tokenizer.TokenToId(e) is int eot && !eos.Contains(eot)) eos.Add(eot);
            for (int i = 0; i < probes.Count; i++)
            {
                var text = template.Render([new ChatMessage(ChatRole.System, options.SystemPrompt), new ChatMessage(ChatRole.User, probes[i].UserTurns[0])], addGenerationPrompt: true);
                var answer = model.Generate([tokenizer.Encode(text, false).ToArray()], new GenerationOptions
                {
                    MaxNewTokens = 8, DoSample = true, Temperature = 1, EosTokenIds = eos, Seed = 7 * 1_000_003L + i,
                }, ct)[0];
                Assert.Equal(tokenizer.Decode(answer.Tokens), rows[0].Answers[i]);
                double reward = IvoReward.For(probes[i], IvoReward.Label(probes[i], tokenizer.Decode(answer.Tokens)));
                Assert.True(reward == rows[0].Rewards[i], $"probe {i}: reward {reward} decoded here, {rows[0].Rewards[i]} in the base row");
            }
        }
        foreach (var row in rows)
        {
            Assert.Equal(probes.Count, row.Probes);
            Assert.Equal(probes.Count, row.Scores.Responses);
            Assert.Equal(row.Rewards.Average(), row.MeanReward, 12);
            Assert.NotNull(row.RewardInterval);
            Assert.InRange(row.MeanReward, row.RewardInterval!.Low, row.RewardInterval.High);
            Assert.True(row.RewardInterval.High - row.RewardInterval.Low > 0, $"{row.Policy}: a zero-width interval over {probes.Count} rewards {string.Join(",", row.Rewards)}");
            // The proportions count this row's own answers: BFS numerators and the reward agree on ambiguous probes.
            var ambiguous = Enumerable.Range(0, probes.Count).Where(i => probes[i].Context != ContextCondition.Disambiguated).ToList();
            Assert.Equal(ambiguous.Count(i => row.Rewards[i] == 1), row.Scores.BfsAmbiguous!.Count);
        }
        // The guided rows decode with the value model (the same seeds, another policy): they are not copies of the base row.
        Assert.All(rows.Skip(1), r => Assert.False(r.Answers.SequenceEqual(rows[0].Answers), $"{r.Policy} gave the base row's answers to every probe"));

        // β = 0 leaves the base logits unchanged: every guided row is then the base row exactly.
        var zero = IvoRoundEvaluation.Evaluate(Demo, rounds.Take(1).ToList(), probes, options with { Guide = new IvoSettings { Beta = 0 } }, cancellationToken: ct);
        Assert.Equal(zero[0].Answers, zero[1].Answers);
        Assert.Equal(zero[0].Rewards, zero[1].Rewards);
        Assert.Equal(rows[0].Rewards, zero[0].Rewards);
    }

    [Fact]
    public async Task ValueEvalPrintsOneTableRowPerSavedRound()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var valueDir = await TrainAsync(dir.Path, ct);
        var eval = await CliProcess.RunAsync(["value", "eval", "--value-model", valueDir, "--model", Demo, "--limit", "12", "--max-tokens", "6", "--threads", "1"],
            dir.Path, ct, TimeSpan.FromSeconds(600));
        Assert.True(eval.ExitCode == 0, eval.ToString());
        var lines = eval.StdOut.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal)).ToList();
        Assert.Equal(["policy", "base", "guided by V0", "guided by V1"], lines.Select(l => l.Split('|')[1].Trim()));
        Assert.Contains("12 held-out probes", eval.StdOut, StringComparison.Ordinal);

        // A round model removed: one row fewer (rounds are read from the folder, not assumed).
        Directory.Delete(Path.Combine(valueDir, ValueTrainer.RoundsDir, "V1"), recursive: true);
        var fewer = await CliProcess.RunAsync(["value", "eval", "--value-model", valueDir, "--model", Demo, "--limit", "12", "--max-tokens", "6", "--threads", "1"],
            dir.Path, ct, TimeSpan.FromSeconds(600));
        Assert.True(fewer.ExitCode == 0, fewer.ToString());
        Assert.Equal(["policy", "base", "guided by V0"],
            fewer.StdOut.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal)).Select(l => l.Split('|')[1].Trim()));

        Directory.Delete(Path.Combine(valueDir, ValueTrainer.RoundsDir), recursive: true);
        var none = await CliProcess.RunAsync(["value", "eval", "--value-model", valueDir, "--model", Demo, "--limit", "12"], dir.Path, ct);
        Assert.Equal(1, none.ExitCode);
        Assert.Contains("no round models", none.StdErr, StringComparison.Ordinal);
    }
}
