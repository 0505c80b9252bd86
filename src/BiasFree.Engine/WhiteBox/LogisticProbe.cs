using BiasFree.Engine.Models;
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
    /// Mean of the per-class recalls, (TPR + TNR) / 2: 0.5 for a probe that always says the majority class, so it shows
    /// whether a probe learned anything when the labels are imbalanced (plain accuracy then sits at the majority rate).
    /// NaN when a class is absent.
    /// </summary>
    public double BalancedAccuracy(IReadOnlyList<float[]> activations, IReadOnlyList<int> labels)
    {
        int[] n = new int[2], right = new int[2];
        for (int i = 0; i < activations.Count; i++)
        {
            n[labels[i]]++;
            right[labels[i]] += (Logit(activations[i]) >= 0 ? 1 : 0) == labels[i] ? 1 : 0;
        }
        return n[0] == 0 || n[1] == 0 ? double.NaN : ((double)right[0] / n[0] + (double)right[1] / n[1]) / 2;
    }

    /// <summary>
    /// Class-balanced sample weights n / (2·n_c) (scikit-learn's <c>class_weight="balanced"</c>): both classes carry the
    /// same total weight, so the decision boundary σ = 0.5 is not pulled toward the majority class.
    /// </summary>
    public static double[] BalancedWeights(IReadOnlyList<int> labels)
    {
        int n = labels.Count, positives = labels.Count(y => y == 1), negatives = n - positives;
        return labels.Select(y => y == 1 ? n / (2.0 * Math.Max(1, positives)) : n / (2.0 * Math.Max(1, negatives))).ToArray();
    }

    /// <summary>
    /// Fits w, b by Newton's method (iteratively reweighted least squares) in float64 on
    /// L(w, b) = −(1/n) Σ_i [y_i log σ(z_i) + (1 − y_i) log(1 − σ(z_i))] + (λ/2)·‖w‖², z_i = w·a_i + b (b not penalised).
    /// The L2 term keeps the optimum finite when the classes are separable. The problem is convex, so Newton converges
    /// from zero in a few steps; we stop when the largest update is below 1e-9 or after <paramref name="maxIterations"/>.
    /// With <paramref name="sampleWeights"/> s_i the log-loss terms are weighted, −(1/n) Σ_i s_i [...] (e.g.
    /// <see cref="BalancedWeights"/>); null means s_i = 1, the unweighted fit of the paper's code.
    /// </summary>
    public static LogisticProbe Fit(IReadOnlyList<float[]> activations, IReadOnlyList<int> labels, double l2 = 1e-3, int maxIterations = 100,
        IReadOnlyList<double>? sampleWeights = null)
    {
        if (activations.Count == 0) throw new ArgumentException("no training rows");
        if (activations.Count != labels.Count) throw new ArgumentException("activations and labels differ in count");
        int n = activations.Count, d = activations[0].Length;
        if (activations.Any(a => a.Length != d)) throw new ArgumentException("activations differ in length");
        if (labels.Any(y => y is not (0 or 1))) throw new ArgumentException("labels must be 0 or 1");
        if (sampleWeights is not null && (sampleWeights.Count != n || sampleWeights.Any(w => !(w >= 0) || double.IsInfinity(w))))
            throw new ArgumentException("sample weights: one finite, non-negative weight per row");
        using var scope = NewDisposeScope();
        var flat = new double[n * (d + 1)];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < d; j++) flat[i * (d + 1) + j] = activations[i][j];
            flat[i * (d + 1) + d] = 1.0; // bias column
        }
        var x = tensor(flat, [n, d + 1], ScalarType.Float64);
        var y = tensor(labels.Select(v => (double)v).ToArray(), [n], ScalarType.Float64);
        var s = sampleWeights is null ? ones([n], ScalarType.Float64) : tensor(sampleWeights.ToArray(), [n], ScalarType.Float64);
        var theta = zeros([d + 1], ScalarType.Float64);
        var penalty = ones([d + 1], ScalarType.Float64).Times(l2);
        penalty[d] = 0.0;
        var ridge = diag(penalty).Plus(eye(d + 1, dtype: ScalarType.Float64).Times(1e-10)); // keeps H invertible for the bias-only direction
        // L(θ) with log σ(z) = −softplus(−z) and log(1 − σ(z)) = −softplus(z), stable for large |z|.
        double Loss(Tensor t)
        {
            var z = x.matmul(t);
            var nll = (s * (y * (-z).Softplus()).Plus(y.OneMinus() * z.Softplus())).sum().Over(n);
            return nll.Plus((penalty * t * t).sum().Times(0.5)).item<double>();
        }
        double loss = Loss(theta);
        for (int it = 0; it < maxIterations; it++)
        {
            var p = x.matmul(theta).sigmoid();
            var grad = x.t().matmul(s * (p - y)).Over(n).Plus(penalty * theta);
            var weights = (s * p * p.OneMinus()).Over(n);
            var hessian = x.t().matmul(x * weights.unsqueeze(1)).Plus(ridge);
            var step = linalg.solve(hessian, grad);
            // Damped Newton: halve the step until the loss does not rise. A full step can overshoot when the Hessian is
            // badly conditioned (a few residual dimensions far larger than the rest, as in some layers of the demo
            // model), and plain Newton then diverges to a probe that predicts one class everywhere.
            double scale = 1, next = Loss(theta - step);
            for (int halvings = 0; (next > loss || double.IsNaN(next)) && halvings < 40; halvings++)
            {
                scale /= 2;
                next = Loss(theta - step.Times(scale));
            }
            if (next > loss || double.IsNaN(next)) break; // no descent left along the Newton direction
            theta = theta - step.Times(scale);
            loss = next;
            if (step.Times(scale).abs().max().item<double>() < 1e-9) break;
        }
        var values = theta.data<double>().ToArray();
        return new LogisticProbe(values[..d], values[d]);
    }
}
