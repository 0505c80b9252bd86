using BiasFree.Probes;
using BiasFree.Probes.Loaders;

namespace BiasFree.Tests.Probes;

/// <summary>
/// Files holding one JSON array (FairMT's dialogues, BiasFreeBench's BBQ ambigdata) are read one item at a time: items come
/// out before a later malformed item is reached, and every error still names the file and the item's line.
/// </summary>
public class StreamedArrayFileTests
{
    private static string Dialogue(string tag, bool complete = true) =>
        $"{{\"0-turn Conv\": \"{tag}0\", \"1-turn Conv\": \"{tag}1\", \"2-turn Conv\": \"{tag}2\", " +
        (complete ? $"\"3-turn Conv\": \"{tag}3\", " : "") + $"\"4-turn Conv\": \"{tag}4\"}}";

    [Fact]
    public void FairMTDialoguesComeOutBeforeALaterBadItemWhichNamesItsLine()
    {
        using var dir = new TempDir();
        var file = dir.File("Stereotype/Fixed_Format/prompt_age.json",
            "[\n  " + Dialogue("a") + ",\n  " + Dialogue("b") + ",\n\n  " + Dialogue("c", complete: false) + "\n]\n");

        using var items = FairMTLoader.Read(dir.Path).GetEnumerator();
        Assert.True(items.MoveNext());
        Assert.Equal(["a0", "a1", "a2", "a3", "a4"], items.Current.UserTurns);
        Assert.Equal("2", items.Current.Metadata["line"]);
        Assert.True(items.MoveNext());
        Assert.Equal("3", items.Current.Metadata["line"]);
        // The third item is reached only now, and its error carries its own line.
        var e = Assert.Throws<ProbeFormatException>(() => items.MoveNext());
        Assert.Equal($"{file}:5: field '3-turn Conv': missing", e.Message);
    }

    [Fact]
    public void ASyntaxErrorOrANonObjectItemLateInTheFileFailsBeforeAnyItemWithItsLine()
    {
        using var dir = new TempDir();
        var file = dir.File("Stereotype/Fixed_Format/prompt_age.json",
            "[\n  " + Dialogue("a") + ",\n  " + Dialogue("b") + ",\n  {\"0-turn Conv\": }\n]\n");
        using (var items = FairMTLoader.Read(dir.Path).GetEnumerator())
        {
            var e = Assert.Throws<ProbeFormatException>(() => items.MoveNext());
            Assert.StartsWith($"{file}:4: invalid JSON", e.Message);
        }

        file = dir.File("Stereotype/Fixed_Format/prompt_age.json", "[\n  " + Dialogue("a") + ",\n  " + Dialogue("b") + ",\n\n  \"not a dialogue\"\n]\n");
        using (var items = FairMTLoader.Read(dir.Path).GetEnumerator())
        {
            var e = Assert.Throws<ProbeFormatException>(() => items.MoveNext());
            Assert.Equal($"{file}:5: item 2: expected a JSON object, got string", e.Message);
        }

        // A syntax error after a non-object item is still the error reported (the whole file's syntax is checked first).
        file = dir.File("Stereotype/Fixed_Format/prompt_age.json", "[\n 5,\n " + Dialogue("a") + "\n\n,]");
        var syntax = Assert.Throws<ProbeFormatException>(() => FairMTLoader.Load(dir.Path));
        Assert.StartsWith($"{file}:5: invalid JSON", syntax.Message);
    }

    [Fact]
    public void AnItemSharingItsLineWithANeighbourIsNamedByItsIndex()
    {
        using var dir = new TempDir();
        // Items 0 and 1 share line 2; item 2 has line 3 to itself.
        var file = dir.File("Stereotype/Fixed_Format/prompt_age.json",
            "[\n" + Dialogue("a") + ", " + Dialogue("b", complete: false) + ",\n" + Dialogue("c") + "\n]");
        var e = Assert.Throws<ProbeFormatException>(() => FairMTLoader.Load(dir.Path));
        Assert.Equal($"{file}:2: field '[1].3-turn Conv': missing", e.Message);

        file = dir.File("Stereotype/Fixed_Format/prompt_age.json",
            "[\n" + Dialogue("a") + ", " + Dialogue("b") + ",\n" + Dialogue("c", complete: false) + "\n]");
        e = Assert.Throws<ProbeFormatException>(() => FairMTLoader.Load(dir.Path));
        Assert.Equal($"{file}:3: field '3-turn Conv': missing", e.Message);

        // The last item shares its line with the one before it.
        file = dir.File("Stereotype/Fixed_Format/prompt_age.json",
            "[\n" + Dialogue("a") + ",\n" + Dialogue("b") + ", " + Dialogue("c", complete: false) + "]");
        e = Assert.Throws<ProbeFormatException>(() => FairMTLoader.Load(dir.Path));
        Assert.Equal($"{file}:3: field '[2].3-turn Conv': missing", e.Message);
    }

    [Fact]
    public void ReadAndLoadGiveTheSameDialoguesAndADuplicateIdIsRefused()
    {
        using var dir = new TempDir();
        dir.File("Stereotype/Fixed_Format/prompt_age.json", "[" + Dialogue("a") + ",\n" + Dialogue("b") + "]");
        dir.File("Stereotype/Fixed_Format/prompt_race.json", "[\n" + Dialogue("c") + "\n]");
        var loaded = FairMTLoader.Load(dir.Path);
        Assert.Equal(3, loaded.Count);
        ProbeTestSupport.AssertSameProbes(loaded, [.. FairMTLoader.Read(dir.Path)]);
        Assert.Equal(["1", "2", "2"], loaded.Select(p => p.Metadata["line"]));
    }

    [Fact]
    public void BbqArrayRowsComeOutOneAtATime()
    {
        using var dir = new TempDir();
        var rows = File.ReadAllText(ProbeTestSupport.Fixture("bfb-ambigdata", "Age.json"));
        var items = System.Text.Json.JsonDocument.Parse(rows).RootElement.EnumerateArray().Select(r => r.GetRawText()).ToList();
        // The last row made invalid: the rows before it are still read first.
        var file = dir.File("Age.json", "[\n" + string.Join(",\n", items[..^1]) + ",\n" + items[^1].Replace("\"label\": 2}", "\"label\": 9}", StringComparison.Ordinal) + "\n]\n");
        using var probes = BbqJsonlLoader.Read(file).GetEnumerator();
        Assert.True(probes.MoveNext());
        var e = Assert.Throws<ProbeFormatException>(() => { while (probes.MoveNext()) { } });
        Assert.Equal($"{file}:{items.Count + 1}: field 'label': expected integer 0..2, got 9", e.Message);
    }
}
