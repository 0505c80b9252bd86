using System.CommandLine;
using System.Globalization;
using BiasFree.Engine.Training;

namespace BiasFree.Cli.Commands;

/// <summary><c>biasfree diffpo train</c>: trains a DiffPO aligner (LoRA, L_AR + ω·L_Con); a thin shell over <see cref="DiffPoTrainer"/>.</summary>
internal static class DiffPoCommand
{
    public static Command Build()
    {
        var d = new DiffPoTrainingOptions();
        var baseModel = new Option<string?>("--base") { Description = "Base model of the aligner: a model folder, or 'demo' (default) for the embedded demo model." };
        var outDir = new Option<string>("--out", "-o") { Description = "Output folder: the aligner as a merged model folder (for run --method diffpo --aligner OUT), adapter/ and diffpo_training.json. Re-running the same command after a crash resumes from its checkpoint.", Required = true };
        var count = new Option<int>("--count") { Description = "Trajectories generated from the demo corpus's BBQ-style training items (never the evaluation seeds 0-9).", DefaultValueFactory = _ => 1200 };
        var seed = new Option<int>("--seed") { Description = "Seed of the data, split, batch order and LoRA initialisation.", DefaultValueFactory = _ => 0 };
        var omega = new Option<double>("--omega") { Description = "ω, weight of the consistency loss (the paper: 1000 with an unstated normalisation; ours is a per-token mean).", DefaultValueFactory = _ => d.Omega };
        var states = new Option<int>("--states") { Description = "T: states per trajectory y(0)..y(T-1) built between the original answer and its rewrite.", DefaultValueFactory = _ => d.States };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the training split.", DefaultValueFactory = _ => d.Training.Epochs };
        var steps = new Option<int?>("--steps") { Description = "Optimizer steps (overrides --epochs)." };
        var lr = new Option<double>("--learning-rate", "--lr") { Description = "Peak AdamW learning rate.", DefaultValueFactory = _ => d.Training.LearningRate };
        var batch = new Option<int>("--batch-size") { Description = "Trajectories per micro-batch.", DefaultValueFactory = _ => d.Training.BatchSize };
        var rank = new Option<int>("--lora-rank") { Description = "LoRA rank r.", DefaultValueFactory = _ => d.Training.LoraRank };
        var evalEvery = new Option<int>("--eval-every") { Description = "Validate every N steps (the best validated weights are kept).", DefaultValueFactory = _ => d.Training.EvalEvery };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "Write a resumable checkpoint every N steps.", DefaultValueFactory = _ => d.Training.CheckpointEvery };
        var maxLength = new Option<int>("--max-length") { Description = "Longest prompt + answer in tokens.", DefaultValueFactory = _ => d.Training.MaxLength };
        var threads = new Option<int?>("--threads") { Description = "Torch threads (default: torch's choice)." };
        var train = new Command("train", "Train a DiffPO aligner as LoRA on our own trajectories (a biased answer → its fair rewrite, with intermediate states).")
        {
            baseModel, outDir, count, seed, omega, states, epochs, steps, lr, batch, rank, evalEvery, checkpointEvery, maxLength, threads,
        };
        train.SetAction((pr, ct) => BiasFreeCli.Guard(async () =>
        {
            var options = d with
            {
                Omega = pr.GetValue(omega),
                States = pr.GetValue(states),
                Training = d.Training with
                {
                    Epochs = pr.GetValue(epochs),
                    MaxSteps = pr.GetValue(steps),
                    LearningRate = pr.GetValue(lr),
                    BatchSize = pr.GetValue(batch),
                    LoraRank = pr.GetValue(rank),
                    EvalEvery = pr.GetValue(evalEvery),
                    CheckpointEvery = pr.GetValue(checkpointEvery),
                    MaxLength = pr.GetValue(maxLength),
                    Seed = pr.GetValue(seed),
                    Threads = pr.GetValue(threads),
                },
            };
            try
            {
                options.Validate();
            }
            catch (ArgumentException ex)
            {
                throw new UserErrorException(ex.Message, ex);
            }
            if (pr.GetValue(count) < 2) throw new UserErrorException("--count must be at least 2.");
            var baseFolder = TrainCommand.ResolveBase(pr.GetValue(baseModel));
            var outFolder = Path.GetFullPath(pr.GetValue(outDir)!);
            var data = DiffPoTrajectories.FromDemoCorpus(pr.GetValue(count), 20251124 + pr.GetValue(seed));
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Training a DiffPO aligner on {data.Count} trajectories ({data.Count(t => t.Original == t.Target)} fixed points); base {baseFolder}; output {outFolder}"));
            var last = TimeSpan.FromDays(-1);
            string lastPhase = "";
            var progress = new TrainCommand.SyncProgress(p =>
            {
                if (p.Phase != lastPhase || p.Elapsed - last >= TimeSpan.FromSeconds(2) || p.Step == p.TotalSteps)
                {
                    lastPhase = p.Phase;
                    last = p.Elapsed;
                    Console.Out.WriteLine("progress " + TrainCommand.Describe(p));
                }
            });
            TrainingResult result;
            try
            {
                result = await DiffPoTrainer.TrainAsync(baseFolder, data, outFolder, options, progress, ct,
                    $"demo corpus BBQ-style trajectories, count {data.Count}").ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                Console.Error.WriteLine("Interrupted. The last checkpoint is kept; run the same command again to resume.");
                return ExitCodes.Interrupted;
            }
            TrainCommand.WriteSummary(result);
            Console.Out.WriteLine($"Aligner: {result.OutputDir}  (biasfree run --method diffpo --aligner {result.OutputDir})");
            return ExitCodes.Ok;
        }));
        return new Command("diffpo", "DiffPO's plug-in aligner (see docs/decoding-methods.md).") { train };
    }
}
