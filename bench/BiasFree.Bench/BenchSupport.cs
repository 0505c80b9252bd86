using System.Diagnostics;
using System.Globalization;

/// <summary>
/// What the decoding-method benches (<c>ivo</c>, <c>persona-judge</c>) share: reading their raw options, the load
/// average printed beside a table, and timing rows with interleaved repeats.
/// </summary>
internal static class BenchSupport
{
    /// <summary>The value after <paramref name="name"/> in <paramref name="args"/>, or null.</summary>
    public static string? Arg(IReadOnlyList<string> args, string name)
    {
        int i = args.ToList().IndexOf(name);
        return i >= 0 && i + 1 < args.Count ? args[i + 1] : null;
    }

    /// <summary>The integer after <paramref name="name"/>, or <paramref name="fallback"/>.</summary>
    public static int Int(IReadOnlyList<string> args, string name, int fallback) =>
        Arg(args, name) is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : fallback;

    /// <summary>Sets torch's intra-op threads when <c>--threads N</c> is given.</summary>
    public static void ApplyThreads(IReadOnlyList<string> args)
    {
        if (Arg(args, "--threads") is { } th) TorchSharp.torch.set_num_threads(int.Parse(th, CultureInfo.InvariantCulture));
    }

    /// <summary>The 1-minute load average (NaN off Linux): a table is only as good as the machine was quiet.</summary>
    public static double LoadAverage() =>
        File.Exists("/proc/loadavg") ? double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture) : double.NaN;

    /// <summary>
    /// Runs every row once as a warm-up (first-call allocations, kernel selection), then <paramref name="repeats"/> times
    /// interleaved (row 1, row 2, ..., row 1, ...) so that a change in machine load falls on all rows alike rather than on
    /// whichever ran during it. Returns per row the median tokens/s (tokens a run reports / its wall seconds) and the
    /// last run's result.
    /// </summary>
    public static (double TokensPerSecond, T Last)[] TimeInterleaved<T>(IReadOnlyList<Func<T>> rows, Func<T, int> tokens, int repeats)
    {
        foreach (var row in rows) row();
        var speeds = rows.Select(_ => new List<double>()).ToArray();
        var lasts = new T[rows.Count];
        for (int i = 0; i < repeats; i++)
        {
            for (int r = 0; r < rows.Count; r++)
            {
                var sw = Stopwatch.StartNew();
                lasts[r] = rows[r]();
                speeds[r].Add(tokens(lasts[r]) / sw.Elapsed.TotalSeconds);
            }
        }
        return [.. speeds.Select((s, r) => (s.Order().ElementAt(s.Count / 2), lasts[r]))];
    }
}
