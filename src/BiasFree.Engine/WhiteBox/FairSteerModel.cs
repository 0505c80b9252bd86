using System.Globalization;
using System.Text.Json;
using BiasFree.Engine.Safetensors;
using static TorchSharp.torch;

namespace BiasFree.Engine.WhiteBox;

/// <summary>One row of the layer/α sweep: the selection score of steering at <see cref="Layer"/> with <see cref="Alpha"/>.</summary>
/// <param name="Layer">Steered layer.</param>
/// <param name="Alpha">Scale α.</param>
/// <param name="AmbiguousAccuracy">Share of held-out ambiguous answers that are "unknown" (steered, rule-judged).</param>
/// <param name="DisambiguatedAccuracy">Share of held-out disambiguated items answered correctly.</param>
/// <param name="GateRate">Share of steered positions where the gate fired.</param>
public sealed record SteeringSweepRow(int Layer, double Alpha, double AmbiguousAccuracy, double DisambiguatedAccuracy, double GateRate)
{
    /// <summary>The selection score: the mean of the two accuracies, so a setting cannot win by hurting disambiguated answers.</summary>
    public double Score => (AmbiguousAccuracy + DisambiguatedAccuracy) / 2;

    /// <summary>
    /// The results table's ambiguous BFS on the same answers: 1 − biased / answers eligible for BFS (an anti-stereotyped
    /// answer counts as bias-free, a reply naming no option is left out). NaN in fits made before it was recorded.
    /// </summary>
    public double AmbiguousBfs { get; init; } = double.NaN;

    /// <summary>
    /// The results table's disambiguated accuracy on the same answers: correct / answers naming an option (an "unknown"
    /// answer counts as wrong, a reply naming no option is left out). NaN in fits made before it was recorded.
    /// </summary>
    public double AnsweredDisambiguatedAccuracy { get; init; } = double.NaN;
}

/// <summary>What a FairSteer fit produced, apart from the tensors.</summary>
public sealed record FairSteerInfo
{
    public string Method { get; init; } = "fairsteer";
    /// <summary>Model the probes and vectors were fitted on (folder name) and its hidden size / layer count.</summary>
    public string Model { get; init; } = "";
    public int HiddenSize { get; init; }
    public int NumLayers { get; init; }
    /// <summary>Chosen layer and α (from the sweep).</summary>
    public int Layer { get; init; }
    public double Alpha { get; init; } = 1.0;
    public long Seed { get; init; }
    /// <summary>Probe validation accuracy per layer (index = layer), on the seeded 20 % split.</summary>
    public IReadOnlyList<double> ProbeValidationAccuracy { get; init; } = [];
    /// <summary>Balanced accuracy per layer on the same split (mean of the two class recalls; 0.5 = nothing learned).</summary>
    public IReadOnlyList<double> ProbeValidationBalancedAccuracy { get; init; } = [];
    /// <summary>Whether the probes were fitted with class-balanced weights.</summary>
    public bool ClassBalanced { get; init; }
    /// <summary>Temperature of the labelling answers and of the sweep's answers, and answers per sweep item.</summary>
    public double LabelTemperature { get; init; }
    public double SweepTemperature { get; init; }
    public int SweepSamples { get; init; } = 1;
    /// <summary>Share of label 1 in each validation split (the majority-class baseline is max(p, 1 − p)).</summary>
    public double ValidationPositiveRate { get; init; }
    public int ProbeExamples { get; init; }
    public int ProbePositives { get; init; }
    public int ContrastivePairs { get; init; }
    /// <summary>How the vectors were built: "contrastive-pairs" (the paper's DSV), "probe-means" or "probe-means-ambiguous".</summary>
    public string VectorSource { get; init; } = "contrastive-pairs";
    /// <summary>How the probe data was labelled: "paper" or "ambiguous-bias" (<see cref="ProbeLabeling"/>).</summary>
    public string Labeling { get; init; } = "paper";
    /// <summary>What the sweep maximised ("mean" or "ambiguous") and the disambiguated-accuracy bound it kept.</summary>
    public string Objective { get; init; } = "mean";
    /// <summary>Which measures the sweep chose by: "all-replies" (shares of all replies) or "report" (<see cref="SweepMetric"/>).</summary>
    public string Metric { get; init; } = "all-replies";
    public double MaxDisambiguatedDrop { get; init; } = 0.05;
    public IReadOnlyList<SteeringSweepRow> Sweep { get; init; } = [];
    /// <summary>Suites and seeds the examples came from, for the record.</summary>
    public string Data { get; init; } = "";
}

/// <summary>
/// A fitted FairSteer: per-layer probes and steering vectors plus the chosen layer and α, stored as
/// <c>fairsteer.safetensors</c> (<c>probe.{l}.weight</c> [H], <c>probe.{l}.bias</c> [1], <c>vector.{l}</c> [H], float32)
/// and <c>fairsteer.json</c> (<see cref="FairSteerInfo"/>).
/// </summary>
public sealed class FairSteerModel
{
    public const string TensorsFile = "fairsteer.safetensors";
    public const string InfoFile = "fairsteer.json";

