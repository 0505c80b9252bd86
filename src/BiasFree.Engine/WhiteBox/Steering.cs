using BiasFree.Engine.Models;
using static TorchSharp.torch;

namespace BiasFree.Engine.WhiteBox;

/// <summary>
/// Ready-made residual-stream callbacks for <see cref="Models.CausalLM.OnLayer"/> / <see cref="Models.ForwardArgs.OnLayer"/>
/// / <see cref="Generation.GenerationOptions.OnLayer"/>. Each receives (layer, hidden [B, T, H]) for the tokens of the
/// current pass (the whole prompt at prefill, one token per row while decoding with the KV cache).
/// </summary>
public static class Steering
{
    /// <summary>h += alpha · v at <paramref name="layer"/>, on every position or only on the last one.</summary>
    public static Func<int, Tensor, Tensor> AddVector(int layer, Tensor vector, double alpha = 1.0, bool lastTokenOnly = false) =>
        AddVectorWhere(layer, vector, alpha, lastTokenOnly, gate: null);

    /// <summary>
    /// FairSteer-style gated steering: <paramref name="gate"/> sees the last position's hidden state [B, H] and returns a
    /// [B] boolean tensor; only those rows get h += alpha · v (on the last position, or on all when lastTokenOnly is false).
    /// </summary>
    public static Func<int, Tensor, Tensor> AddVectorWhere(int layer, Tensor vector, double alpha, bool lastTokenOnly,
        Func<Tensor, Tensor>? gate)
    {
        if (vector.dim() != 1) throw new ArgumentException("the steering vector must be 1-D [hidden]");
        return (l, h) =>
        {
            if (l != layer) return h;
            var v = vector.to(h.device).to_type(h.dtype).Times(alpha);        // [H]
            var rows = gate is null
                ? ones([h.shape[0]], h.dtype, h.device)
                : gate(h.select(1, -1)).to(h.device).to_type(h.dtype);        // [B]
            var positions = zeros([h.shape[1]], h.dtype, h.device);            // [T]
            if (lastTokenOnly) positions[^1] = 1;
            else positions.fill_(RootedScalars.One);
            // delta[b, t, :] = rows[b] * positions[t] * v
            var delta = rows.view(-1, 1, 1) * positions.view(1, -1, 1) * v.view(1, 1, -1);
            return h.Plus(delta);
        };
    }

    /// <summary>Runs several callbacks in order, each seeing the previous one's output.</summary>
    public static Func<int, Tensor, Tensor> Compose(params Func<int, Tensor, Tensor>[] callbacks) =>
        (l, h) =>
        {
            foreach (var c in callbacks) h = c(l, h);
            return h;
        };

    /// <summary>An observer that keeps a detached copy of the last position's hidden state [B, H] at each listed layer.</summary>
    public static Func<int, Tensor, Tensor> CaptureLastToken(IReadOnlyCollection<int> layers, IDictionary<int, Tensor> into) =>
        (l, h) =>
        {
            if (layers.Contains(l))
            {
                if (into.TryGetValue(l, out var old)) old.Dispose();
                into[l] = h.select(1, -1).detach().clone().DetachFromDisposeScope();
            }
            return h;
        };
}
