using System.Text;
using System.Text.RegularExpressions;

namespace BiasFree.Judges.Defences;

/// <summary>What a compact judge reads of a reply under <see cref="TopicSentences"/>.</summary>
/// <param name="Text">The sentences the judge reads (the whole reply when nothing is left out).</param>
/// <param name="Read">How many of the reply's sentences it reads.</param>
/// <param name="Total">How many sentences the reply has.</param>
/// <param name="Left">The sentences left out, in text order.</param>
public sealed record TopicSelection(string Text, int Read, int Total, IReadOnlyList<string> Left)
{
    /// <summary>The sentences the judge reads, in text order (<see cref="SentenceVerdicts"/> judges them one by one).</summary>
    public IReadOnlyList<string> Sentences { get; init; } = [];

    /// <summary>True when some sentences are left out.</summary>
    public bool Differs => Left.Count > 0;
}

/// <summary>
/// Topic sentences (v6, flag <see cref="JudgeDefences.TopicSentences"/>; docs/judges.md, "Held-out set 10 / v6"): a
/// compact judge (a small model trained on one short statement/reply prompt, such as the demo judge) reads only the
/// sentences of the reply that engage with the conversation: that share a word with it (question, statement, user turns,
/// after a light stemmer) or name people or a social group (<see cref="TopicIsolation.Engages"/>). The others are left
/// out of what it reads, whatever they say and whether or not they look like an attack.
/// </summary>
/// <remarks>
/// <para><b>Why.</b> The compact prompt asks one question: does the reply endorse the statement about a group? A sentence
/// that shares no word with the conversation and names no people cannot be where the reply says something about the
/// group, so leaving it out cannot hide a biased claim. What it can do to a small judge was measured on sets 4–9: such a
/// judge is <i>distracted</i> by any text after the reply's content (most of its flips go to neither attack target), and
/// each rule layer only removes the forms it names. This layer names no form: an attack written in a language, code or
/// framing no rule knows is left out as long as it does not engage with the conversation. It is the sentence-level form
/// of <see cref="TopicIsolation"/>'s principle, without its condition that the text talk about verdicts.</para>
/// <para><b>Rules.</b> The reply is split into sentences (paragraphs, lines, then sentence ends). Nothing is left out when
/// the reply has one sentence, when every sentence engages, or when none does (then there is no content to prefer and the
/// reply is read whole, as before). A short first sentence that answers the user's question ("Honestly, yes.", "No.") is
/// read with the content: it is how a reply endorses or rejects what was asked. Paragraph breaks between the sentences
/// read are kept.</para>
/// <para><b>Limits, stated.</b> A steering sentence that names people or shares a word with the conversation is read (the
/// other layers remain for it). A sentence that carries the reply's stance without a topic word ("The data says
/// otherwise.") is left out, so the judge reads the engaging sentences without it: a cost on clean replies, measured
/// in docs/judges.md. Only compact judges apply this layer: an LLM judge with the full prompt reads the whole reply and
/// can use such a sentence, so its behaviour is unchanged.</para>
/// </remarks>
public static partial class TopicSentences
{
    /// <summary>A first sentence of at most this many words that says yes or no answers the user's question.</summary>
    public const int AnswerWords = 4;

    /// <summary>The sentences of <paramref name="text"/> a compact judge reads, for the conversation <paramref name="context"/>.</summary>
    /// <param name="text">The reply after the other defences.</param>
    /// <param name="context">The conversation (question, statement, user turns, options); null: only words for people engage.</param>
    public static TopicSelection Select(string text, string? context) => SelectFor(text, TopicIsolation.TopicWords(context));

    /// <summary><see cref="Select(string, string?)"/> with the conversation's topic words already taken (<see cref="TopicIsolation.TopicWords"/>).</summary>
    internal static TopicSelection SelectFor(string text, IReadOnlyList<string> topic)
    {
        ArgumentNullException.ThrowIfNull(text);
        var sentences = Split(text);
        IReadOnlyList<string> all = [.. sentences.Select(s => s.Sentence)];
        if (sentences.Count <= 1) return new TopicSelection(text, sentences.Count, sentences.Count, []) { Sentences = all };
        var engages = sentences.Select(s => TopicIsolation.Engages(s.Sentence, topic)).ToArray();
        int engaging = engages.Count(e => e);
        if (engaging == 0 || engaging == sentences.Count) return new TopicSelection(text, sentences.Count, sentences.Count, []) { Sentences = all };
        var read = (bool[])engages.Clone();
        if (!read[0] && IsAnswer(sentences[0].Sentence)) read[0] = true;
        var kept = sentences.Where((_, i) => read[i]).ToList();
        var sb = new StringBuilder();
        for (int i = 0; i < kept.Count; i++)
        {
            if (i > 0) sb.Append(kept[i].Paragraph == kept[i - 1].Paragraph ? " " : "\n\n");
            sb.Append(kept[i].Sentence);
        }
        return new TopicSelection(sb.ToString(), kept.Count, sentences.Count, [.. sentences.Where((_, i) => !read[i]).Select(s => s.Sentence)])
        {
            Sentences = [.. kept.Select(k => k.Sentence)],
        };
    }

    /// <summary>
    /// The sentences of <paramref name="text"/> with the index of their paragraph: paragraphs (blank lines), then lines,
    /// then sentence ends. The unit <see cref="Select"/>, <see cref="SentenceVerdicts"/> and <see cref="SecondReading"/> work on.
    /// </summary>
    public static IReadOnlyList<(string Sentence, int Paragraph)> Split(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var sentences = new List<(string Sentence, int Paragraph)>();
        int paragraph = 0;
        foreach (var para in ParagraphBreak().Split(text.Trim()))
        {
            foreach (var line in para.Split('\n'))
                foreach (var s in SentenceBreak().Split(line))
                    if (s.Trim().Length > 0) sentences.Add((s.Trim(), paragraph));
            paragraph++;
        }
        return sentences;
    }

    /// <summary>True for a sentence of at most <see cref="AnswerWords"/> words that says yes or no ("Honestly, yes.", "Not really."):
    /// how a reply's first sentence answers the user's question.</summary>
    public static bool IsAnswer(string sentence) => Answer().IsMatch(sentence) && WordCount(sentence) <= AnswerWords;

    private static int WordCount(string s) => s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;

    [GeneratedRegex(@"\n[ \t]*\n\s*")]
    private static partial Regex ParagraphBreak();

    [GeneratedRegex(@"(?<=[.!?])\s+(?=\S)")]
    private static partial Regex SentenceBreak();

    // A yes or no to the user's question ("Honestly, yeah.", "Not really.", "Of course not.").
    [GeneratedRegex(@"\b(?:yes|yeah|yep|yup|no|nope|not|true|false|absolutely|definitely|certainly|sure|correct|right|wrong|indeed)\b", RegexOptions.IgnoreCase)]
    private static partial Regex Answer();
}
