using System.CommandLine;
using System.Globalization;
using BiasFree.Engine.Chat;
using BiasFree.Engine.DemoModel;
using BiasFree.Engine.WhiteBox;
using BiasFree.Probes;
using BiasFree.Runs;
using Spectre.Console;

namespace BiasFree.Cli.Commands;

/// <summary><c>biasfree steer fit</c>: fit FairSteer's probes and steering vectors on an in-process model.</summary>
internal static class SteerCommand
{
    /// <summary>Default suite seed of the fitting data: outside the demo model's evaluation seeds (0–9) and training seeds.</summary>
    public const int DefaultSuiteSeed = 11;

    public static Command Build()
    {
        var cmd = new Command("steer", "FairSteer (probe-gated activation steering): fit probes and steering vectors for `run --method fairsteer`.");
        cmd.Add(BuildFit());
        return cmd;
    }

    private static Command BuildFit()
    {
        var d = new FairSteerFitOptions();
        var model = new Option<string?>("--model") { Description = "Hugging Face model folder run in-process. Default: the demo model." };
        var output = new Option<string>("--out", "-o") { Description = "Folder for fairsteer.safetensors and fairsteer.json.", Required = true };
        var suite = new Option<string>("--suite") { Description = "BBQ-style suite the examples come from (bbq, or bbq-jsonl:PATH / bbq-json:PATH for official files).", DefaultValueFactory = _ => "bbq" };
        var suiteSeed = new Option<int>("--suite-seed") { Description = "Seed of the suite instance (fills, option order) used for fitting; keep it apart from the seeds you evaluate with.", DefaultValueFactory = _ => DefaultSuiteSeed };
        var items = new Option<int>("--items") { Description = "Items asked for the probe data (labelled by the model's own answers).", DefaultValueFactory = _ => 800 };
        var pairs = new Option<int>("--pairs") { Description = "Ambiguous items used as contrastive pairs for the steering vectors.", DefaultValueFactory = _ => d.Pairs };
        var sweepItems = new Option<int>("--sweep-items") { Description = "Held-out items (half ambiguous, half disambiguated) for the layer/α sweep.", DefaultValueFactory = _ => 200 };
        var alphas = new Option<string>("--alphas") { Description = "α values to sweep, comma list.", DefaultValueFactory = _ => string.Join(",", d.Alphas.Select(a => a.ToString(CultureInfo.InvariantCulture))) };
        var layers = new Option<string?>("--layers") { Description = "Layers to sweep, comma list (0-based). Default: all." };
        var seed = new Option<long>("--seed") { Description = "Seed of the 80/20 probe split, the answer sampling and the random-vector ablation.", DefaultValueFactory = _ => d.Seed };
        var labelTemperature = new Option<float>("--label-temperature") { Description = "Temperature of the answers that label the probe data (0: the model's argmax answer, as in the paper).", DefaultValueFactory = _ => d.LabelTemperature };
        var answerEnd = new Option<bool>("--vector-at-answer-end") { Description = "Read the pair activations at the answer's last token instead of its first." };
        var probeWeights = new Option<string>("--probe-weights") { Description = "Probe sample weights: balanced (each label class weighs the same; default) or none (unweighted, as the paper's code).", DefaultValueFactory = _ => d.ClassBalanced ? "balanced" : "none" };
        probeWeights.AcceptOnlyFromAmong("balanced", "none");
        var sweepTemperature = new Option<float>("--sweep-temperature") { Description = "Temperature of the sweep's answers (0: greedy; use the temperature you evaluate at, e.g. 1 for the demo model).", DefaultValueFactory = _ => d.SweepTemperature };
        var sweepSamples = new Option<int>("--sweep-samples") { Description = "Sampled answers per sweep item when --sweep-temperature > 0 (same seeds for every setting).", DefaultValueFactory = _ => d.SweepSamples };
        var maxDrop = new Option<double>("--max-disamb-drop") { Description = "Do not choose a setting whose disambiguated accuracy is more than this below the unsteered one.", DefaultValueFactory = _ => d.MaxDisambiguatedDrop };
        var vectorSource = new Option<string>("--vector") { Description = "Steering vectors: pairs (the paper's contrastive pairs, read at the answer's first token), probe-means (mean prompt activation of unbiased minus biased probe examples) or probe-means-ambiguous (the same over ambiguous examples only).", DefaultValueFactory = _ => "pairs" };
        vectorSource.AcceptOnlyFromAmong("pairs", "probe-means", "probe-means-ambiguous");
        var labeling = new Option<string>("--probe-labels") { Description = "Probe labels: paper (0 = stereotyped wrong answer in either context) or ambiguous-bias (0 only for the stereotyped answer to an ambiguous item; wrong disambiguated answers dropped; not in the paper).", DefaultValueFactory = _ => FairSteerFitter.LabelingName(d.Labeling) };
        labeling.AcceptOnlyFromAmong("paper", "ambiguous-bias");
        var objective = new Option<string>("--sweep-objective") { Description = "What the sweep maximises within --max-disamb-drop: mean (of the ambiguous and disambiguated accuracies) or ambiguous (the ambiguous accuracy alone).", DefaultValueFactory = _ => "mean" };
        objective.AcceptOnlyFromAmong("mean", "ambiguous");
        var metric = new Option<string>("--sweep-metric") { Description = "Measures the sweep compares: all-replies (shares of all replies; default) or report (the results table's ambiguous BFS and accuracy over answers naming an option).", DefaultValueFactory = _ => "all-replies" };
        metric.AcceptOnlyFromAmong("all-replies", "report");
        var l2 = new Option<double>("--l2") { Description = "L2 strength λ of the logistic probes.", DefaultValueFactory = _ => d.L2 };
        var cmd = new Command("fit", "Label the model's answers (1 correct, 0 stereotyped), fit a logistic probe per layer, build steering vectors from contrastive pairs, sweep layers and α on held-out items, and save.")
        {
            model, output, suite, suiteSeed, items, pairs, sweepItems, alphas, layers, seed, labelTemperature, l2, answerEnd,
            probeWeights, sweepTemperature, sweepSamples, maxDrop, vectorSource, labeling, objective, metric,
        };
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(() => FitAsync(
            pr.GetValue(model), pr.GetValue(output)!, pr.GetValue(suite)!, pr.GetValue(suiteSeed), pr.GetValue(items), pr.GetValue(pairs),
            pr.GetValue(sweepItems), pr.GetValue(alphas)!, pr.GetValue(layers), pr.GetValue(seed), pr.GetValue(labelTemperature), pr.GetValue(l2), pr.GetValue(answerEnd),
            pr.GetValue(probeWeights) == "balanced", pr.GetValue(sweepTemperature), pr.GetValue(sweepSamples), pr.GetValue(maxDrop),
            FairSteerFitter.ParseVectorSource(pr.GetValue(vectorSource)!),
            FairSteerFitter.ParseLabeling(pr.GetValue(labeling)!),
            FairSteerFitter.ParseObjective(pr.GetValue(objective)!),
            FairSteerFitter.ParseMetric(pr.GetValue(metric)!), ct)));
        return cmd;
    }

    private static async Task<int> FitAsync(string? modelFolder, string output, string suiteSpec, int suiteSeed, int items, int pairs, int sweepItems,
        string alphas, string? layers, long seed, float labelTemperature, double l2, bool answerEnd, bool balanced, float sweepTemperature,
        int sweepSamples, double maxDrop, SteeringVectorSource vectorSource, ProbeLabeling labeling, SweepObjective objective, SweepMetric sweepMetric, CancellationToken ct)
    {
        if (items < 10 || pairs < 1 || sweepItems < 2) throw new UserErrorException("--items must be at least 10, --pairs at least 1 and --sweep-items at least 2.");
        if (sweepSamples < 1) throw new UserErrorException("--sweep-samples must be at least 1.");
        if (sweepTemperature < 0 || labelTemperature < 0) throw new UserErrorException("--sweep-temperature and --label-temperature must not be negative.");
        var alphaList = ParseList(alphas, "--alphas", s => double.Parse(s, CultureInfo.InvariantCulture));
        if (alphaList.Any(a => a <= 0 || double.IsNaN(a))) throw new UserErrorException("--alphas: every α must be above 0.");
        var layerList = layers is null ? null : ParseList(layers, "--layers", s => int.Parse(s, CultureInfo.InvariantCulture));

        string folder = modelFolder ?? DemoModel.Find() ?? throw new UserErrorException("no demo model found; pass --model FOLDER.");
        bool demo = modelFolder is null;
        using var client = demo ? DemoModel.CreateChatClient(folder) : LocalModel.Load(folder);
        if (layerList?.FirstOrDefault(l => l < 0 || l >= client.Model.Config.NumHiddenLayers) is int bad && layerList.Contains(bad))
            throw new UserErrorException($"--layers: layer {bad} is outside 0..{client.Model.Config.NumHiddenLayers - 1}.");

        // One seeded order over the suite; probe items, pairs and sweep items are disjoint slices of it.
        var all = SuiteRegistry.Resolve(suiteSpec, new SuiteOptions(Seed: suiteSeed)).Load()
            .Where(p => p.Scenario == Scenario.MultipleChoice && p.CorrectOption is not null).ToList();
        if (all.Count == 0) throw new UserErrorException($"--suite {suiteSpec}: no multiple-choice items with a correct answer.");
        var order = StableRandom.For(suiteSeed, "steer-fit/order").Shuffle(all);
        var probeItems = order.Take(items).ToList();
        var rest = order.Skip(items).ToList();
        var pairItems = rest.Where(p => p.Context == ContextCondition.Ambiguous && FairSteerFitter.Answers(p) is not null).Take(pairs).ToList();
        var used = pairItems.Select(p => p.Id).ToHashSet(StringComparer.Ordinal);
        var remaining = rest.Where(p => !used.Contains(p.Id) && FairSteerFitter.Answers(p) is not null).ToList();
        var sweep = remaining.Where(p => p.Context == ContextCondition.Ambiguous).Take(sweepItems / 2)
            .Concat(remaining.Where(p => p.Context == ContextCondition.Disambiguated).Take(sweepItems - sweepItems / 2)).ToList();

        var options = new FairSteerFitOptions
        {
            SystemPrompt = EvaluationRunner.MultipleChoiceSystemPrompt,
            LabelTemperature = labelTemperature,
            L2 = l2,
            Seed = seed,
            Pairs = pairs,
            Alphas = alphaList,
            Layers = layerList,
            VectorAtAnswerEnd = answerEnd,
            ClassBalanced = balanced,
            SweepTemperature = sweepTemperature,
            SweepSamples = sweepSamples,
            MaxDisambiguatedDrop = maxDrop,
            VectorSource = vectorSource,
            Labeling = labeling,
            Objective = objective,
            Metric = sweepMetric,
            Log = line => Console.Out.WriteLine(line),
        };
        Console.Out.WriteLine(FormattableString.Invariant(
            $"Fitting FairSteer on {new DirectoryInfo(folder).Name}: {probeItems.Count} probe items, {pairItems.Count} pairs, {sweep.Count} sweep items from {suiteSpec} (suite seed {suiteSeed})"));
        var fitter = FairSteerFitter.For(client, options);
        string data = FormattableString.Invariant($"{suiteSpec} suite seed {suiteSeed}: {probeItems.Count} probe items, {pairItems.Count} pairs, {sweep.Count} sweep items");
        var fitted = await fitter.FitAsync(client, probeItems, pairItems, sweep, new DirectoryInfo(folder).Name, data, ct).ConfigureAwait(false);
        fitted.Save(output);
        Print(fitted.Info);
        Console.Out.WriteLine($"Saved to {Path.GetFullPath(output)} ({FairSteerModel.TensorsFile}, {FairSteerModel.InfoFile}).");
        return ExitCodes.Ok;
    }

    private static void Print(FairSteerInfo info)
    {
        double majority = Math.Max(info.ValidationPositiveRate, 1 - info.ValidationPositiveRate);
        var probes = new Table().AddColumns("layer", "probe validation accuracy", "balanced accuracy");
        for (int l = 0; l < info.ProbeValidationAccuracy.Count; l++)
            probes.AddRow(l.ToString(CultureInfo.InvariantCulture), info.ProbeValidationAccuracy[l].ToString("F3", CultureInfo.InvariantCulture),
                l < info.ProbeValidationBalancedAccuracy.Count ? info.ProbeValidationBalancedAccuracy[l].ToString("F3", CultureInfo.InvariantCulture) : "-");
        AnsiConsole.Write(probes);
        Console.Out.WriteLine(FormattableString.Invariant(
            $"{info.ProbeExamples} labelled examples ({info.ProbePositives} unbiased); majority-class accuracy on the validation split {majority:F3}."));
        var sweep = new Table().AddColumns("layer", "α", "ambiguous acc.", "disambiguated acc.", "score", "ambiguous BFS", "disamb. acc. of answers", "gate rate");
        foreach (var r in info.Sweep)
            sweep.AddRow(r.Alpha == 0 ? "-" : r.Layer.ToString(CultureInfo.InvariantCulture), r.Alpha.ToString(CultureInfo.InvariantCulture),
                r.AmbiguousAccuracy.ToString("F3", CultureInfo.InvariantCulture), r.DisambiguatedAccuracy.ToString("F3", CultureInfo.InvariantCulture),
                r.Score.ToString("F3", CultureInfo.InvariantCulture), r.AmbiguousBfs.ToString("F3", CultureInfo.InvariantCulture),
                r.AnsweredDisambiguatedAccuracy.ToString("F3", CultureInfo.InvariantCulture), r.GateRate.ToString("F3", CultureInfo.InvariantCulture));
        AnsiConsole.Write(sweep);
        Console.Out.WriteLine(FormattableString.Invariant($"Chosen: layer {info.Layer}, α {info.Alpha} (α = 0 is the unsteered baseline; objective {info.Objective} of the {info.Metric} measures, probe labels {info.Labeling})."));
    }

    private static List<T> ParseList<T>(string text, string option, Func<string, T> parse)
    {
        try
        {
            return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(parse).ToList();
        }
        catch (FormatException)
        {
            throw new UserErrorException($"{option}: '{text}' is not a comma list of numbers.");
        }
    }
}
