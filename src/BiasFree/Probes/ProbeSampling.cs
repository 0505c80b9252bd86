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
        var keys = probes.Select(p => KeyOf(p, seed)).ToList();
        return [.. StratifiedIndices(keys, limit, seed).Select(i => probes[i])];
    }

    /// <summary>What <see cref="Stratified"/> needs of a probe: its stratum and its seeded hash (a streamed suite keeps only these).</summary>
    public static (string Stratum, ulong Hash) KeyOf(Probe probe, int seed)
    {
        ArgumentNullException.ThrowIfNull(probe);
        return (StratumOf(probe), StableRandom.For(seed, $"{probe.Suite}\u0001{probe.Id}").NextUInt64());
    }

    /// <summary>
    /// <see cref="Stratified"/> on the probes' keys (<see cref="KeyOf"/>), in suite order: the indices kept, ascending.
    /// </summary>
    public static IReadOnlyList<int> StratifiedIndices(IReadOnlyList<(string Stratum, ulong Hash)> keys, int limit, int seed)
    {
        ArgumentNullException.ThrowIfNull(keys);
        ArgumentOutOfRangeException.ThrowIfNegative(limit);
        if (limit >= keys.Count)
        {
            return [.. Enumerable.Range(0, keys.Count)];
        }

        var strata = keys
            .Select((k, index) => (k.Hash, Index: index, k.Stratum))
            .GroupBy(x => x.Stratum, StringComparer.Ordinal)
            .Select(g => (Key: g.Key, Items: g.ToList()))
            .ToList();
        var total = keys.Count;
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
                .OrderBy(x => x.Hash)
                .ThenBy(x => x.Index)
                .Take(quota[s.Key])
                .Select(x => x.Index));
        }
        kept.Sort();
        return kept;
    }

    /// <summary>
    /// Every probe of <paramref name="probes"/> in a seeded order whose every prefix is a stratified sample: after the
    /// first m probes each stratum (category × context condition) has had floor or ceil of its proportional share
    /// m · n_s / N. Adaptive sampling (<see cref="Adaptive.AdaptiveSpec"/>) runs probes in this order and stops early, so
    /// wherever it stops, the probes it used represent every stratum in proportion; a later, tighter run continues the
    /// same order, so it never repeats a probe.
    /// </summary>
    /// <remarks>
    /// Inside a stratum the probes are ordered by the same <see cref="StableRandom"/> hash of (seed, suite, id) as
    /// <see cref="Stratified"/>. The strata are interleaved greedily: position m (from 1) goes to the stratum, among those
    /// with probes left, that is furthest behind its share, i.e. with the largest m · n_s / N − c_s, where c_s is how many
    /// of its probes came before (computed in integers, m · n_s − c_s · N, so exactly); ties go to the larger stratum,
    /// then to a seeded order of the strata. The tests check that every prefix keeps each stratum within one probe of
    /// its share.
    /// </remarks>
    public static IReadOnlyList<Probe> StratifiedOrder(IReadOnlyList<Probe> probes, int seed)
    {
        ArgumentNullException.ThrowIfNull(probes);
        var keys = probes.Select(p => KeyOf(p, seed)).ToList();
        return [.. StratifiedOrderIndices(keys, seed).Select(i => probes[i])];
    }

    /// <summary>
    /// <see cref="StratifiedOrder"/> on the probes' keys (<see cref="KeyOf"/>, listed in suite order): the indices of the
    /// probes in that order (the algorithm is in the remarks of <see cref="StratifiedOrder"/>, which calls this). A caller
    /// that holds only the keys (an adaptive run over a streamed suite) gets the same order as on the probes.
    /// </summary>
    public static int[] StratifiedOrderIndices(IReadOnlyList<(string Stratum, ulong Hash)> keys, int seed)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var strata = Enumerable.Range(0, keys.Count)
            .GroupBy(i => keys[i].Stratum, StringComparer.Ordinal)
            .Select(g => (
                Key: g.Key,
                Items: g.OrderBy(i => keys[i].Hash).ThenBy(i => i).ToArray(),
                Rank: StableRandom.For(seed, "order\u0001" + g.Key).NextUInt64()))
            .OrderBy(s => s.Rank).ThenBy(s => s.Key, StringComparer.Ordinal)
            .ToList();
        long total = keys.Count;
        var taken = new int[strata.Count];
        var order = new int[keys.Count];
        for (long m = 1; m <= total; m++)
        {
            var best = -1;
            long bestDeficit = 0;
            for (var s = 0; s < strata.Count; s++)
            {
                var size = strata[s].Items.Length;
                if (taken[s] == size)
                {
                    continue;
                }
                var deficit = m * size - taken[s] * total;
                // Strata are in seeded order, so the first of equal deficit and size wins the tie.
                if (best < 0 || deficit > bestDeficit || (deficit == bestDeficit && size > strata[best].Items.Length))
                {
                    best = s;
                    bestDeficit = deficit;
                }
            }
            order[m - 1] = strata[best].Items[taken[best]++];
        }
        return order;
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
        return [.. UniformLegacyIndices(probes.Count, limit, seed).Select(i => probes[i])];
    }

    /// <summary><see cref="UniformLegacy"/> on a suite of <paramref name="count"/> probes: the indices kept, ascending.</summary>
    public static IReadOnlyList<int> UniformLegacyIndices(int count, int limit, int seed)
    {
        if (limit >= count)
        {
            return [.. Enumerable.Range(0, count)];
        }
        var order = Enumerable.Range(0, count).ToArray();
        new Random(seed).Shuffle(order);
        return [.. order.Take(limit).Order()];
    }

    private static string StratumOf(Probe p) => $"{p.Category}\u0001{p.Context?.ToString() ?? "-"}";
}
