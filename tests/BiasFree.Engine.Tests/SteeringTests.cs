using BiasFree.Engine.Models;
using BiasFree.Engine.WhiteBox;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests;

public class SteeringTests
{
    private static readonly int[] Prompt = [1, 5, 17, 42, 8, 93];

    [Fact]
    public void LastTokenSteeringMatchesManualInjectionAndGateSelectsRows()
    {
        using var dir = new TempDir();
        using var model = TinyModels.SavedAndLoaded("mistral", dir);
        using var v = randn([64], generator: new torch.Generator(2));
        using var _ = no_grad();
        using var ids = model.IdsTensor([Prompt, Prompt]);

        using var manual = model.Forward(ids, new ForwardArgs
        {
            OnLayer = (l, h) =>
            {
                if (l != 0) return h;
                var c = h.clone();
                c[.., ^1] += v * 3.0;
                return c;
            },
        });
        using var helper = model.Forward(ids, new ForwardArgs { OnLayer = Steering.AddVector(0, v, 3.0, lastTokenOnly: true) });
        Assert.True((manual.Logits - helper.Logits).abs().max().item<float>() < 1e-5);

        // Gate steers row 0 only: row 1 equals the unsteered model.
        using var plain = model.Forward(ids);
        using var gated = model.Forward(ids, new ForwardArgs
        {
            OnLayer = Steering.AddVectorWhere(0, v, 3.0, true, last => tensor(new[] { true, false })),
        });
        Assert.True((gated.Logits[0] - helper.Logits[0]).abs().max().item<float>() < 1e-5);
        Assert.True((gated.Logits[1] - plain.Logits[1]).abs().max().item<float>() < 1e-5);

        // Capture keeps last-token states outside dispose scopes.
        var captured = new Dictionary<int, Tensor>();
        using (var scope = NewDisposeScope()) model.Forward(ids, new ForwardArgs { OnLayer = Steering.CaptureLastToken([1], captured) });
        Assert.Equal(new long[] { 2, 64 }, captured[1].shape);
        captured[1].Dispose();
    }
}
