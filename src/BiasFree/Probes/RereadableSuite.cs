using BiasFree.Probes.Loaders;

namespace BiasFree.Probes;

/// <summary>Where a probe's record is in its suite file: what it takes to read that one probe again.</summary>
/// <param name="Offset">Byte offset of the record's JSON in the file.</param>
/// <param name="Length">Bytes of the record's JSON.</param>
/// <param name="Line">1-based line of the record (for error messages).</param>
internal readonly record struct ProbePlace(long Offset, int Length, int Line);

/// <summary>
/// A suite whose probes can be read again one at a time from their place in its file (BiasFree JSONL). An adaptive run
/// releases its probes out of file order, batch by batch; with such a suite it keeps each probe's place (16 bytes)
/// instead of the probe, and reads a batch again when it releases it (issue #11: memory flat in the suite's size).
/// </summary>
internal interface IRereadableSuite
{
    /// <summary>False when this suite only wraps one that cannot (a filter over another format).</summary>
    bool CanReread { get; }

    /// <summary><see cref="IProbeSuite.Scan"/>'s probes, checked the same way, each with its place.</summary>
    IEnumerable<(Probe Probe, ProbePlace Place)> ScanPlaces();

    /// <summary>The probes at <paramref name="places"/> (places <see cref="ScanPlaces"/> gave), in that order, built as <see cref="IProbeSuite.Enumerate"/> builds them.</summary>
    IReadOnlyList<Probe> ReadAt(IReadOnlyList<ProbePlace> places);
}

/// <summary>A BiasFree JSONL suite file (<c>jsonl:PATH</c>): streamed, scanned, and re-readable by place.</summary>
internal sealed class ProbeJsonlSuite(string path) : IProbeSuite, IReportsSkippedRows, IRereadableSuite
{
    // The file's size and write time when its places were taken: a place is only valid in that file.
    private (long Length, DateTime Written)? _placed;

    public string Name => Path.GetFileNameWithoutExtension(path);

    public string Description => $"BiasFree JSONL suite {path}";

    public IReadOnlyList<SkippedRow> SkippedRows => [];

    public IReadOnlyList<Probe> Load() => [.. ProbeJsonl.Read(path)];

    public IEnumerable<Probe> Enumerate() => ProbeJsonl.Read(path);

    public IEnumerable<Probe> Scan() => ProbeJsonl.Scan(path);

    public bool CanReread => true;

    public IEnumerable<(Probe Probe, ProbePlace Place)> ScanPlaces()
    {
        _placed = Stamp();
        return ProbeJsonl.ScanPlaces(path);
    }

    public IReadOnlyList<Probe> ReadAt(IReadOnlyList<ProbePlace> places)
    {
        ArgumentNullException.ThrowIfNull(places);
        if (_placed is null)
        {
            throw new InvalidOperationException("ScanPlaces was not called.");
        }
        if (Stamp() != _placed)
        {
            throw new InvalidOperationException($"the suite file {path} changed while the run was using it; restore it, or start a new run.");
        }
        var probes = new Probe[places.Count];
        if (places.Count == 0)
        {
            return probes;
        }
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var buffer = new byte[4096];
        for (var i = 0; i < places.Count; i++)
        {
            var at = places[i];
            probes[i] = ProbeLineReader.Parse(path, at.Line, JsonSupport.ReadJsonlAt(file, path, at.Offset, at.Length, ref buffer));
        }
        return probes;
    }

    private (long, DateTime) Stamp()
    {
        var info = new FileInfo(path);
        return (info.Length, info.LastWriteTimeUtc);
    }
}
