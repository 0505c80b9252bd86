using System.Threading.Channels;
using BiasFree.Evaluations;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Scoring;

namespace BiasFree.Adaptive;

/// <summary>
/// Hands out the (method, probe) items of an adaptive run. Each cell (see <see cref="AdaptiveSpec.Scope"/>) walks its
/// probes in <see cref="ProbeSampling.StratifiedOrder"/>, a batch of <see cref="PrecisionRule.CheckEvery"/> at a time;
/// when a batch is fully answered it checks <see cref="PrecisionRule.IsPrecise"/> and either stops or releases the next
/// batch. A cell therefore stops at the same probe whatever the concurrency or the order replies come back in, and a
/// resume (even with a lower precision) replays the stored answers through the same checkpoints and carries on from
/// there: no probe is ever asked twice.
/// <para>
/// It does not hold the probes (issue #11: memory flat in the suite's size): each cell keeps its order as the probes'
/// ordinals in the run's <see cref="ProbeSource"/>, which for a BiasFree JSONL suite keeps each probe's place in the
/// file (16 bytes), and a batch's probes are read again when the batch is released. Released probes not answered yet
/// are the only ones it holds (at most one batch per cell).
/// </para>
/// </summary>
public sealed class AdaptiveScheduler
{
    private sealed class Cell(string method, Scenario scenario, string category, int[] order)
    {
        public string Method { get; } = method;
        public Scenario Scenario { get; } = scenario;
        public string Category { get; } = category;
        /// <summary>The cell's probes in release order, as ordinals of the run's probes (shared by the methods' cells).</summary>
        public int[] Order { get; } = order;
        public int Step { get; } = PrecisionRule.CheckEvery(order.Length);
        public int Released { get; set; }
        public int Pending { get; set; }
        public (int BiasFree, int Eligible) Counts { get; set; }
        public bool Stopped { get; set; }
    }

    private readonly Lock _gate = new();
    private readonly Channel<(string Method, Probe Probe)> _work = Channel.CreateUnbounded<(string, Probe)>();
    // Released and not yet complete: the only probes held.
    private readonly Dictionary<(string Method, string Suite, string ProbeId), Cell> _pending = [];
    private readonly List<Cell> _cells = [];
    private readonly IReadOnlyDictionary<(string Method, string Suite, string ProbeId), Label> _stored;
    private readonly Func<IReadOnlyList<int>, IReadOnlyList<Probe>> _read;
    private readonly bool _byCategory;
    private readonly double _precision;
    private int _active;
    private bool _started;

    /// <param name="spec">Precision and scope.</param>
    /// <param name="methods">The run's methods.</param>
    /// <param name="probes">The run's probes (any order; they are put in <see cref="ProbeSampling.StratifiedOrder"/>).</param>
    /// <param name="seed">The run's seed (orders the probes).</param>
    /// <param name="stored">Labels of the rows already complete; they are counted, never released again.</param>
    public AdaptiveScheduler(AdaptiveSpec spec, IReadOnlyList<string> methods, IReadOnlyList<Probe> probes, int seed,
        IReadOnlyDictionary<(string Method, string Suite, string ProbeId), Label> stored)
        : this(spec, methods, probes ?? throw new ArgumentNullException(nameof(probes)), ordinals => [.. ordinals.Select(o => probes[o])], seed, stored)
    {
    }

    /// <summary>
    /// A scheduler over a streamed source: it scans the source once (<see cref="ProbeSource.ScanKept"/>) and reads each
    /// batch's probes again when it releases the batch (<see cref="ProbeSource.ReadKept"/>). Same order, same batches,
    /// same stops as over the loaded list.
    /// </summary>
    public AdaptiveScheduler(AdaptiveSpec spec, IReadOnlyList<string> methods, ProbeSource probes, int seed,
        IReadOnlyDictionary<(string Method, string Suite, string ProbeId), Label> stored)
        : this(spec, methods, (probes ?? throw new ArgumentNullException(nameof(probes))).ScanKept(), probes.ReadKept, seed, stored)
    {
    }

    /// <summary>The scheduler for a run's probes: over a <see cref="ProbeSource"/> without holding them, else over the list.</summary>
    public static AdaptiveScheduler For(AdaptiveSpec spec, IReadOnlyList<string> methods, IReadOnlyCollection<Probe> probes, int seed,
        IReadOnlyDictionary<(string Method, string Suite, string ProbeId), Label> stored) => probes switch
        {
            ProbeSource source => new AdaptiveScheduler(spec, methods, source, seed, stored),
            IReadOnlyList<Probe> list => new AdaptiveScheduler(spec, methods, list, seed, stored),
            null => throw new ArgumentNullException(nameof(probes)),
            _ => new AdaptiveScheduler(spec, methods, [.. probes], seed, stored),
        };