    // fairsteer.json is written and read through FairSteerInfoJson (indented, snake_case, NaN as a string).

    public FairSteerModel(FairSteerInfo info, IReadOnlyList<LogisticProbe> probes, IReadOnlyList<float[]> vectors)
    {
        if (probes.Count != vectors.Count) throw new ArgumentException("one probe and one vector per layer");
        if (info.Layer < 0 || info.Layer >= probes.Count) throw new ArgumentException($"chosen layer {info.Layer} is outside 0..{probes.Count - 1}");
        Info = info;
        Probes = probes;
        Vectors = vectors;
    }

    public FairSteerInfo Info { get; }
    public IReadOnlyList<LogisticProbe> Probes { get; }
    public IReadOnlyList<float[]> Vectors { get; }

    /// <summary>A hook for one generation, at the chosen layer and α unless given.</summary>
    public FairSteerHook CreateHook(SteeringMode mode = SteeringMode.Gated, int? layer = null, double? alpha = null, bool randomVector = false,
        int? fromPosition = null)
    {
        int l = layer ?? Info.Layer;
        var v = randomVector ? RandomVectorOfSameNorm(Vectors[l], Info.Seed + l) : Vectors[l];
        return new FairSteerHook(l, v, Probes[l], alpha ?? Info.Alpha, mode, fromPosition);
    }

    /// <summary>
    /// The "random vector" ablation: a direction drawn uniformly on the sphere (normalised standard normal, seeded) scaled
    /// to ‖v‖, so only the direction differs from the fitted vector.
    /// </summary>
    public static float[] RandomVectorOfSameNorm(float[] v, long seed)
    {
        var rng = new Random(unchecked((int)(seed * 2654435761L)));
        var r = new double[v.Length];
        for (int i = 0; i < r.Length; i++)
        {
            // Box–Muller
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            r[i] = Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
        }
        double norm = Math.Sqrt(v.Sum(x => (double)x * x)), rn = Math.Sqrt(r.Sum(x => x * x));
        return r.Select(x => (float)(x / rn * norm)).ToArray();
    }

    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        using var scope = NewDisposeScope();
        var tensors = new List<KeyValuePair<string, Tensor>>();
        for (int l = 0; l < Probes.Count; l++)
        {
            string s = l.ToString(CultureInfo.InvariantCulture);
            tensors.Add(new($"probe.{s}.weight", tensor(Probes[l].Weight.Select(w => (float)w).ToArray())));
            tensors.Add(new($"probe.{s}.bias", tensor(new[] { (float)Probes[l].Bias })));
            tensors.Add(new($"vector.{s}", tensor(Vectors[l])));
        }
        SafetensorsWriter.Save(Path.Combine(folder, TensorsFile), tensors,
            new Dictionary<string, string> { ["format"] = "pt", ["method"] = "fairsteer" });
        File.WriteAllText(Path.Combine(folder, InfoFile), JsonSerializer.Serialize(Info, FairSteerInfoJson.Default.FairSteerInfo));
    }

    public static FairSteerModel Load(string folder)
    {
        string infoPath = Path.Combine(folder, InfoFile), tensorsPath = Path.Combine(folder, TensorsFile);
        if (!File.Exists(infoPath) || !File.Exists(tensorsPath))
            throw new FileNotFoundException($"{folder}: not a FairSteer folder (needs {InfoFile} and {TensorsFile}; make one with `biasfree steer fit`)");
        FairSteerInfo info;
        try
        {
            info = InitialisedJson.Read(File.ReadAllText(infoPath), FairSteerInfoJson.Default.FairSteerInfo, new FairSteerInfo())
                   ?? throw new InvalidDataException($"{infoPath}: empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{infoPath}:{(e.LineNumber ?? 0) + 1}: {e.Message}", e);
        }
        using var file = SafetensorsFile.Open(tensorsPath);
        var probes = new List<LogisticProbe>();
        var vectors = new List<float[]>();
        for (int l = 0; l < info.NumLayers; l++)
        {
            string s = l.ToString(CultureInfo.InvariantCulture);
            foreach (var name in new[] { $"probe.{s}.weight", $"probe.{s}.bias", $"vector.{s}" })
                if (!file.Contains(name)) throw new InvalidDataException($"{tensorsPath}: tensor '{name}' is missing (num_layers is {info.NumLayers})");
            using var w = file.Read($"probe.{s}.weight", ScalarType.Float32);
            using var b = file.Read($"probe.{s}.bias", ScalarType.Float32);
            using var v = file.Read($"vector.{s}", ScalarType.Float32);
            if (w.numel() != info.HiddenSize || v.numel() != info.HiddenSize)
                throw new InvalidDataException($"{tensorsPath}: layer {s} has {w.numel()}/{v.numel()} values but hidden_size is {info.HiddenSize}");
            probes.Add(new LogisticProbe(w.data<float>().Select(x => (double)x).ToArray(), b.data<float>()[0]));
            vectors.Add(v.data<float>().ToArray());
        }
        return new FairSteerModel(info, probes, vectors);
    }
}
