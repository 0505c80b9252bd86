namespace BiasFree.Engine.Decoding;

/// <summary>Outcome of verifying one draft: how many draft tokens were kept and the token that follows them.</summary>
/// <param name="Accepted">Draft tokens accepted, from the start (0..γ).</param>
/// <param name="NextToken">The token appended after the accepted ones: a residual sample on rejection, a bonus sample from the judge when all were accepted.</param>
/// <param name="Bonus">True when every draft token was accepted and <paramref name="NextToken"/> came from the judge's last distribution.</param>
public readonly record struct VerifyResult(int Accepted, int NextToken, bool Bonus);

/// <summary>
/// Speculative sampling (Leviathan et al., ICML 2023; Chen et al., 2023), the acceptance rule Persona-judge
/// (arXiv 2504.12663) uses between its two preference contexts. A drafter proposes x_1..x_γ from q; the judge's
/// distributions p_1..p_{γ+1} at the same positions decide: accept x_i with probability min(1, p_i(x_i)/q_i(x_i)); at
/// the first rejection sample from norm(max(p_i − q_i, 0)) and stop; if all are accepted sample a bonus token from
/// p_{γ+1}. Every token that comes out is then distributed exactly as p at its position, whatever q was.
/// Distributions are plain probability vectors (after temperature and top-k/top-p filtering), so the rule can be
/// tested on a toy vocabulary without a model.
/// </summary>
public static class SpeculativeSampling
{
    /// <summary>Verifies <paramref name="draft"/> (drawn from <paramref name="q"/>) against the judge's <paramref name="p"/>.</summary>
    /// <param name="draft">x_1..x_γ (γ ≥ 1).</param>
    /// <param name="q">The drafter's distributions, one per draft token.</param>
    /// <param name="p">The judge's distributions: one per draft token plus one after the last (γ + 1).</param>
    /// <param name="random">Uniform draws for the acceptance tests and the residual/bonus samples.</param>
    public static VerifyResult Verify(IReadOnlyList<int> draft, IReadOnlyList<double[]> q, IReadOnlyList<double[]> p, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        if (draft.Count == 0) throw new ArgumentException("the draft needs at least one token", nameof(draft));
        if (q.Count != draft.Count) throw new ArgumentException($"q has {q.Count} distributions for {draft.Count} draft tokens", nameof(q));
        if (p.Count != draft.Count + 1) throw new ArgumentException($"p needs {draft.Count + 1} distributions (one per draft token and one after), got {p.Count}", nameof(p));
        for (int i = 0; i < draft.Count; i++)
        {
            int x = draft[i];
            double qx = q[i][x], px = p[i][x];
            if (qx <= 0) throw new ArgumentException($"draft token {x} at position {i} has zero probability under q: it cannot have been drawn from q", nameof(draft));
            // Accept with probability min(1, p/q): r ~ U[0,1) and r < p/q.
            if (random.NextDouble() < px / qx) continue;
            return new VerifyResult(i, Sample(Residual(p[i], q[i]), random), Bonus: false);
        }
        return new VerifyResult(draft.Count, Sample(p[draft.Count], random), Bonus: true);
    }

    /// <summary>
    /// norm(max(p − q, 0)): where the judge puts more mass than the drafter. A rejection implies p(x) &lt; q(x) for the
    /// drafted x, so Σ(p − q)+ = Σ(q − p)+ &gt; 0 in exact arithmetic; if rounding leaves no mass, p itself is returned
    /// (the released code's fallback to (q − p)+ in that case would not be distributed as p).
    /// </summary>
    public static double[] Residual(double[] p, double[] q)
    {
        if (p.Length != q.Length) throw new ArgumentException("p and q must cover the same vocabulary");
        var r = new double[p.Length];
        double sum = 0;
        for (int i = 0; i < p.Length; i++)
        {
            r[i] = Math.Max(p[i] - q[i], 0);
            sum += r[i];
        }
        if (sum <= 0) return (double[])p.Clone();
        for (int i = 0; i < r.Length; i++) r[i] /= sum;
        return r;
    }

    /// <summary>One draw from a (possibly unnormalised) probability vector by inverting its cumulative sum.</summary>
    public static int Sample(double[] probabilities, Random random)
    {
        double total = 0;
        foreach (var v in probabilities) total += v;
        if (!(total > 0)) throw new ArgumentException("the distribution has no mass");
        double u = random.NextDouble() * total, acc = 0;
        int last = -1;
        for (int i = 0; i < probabilities.Length; i++)
        {
            if (probabilities[i] <= 0) continue;
            acc += probabilities[i];
            last = i;
            if (u < acc) return i;
        }
        return last; // u landed on the rounding gap at the very end
    }

    /// <summary>
    /// The sampling distribution of next-token logits after temperature, top-k and top-p (nucleus) filtering, with the
    /// same rules as <see cref="Generation.TextGeneration.SelectTokens"/>: top-k keeps the k highest logits (ties with
    /// the k-th included); top-p drops a token when the tokens ranked above it already hold more than p of the mass (the
    /// top one always stays). Temperature ≤ 0 gives the one-hot argmax (greedy), so speculative sampling between greedy
    /// contexts reduces to "the judge's argmax wins".
    /// </summary>
    public static double[] Distribution(ReadOnlySpan<float> logits, double temperature, int? topK, double? topP)
    {
        int v = logits.Length;
        var probs = new double[v];
        if (v == 0) throw new ArgumentException("empty logits");
        if (temperature <= 0)
        {
            int best = 0;
            for (int i = 1; i < v; i++)
                if (logits[i] > logits[best]) best = i;
            probs[best] = 1;
            return probs;
        }
        var scaled = new double[v];
        for (int i = 0; i < v; i++) scaled[i] = logits[i] / temperature;
        var keep = new bool[v];
        Array.Fill(keep, true);
        if (topK is int k && k > 0 && k < v)
        {
            var sortedValues = (double[])scaled.Clone();
            Array.Sort(sortedValues);
            double kth = sortedValues[v - k];
            for (int i = 0; i < v; i++)
                if (scaled[i] < kth) keep[i] = false;
        }
        double max = double.NegativeInfinity;
        for (int i = 0; i < v; i++)
            if (keep[i]) max = Math.Max(max, scaled[i]);
        double sum = 0;
        for (int i = 0; i < v; i++)
        {
            probs[i] = keep[i] ? Math.Exp(scaled[i] - max) : 0;
            sum += probs[i];
        }
        for (int i = 0; i < v; i++) probs[i] /= sum;
        if (topP is double pp && pp < 1.0)
        {
            // Ranked by probability; the mass above a token only grows down the ranking, so once a token is dropped
            // every later one is too.
            var order = Enumerable.Range(0, v).Where(i => probs[i] > 0).OrderByDescending(i => probs[i]).ThenBy(i => i).ToArray();
            double above = 0, kept = 0;
            foreach (int i in order)
            {
                double mass = probs[i];
                if (above > pp) probs[i] = 0;
                else kept += mass;
                above += mass;
            }
            for (int i = 0; i < v; i++) probs[i] /= kept;
        }
        return probs;
    }
}
