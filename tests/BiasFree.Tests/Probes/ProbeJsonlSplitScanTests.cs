using System.Text;
using BiasFree.Probes;
using BiasFree.Probes.Loaders;

namespace BiasFree.Tests.Probes;

/// <summary>
/// The validation scan read in two halves on two threads (<see cref="ProbeJsonl.ScanSplit"/>) against the one-thread scan
/// (<see cref="ProbeJsonl.ReadLines"/> with <c>build: false</c>): the same probes, places and line numbers from valid files,
/// and from malformed ones the same probes up to the same error (type, file:line, field, message), with the file cut at
/// every line start and at offsets inside lines: bad JSON, bad fields, invalid UTF-8, duplicate ids within and across the
/// halves, problems in both halves, blank halves, an empty file, a BOM, CRLF, Unicode-blank lines and lines longer than
/// the read buffer.
/// </summary>
public class ProbeJsonlSplitScanTests
{
    /// <summary>Everything the scan yields (what the validation pass keeps, and the place) and how it ends.</summary>
    private static string Outcome(IEnumerable<(Probe Probe, ProbePlace Place)> scan)
    {
        var text = new StringBuilder();
        try
        {
            foreach (var (p, place) in scan)
            {
                text.Append(p.Suite).Append('|').Append(p.Id).Append('|').Append(p.Scenario).Append('|').Append(p.Category).Append('|')
                    .Append(p.Context).Append('@').Append(place.Offset).Append('+').Append(place.Length).Append(':').Append(place.Line).Append('\n');
            }
            return text.Append("end").ToString();
        }
        catch (ProbeFormatException e)
        {
            return text.Append($"ProbeFormatException {e.Line} {e.Field}: {e.Message}").ToString();
        }
    }

    private static string Line(int i, string? id = null, string category = "age") =>
        $$"""{"id":"{{id ?? $"q{i}"}}","suite":"s","scenario":"multiple-choice","category":"{{category}}","user_turns":["Context {{i}} é中 \"q\"? A) x B) y"],"options":[{"text":"x","role":"stereotyped","group":"a"},{"text":"y","role":"unknown","group":"unknown"}],"context":"{{(i % 2 == 0 ? "ambiguous" : "disambiguated")}}"}""";

