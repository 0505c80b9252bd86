using System.CommandLine;
using System.Globalization;
using BiasFree.Engine.DemoModel;
using BiasFree.Engine.Training;
using BiasFree.Targets;

namespace BiasFree.Cli.Commands;

/// <summary>
/// <c>biasfree judge train</c>: a small reasoned judge on the demo model by BiasGuard's two stages (SFT, then DPO with the
/// SFT model as reference), as one PEFT adapter. A thin shell over <see cref="JudgeTraceData"/> and <see cref="JudgeTrainer"/>.
/// </summary>
internal static class JudgeTrainCommand
{
    public static Command Build()
    {
        var output = new Option<string>("--out") { Description = "Output folder (OUT/adapter is the judge).", DefaultValueFactory = _ => Path.Combine("models", "demo-judge") };
        var count = new Option<int>("--count") { Description = "Training pairs (generated judge items; 30% carry a training attack, 30% harmless closing words).", DefaultValueFactory = _ => 480 };
        var seed = new Option<int>("--seed") { Description = "Seed of the generated items and of training.", DefaultValueFactory = _ => JudgeTraceData.DefaultSeed };
        var teacher = new Option<string?>("--teacher") { Description = "Base URL of an OpenAI-compatible teacher whose traces replace the templates (correct ones as chosen, incorrect ones as rejected)." };
        var teacherModel = new Option<string?>("--teacher-model") { Description = "Model name of the teacher." };
        var apiKeyEnv = new Option<string?>("--api-key-env") { Description = "Environment variable holding the teacher's API key.", DefaultValueFactory = _ => "OPENAI_API_KEY" };
        var sftSteps = new Option<int>("--sft-steps") { Description = "Stage 1 (SFT) optimizer steps.", DefaultValueFactory = _ => 60 };
        var dpoSteps = new Option<int>("--dpo-steps") { Description = "Stage 2 (DPO) optimizer steps.", DefaultValueFactory = _ => 40 };
        var sftLr = new Option<double>("--sft-lr") { Description = "Stage 1 learning rate.", DefaultValueFactory = _ => 1e-3 };
        var dpoLr = new Option<double>("--dpo-lr") { Description = "Stage 2 learning rate (small: DPO on a tiny model collapses easily).", DefaultValueFactory = _ => 2e-4 };
        var beta = new Option<double>("--beta") { Description = "DPO beta.", DefaultValueFactory = _ => 0.1 };
        var threads = new Option<int?>("--threads") { Description = "CPU threads for training." };
        var recipe = new Option<string>("--recipe") { Description = "Training data: plain (the taught one-line replies; the shipped judge models/demo-judge) or augmented (varied replies, text of many generic forms inserted with the gold label unchanged; docs/judges.md, \"Held-out set 8\").", DefaultValueFactory = _ => "plain" };
        recipe.AcceptOnlyFromAmong("augmented", "plain");
        var cmd = new Command("train", "Train a small reasoned judge on the demo model: SFT on correct traces, then DPO against incorrect ones with the SFT model as reference; writes a PEFT adapter.")
        {
            output, count, seed, teacher, teacherModel, apiKeyEnv, sftSteps, dpoSteps, sftLr, dpoLr, beta, threads, recipe,
        };
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(() => TrainAsync(pr.GetValue(output)!, pr.GetValue(count), pr.GetValue(seed), pr.GetValue(teacher),
            pr.GetValue(teacherModel), pr.GetValue(apiKeyEnv), pr.GetValue(sftSteps), pr.GetValue(dpoSteps), pr.GetValue(sftLr), pr.GetValue(dpoLr),
            pr.GetValue(beta), pr.GetValue(threads), JudgeTraceData.ParseRecipe(pr.GetValue(recipe)!), ct)));
        return cmd;
    }

    private static async Task<int> TrainAsync(string outDir, int count, int seed, string? teacherUrl, string? teacherModel, string? apiKeyEnv,
        int sftSteps, int dpoSteps, double sftLr, double dpoLr, double beta, int? threads, JudgeTraceRecipe recipe, CancellationToken ct)
    {
        if (count is < 10 or > 100_000) throw new UserErrorException("--count must be between 10 and 100000.");
        if (sftSteps < 1 || dpoSteps < 1) throw new UserErrorException("--sft-steps and --dpo-steps must be at least 1.");
        var baseFolder = DemoModel.Find() ?? throw new UserErrorException("no demo model found (models/demo); set BIASFREE_DEMO_MODEL.");
        var pairs = JudgeTraceData.Generate(count, seed, recipe);
        var description = $"generated judge traces (recipe {(recipe == JudgeTraceRecipe.Augmented ? "augmented" : "plain")}, seed {seed.ToString(CultureInfo.InvariantCulture)}, {count.ToString(CultureInfo.InvariantCulture)} pairs)";
        if (teacherUrl is not null)
        {
            if (!Uri.TryCreate(teacherUrl, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.UserInfo.Length > 0 || uri.Query.Length > 0)
                throw new UserErrorException($"--teacher '{teacherUrl}' must be an http(s) URL without user info or query.");
            if (string.IsNullOrWhiteSpace(teacherModel)) throw new UserErrorException("--teacher-model NAME is required with --teacher URL.");
            using var client = OpenAICompatibleTarget.Create(new OpenAICompatibleTargetOptions { Endpoint = uri, Model = teacherModel, ApiKeyEnvironmentVariable = apiKeyEnv });
            var t = await JudgeTraceData.WithTeacherAsync(client, pairs, ct).ConfigureAwait(false);
            pairs = t.Pairs;
            description += $"; teacher {teacherModel}: {t.Correct} correct, {t.Incorrect} incorrect, {t.Unusable} unusable traces";
            Console.Out.WriteLine($"teacher traces: {t.Correct} correct, {t.Incorrect} incorrect, {t.Unusable} unusable (templates kept)");
        }
        var sft = new TrainingOptions { Method = TrainingMethod.Sft, LearningRate = sftLr, MaxSteps = sftSteps, Epochs = 100, Seed = seed, Threads = threads, EvalEvery = 20 };
        var dpo = new TrainingOptions { Method = TrainingMethod.Dpo, LearningRate = dpoLr, MaxSteps = dpoSteps, Epochs = 100, Beta = beta, Seed = seed, Threads = threads, EvalEvery = 20 };
        var last = TimeSpan.FromDays(-1);
        var progress = new Progress<TrainingProgress>(p =>
        {
            if (p.Elapsed - last < TimeSpan.FromSeconds(5) && p.Step != p.TotalSteps) return;
            last = p.Elapsed;
            Console.Out.WriteLine("progress " + TrainCommand.Describe(p));
        });
        var r = await JudgeTrainer.TrainAsync(baseFolder, pairs, outDir, sft, dpo, description, progress, ct).ConfigureAwait(false);
        Console.Out.WriteLine(FormattableString.Invariant(
            $"SFT: {r.Sft.Steps} steps, loss {r.Sft.FirstLoss:0.0000} → {r.Sft.FinalLoss:0.0000}; DPO: {r.Dpo.Steps} steps, loss {r.Dpo.FirstLoss:0.0000} → {r.Dpo.FinalLoss:0.0000}."));
        Console.Out.WriteLine($"Judge adapter: {r.AdapterDir}  (biasfree judge eval --judge demo:{r.AdapterDir} --data demo-heldout:200)");
        return ExitCodes.Ok;
    }
}
