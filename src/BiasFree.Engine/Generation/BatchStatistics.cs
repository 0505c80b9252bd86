using System.Globalization;

namespace BiasFree.Engine.Generation;

/// <summary>
/// Counters of a <see cref="ContinuousBatcher"/> (and so of an in-process chat client) since it was created. Every figure
/// is counted, not estimated; the derived ones are defined next to their properties.
/// </summary>
public sealed record BatchStatistics
{
    public int MaxBatchSize { get; init; }
    public long CacheBudgetBytes { get; init; }
    public long CacheBytesPerToken { get; init; }

    /// <summary>Sequences that joined the running batch.</summary>
    public long Admitted { get; init; }
    /// <summary>Sequences finished for any reason (cancellations included).</summary>
    public long Completed { get; init; }
    public long Cancelled { get; init; }
    /// <summary>Most sequences running at once.</summary>
    public int LargestBatch { get; init; }
    /// <summary>Times the engine went from idle to busy and back (one continuous batch each).</summary>
    public int BusyPeriods { get; init; }
    public long DecodeSteps { get; init; }
    /// <summary>Σ over decode steps of the rows decoded in that step.</summary>
    public long DecodeRowSteps { get; init; }
    public long PrefillPasses { get; init; }
    /// <summary>Forward passes over the running batch, whatever their rows were doing.</summary>
    public long Passes { get; init; }
    /// <summary>Σ over passes of the rows in that pass, decoding and prefilling together.</summary>
    public long PassRowSteps { get; init; }
    /// <summary>Prompt tokens fed through the model.</summary>
    public long PromptTokens { get; init; }
    /// <summary>Prompt positions copied from another running sequence's cache instead of computed (prefix sharing).</summary>
    public long SharedPromptTokens { get; init; }
    /// <summary>Tokens sampled by the model (end-of-sequence tokens included).</summary>
    public long GeneratedTokens { get; init; }
    /// <summary>Wall time with at least one sequence queued or running.</summary>
    public double BusySeconds { get; init; }
    public double TotalQueueWaitSeconds { get; init; }
    public double MaxQueueWaitSeconds { get; init; }
    /// <summary>Bytes the KV cache holds now, and the most it ever held (resize copies included).</summary>
    public long CacheBytes { get; init; }
    public long PeakCacheBytes { get; init; }
    /// <summary>Cache positions reserved by running sequences (prompt + max new tokens each).</summary>
    public long ReservedTokens { get; init; }
    public int Running { get; init; }
    public int Waiting { get; init; }

    /// <summary>Mean rows per decode step = DecodeRowSteps / DecodeSteps.</summary>
    public double MeanBatchRows => DecodeSteps == 0 ? 0 : (double)DecodeRowSteps / DecodeSteps;
    /// <summary>
    /// Decode occupancy = mean rows per decode step / MaxBatchSize. It counts decoding rows only: rows prefilling in the
    /// same pass are not in it, so it understates how full a pass is (see <see cref="PassOccupancy"/>).
    /// </summary>
    public double Occupancy => MaxBatchSize == 0 ? 0 : MeanBatchRows / MaxBatchSize;
    /// <summary>Mean rows per forward pass, decoding and prefilling = PassRowSteps / Passes.</summary>
    public double MeanPassRows => Passes == 0 ? 0 : (double)PassRowSteps / Passes;
    /// <summary>Pass occupancy = mean rows per forward pass (decoding + prefilling) / MaxBatchSize: how full a pass is.</summary>
    public double PassOccupancy => MaxBatchSize == 0 ? 0 : MeanPassRows / MaxBatchSize;
    /// <summary>Generated tokens per busy second.</summary>
    public double TokensPerSecond => BusySeconds > 0 ? GeneratedTokens / BusySeconds : 0;
    /// <summary>Share of prompt positions that were copied, not computed = SharedPromptTokens / (PromptTokens + SharedPromptTokens).</summary>
    public double SharedPromptFraction => PromptTokens + SharedPromptTokens == 0 ? 0 : (double)SharedPromptTokens / (PromptTokens + SharedPromptTokens);
    /// <summary>Mean time from queueing to joining the batch.</summary>
    public double MeanQueueWaitSeconds => Admitted == 0 ? 0 : TotalQueueWaitSeconds / Admitted;

    // Names of the counters the chat client reported before continuous batching.
    /// <summary>Requests finished (= <see cref="Completed"/>).</summary>
    public int Requests => (int)Completed;
    /// <summary>Continuous batches run (= <see cref="BusyPeriods"/>).</summary>
    public int Batches => BusyPeriods;

    public void Deconstruct(out int requests, out int batches, out int largestBatch) =>
        (requests, batches, largestBatch) = (Requests, Batches, LargestBatch);

    /// <summary>
    /// One line for progress displays: pass occupancy (all rows), decode occupancy (decoding rows), tokens/s, queue wait,
    /// cache use and the share of prompt positions shared.
    /// </summary>
    public string Describe() => string.Format(CultureInfo.InvariantCulture,
        "pass {0:0.0}/{1} ({2:0}%) · decode {3:0.0}/{1} ({4:0}%) · {5:0} tok/s · wait {6:0.00}s · cache {7:0.0}/{8:0} MB (peak {9:0.0}) · prefix shared {10:0}%",
        MeanPassRows, MaxBatchSize, PassOccupancy * 100, MeanBatchRows, Occupancy * 100, TokensPerSecond, MeanQueueWaitSeconds,
        CacheBytes / 1048576.0, CacheBudgetBytes / 1048576.0, PeakCacheBytes / 1048576.0, SharedPromptFraction * 100);
}
