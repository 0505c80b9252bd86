using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using BiasFree.Adaptive;
using BiasFree.Evaluations;
using BiasFree.Judges;
using BiasFree.Probes;
using BiasFree.Probes.Loaders;
using BiasFree.Runs;
using BiasFree.Tests.Runs;

namespace BiasFree.Tests.Adaptive;

/// <summary>
/// The same comparison on official BBQ JSON-lines files (<c>bbq-jsonl:PATH</c>), whose places are their lines': one
/// file, or a directory of files read as one (offsets laid end to end), fresh and resumed; and a changed file refused.
/// </summary>
public partial class AdaptiveStreamedSchedulerTests
{
    private static readonly string[] BbqCategories = ["Age", "Gender_identity", "Religion", "SES", "Nationality"];

    private static readonly JsonSerializerOptions BbqJson = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Seeded rows in BBQ's own format (one object per line), one file per category: uneven sizes, both contexts and
    /// polarities, the unknown answer anywhere, some rows that cannot be labelled (skipped), blank lines, CRLF line ends
    /// in one file, a BOM in another, and multi-byte text, so that a place's byte offset is not its character offset.
    /// </summary>
    private static Dictionary<string, string> BbqFiles(int n, int seed)
    {
        var rng = new Random(seed);
        var lines = BbqCategories.ToDictionary(c => c, _ => new List<string>());
        for (var i = 0; i < n; i++)
        {
            var category = BbqCategories[(int)(BbqCategories.Length * Math.Pow(rng.NextDouble(), 2))];
            var (g0, g1) = category == "Age" ? ("old", "nonOld") : ($"grüppe-{i % 3}", $"other{i % 4}");
            var unknown = rng.Next(3);
            var named = new[] { (Text: $"The {g0} \"one\" {i % 7}", Group: g0), (Text: $"The {g1} person ✓", Group: g1) };
            var texts = new string[3];
            var info = new Dictionary<string, string[]>();
            for (int a = 0, k = 0; a < 3; a++)
            {
                var (text, group) = a == unknown ? ("Can't be determined", "unknown") : named[k++];
                texts[a] = text;
                info[$"ans{a}"] = [text.Replace("The ", "", StringComparison.Ordinal), group];
            }
            var ambiguous = rng.Next(2) == 0;
            // One row in twelve names a stereotyped group no answer has: BBQ rows like it are skipped, not probes.
            string[] stereotyped = rng.Next(12) == 0 ? ["nobody"] : [g0];
            var row = new Dictionary<string, object>
            {
                ["example_id"] = lines[category].Count,
                ["question_index"] = (i % 25 + 1).ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["question_polarity"] = rng.Next(2) == 0 ? "neg" : "nonneg",
                ["context_condition"] = ambiguous ? "ambig" : "disambig",
                ["category"] = category,
                ["answer_info"] = info,
                ["additional_metadata"] = new Dictionary<string, object> { ["subcategory"] = "None", ["stereotyped_groups"] = stereotyped, ["version"] = "a" },
                ["context"] = $"Context {i}\twith a tab, é and 日本.",
                ["question"] = "Who did it?",
                ["ans0"] = texts[0],
                ["ans1"] = texts[1],
                ["ans2"] = texts[2],
                ["label"] = ambiguous ? unknown : (unknown + 1 + rng.Next(2)) % 3,
            };
            lines[category].Add(JsonSerializer.Serialize(row, BbqJson));
            if (rng.Next(40) == 0)
            {
                lines[category].Add("   ");
            }
        }
        return BbqCategories.ToDictionary(c => $"{c}.jsonl", c => (c == "Religion" ? "\uFEFF" : "")
            + string.Join(c == "SES" ? "\r\n" : "\n", lines[c]) + (c == "Age" ? "" : "\n"));
    }

    private static string WriteBbq(TempDir dir, int n, int seed, bool directory)
    {
        var files = BbqFiles(n, seed);
        if (!directory)
        {
            // One file holding every category's rows (ids stay unique: they are per category).
            var file = Path.Combine(dir.Path, "bbq.jsonl");
            File.WriteAllText(file, string.Concat(files.Values.Select(v => v.TrimStart('\uFEFF').TrimEnd('\n') + "\n")), new UTF8Encoding(false));
            return file;
        }
        var data = Directory.CreateDirectory(Path.Combine(dir.Path, "data")).FullName;
        foreach (var (name, text) in files)
        {
            // The BOM is in the text where a file has one: the encoder adds none.
            File.WriteAllText(Path.Combine(data, name), text, new UTF8Encoding(false));
        }
        return data;
    }

