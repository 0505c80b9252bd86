namespace BiasFree.Probes;

/// <summary>
/// Seeded, stratified subsets of a suite, for runs with a probe limit. A bare <c>Take(n)</c> keeps the first
/// category of a suite only; a uniform shuffle can leave small categories out by chance. Here every stratum
/// (category × context condition) gets its proportional share of the limit, so per-category results of a limited
/// run are estimates of the same quantities as the full run's.
/// </summary>
public static class ProbeSampling
{
    /// <summary>
    /// Keeps <paramref name="limit"/> probes of <paramref name="probes"/> (all of them when there are no more than
    /// that), in their original order.
    /// </summary>
    /// <remarks>
    /// Allocation is Hamilton's largest-remainder method: stratum <c>s</c> with <c>n_s</c> of <c>N</c> probes gets
    /// <c>floor(limit · n_s / N)</c>, and the probes left over go to the strata with the largest fractional parts
    /// (ties: larger stratum first, then a seeded order of the strata, so that with a limit below the number of strata
    /// the seed decides which strata are represented). Inside a stratum the probes kept are those with the smallest
    /// <see cref="StableRandom"/> hash of (seed, suite, id): the choice depends on the seed and the probes only,
    /// not on the .NET version or on the order the suite was read in.
    /// </remarks>
    public static IReadOnlyList<Probe> Stratified(IReadOnlyList<Probe> probes, int limit, int seed)
    {
        ArgumentNullException.ThrowIfNull(probes);
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        if (limit >= probes.Count)
        {
            return probes;
        }

        var strata = probes
            .Select((p, index) => (Probe: p, Index: index))
            .GroupBy(x => StratumOf(x.Probe), StringComparer.Ordinal)
            .Select(g => (Key: g.Key, Items: g.ToList()))
            .ToList();
        var total = probes.Count;
        var quota = strata.ToDictionary(s => s.Key, s => (int)((long)limit * s.Items.Count / total), StringComparer.Ordinal);
        var left = limit - quota.Values.Sum();
        foreach (var s in strata
                     .OrderByDescending(s => ((long)limit * s.Items.Count) % total)
                     .ThenByDescending(s => s.Items.Count)
                     .ThenBy(s => StableRandom.For(seed, s.Key).NextUInt64())
                     .ThenBy(s => s.Key, StringComparer.Ordinal)
                     .Take(left))
        {
            quota[s.Key]++;
        }

        var kept = new List<int>(limit);
        foreach (var s in strata)
        {
            kept.AddRange(s.Items
                .OrderBy(x => StableRandom.For(seed, $"{x.Probe.Suite}\u0001{x.Probe.Id}").NextUInt64())
                .ThenBy(x => x.Index)
                .Take(quota[s.Key])
                .Select(x => x.Index));
        }
        kept.Sort();
        return [.. kept.Select(i => probes[i])];
    }

    /// <summary>
    /// The first <paramref name="limit"/> of a seeded <see cref="Random"/> shuffle, in the original order: how runs
    /// stored before stratified sampling chose their probes (kept so that such runs resume over the same probes).
    /// </summary>
    public static IReadOnlyList<Probe> UniformLegacy(IReadOnlyList<Probe> probes, int limit, int seed)
    {
        ArgumentNullException.ThrowIfNull(probes);
        if (limit >= probes.Count)
        {
            return probes;
        }
        var order = Enumerable.Range(0, probes.Count).ToArray();
        new Random(seed).Shuffle(order);
        return [.. order.Take(limit).Order().Select(i => probes[i])];
    }

    private static string StratumOf(Probe p) => $"{p.Category}\u0001{p.Context?.ToString() ?? "-"}";
}
