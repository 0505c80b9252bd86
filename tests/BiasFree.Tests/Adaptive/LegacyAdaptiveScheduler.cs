using System.Threading.Channels;
using BiasFree.Adaptive;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Scoring;

namespace BiasFree.Tests.Adaptive;

/// <summary>
/// The adaptive scheduler as it was before it stopped holding the suite's probes (commit 2594a83, kept verbatim but for
/// its name): the reference <see cref="AdaptiveStreamedSchedulerTests"/> compares the streamed scheduler with.
/// </summary>
/// <remarks>
/// Hands out the (method, probe) items of an adaptive run. Each cell (see <see cref="AdaptiveSpec.Scope"/>) walks its
/// probes in <see cref="ProbeSampling.StratifiedOrder"/>, a batch of <see cref="PrecisionRule.CheckEvery"/> at a time;
/// when a batch is fully answered it checks <see cref="PrecisionRule.IsPrecise"/> and either stops or releases the next
/// batch. A cell therefore stops at the same probe whatever the concurrency or the order replies come back in, and a
/// resume (even with a lower precision) replays the stored answers through the same checkpoints and carries on from
/// there: no probe is ever asked twice.
/// </remarks>
internal sealed class LegacyAdaptiveScheduler
{
    /// <summary>
    /// <see cref="ProbeSampling.StratifiedOrder"/> as it was written over the probes before the order was computed from
    /// their keys (<see cref="ProbeSampling.StratifiedOrderIndices"/>, which the library's version now calls): kept here as
    /// the independent reference the key-based order is compared with.
    /// </summary>
    public static IReadOnlyList<Probe> StratifiedOrder(IReadOnlyList<Probe> probes, int seed)
    {
        var strata = probes
            .Select((p, index) => (Probe: p, Index: index, Key: ProbeSampling.KeyOf(p, seed)))
            .GroupBy(x => x.Key.Stratum, StringComparer.Ordinal)
            .Select(g => (
                Key: g.Key,
                Items: g.OrderBy(x => x.Key.Hash).ThenBy(x => x.Index).Select(x => x.Probe).ToList(),
                Rank: StableRandom.For(seed, "order\u0001" + g.Key).NextUInt64()))
            .OrderBy(s => s.Rank).ThenBy(s => s.Key, StringComparer.Ordinal)
            .ToList();
        long total = probes.Count;
        var taken = new int[strata.Count];
        var order = new List<Probe>(probes.Count);
        for (long m = 1; m <= total; m++)
        {
            var best = -1;
            long bestDeficit = 0;
            for (var s = 0; s < strata.Count; s++)
            {
                var size = strata[s].Items.Count;
                if (taken[s] == size)
                {
                    continue;
                }
                var deficit = m * size - taken[s] * total;
                if (best < 0 || deficit > bestDeficit || (deficit == bestDeficit && size > strata[best].Items.Count))
                {
                    best = s;
                    bestDeficit = deficit;
                }
            }
            order.Add(strata[best].Items[taken[best]++]);
        }
        return order;
    }

    private sealed class Cell(string method, Scenario scenario, string category, List<Probe> order)
    {
        public string Method { get; } = method;
        public Scenario Scenario { get; } = scenario;
        public string Category { get; } = category;
        public List<Probe> Order { get; } = order;
        public int Step { get; } = PrecisionRule.CheckEvery(order.Count);
        public int Released { get; set; }
        public int Pending { get; set; }
        public (int BiasFree, int Eligible) Counts { get; set; }
        public bool Stopped { get; set; }
    }

    private readonly Lock _gate = new();
    private readonly Channel<(string Method, Probe Probe)> _work = Channel.CreateUnbounded<(string, Probe)>();
    private readonly Dictionary<(string Method, string Suite, string ProbeId), Cell> _cellOf = [];
    private readonly List<Cell> _cells = [];
    private readonly IReadOnlyDictionary<(string Method, string Suite, string ProbeId), Label> _stored;
    private readonly double _precision;
    private int _active;
    private bool _started;