    /// <summary>Cuts at every line start, at the file's ends, and at a few offsets inside lines.</summary>
    private static IEnumerable<long> Cuts(byte[] bytes)
    {
        yield return 0;
        yield return bytes.Length;
        yield return bytes.Length + 10;
        for (var i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] == '\n' || i % 97 == 0)
            {
                yield return i;
                yield return i + 1;
            }
        }
    }

    private static void AssertSameEverywhere(string path, string content, bool expectError)
    {
        File.WriteAllBytes(path, Encoding.UTF8.GetBytes(content));
        AssertSameEverywhere(path, expectError);
    }

    private static void AssertSameEverywhere(string path, bool expectError)
    {
        var expected = Outcome(ProbeJsonl.ReadLines(path, build: false));
        Assert.Equal(expectError, expected.Contains("ProbeFormatException", StringComparison.Ordinal));
        foreach (var cut in Cuts(File.ReadAllBytes(path)))
        {
            var actual = Outcome(ProbeJsonl.ScanSplit(path, cut));
            if (actual != expected)
            {
                Assert.Fail($"cut at byte {cut}:\nexpected\n{expected}\nactual\n{actual}");
            }
        }
    }

    [Fact]
    public void ValidFilesGiveTheSameProbesAndPlacesWhereverTheyAreCut()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "s.jsonl");
        var lines = Enumerable.Range(0, 12).Select(i => Line(i)).ToList();
        AssertSameEverywhere(path, string.Join("\n", lines) + "\n", expectError: false);
        AssertSameEverywhere(path, string.Join("\n", lines), expectError: false); // no final newline
        // BOM, CRLF, blank, white-space and Unicode-blank lines, stray '\r's.
        AssertSameEverywhere(path, "\uFEFF" + lines[0] + "\r\n\r\n  \t\r\n" + lines[1] + "\r\r\n\u2003\n" + lines[2] + "\n\n\n" + lines[3] + "\r\n", expectError: false);
        // A line longer than the reader's 64 KB chunk and its 4 KB line buffer, in either half.
        var longLine = Line(99).Replace("Context 99", "Context " + new string('x', 150_000), StringComparison.Ordinal);
        AssertSameEverywhere(path, lines[0] + "\n" + longLine + "\n" + lines[1] + "\n", expectError: false);
    }

    [Fact]
    public void MalformedFilesThrowTheFirstErrorOfTheFileWhereverTheyAreCut()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "s.jsonl");
        var lines = Enumerable.Range(0, 10).Select(i => Line(i)).ToList();
        string With(params (int At, string Text)[] changes)
        {
            var copy = lines.ToList();
            foreach (var (at, text) in changes)
            {
                copy[at] = text;
            }
            return string.Join("\n", copy) + "\n";
        }

        var badJson = """{"id":"x",}""";
        var badField = Line(50, category: "Not Kebab");
        AssertSameEverywhere(path, With((2, badJson)), expectError: true);
        AssertSameEverywhere(path, With((8, badJson)), expectError: true);
        AssertSameEverywhere(path, With((7, badField)), expectError: true);
        // Duplicates: within the first lines, across the file, within its last lines, and one that comes before a later
        // syntax error, or after one.
        AssertSameEverywhere(path, With((2, Line(2, id: "q1"))), expectError: true);
        AssertSameEverywhere(path, With((8, Line(8, id: "q1"))), expectError: true);
        AssertSameEverywhere(path, With((9, Line(9, id: "q7"))), expectError: true);
        AssertSameEverywhere(path, With((6, Line(6, id: "q0")), (8, badJson)), expectError: true);
        AssertSameEverywhere(path, With((6, badJson), (8, Line(8, id: "q0"))), expectError: true);
        AssertSameEverywhere(path, With((1, badField), (8, badJson)), expectError: true);
        AssertSameEverywhere(path, With((5, Line(5, id: "q9"))), expectError: true); // an id used first before the line that owned it
        AssertSameEverywhere(path, With((5, Line(5, id: "q9")), (9, Line(9, id: "q9x"))), expectError: false);

        // Invalid UTF-8 on a line: the check before any parsing.
        var bytes = Encoding.UTF8.GetBytes(With()).ToList();
        var at = Encoding.UTF8.GetByteCount(string.Join("\n", lines.Take(7)) + "\n") + 12;
        bytes.Insert(at, 0xFF);
        File.WriteAllBytes(path, [.. bytes]);
        AssertSameEverywhere(path, expectError: true);

        // Blank files and halves: the empty-file error needs every line blank.
        AssertSameEverywhere(path, "\n \n\t\n\r\n\n\n", expectError: true);
        // A line of Unicode white space is skipped but does not count as blank for that check (as the one-thread reader has it).
        AssertSameEverywhere(path, "\n \n\t\n\r\n\u2003\n\n", expectError: false);
        AssertSameEverywhere(path, "", expectError: true);
        AssertSameEverywhere(path, "\n\n\n\n\n\n\n\n" + lines[0] + "\n", expectError: false);
        AssertSameEverywhere(path, lines[0] + "\n\n\n\n\n\n\n\n\n", expectError: false);
    }

    [Fact]
    public void LargeFilesAreCutInTwoAndScanTheSame()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "big.jsonl");
        var lines = Enumerable.Range(0, 6000).Select(i => Line(i)).ToList();
        File.WriteAllText(path, string.Join("\n", lines) + "\n", new UTF8Encoding(false));
        Assert.True(new FileInfo(path).Length >= ProbeJsonl.SplitScanBytes);
        var cut = ProbeJsonl.CutFor(path);
        if (Environment.ProcessorCount > 1)
        {
            Assert.InRange(cut, new FileInfo(path).Length / 2, new FileInfo(path).Length - 1);
        }
        var expected = Outcome(ProbeJsonl.ReadLines(path, build: false));
        Assert.Equal(expected, Outcome(ProbeJsonl.ScanPlaces(path)));
        Assert.Equal(6000, ProbeJsonl.Scan(path).Count());

        // A duplicate of a first-half id near the end, and a bad line after it: the duplicate is the error.
        lines[5990] = Line(5990, id: "q3");
        lines[5995] = """{"id":"x",}""";
        File.WriteAllText(path, string.Join("\n", lines) + "\n", new UTF8Encoding(false));
        var error = Assert.Throws<ProbeFormatException>(() => ProbeJsonl.Scan(path).Count());
        Assert.Equal(5991, error.Line);
        Assert.Contains("duplicate id 'q3' (first used on line 4)", error.Message, StringComparison.Ordinal);
        Assert.Equal(Outcome(ProbeJsonl.ReadLines(path, build: false)), Outcome(ProbeJsonl.ScanPlaces(path)));

        // A small file is read on one thread.
        var small = Path.Combine(dir.Path, "small.jsonl");
        File.WriteAllText(small, string.Join("\n", lines.Take(10)) + "\n");
        Assert.Equal(-1, ProbeJsonl.CutFor(small));
    }

    [Fact]
    public void StoppingEarlyOrAnErrorInTheFirstHalfEndsTheScan()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "big.jsonl");
        File.WriteAllText(path, string.Join("\n", Enumerable.Range(0, 6000).Select(i => Line(i))) + "\n", new UTF8Encoding(false));
        // The first probe, then the enumerator is disposed: it cancels the second half's thread and waits for it.
        Assert.Equal("q0", ProbeJsonl.ScanSplit(path, new FileInfo(path).Length / 2).First().Probe.Id);
        // A first-half error stops it the same way, and is the error thrown.
        var lines = Enumerable.Range(0, 6000).Select(i => Line(i)).ToList();
        lines[1] = """{"id":"x",}""";
        File.WriteAllText(path, string.Join("\n", lines) + "\n", new UTF8Encoding(false));
        Assert.Equal(2, Assert.Throws<ProbeFormatException>(() => ProbeJsonl.ScanSplit(path, new FileInfo(path).Length / 2).Count()).Line);
    }
}