    /// <param name="spec">Precision and scope.</param>
    /// <param name="methods">The run's methods.</param>
    /// <param name="scan">The probes in ordinal order, each with at least its id, suite, scenario, category and context.</param>
    /// <param name="read">Builds the probes with these ordinals in full, in this order.</param>
    /// <param name="seed">The run's seed.</param>
    /// <param name="stored">Labels of the rows already complete.</param>
    private AdaptiveScheduler(AdaptiveSpec spec, IReadOnlyList<string> methods, IEnumerable<Probe> scan, Func<IReadOnlyList<int>, IReadOnlyList<Probe>> read,
        int seed, IReadOnlyDictionary<(string Method, string Suite, string ProbeId), Label> stored)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentNullException.ThrowIfNull(methods);
        ArgumentNullException.ThrowIfNull(stored);
        spec.Validate();
        _precision = spec.Precision;
        _stored = stored;
        _read = read;
        _byCategory = spec.Scope == AdaptiveSpec.CategoryScope;

        // Only what the order and the cells need is kept while ordering: each probe's stratum (one string per stratum)
        // and seeded hash (ProbeSampling.KeyOf), and its cell.
        var strata = new Dictionary<string, string>(StringComparer.Ordinal);
        var keys = new List<(string Stratum, ulong Hash)>();
        var cellKeys = new List<(Scenario Scenario, string Category)>();
        var cellOf = new List<int>();
        var cellIndex = new Dictionary<(Scenario, string), int>();
        foreach (var p in scan)
        {
            var (stratum, hash) = ProbeSampling.KeyOf(p, seed);
            keys.Add((strata.TryGetValue(stratum, out var known) ? known : strata[stratum] = stratum, hash));
            var cellKey = (p.Scenario, _byCategory ? p.Category : ScoreTable.AllCategories);
            if (!cellIndex.TryGetValue(cellKey, out var c))
            {
                c = cellIndex[cellKey] = cellKeys.Count;
                cellKeys.Add((cellKey.Scenario, string.Intern(cellKey.Item2)));
            }
            cellOf.Add(c);
        }
        var order = ProbeSampling.StratifiedOrderIndices(keys, seed);
        // Cells in the order their first probe comes in the stratified order (as grouping the ordered list gave them).
        var members = new List<List<int>>(cellKeys.Count);
        var rank = new int[cellKeys.Count];
        Array.Fill(rank, -1);
        foreach (var o in order)
        {
            var c = cellOf[o];
            if (rank[c] < 0)
            {
                rank[c] = members.Count;
                members.Add([]);
            }
            members[rank[c]].Add(o);
        }
        var byRank = new (Scenario Scenario, string Category)[members.Count];
        for (var c = 0; c < cellKeys.Count; c++)
        {
            if (rank[c] >= 0)
            {
                byRank[rank[c]] = cellKeys[c];
            }
        }
        var orders = members.Select(m => m.ToArray()).ToArray();
        foreach (var method in methods)
        {
            for (var r = 0; r < orders.Length; r++)
            {
                _cells.Add(new Cell(method, byRank[r].Scenario, byRank[r].Category, orders[r]));
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
            if (!_pending.Remove((method, probe.Suite, probe.Id), out var cell))
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
        get { lock (_gate) { return _cells.Sum(c => c.Stopped ? c.Released : c.Order.Length); } }
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
            if (PrecisionRule.IsPrecise(cell.Counts.BiasFree, cell.Counts.Eligible, _precision) || cell.Released == cell.Order.Length)
            {
                cell.Stopped = true;
                if (--_active == 0)
                {
                    _work.Writer.TryComplete();
                }
                return;
            }
            var end = Math.Min(cell.Order.Length, cell.Released + cell.Step);
            // The batch's probes, read again from the suite (a few hundred lines at most: CheckEvery is 2% of the cell).
            var batch = _read(new ArraySegment<int>(cell.Order, cell.Released, end - cell.Released));
            foreach (var p in batch)
            {
                if (p.Scenario != cell.Scenario || (_byCategory && !string.Equals(p.Category, cell.Category, StringComparison.Ordinal)))
                {
                    throw new InvalidOperationException($"probe '{p.Id}' is not the probe the run ordered (was a suite file changed?).");
                }
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
                    _pending[(cell.Method, p.Suite, p.Id)] = cell;
                    _work.Writer.TryWrite((cell.Method, p));
                }
            }
            cell.Released = end;
        }
    }
}
