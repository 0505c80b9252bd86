using BiasFree.Probes;
using BiasFree.Probes.BuiltIn;

namespace BiasFree.Tests.Probes;

internal static class ProbeTestSupport
{
    private static readonly Lazy<IReadOnlyList<Probe>> Bbq0 = new(() => new BbqBuiltInSuite(0).Load());
    private static readonly Lazy<IReadOnlyList<Probe>> FairMT0 = new(() => new FairMTBuiltInSuite(0).Load());

    /// <summary>The built-in BBQ suite for seed 0, generated once per test run.</summary>
    public static IReadOnlyList<Probe> BuiltInBbq => Bbq0.Value;

    public static IReadOnlyList<Probe> BuiltInFairMT => FairMT0.Value;

    public static string Fixture(params string[] parts) =>
        Path.Combine([AppContext.BaseDirectory, "Fixtures", .. parts]);

    /// <summary>Asserts every field of two probes is equal (lists and dictionaries by content).</summary>
    public static void AssertSameProbe(Probe expected, Probe actual)
    {
        Assert.Equal(expected.Id, actual.Id);
        Assert.Equal(expected.Suite, actual.Suite);
        Assert.Equal(expected.Scenario, actual.Scenario);
        Assert.Equal(expected.Category, actual.Category);
        Assert.Equal(expected.UserTurns, actual.UserTurns);
        Assert.Equal(expected.Options, actual.Options);
        Assert.Equal(expected.Context, actual.Context);
        Assert.Equal(expected.Polarity, actual.Polarity);
        Assert.Equal(expected.CorrectOption, actual.CorrectOption);
        Assert.Equal(expected.ContextText, actual.ContextText);
        Assert.Equal(expected.Question, actual.Question);
        Assert.Equal(expected.TaskType, actual.TaskType);
        Assert.Equal(expected.Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal),
            actual.Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal));
    }

    public static void AssertSameProbes(IReadOnlyList<Probe> expected, IReadOnlyList<Probe> actual)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++) AssertSameProbe(expected[i], actual[i]);
    }
}

/// <summary>A fresh temporary directory, deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "biasfree-probes-" + Guid.NewGuid().ToString("N"));

    public TempDir() => Directory.CreateDirectory(Path);

    public string File(string name, string content)
    {
        var full = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        System.IO.File.WriteAllText(full, content);
        return full;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