    [Theory]
    [InlineData(21, 2400, AdaptiveSpec.CategoryScope, null, false, true)]
    [InlineData(22, 2400, AdaptiveSpec.MethodScope, null, false, false)]
    [InlineData(23, 3000, AdaptiveSpec.CategoryScope, 1700, false, true)]
    [InlineData(24, 2000, AdaptiveSpec.CategoryScope, null, true, true)]
    public void OnBbqFilesTheStreamedSchedulerReleasesWhatTheLoadedOneDidFreshAndResumed(int seed, int n, string scope, int? limit, bool ambiguousOnly, bool directory)
    {
        using var dir = new TempDir();
        var path = WriteBbq(dir, n, seed, directory);
        var spec = RunStoreTests.Spec() with
        {
            Suites = [$"bbq-jsonl:{path}"],
            Seed = seed,
            Limit = limit,
            Sampling = limit is null ? null : RunSpec.StratifiedSampling,
            Context = ambiguousOnly ? "ambiguous" : "all",
            Adaptive = new AdaptiveSpec(0.1, scope),
        };
        // The suite is read again by place (not held), and some of its rows are skipped as the loader skips them.
        Assert.True(SuiteRegistry.Resolve(spec.Suites[0], spec.SuiteOptions) is IRereadableSuite { CanReread: true });
        var skipped = new List<SkippedRow>();
        Assert.NotEmpty(BbqJsonlLoader.Load(path, seed, spec.SuiteOptions.LabelRule, skipped, spec.SuiteOptions.Options));
        Assert.NotEmpty(skipped);

        AssertFreshAndResumedMatchLegacy(spec, scope, seed);
    }

    [Fact]
    public void ABbqSuiteBuildsEachProbeAgainFromItsPlaceAsTheLoaderBuiltIt()
    {
        using var dir = new TempDir();
        var path = WriteBbq(dir, 600, 7, directory: true);
        var suite = (IRereadableSuite)SuiteRegistry.Resolve($"bbq-jsonl:{path}", new SuiteOptions(Seed: 7));
        var scanned = suite.ScanPlaces().ToList();
        var expected = BbqJsonlLoader.Load(path, 7, BbqLabelRule.StereotypedGroups);
        Assert.Equal(expected.Select(p => p.Id), scanned.Select(s => s.Probe.Id));
        // Backwards, so every read seeks: the probes built again are the loader's, field for field.
        var places = scanned.Select(s => s.Place).Reverse().ToList();
        Assert.Equal(expected.Reverse().Select(ProbeJsonl.Serialize), suite.ReadAt(places).Select(ProbeJsonl.Serialize));
    }

    [Fact]
    public void ABbqPathHoldingAJsonArrayIsHeldAndReleasesWhatTheLoadedOneDid()
    {
        // BiasFreeBench's ambigdata files hold one JSON array: no lines to return to, so the run holds their probes.
        using var dir = new TempDir();
        var data = WriteBbq(dir, 800, 8, directory: true);
        var rows = File.ReadAllText(Path.Combine(data, "Age.jsonl")).Split('\n').Where(r => r.Trim().Length > 0);
        File.WriteAllText(Path.Combine(data, "Age.json"), "[\n" + string.Join(",\n", rows.Select(r => r.Replace("\"example_id\":", "\"example_id\":10000", StringComparison.Ordinal))) + "\n]\n");
        var spec = RunStoreTests.Spec() with { Suites = [$"bbq-json:{data}"], Seed = 8, Adaptive = new AdaptiveSpec(0.1) };
        Assert.False(SuiteRegistry.Resolve(spec.Suites[0], spec.SuiteOptions) is IRereadableSuite { CanReread: true });
        var none = new Dictionary<(string, string, string), Label>();
        AssertSame(Legacy(new AdaptiveSpec(0.1), Evaluation.LoadProbes(spec), 8, none, orderSeed: 8),
            Streamed(new AdaptiveSpec(0.1), ProbeSource.Open(spec), 8, none, orderSeed: 8));
    }

    [Fact]
    public void ABbqFileChangedDuringTheRunIsRefused()
    {
        using var dir = new TempDir();
        var path = WriteBbq(dir, 1200, 5, directory: true);
        var spec = RunStoreTests.Spec() with { Suites = [$"bbq-jsonl:{path}"], Seed = 5, Adaptive = new AdaptiveSpec(0.01) };
        var scheduler = AdaptiveScheduler.For(spec.Adaptive!, ["none"], ProbeSource.Open(spec), 5, new Dictionary<(string, string, string), Label>());
        scheduler.Start();
        var first = new List<(string Method, Probe Probe)>();
        while (scheduler.TryTake(out var item))
        {
            first.Add(item);
        }
        Assert.NotEmpty(first);

        // One file of the directory changes under the run (a row edited in place, its length kept): the next batch is refused.
        var religion = Path.Combine(path, "Religion.jsonl");
        var text = File.ReadAllText(religion, Encoding.UTF8);
        File.WriteAllText(religion, text.Replace("Who did it?", "Who did it!", StringComparison.Ordinal), new UTF8Encoding(true));
        File.SetLastWriteTimeUtc(religion, DateTime.UtcNow.AddMinutes(1));
        var error = Assert.Throws<InvalidOperationException>(() =>
        {
            foreach (var (method, probe) in first)
            {
                scheduler.Complete(method, probe, Label.Biased);
            }
        });
        Assert.Contains("changed", error.Message, StringComparison.Ordinal);
    }
}
