using System.Text.Json.Nodes;
using BiasFree.Engine.Lora;
using BiasFree.Engine.Models;
using BiasFree.Engine.Safetensors;
using BiasFree.Probes;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BiasFree.Engine.Training;

/// <summary>
/// A scalar score on the engine: a causal LM (with LoRA adapters while it trains) plus a linear head on the final
/// decoder layer's hidden state, RMS-normalised without a learned gain (the layer's own norm weight belongs to the LM
/// head; a fresh gain would only rescale the head). Safe-RLHF's reward and cost models score the last token of a reply;
/// IVO's value model reads the same head at every position, so one forward pass gives V of every prefix.
/// </summary>
public sealed class ScoreModel : IDisposable
{
    /// <summary>File of the head's weights in a saved score-model folder (beside config.json and model.safetensors).</summary>
    public const string HeadFile = "score_head.safetensors";

    private readonly Parameter _weight, _bias;
    private readonly List<(string Name, Parameter Parameter)> _trainable;

    private ScoreModel(CausalLM model, Parameter weight, Parameter bias, List<(string, Parameter)> trainable) =>
        (Model, _weight, _bias, _trainable) = (model, weight, bias, trainable);

    /// <summary>The transformer under the head.</summary>
    public CausalLM Model { get; }

    /// <summary>Parameters that training updates: the LoRA matrices (when adapters were applied) and the head.</summary>
    public IReadOnlyList<(string Name, Parameter Parameter)> Trainable => _trainable;

    /// <summary>
    /// <paramref name="baseFolder"/> with LoRA adapters (rank, α, target modules; seeded init with B = 0, so the LM starts
    /// as the base) and a zero head: every score starts at 0.
    /// </summary>
    public static ScoreModel Create(string baseFolder, int loraRank, double loraAlpha, IReadOnlyList<string> loraTargets, long seed)
    {
        var model = CausalLM.Load(baseFolder);
        LoraAdapter.Apply(model, new LoraOptions { Rank = loraRank, Alpha = loraAlpha, TargetModules = loraTargets, Seed = seed });
        var weight = new Parameter(zeros(model.Config.HiddenSize));
        var bias = new Parameter(zeros(1));
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();
        trainable.Add(("score.weight", weight));
        trainable.Add(("score.bias", bias));
        return new ScoreModel(model, weight, bias, trainable);
    }

    /// <summary>Loads a folder written by <see cref="Save"/> (LoRA merged into the weights), frozen, in eval mode.</summary>
    public static ScoreModel Load(string folder)
    {
        var headPath = Path.Combine(folder, HeadFile);
        if (!File.Exists(headPath)) throw new FileNotFoundException($"{folder} is not a score/value model folder: {HeadFile} is missing", headPath);
        var model = CausalLM.Load(folder);
        foreach (var p in model.parameters()) p.requires_grad = false;
        using var file = SafetensorsFile.Open(headPath);
        var weight = new Parameter(file.Read("score.weight", ScalarType.Float32).DetachFromDisposeScope(), requires_grad: false);
        var bias = new Parameter(file.Read("score.bias", ScalarType.Float32).DetachFromDisposeScope(), requires_grad: false);
        if (weight.shape[0] != model.Config.HiddenSize) throw new InvalidDataException($"{headPath}: head has {weight.shape[0]} inputs, the model's hidden size is {model.Config.HiddenSize}");
        model.eval();
        return new ScoreModel(model, weight, bias, []);
    }

