using static TorchSharp.torch;

namespace BiasFree.Engine.WhiteBox;

/// <summary>
/// A linear probe p(unbiased | a) = σ(w·a + b) over one layer's residual activation (FairSteer's "biased activation
/// detection", Li et al., 2025, arXiv 2504.14492, §3.1: logistic regression with L2 regularisation, one probe per layer).
/// </summary>
/// <param name="Weight">w, one value per hidden dimension.</param>
/// <param name="Bias">b.</param>
public sealed record LogisticProbe(double[] Weight, double Bias)
{
    /// <summary>w·a + b; the probe says "biased" (label 0) when this is below 0, i.e. σ(w·a + b) &lt; 0.5.</summary>
    public double Logit(ReadOnlySpan<float> activation)
    {
        if (activation.Length != Weight.Length) throw new ArgumentException($"activation has {activation.Length} values, the probe {Weight.Length}");
        double z = Bias;
        for (int i = 0; i < Weight.Length; i++) z += Weight[i] * activation[i];
        return z;
    }

    /// <summary>Fraction of rows whose predicted label (σ ≥ 0.5 → 1) equals <paramref name="labels"/>.</summary>
    public double Accuracy(IReadOnlyList<float[]> activations, IReadOnlyList<int> labels)
    {
        if (activations.Count == 0) return double.NaN;
        int right = 0;
        for (int i = 0; i < activations.Count; i++)
            right += (Logit(activations[i]) >= 0 ? 1 : 0) == labels[i] ? 1 : 0;
        return (double)right / activations.Count;
    }

    /// <summary>
    /// Fits w, b by Newton's method (iteratively reweighted least squares) in float64 on
    /// L(w, b) = −(1/n) Σ_i [y_i log σ(z_i) + (1 − y_i) log(1 − σ(z_i))] + (λ/2)·‖w‖², z_i = w·a_i + b (b not penalised).
    /// The L2 term keeps the optimum finite when the classes are separable. The problem is convex, so Newton converges
    /// from zero in a few steps; we stop when the largest update is below 1e-9 or after <paramref name="maxIterations"/>.
    /// </summary>
    public static LogisticProbe Fit(IReadOnlyList<float[]> activations, IReadOnlyList<int> labels, double l2 = 1e-3, int maxIterations = 100)
    {
        if (activations.Count == 0) throw new ArgumentException("no training rows");
        if (activations.Count != labels.Count) throw new ArgumentException("activations and labels differ in count");
        int n = activations.Count, d = activations[0].Length;
        if (activations.Any(a => a.Length != d)) throw new ArgumentException("activations differ in length");
        if (labels.Any(y => y is not (0 or 1))) throw new ArgumentException("labels must be 0 or 1");
        using var scope = NewDisposeScope();
        var flat = new double[n * (d + 1)];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < d; j++) flat[i * (d + 1) + j] = activations[i][j];
            flat[i * (d + 1) + d] = 1.0; // bias column
        }
        var x = tensor(flat, [n, d + 1], ScalarType.Float64);
        var y = tensor(labels.Select(v => (double)v).ToArray(), [n], ScalarType.Float64);
        var theta = zeros([d + 1], ScalarType.Float64);
        var penalty = ones([d + 1], ScalarType.Float64) * l2;
        penalty[d] = 0.0;
        var ridge = diag(penalty) + eye(d + 1, dtype: ScalarType.Float64) * 1e-10; // keeps H invertible for the bias-only direction
        for (int it = 0; it < maxIterations; it++)
        {
            var p = x.matmul(theta).sigmoid();
            var grad = x.t().matmul(p - y) / n + penalty * theta;
            var weights = p * (1 - p) / n;
            var hessian = x.t().matmul(x * weights.unsqueeze(1)) + ridge;
            var step = linalg.solve(hessian, grad);
            theta = theta - step;
            if (step.abs().max().item<double>() < 1e-9) break;
        }
        var values = theta.data<double>().ToArray();
        return new LogisticProbe(values[..d], values[d]);
    }
}
