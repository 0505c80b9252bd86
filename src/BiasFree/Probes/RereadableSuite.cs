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

    /// <summary>The suite's file.</summary>
    public string FilePath => path;

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

/// <summary>
/// Official BBQ items (<c>bbq-jsonl:PATH</c>, <c>bbq-json:PATH</c>; <see cref="BbqJsonlLoader"/>): streamed, and
/// re-readable by place when every file is JSON lines (BBQ's own <c>data/*.jsonl</c>: one item per line, so a probe's
/// place is its line's). A path that holds a JSON-array file (BiasFreeBench's ambigdata) cannot be read again by place
/// and is held by an adaptive run as other formats are.
/// </summary>
/// <remarks>
/// A directory's files are placed as if laid end to end: a place's offset is its file's start (the sizes of the files
/// before it, sorted as <see cref="BbqJsonlLoader.ResolveItemFiles"/> sorts them) plus its offset in that file, so a place
/// stays 16 bytes whatever the number of files.
/// </remarks>
internal sealed class BbqJsonlSuite(string path, SuiteOptions options) : IProbeSuite, IReportsSkippedRows, IRereadableSuite
{
    // The files, and each one's size and write time, when the places were taken: a place is only valid in those files.
    private (string File, long Length, DateTime Written)[]? _placed;
    private long[]? _starts;
    private bool? _canReread;

    public string Name => BbqJsonlLoader.SuiteName;

    public string Description => $"BBQ items from {path} (label rule {SuiteOptions.Name(options.LabelRule)})";

    public IReadOnlyList<SkippedRow> SkippedRows { get; private set; } = [];

    public IReadOnlyList<Probe> Load() => [.. Enumerate()];

    public IEnumerable<Probe> Enumerate()
    {
        var skipped = new List<SkippedRow>();
        foreach (var p in BbqJsonlLoader.Read(path, options.Seed, options.LabelRule, skipped, options.Options))
        {
            yield return p;
        }
        SkippedRows = skipped;
    }

    /// <summary>True when every file of the path is JSON lines. A path that cannot be read is false here: reading it says why.</summary>
    public bool CanReread => _canReread ??= AllJsonLines();

    public IEnumerable<(Probe Probe, ProbePlace Place)> ScanPlaces()
    {
        if (!CanReread)
        {
            throw new InvalidOperationException($"suite '{path}' cannot be read again by place (it holds a JSON array).");
        }
        var files = BbqJsonlLoader.ResolveItemFiles(path);
        var placed = Stamp(files);
        var starts = new long[files.Count];
        for (var f = 1; f < files.Count; f++)
        {
            starts[f] = starts[f - 1] + placed[f - 1].Length;
        }
        _placed = placed;
        _starts = starts;
        var skipped = new List<SkippedRow>();
        foreach (var (probe, file, offset, length, line) in BbqJsonlLoader.ReadPlaced(files, options.Seed, options.LabelRule, skipped, options.Options))
        {
            yield return (probe, new ProbePlace(starts[file] + offset, length, line));
        }
        SkippedRows = skipped;
    }

    public IReadOnlyList<Probe> ReadAt(IReadOnlyList<ProbePlace> places)
    {
        ArgumentNullException.ThrowIfNull(places);
        if (_placed is null || _starts is null)
        {
            throw new InvalidOperationException("ScanPlaces was not called.");
        }
        var files = Files();
        if (files is null || !Stamp(files).SequenceEqual(_placed))
        {
            throw new InvalidOperationException($"the suite files at {path} changed while the run was using them; restore them, or start a new run.");
        }
        var probes = new Probe[places.Count];
        var handles = new Microsoft.Win32.SafeHandles.SafeFileHandle?[files.Count];
        try
        {
            var buffer = new byte[4096];
            for (var i = 0; i < places.Count; i++)
            {
                var at = places[i];
                // The last file starting at or before the offset (no file is empty: the scan refused it, so starts rise).
                var f = Array.BinarySearch(_starts, at.Offset);
                f = f >= 0 ? f : ~f - 1;
                var file = files[f];
                var handle = handles[f] ??= File.OpenHandle(file, FileMode.Open, FileAccess.Read, FileShare.Read);
                var json = JsonSupport.ReadJsonlAt(handle, file, at.Offset - _starts[f], at.Length, ref buffer);
                // The record's document keeps the bytes it is parsed from: it gets a copy, the buffer is reused.
                probes[i] = BbqJsonlLoader.ReadAt(file, at.Line, json.ToArray(), options.Seed, options.LabelRule, options.Options)
                    ?? throw new InvalidOperationException($"{file}:{at.Line}: the row no longer makes a probe (was the file changed?).");
            }
        }
        finally
        {
            foreach (var h in handles)
            {
                h?.Dispose();
            }
        }
        return probes;
    }

    private bool AllJsonLines()
    {
        try
        {
            return BbqJsonlLoader.ResolveItemFiles(path).All(f => !JsonSupport.StartsWithJsonArray(f));
        }
        catch (Exception e) when (e is IOException or ProbeFormatException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private IReadOnlyList<string>? Files()
    {
        try
        {
            return BbqJsonlLoader.ResolveItemFiles(path);
        }
        catch (Exception e) when (e is IOException or ProbeFormatException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static (string File, long Length, DateTime Written)[] Stamp(IReadOnlyList<string> files) =>
        [.. files.Select(f => new FileInfo(f)).Select((info, i) => (files[i], info.Length, info.LastWriteTimeUtc))];
}
