using BiasFree.Engine.Models;
using BiasFree.Engine.Safetensors;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests;

/// <summary>
/// A deliberately plain float64 implementation of the Llama/Qwen2/Mistral forward pass, reading the checkpoint directly:
/// no cache, no batching, explicit loops for rotary embedding and attention. Used as the oracle for the engine.
/// </summary>
public sealed class ReferenceModel
{
    private readonly ModelConfig _c;
    private readonly double _ropeTheta;
    private readonly Dictionary<string, double[,]> _mats = [];
    private readonly Dictionary<string, double[]> _vecs = [];

    /// <param name="folder">A Hugging Face model folder.</param>
    /// <param name="ropeTheta">
    /// The rotary base to use instead of the folder's <c>rope_theta</c>. When null, it is read from config.json directly
    /// (not through <see cref="ModelConfig.Parse"/>), so a parser that loses it cannot make the oracle agree with the engine.
    /// </param>
    public ReferenceModel(string folder, double? ropeTheta = null)
    {
        _c = ModelConfig.Load(folder);
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!;
        _ropeTheta = ropeTheta ?? json["rope_theta"]?.GetValue<double>() ?? 10000.0;
        using var ckpt = SafetensorsCheckpoint.Open(folder);
        foreach (var name in ckpt.Names)
        {
            using var t = ckpt.Read(name, ScalarType.Float64);
            var data = t.data<double>().ToArray();
            if (t.dim() == 1) _vecs[name] = data;
            else
            {
                var m = new double[t.shape[0], t.shape[1]];
                Buffer.BlockCopy(data, 0, m, 0, data.Length * sizeof(double));
                _mats[name] = m;
            }
        }
    }

    public double[] InvFreq()
    {
        int d = _c.HeadDim;
        var inv = Enumerable.Range(0, d / 2).Select(i => 1.0 / Math.Pow(_ropeTheta, 2.0 * i / d)).ToArray();
        if (_c.RopeScaling is { Type: "llama3" } s)
            for (int i = 0; i < inv.Length; i++)
            {
                double wavelen = 2 * Math.PI / inv[i];
                double lowWl = s.OriginalMaxPositionEmbeddings / s.LowFreqFactor, highWl = s.OriginalMaxPositionEmbeddings / s.HighFreqFactor;
                if (wavelen > lowWl) inv[i] /= s.Factor;
                else if (wavelen >= highWl)
                {
                    double smooth = (s.OriginalMaxPositionEmbeddings / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                    inv[i] = (1 - smooth) * inv[i] / s.Factor + smooth * inv[i];
                }
            }
        return inv;
    }

    /// <summary>Logits [T][V] for one sequence.</summary>
    /// <param name="ids">Token ids.</param>
    /// <param name="afterLayer">Called with (layer, residual [T][H]) after each decoder layer; it may change the residual in place (steering).</param>
    public double[][] Logits(IReadOnlyList<int> ids, Action<int, double[][]>? afterLayer = null)
    {
        int T = ids.Count, H = _c.HiddenSize, D = _c.HeadDim, nh = _c.NumAttentionHeads, nkv = _c.NumKeyValueHeads;
        var embed = _mats["model.embed_tokens.weight"];
        var h = new double[T][];
        for (int t = 0; t < T; t++) h[t] = Enumerable.Range(0, H).Select(j => embed[ids[t], j]).ToArray();
        var inv = InvFreq();

        for (int l = 0; l < _c.NumHiddenLayers; l++)
        {
            string p = $"model.layers.{l}.";
            int? window = _c.SlidingWindowForLayer(l);
            var x = h.Select(r => RmsNorm(r, _vecs[p + "input_layernorm.weight"])).ToArray();
            var q = x.Select(r => Linear(r, p + "self_attn.q_proj")).ToArray();
            var k = x.Select(r => Linear(r, p + "self_attn.k_proj")).ToArray();
            var v = x.Select(r => Linear(r, p + "self_attn.v_proj")).ToArray();
            for (int t = 0; t < T; t++)
            {
                for (int hd = 0; hd < nh; hd++) Rotate(q[t], hd * D, D, t, inv);
                for (int hd = 0; hd < nkv; hd++) Rotate(k[t], hd * D, D, t, inv);
            }
            var attnOut = new double[T][];
            for (int t = 0; t < T; t++)
            {
                attnOut[t] = new double[nh * D];
                for (int hd = 0; hd < nh; hd++)
                {
                    int kv = hd / (nh / nkv);
                    var scores = new List<(int j, double s)>();
                    for (int j = 0; j <= t; j++)
                    {
                        if (window is int w && t - j >= w) continue;
                        double dot = 0;
                        for (int d = 0; d < D; d++) dot += q[t][hd * D + d] * k[j][kv * D + d];
                        scores.Add((j, dot / Math.Sqrt(D)));
                    }
                    double max = scores.Max(s => s.s);
                    double z = scores.Sum(s => Math.Exp(s.s - max));
                    foreach (var (j, s) in scores)
                        for (int d = 0; d < D; d++) attnOut[t][hd * D + d] += Math.Exp(s - max) / z * v[j][kv * D + d];
                }
            }
            for (int t = 0; t < T; t++) h[t] = Add(h[t], Linear(attnOut[t], p + "self_attn.o_proj"));
            for (int t = 0; t < T; t++)
            {
                var y = RmsNorm(h[t], _vecs[p + "post_attention_layernorm.weight"]);
                var gate = Linear(y, p + "mlp.gate_proj");
                var up = Linear(y, p + "mlp.up_proj");
                var act = gate.Select((g, i) => g / (1 + Math.Exp(-g)) * up[i]).ToArray();
                h[t] = Add(h[t], Linear(act, p + "mlp.down_proj"));
            }
            afterLayer?.Invoke(l, h);
        }
        string head = _c.TieWordEmbeddings ? "model.embed_tokens" : "lm_head";
        return h.Select(r => Linear(RmsNorm(r, _vecs["model.norm.weight"]), head)).ToArray();
    }

    private void Rotate(double[] x, int offset, int d, int pos, double[] inv)
    {
        // rotate_half convention: pairs are (i, i + d/2).
        for (int i = 0; i < d / 2; i++)
        {
            double a = x[offset + i], b = x[offset + i + d / 2], ang = pos * inv[i];
            x[offset + i] = a * Math.Cos(ang) - b * Math.Sin(ang);
            x[offset + i + d / 2] = b * Math.Cos(ang) + a * Math.Sin(ang);
        }
    }

    private double[] RmsNorm(double[] x, double[] w)
    {
        double ms = x.Sum(a => a * a) / x.Length;
        double r = 1 / Math.Sqrt(ms + _c.RmsNormEps);
        return x.Select((a, i) => a * r * w[i]).ToArray();
    }

    private double[] Linear(double[] x, string name)
    {
        var w = _mats[name + ".weight"];
        _vecs.TryGetValue(name + ".bias", out var b);
        var y = new double[w.GetLength(0)];
        for (int o = 0; o < y.Length; o++)
        {
            double s = b?[o] ?? 0;
            for (int i = 0; i < x.Length; i++) s += w[o, i] * x[i];
            y[o] = s;
        }
        return y;
    }

    private static double[] Add(double[] a, double[] b) => a.Select((x, i) => x + b[i]).ToArray();
}
