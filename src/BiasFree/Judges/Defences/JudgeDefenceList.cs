using System.Globalization;

namespace BiasFree.Judges.Defences;

/// <summary>
/// The text form of <see cref="JudgeDefences"/> used by <c>--judge-defences</c> and stored with a run
/// (<see cref="Runs.RunSpec.JudgeDefences"/>): <c>all</c>, <c>none</c>, or a comma list read left to right in which a
/// layer name (optionally <c>+name</c>) turns that layer on, <c>-name</c> turns it off, and <c>all</c> / <c>none</c>
/// set every layer. A list that begins with a removal starts from all (so <c>-known-answer</c> means
/// <c>all,-known-answer</c>); any other list starts from none. Names are case-insensitive; spaces around items are ignored.
/// </summary>
public static class JudgeDefenceList
{
    /// <summary>The layers by name, in the order of the defences (<see cref="Format"/> lists them in this order).</summary>
    public static IReadOnlyList<(string Name, JudgeDefences Flag)> Layers { get; } =
    [
        ("canonicalise", JudgeDefences.Canonicalise),
        ("data-marking", JudgeDefences.DataMarking),
        ("detection", JudgeDefences.Detection),
        ("second-reading", JudgeDefences.SecondReading),
        ("known-answer", JudgeDefences.KnownAnswer),
        ("topic-sentences", JudgeDefences.TopicSentences),
        ("sentence-verdicts", JudgeDefences.SentenceVerdicts),
    ];

    /// <summary>What the option accepts, for help texts and error messages.</summary>
    public static string Syntax =>
        $"all, none, or a comma list of layers ({string.Join(", ", Layers.Select(l => l.Name))}), each optionally prefixed by + (on) or - (off), e.g. all,-known-answer";

    /// <summary>Reads the text form; throws <see cref="ArgumentException"/> naming the valid layers for anything else.</summary>
    public static JudgeDefences Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var items = text.Split(',', StringSplitOptions.TrimEntries);
        if (items.Length == 0 || items.Any(i => i.Length == 0))
        {
            throw new ArgumentException($"judge defences '{text}': empty item; expected {Syntax}.", nameof(text));
        }
        var result = items[0].StartsWith('-') ? JudgeDefences.All : JudgeDefences.None;
        foreach (var item in items)
        {
            var name = item.ToLowerInvariant();
            switch (name)
            {
                case "all":
                    result = JudgeDefences.All;
                    continue;
                case "none":
                    result = JudgeDefences.None;
                    continue;
            }
            var remove = name.StartsWith('-');
            if (remove || name.StartsWith('+')) name = name[1..].Trim();
            var layer = Layers.FirstOrDefault(l => l.Name == name);
            if (layer.Name is null)
            {
                throw new ArgumentException($"judge defences '{text}': unknown layer '{item}'; expected {Syntax}.", nameof(text));
            }
            result = remove ? result & ~layer.Flag : result | layer.Flag;
        }
        return result;
    }

    /// <summary>
    /// The canonical text form: <c>all</c>, <c>none</c>, or <c>all</c> followed by the layers that are off
    /// (<c>all,-known-answer</c>); <see cref="Parse"/> reads it back to the same value.
    /// </summary>
    public static string Format(JudgeDefences defences)
    {
        if ((defences & ~JudgeDefences.All) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(defences), defences, "not a combination of judge defence layers");
        }
        return defences switch
        {
            JudgeDefences.All => "all",
            JudgeDefences.None => "none",
            _ => string.Join(",", Layers.Where(l => !defences.HasFlag(l.Flag)).Select(l => "-" + l.Name).Prepend("all")),
        };
    }

    /// <summary>The defences as a report shows them: "all", "none", or "all except known-answer".</summary>
    public static string Describe(JudgeDefences defences) => defences switch
    {
        JudgeDefences.All => "all",
        JudgeDefences.None => "none",
        _ => string.Create(CultureInfo.InvariantCulture, $"all except {string.Join(", ", Layers.Where(l => !defences.HasFlag(l.Flag)).Select(l => l.Name))}"),
    };
}
