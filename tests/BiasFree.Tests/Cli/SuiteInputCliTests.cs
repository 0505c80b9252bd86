using System.Text;
using System.Text.Json;
using BiasFree.Probes;
using BiasFree.Tests.Infrastructure;
using BiasFree.Tests.Probes;
using TempDir = BiasFree.Tests.Runs.TempDir;

namespace BiasFree.Tests.Cli;

/// <summary>
/// The input side through the real CLI: <c>suites --format json</c>, skipped rows and the FairMT bias-type split in
/// <c>suites show</c>, BiasFreeBench's own files, refused files (exit 1, <c>file:line: field</c>), and the label
/// rule in the report.
/// </summary>
public class SuiteInputCliTests
{
    private static string Fixture(params string[] parts) => Path.Combine([AppContext.BaseDirectory, "Fixtures", .. parts]);

    private static async Task<JsonElement> Json(string[] args, string dir)
    {
        var r = await CliProcess.RunAsync(args, dir, TestContext.Current.CancellationToken);
        Assert.True(r.ExitCode == 0, r.ToString());
        return JsonDocument.Parse(r.StdOut).RootElement.Clone();
    }

    [Fact]
    public async Task SuitesListsAsJson()
    {
        using var dir = new TempDir();
        var json = await Json(["suites", "--format", "json"], dir.Path);
        var listed = json.GetProperty("suites").EnumerateArray().ToList();
        var builtIns = SuiteRegistry.BuiltIns(0);
        Assert.Equal(builtIns.Select(s => s.Name), listed.Select(s => s.GetProperty("name").GetString()));
        for (int i = 0; i < builtIns.Count; i++)
        {
            var probes = builtIns[i].Load();
            Assert.Equal(probes.Count, listed[i].GetProperty("probes").GetInt32());
            Assert.Equal(probes.Select(p => p.Category).Distinct().Count(), listed[i].GetProperty("categories").GetInt32());
        }
    }

