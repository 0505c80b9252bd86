using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using BiasFree.Engine.Chat;

namespace BiasFree.Engine.Training;

/// <summary>One method × data configuration of a comparison.</summary>
/// <param name="Options">Training settings (its Method names the method).</param>
/// <param name="Data">Data spec (see <see cref="PreferenceData.Load"/>).</param>
/// <param name="Count">Generated data size (null: the spec's default).</param>
/// <param name="Balance">Resample to equal counts per bias type.</param>
public sealed record ComparisonArm(TrainingOptions Options, string Data, int? Count = null, bool Balance = false)
{
    /// <summary>Folder name under the work folder, e.g. "sft-generated".</summary>
    public string Name => $"{TrainingOptions.Name(Options.Method)}-{Data.Replace(':', '-').Replace('/', '-').Replace('\\', '-')}{(Balance ? "-balanced" : "")}";
}

/// <summary>One row of a comparison: the vanilla base or a trained arm, measured.</summary>
public sealed record ComparisonRow(string Name, ComparisonArm? Arm, string Folder, DebiasMeasurement Measurement, double? TrainSeconds, int? Steps);

/// <summary>
/// Trains each arm from the same base into WORK/{arm} (an arm whose folder already holds a finished training is
/// reused; an interrupted one resumes), then measures the base and every trained folder with
/// <see cref="DebiasEvaluation"/>, and renders the results table of docs/training.md.
/// </summary>
public static class TrainingComparison
{
    public static async Task<IReadOnlyList<ComparisonRow>> RunAsync(string baseFolder, IReadOnlyList<ComparisonArm> arms, string workDir,
        DebiasEvaluationOptions evaluation, IProgress<string>? log = null, IProgress<TrainingProgress>? training = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(arms);
        Directory.CreateDirectory(workDir);
        var rows = new List<ComparisonRow>();
        log?.Report($"evaluating vanilla {baseFolder}");
        rows.Add(new ComparisonRow("vanilla", null, baseFolder, await MeasureAsync(baseFolder, evaluation, cancellationToken).ConfigureAwait(false), null, null));
        foreach (var arm in arms)
        {
            var outDir = Path.Combine(workDir, arm.Name);
            var record = Path.Combine(outDir, "training.json");
            if (!File.Exists(record) || Directory.Exists(Path.Combine(outDir, "checkpoint")))
            {
                log?.Report($"training {arm.Name}");
                var pairs = PreferenceData.Load(arm.Data, arm.Count, arm.Options.Seed);
                if (arm.Balance) pairs = PreferenceData.Balance(pairs, arm.Options.Seed);
                await DebiasTrainer.TrainAsync(baseFolder, pairs, outDir, arm.Options, training, cancellationToken,
                    arm.Data + (arm.Count is { } c ? $" --count {c}" : "") + (arm.Balance ? " --balance" : "")).ConfigureAwait(false);
            }
            else log?.Report($"reusing the finished training in {outDir}");
            var json = JsonNode.Parse(File.ReadAllText(record))!.AsObject();
            log?.Report($"evaluating {arm.Name}");
            rows.Add(new ComparisonRow(arm.Name, arm, outDir, await MeasureAsync(outDir, evaluation, cancellationToken).ConfigureAwait(false),
                json["train_seconds"]?.GetValue<double>(), json["steps"]?.GetValue<int>()));
        }
        return rows;
    }

    private static async Task<DebiasMeasurement> MeasureAsync(string folder, DebiasEvaluationOptions evaluation, CancellationToken ct)
    {
        using var client = LocalModel.Load(folder, new LocalModelOptions { ModelId = new DirectoryInfo(folder).Name, DefaultTemperature = evaluation.Temperature });
        return await DebiasEvaluation.EvaluateAsync(client, evaluation, ct).ConfigureAwait(false);
    }

    /// <summary>The Markdown results table (percent with 95 % Wilson intervals; Δ BFS in points against vanilla).</summary>
    public static string ToMarkdown(IReadOnlyList<ComparisonRow> rows)
    {
        var sb = new StringBuilder();
        bool continuation = rows.Any(r => r.Measurement.ContinuationStereotypeRate is not null);
        sb.Append("| model | data | steps | train wall time | ambiguous BFS % [95% CI] | Δ BFS (pts) | disamb. accuracy % [95% CI] | Δ acc. (pts) | over-refusal % [95% CI] |");
        sb.AppendLine(continuation ? " continuation stereotyped % [95% CI] |" : "");
        sb.Append("|---|---|---:|---:|---|---:|---|---:|---|");
        sb.AppendLine(continuation ? "---|" : "");
        var vanilla = rows[0].Measurement;
        foreach (var r in rows)
        {
            var m = r.Measurement;
            string Delta(Proportion a, Proportion b) => r.Arm is null ? "" : ((a.Value - b.Value) * 100).ToString("+0.0;-0.0;0.0", CultureInfo.InvariantCulture);
            string time = r.TrainSeconds is { } s ? TimeSpan.FromSeconds(s).ToString(@"m\:ss", CultureInfo.InvariantCulture) : "";
            string data = r.Arm is null ? "" : r.Arm.Data + (r.Arm.Balance ? " (balanced)" : "");
            sb.Append(CultureInfo.InvariantCulture, $"| {r.Name} | {data} | {r.Steps?.ToString(CultureInfo.InvariantCulture) ?? ""} | {time} | {m.AmbiguousBfs.Format()} | {Delta(m.AmbiguousBfs, vanilla.AmbiguousBfs)} | ");
            sb.Append(CultureInfo.InvariantCulture, $"{m.DisambiguatedAccuracy.Format()} | {Delta(m.DisambiguatedAccuracy, vanilla.DisambiguatedAccuracy)} | {m.OverRefusal.Format()} |");
            sb.AppendLine(continuation ? $" {m.ContinuationStereotypeRate?.Format() ?? "–"} |" : "");
        }
        return sb.ToString();
    }
}