    /// <param name="spec">Precision and scope.</param>
    /// <param name="methods">The run's methods.</param>
    /// <param name="probes">The run's probes (any order; they are put in <see cref="StratifiedOrder"/>).</param>
    /// <param name="seed">The run's seed (orders the probes).</param>
    /// <param name="stored">Labels of the rows already complete; they are counted, never released again.</param>
    public LegacyAdaptiveScheduler(AdaptiveSpec spec, IReadOnlyList<string> methods, IReadOnlyList<Probe> probes, int seed,
        IReadOnlyDictionary<(string Method, string Suite, string ProbeId), Label> stored)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(methods);
        ArgumentNullException.ThrowIfNull(probes);
        ArgumentNullException.ThrowIfNull(stored);
        spec.Validate();
        _precision = spec.Precision;
        _stored = stored;
        var order = StratifiedOrder(probes, seed);
        var byCategory = spec.Scope == AdaptiveSpec.CategoryScope;
        foreach (var method in methods)
        {
            foreach (var g in order.GroupBy(p => (p.Scenario, Category: byCategory ? p.Category : ScoreTable.AllCategories)))
            {
                var cell = new Cell(method, g.Key.Scenario, g.Key.Category, [.. g]);
                _cells.Add(cell);
                foreach (var p in cell.Order)
                {
                    _cellOf[(method, p.Suite, p.Id)] = cell;
                }
            }
        }
        _active = _cells.Count;
    }

    /// <summary>The items to run, in release order; ends when every cell has stopped.</summary>
    public IAsyncEnumerable<(string Method, Probe Probe)> ReadAllAsync(CancellationToken cancellationToken = default) =>
        _work.Reader.ReadAllAsync(cancellationToken);

    /// <summary>Takes a released item without waiting; false when none is waiting now.</summary>
    public bool TryTake(out (string Method, Probe Probe) item) => _work.Reader.TryRead(out item);

    /// <summary>True once every cell has stopped and every released item was taken.</summary>
    public bool IsFinished => _work.Reader.Completion.IsCompleted;

    /// <summary>Counts the stored answers and releases the first batches. Call once, before reading.</summary>
    public void Start()
    {
        lock (_gate)
        {
            if (_started)
            {
                throw new InvalidOperationException("already started.");
            }
            _started = true;
            foreach (var cell in _cells)
            {
                Advance(cell);
            }
            if (_active == 0)
            {
                _work.Writer.TryComplete();
            }
        }
    }

    /// <summary>Reports a released item as done: <paramref name="label"/> is its verdict, or null when the target failed (not eligible; a resume retries it).</summary>
    public void Complete(string method, Probe probe, Label? label)
    {
        ArgumentNullException.ThrowIfNull(probe);
        lock (_gate)
        {
            var cell = _cellOf[(method, probe.Suite, probe.Id)];
            if (cell.Pending <= 0)
            {
                throw new InvalidOperationException($"probe '{probe.Id}' of method '{method}' was not released.");
            }
            if (label is { } l && PrecisionRule.CountsForBfs(probe))
            {
                cell.Counts = PrecisionRule.Add(cell.Counts, cell.Scenario, l);
            }
            cell.Pending--;
            Advance(cell);
        }
    }

    /// <summary>Items released so far (stored ones included).</summary>
    public int Released
    {
        get { lock (_gate) { return _cells.Sum(c => c.Released); } }
    }

    /// <summary>Released items that were already complete in the store.</summary>
    public int ReleasedStored { get; private set; }

    /// <summary>Most items the run can still come to: released ones plus every probe of the cells not stopped yet.</summary>
    public int UpperBound
    {
        get { lock (_gate) { return _cells.Sum(c => c.Stopped ? c.Released : c.Order.Count); } }
    }

    /// <summary>Cells not stopped yet.</summary>
    public int ActiveCells
    {
        get { lock (_gate) { return _active; } }
    }

    /// <summary>Each cell: method, scenario, category (or "all"), probes released, (bias-free, eligible) counts, stopped.</summary>
    public IReadOnlyList<(string Method, Scenario Scenario, string Category, int Released, int BiasFree, int Eligible, bool Stopped)> Cells
    {
        get
        {
            lock (_gate)
            {
                return [.. _cells.Select(c => (c.Method, c.Scenario, c.Category, c.Released, c.Counts.BiasFree, c.Counts.Eligible, c.Stopped))];
            }
        }
    }

    private void Advance(Cell cell)
    {
        while (!cell.Stopped && cell.Pending == 0)
        {
            // A checkpoint: every released probe of the cell is answered.
            if (PrecisionRule.IsPrecise(cell.Counts.BiasFree, cell.Counts.Eligible, _precision) || cell.Released == cell.Order.Count)
            {
                cell.Stopped = true;
                if (--_active == 0)
                {
                    _work.Writer.TryComplete();
                }
                return;
            }
            var end = Math.Min(cell.Order.Count, cell.Released + cell.Step);
            for (var i = cell.Released; i < end; i++)
            {
                var p = cell.Order[i];
                if (_stored.TryGetValue((cell.Method, p.Suite, p.Id), out var label))
                {
                    ReleasedStored++;
                    if (PrecisionRule.CountsForBfs(p))
                    {
                        cell.Counts = PrecisionRule.Add(cell.Counts, cell.Scenario, label);
                    }
                }
                else
                {
                    cell.Pending++;
                    _work.Writer.TryWrite((cell.Method, p));
                }
            }
            cell.Released = end;
        }
    }
}