    [Fact]
    public async Task ShowListsEverySkippedRowWithItsReasonInTableAndJson()
    {
        using var dir = new TempDir();
        var spec = "bbq-jsonl:" + Fixture("bbq-gender", "Gender_identity.jsonl");
        var json = await Json(["suites", "show", spec, "--format", "json"], dir.Path);
        Assert.Equal(5, json.GetProperty("probes").GetInt32());
        Assert.Equal("bbq", json.GetProperty("label_rule").GetString());
        var skipped = json.GetProperty("skipped").EnumerateArray().ToList();
        Assert.Equal(["bbq-gender-identity-5", "bbq-gender-identity-6"], skipped.Select(s => s.GetProperty("id").GetString()));
        Assert.Equal([6, 7], skipped.Select(s => s.GetProperty("line").GetInt32()));
        Assert.Equal("no option matches stereotyped_groups [F] (answer groups boy, man)", skipped[1].GetProperty("reason").GetString());
        Assert.Equal(5, json.GetProperty("groups").EnumerateArray().Sum(g => g.GetProperty("probes").GetInt32()));
        Assert.Equal("bbq-gender-identity-0", json.GetProperty("sample").GetProperty("id").GetString());

        var table = await CliProcess.RunAsync(["suites", "show", spec], dir.Path, TestContext.Current.CancellationToken);
        Assert.True(table.ExitCode == 0, table.ToString());
        Assert.Contains("2 rows skipped", table.StdOut, StringComparison.Ordinal);
        Assert.Contains("Gender_identity.jsonl:6: bbq-gender-identity-5: both options match stereotyped_groups [F] (answer groups woman, girl)", table.StdOut, StringComparison.Ordinal);
        Assert.Contains("Gender_identity.jsonl:7: bbq-gender-identity-6: no option matches stereotyped_groups [F] (answer groups boy, man)", table.StdOut, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ShowReadsBiasFreeBenchAmbigdataAndFairMTFilesWithTheir10KSplit()
    {
        using var dir = new TempDir();
        var bbq = await Json(["suites", "show", "bbq-json:" + Fixture("bfb-ambigdata"), "--format", "json", "--label-rule", "biasfreebench"], dir.Path);
        Assert.Equal(6, bbq.GetProperty("probes").GetInt32());
        Assert.Equal(2, bbq.GetProperty("skipped").GetArrayLength());
        Assert.All(bbq.GetProperty("groups").EnumerateArray(), g => Assert.Equal("ambiguous", g.GetProperty("condition").GetString()));

        var tenK = await Json(["suites", "show", "fairmt:" + Fixture("fairmt", "FairMT_10K"), "--format", "json"], dir.Path);
        var split = tenK.GetProperty("bias_types");
        // The 10K fixture: Stereotype has 2 + 1 dialogues, Toxicity 1 (+ an empty file).
        Assert.Equal(3, split.GetProperty("stereotype").GetInt32());
        Assert.Equal(1, split.GetProperty("toxicity").GetInt32());

        var filled = await Json(["suites", "show", $"fairmt:{Fixture("fairmt-bfb")}@{Fixture("fairmt", "FairMT_10K")}", "--format", "json"], dir.Path);
        Assert.Equal(2, filled.GetProperty("bias_types").GetProperty("stereotype").GetInt32());
        Assert.Equal(1, filled.GetProperty("bias_types").GetProperty("toxicity").GetInt32());
        Assert.Equal(1, filled.GetProperty("bias_types").GetProperty("unspecified").GetInt32());
        var categories = filled.GetProperty("groups").EnumerateArray().GroupBy(g => g.GetProperty("category").GetString())
            .ToDictionary(g => g.Key!, g => g.Sum(x => x.GetProperty("probes").GetInt32()));
        Assert.Equal(new Dictionary<string, int> { ["age"] = 2, ["gender"] = 1, ["unspecified"] = 1 }, categories);

        var table = await CliProcess.RunAsync(["suites", "show", "fairmt:" + Fixture("fairmt", "FairMT_10K")], dir.Path, TestContext.Current.CancellationToken);
        Assert.Contains("Bias type", table.StdOut, StringComparison.Ordinal);
        Assert.Matches(@"stereotype\s*│\s*3\s", table.StdOut);
        Assert.Matches(@"toxicity\s*│\s*1\s", table.StdOut);
    }

    public static TheoryData<string, string, string> RefusedFiles() => new()
    {
        // file name, content ("\uFFFF" marks an invalid byte), expected message after the file path
        { "Religion.jsonl", RefusedFileTests.GoodBbq.Replace("\"category\": \"Religion\"", "\"category\": \"\""), ":1: field 'category': must not be empty" },
        { "Religion.jsonl", RefusedFileTests.GoodBbq.Replace("\"label\": 2}", "\"ans3\": \"x\", \"label\": 2}"), ":1: field 'ans3': unexpected field" },
        { "Religion.jsonl", RefusedFileTests.GoodBbq.Replace("taxi", "ta\uFFFFi"), ":1: invalid UTF-8 (byte 0xFF at column" },
        { "Religion.json", "[" + RefusedFileTests.GoodBbq + ",\n" + RefusedFileTests.GoodBbq.Replace("\"label\": 2", "\"label\": 9") + "]", ":2: field 'label': expected integer 0..2, got 9" },
        { "Religion.jsonl", RefusedFileTests.GoodBbq + "\n{\"example_id\": 1,, }", ":2: invalid JSON:" },
    };

    [Theory]
    [MemberData(nameof(RefusedFiles))]
    public async Task RefusedBbqFilesExitOneWithFileLineAndField(string name, string content, string expected)
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, name);
        var bytes = Encoding.UTF8.GetBytes(content.Replace('\uFFFF', '#'));
        if (content.IndexOf('\uFFFF') is var bad and >= 0) bytes[Encoding.UTF8.GetByteCount(content[..bad])] = 0xFF;
        await File.WriteAllBytesAsync(path, bytes, TestContext.Current.CancellationToken);
        foreach (var format in (string[])["suites", "run"])
        {
            string[] args = format == "suites"
                ? ["suites", "show", "bbq-jsonl:" + path]
                : ["run", "--suite", "bbq-json:" + path, "--target", "http://127.0.0.1:1/v1", "--model", "m", "--runs-dir", dir.Path];
            var r = await CliProcess.RunAsync(args, dir.Path, TestContext.Current.CancellationToken);
            Assert.True(r.ExitCode == 1, r.ToString());
            Assert.StartsWith($"error: {path}{expected}", r.StdErr, StringComparison.Ordinal);
            Assert.DoesNotContain("Exception", r.StdErr, StringComparison.Ordinal);
            Assert.DoesNotContain("LineNumber", r.StdErr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task SymlinkLoopsAndDirectoriesGivenToJsonlExitOne()
    {
        if (OperatingSystem.IsWindows()) return;
        using var dir = new TempDir();
        var a = Path.Combine(dir.Path, "a.jsonl");
        File.CreateSymbolicLink(a, Path.Combine(dir.Path, "b.jsonl"));
        File.CreateSymbolicLink(Path.Combine(dir.Path, "b.jsonl"), a);
        foreach (var spec in (string[])["bbq-jsonl:" + a, "bbq-jsonl:" + dir.Path, "jsonl:" + a, "stereoset:" + a, "crows-pairs:" + a])
        {
            var r = await CliProcess.RunAsync(["suites", "show", spec], dir.Path, TestContext.Current.CancellationToken);
            Assert.True(r.ExitCode == 1, r.ToString());
            Assert.Matches(@"^error: .+[ab]\.jsonl: symbolic link loop", r.StdErr);
        }
        var d = await CliProcess.RunAsync(["suites", "show", "jsonl:" + dir.Path], dir.Path, TestContext.Current.CancellationToken);
        Assert.True(d.ExitCode == 1, d.ToString());
        Assert.Equal($"error: {dir.Path}: is a directory; this suite format reads one file", d.StdErr.Trim());
    }

    [Fact]
    public async Task ARunOnAmbigdataNotesItsSkippedRowsAndItsReportStatesTheLabelRule()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDir();
        var spec = "bbq-json:" + Fixture("bfb-ambigdata");
        // The probes the run will send, in its order (one suite, no limit).
        var probes = SuiteRegistry.Resolve(spec, new SuiteOptions(LabelRule: BiasFree.Probes.Loaders.BbqLabelRule.BiasFreeBench)).Load();
        Assert.Equal(6, probes.Count);
        var script = new ScriptedTarget(probes);
        await using var server = LoopbackChatServer.Start(req => script.Answer(req));
        var r = await CliProcess.RunAsync(
        [
            "run", "--suite", spec, "--label-rule", "biasfreebench", "--target", server.BaseUrl.ToString(), "--model", "scripted",
            "--api-key-env", "BIASFREE_TEST_KEY", "--method", "none", "--runs-dir", dir.Path, "--run-id", "bfb", "--retries", "0",
        ], dir.Path, ct);
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.Contains($"note: {spec}: 2 rows cannot be labelled and are left out", r.StdErr, StringComparison.Ordinal);

        var report = await EndToEndTests.JsonReport(dir.Path, "bfb", ct);
        Assert.Equal("biasfreebench", report.GetProperty("run").GetProperty("labelRule").GetString());
        var row = EndToEndTests.Row(report, "none");
        Assert.Equal(6, row.GetProperty("responses").GetInt32());
        // The script answers stereotyped / anti-stereotyped / unknown in turn: 2 of the 6 are biased.
        Assert.Equal(2, row.GetProperty("counts").GetProperty("biased").GetInt32());

        var md = await CliProcess.RunAsync(["report", "bfb", "--format", "md", "--runs-dir", dir.Path], dir.Path, ct);
        Assert.True(md.ExitCode == 0, md.ToString());
        Assert.Contains("| BBQ protocol | context all, options two, label rule biasfreebench |", md.StdOut, StringComparison.Ordinal);
    }
}