    /// <summary>Writes the merged transformer (config.json, model.safetensors) and the head into <paramref name="folder"/>.</summary>
    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        Model.Save(folder);
        SafetensorsWriter.Save(Path.Combine(folder, HeadFile), [new("score.weight", _weight.detach()), new("score.bias", _bias.detach())]);
    }

    /// <summary>The head on final-layer hidden states [..., H] → scores [...].</summary>
    public Tensor Head(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var normed = hidden * rsqrt(hidden.pow(RootedScalars.Two).mean([-1], keepdim: true).Plus(1e-5));
        return (normed * _weight).sum(-1).Plus(_bias).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Runs <paramref name="ids"/> [B, T] (optionally over <paramref name="cache"/>) and returns the final layer's hidden
    /// states [B, T, H] of the fed positions (keeps autograd unless called under no_grad).
    /// </summary>
    public Tensor Hidden(Tensor ids, KVCache? cache = null)
    {
        Tensor? hidden = null;
        int lastLayer = Model.Config.NumHiddenLayers - 1;
        using (Model.Forward(ids, new ForwardArgs
        {
            Cache = cache,
            LastTokenLogitsOnly = true,
            OnLayer = (layer, h) =>
            {
                if (layer == lastLayer) hidden = h.alias().DetachFromDisposeScope();
                return h;
            },
        })) { }
        return hidden!;
    }

    /// <summary>Scores at every position of right-padded rows: [B, T] (position t scores the prefix ending there).</summary>
    public Tensor ForwardAll(IReadOnlyList<IReadOnlyList<int>> rows, int pad)
    {
        using var scope = NewDisposeScope();
        int t = rows.Max(r => r.Count);
        var ids = new long[rows.Count * t];
        for (int b = 0; b < rows.Count; b++)
            for (int i = 0; i < t; i++) ids[b * t + i] = i < rows[b].Count ? rows[b][i] : pad;
        using var h = Hidden(tensor(ids, [rows.Count, t]).to(Model.Device));
        return Head(h).MoveToOuterDisposeScope();
    }

    /// <summary>Scores [B] of prompt + reply rows at their last token (keeps autograd).</summary>
    public Tensor Forward(IReadOnlyList<(int[] Prompt, int[] Reply)> rows, int pad)
    {
        using var scope = NewDisposeScope();
        var joined = rows.Select(r => (IReadOnlyList<int>)[.. r.Prompt, .. r.Reply]).ToList();
        var all = ForwardAll(joined, pad);
        var last = tensor(joined.Select(r => (long)r.Count - 1).ToArray()).to(all.device).view(-1, 1);
        return all.gather(1, last).squeeze(1).MoveToOuterDisposeScope();
    }

    /// <summary>Scores of prompt + reply rows at their last token, without autograd.</summary>
    public double[] Score(IReadOnlyList<(int[] Prompt, int[] Reply)> rows, int pad)
    {
        using var _ = no_grad();
        Model.eval();
        using var s = Forward(rows, pad);
        return [.. s.cpu().data<float>().Select(v => (double)v)];
    }

    /// <summary>
    /// Bradley–Terry on (better, worse) rows: −log σ(s(better) − s(worse)); with <paramref name="sign"/> (Safe-RLHF's cost
    /// model) also −log σ(s(unsafe)) − log σ(−s(safe)), so that cost &gt; 0 means biased (Dai et al. 2024, Eq. 6). The
    /// learning rate decays linearly to 0 over <paramref name="steps"/>. Returns the last step's loss.
    /// </summary>
    public double FitPreferences(IReadOnlyList<(int[] Prompt, int[] Better, int[] Worse)> pairs, int pad, int steps, double learningRate, int batchSize,
        double maxGradNorm, StableRandom order, bool sign, Action<int> onStep, CancellationToken ct)
    {
        using var optimizer = new AdamWOptimizer(_trainable);
        double last = double.NaN;
        Model.train();
        for (int step = 0; step < steps; step++)
        {
            ct.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var batch = Enumerable.Range(0, Math.Min(batchSize, pairs.Count)).Select(_ => pairs[order.Next(pairs.Count)]).ToList();
            var scores = Forward([.. batch.Select(b => (b.Prompt, b.Better)), .. batch.Select(b => (b.Prompt, b.Worse))], pad);
            var better = scores.narrow(0, 0, batch.Count);
            var worse = scores.narrow(0, batch.Count, batch.Count);
            var loss = (-(better - worse)).Softplus().mean();
            if (sign) loss = loss.Plus((-better).Softplus().mean()).Plus(worse.Softplus().mean());
            optimizer.ZeroGrad();
            loss.backward();
            nn.utils.clip_grad_norm_(_trainable.Select(t => t.Parameter).ToList(), maxGradNorm);
            optimizer.Update(learningRate * (1 - step / (double)steps));
            last = loss.item<float>();
            onStep(step + 1);
        }
        Model.eval();
        return last;
    }

    /// <summary>Writes only the trained parameters (LoRA and head) for a training checkpoint; <see cref="Save"/> writes a loadable folder.</summary>
    public void SaveTrainable(string file) => TrainingCheckpoint.SaveParameters(file, _trainable);

    /// <summary>Restores parameters written by <see cref="SaveTrainable"/>.</summary>
    public void LoadTrainable(string file) => TrainingCheckpoint.LoadParameters(file, _trainable);

    /// <summary>Short description for records.</summary>
    public JsonObject Describe() => new() { ["hidden_size"] = Model.Config.HiddenSize, ["layers"] = Model.Config.NumHiddenLayers, ["trainable"] = _trainable.Sum(t => t.Parameter.numel()) };

    public void Dispose()
    {
        Model.Dispose();
        _weight.Dispose();
        _bias.Dispose();
    }
}
