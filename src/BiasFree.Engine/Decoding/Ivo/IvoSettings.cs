namespace BiasFree.Engine.Decoding.Ivo;

/// <summary>How IVO turns the value function into a decoder.</summary>
public enum IvoMode
{
    /// <summary>Each step adds β·(V(s∘a) − V(s)) to the logits of the top-k candidates a, then the engine's sampler picks.</summary>
    Tokenwise,

    /// <summary>Value-guided blockwise beam search: sample blocks of a few tokens from the base, keep the beams of highest V.</summary>
    Blockwise,
}

/// <summary>
/// Decoding settings of IVO (Liu et al., "Iterative Value Function Optimization for Guided Decoding", arXiv 2503.02368).
/// The paper names tokenwise sampling and blockwise beam search with blocks of 2 and 4 tokens; the exact rule is not in
/// what we could read, so the tokenwise rule follows the KL-regularised optimum it builds on (π ∝ π_base·exp(β·V)), see
/// docs/decoding-methods.md.
/// </summary>
public sealed record IvoSettings
{
    /// <summary>β: weight of the value bonus in logit units (tokenwise). 0 leaves the base logits unchanged.</summary>
    public double Beta { get; init; } = 5.0;

    /// <summary>k: candidates per step whose continuation is scored by the value model (tokenwise).</summary>
    public int Candidates { get; init; } = 10;

    /// <summary>L: tokens per block (blockwise; the paper uses 2 and 4).</summary>
    public int BlockTokens { get; init; } = 4;

    /// <summary>W: beams kept after each block (blockwise).</summary>
    public int Beams { get; init; } = 2;

    /// <summary>B: blocks sampled from the base per beam (blockwise).</summary>
    public int BlocksPerBeam { get; init; } = 4;

    /// <summary>Throws <see cref="ArgumentException"/> naming the bad field.</summary>
    public void Validate()
    {
        if (!double.IsFinite(Beta) || Beta < 0) throw new ArgumentException($"IVO β must be a finite number ≥ 0, got {Beta}");
        if (Candidates < 1) throw new ArgumentException($"IVO candidates (top-k) must be at least 1, got {Candidates}");
        if (BlockTokens < 1) throw new ArgumentException($"IVO block tokens must be at least 1, got {BlockTokens}");
        if (Beams < 1) throw new ArgumentException($"IVO beams must be at least 1, got {Beams}");
        if (BlocksPerBeam < 1) throw new ArgumentException($"IVO blocks per beam must be at least 1, got {BlocksPerBeam}");
    }
}
