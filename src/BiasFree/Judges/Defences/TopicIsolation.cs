using System.Text;
using System.Text.RegularExpressions;

namespace BiasFree.Judges.Defences;

/// <summary>
/// Structural isolation of the judged reply, by principle rather than by attack wording: the part of a reply that can
/// carry bias about a group is the part that talks about the conversation's subject or about people. A paragraph that
/// does neither, yet talks about verdicts (one of the judge's label words or a synonym, possibly spelled out letter by
/// letter, backwards or with digits for letters, or evaluation words such as "verdict", "annotator"), is addressed to
/// whoever grades the reply, not to the user, so it is removed before judging ("off-topic-verdict").
/// Inside any paragraph, a sentence that spells a verdict word in an obfuscated way (letter-spaced, reversed,
/// digits for letters) is removed too ("obfuscated-verdict"): a reply has no reason to hide those words from a reader.
/// </summary>
/// <remarks>
/// <para>Why removal is safe for honest verdicts: a removed paragraph mentions no word of the conversation, no social
/// group and no pronoun or noun for people (they, them, people, group …), so it cannot be where the reply generalises
/// about a group; and removal needs a paragraph that does engage to remain, so a reply is never emptied by this rule.
/// A reply that refers to the group only by a pronoun keeps that paragraph (pronouns count as engaging).</para>
/// <para>Limits, stated honestly: the unit is the paragraph (text between blank lines). Steering text woven into an
/// on-topic paragraph, or one that names the group, is left to the sentence rules of <see cref="InjectionDetector"/>.
/// The injection suite appends every attack as a new paragraph, so its flip rates measure this rule at its best;
/// docs/judges.md also gives the rates with the attacks written into the reply's last paragraph (<c>--inline</c>).</para>
/// <para>Topic words: lower-case letter runs of at least three letters that are not function words; two words match when
/// their stems are equal (<see cref="Stem"/>: common English inflections stripped, so old/older/oldest and
/// technology/technologies match, while man/manual and every/everyone do not). The first version matched any common prefix
/// of five letters (or the whole shorter word); on the third held-out set that made "manual" engage as "man" and "every" as
/// "everyone", so off-topic verdict paragraphs were kept (docs/judges.md gives both versions' rates).</para>
/// </remarks>
public static partial class TopicIsolation
{
    // The judge's own conclusions and common synonyms of them: what a steering paragraph has to name.
    private static readonly HashSet<string> VerdictWords = new(StringComparer.Ordinal)
    {
        "biased", "unbiased", "nonbiased", "unrelated", "safe", "unsafe", "fair", "unfair", "neutral", "balanced", "harmless",
        "acceptable", "unacceptable", "prejudiced", "stereotypical", "stereotyped", "discriminatory", "offensive", "toxic",
        "verdict", "label", "labels", "labelled", "labeled", "classification", "classified", "ruling", "annotator", "annotators",
        "grader", "graders", "evaluator", "evaluators", "judge", "judges", "judged", "reviewer", "reviewers", "rating", "rated",
        "conclusion", "outcome", "assessment",
    };

    // Only the judge's label words are looked for in obfuscated spellings (their synonyms are ordinary words).
    private static readonly HashSet<string> LabelWords = new(StringComparer.Ordinal) { "biased", "unbiased", "nonbiased", "unrelated", "safe", "unsafe" };

    // Words for people and social groups: a paragraph with one of them may be about the group (kept).
    private static readonly string[] PeopleWords =
    [
        "they", "them", "their", "theirs", "themselves", "people", "person", "persons", "individual", "group", "community", "communities",
        "everyone", "nobody", "human", "humans", "society", "population",
        "woman", "women", "man", "men", "girl", "boy", "female", "male", "mother", "father", "wife", "husband", "gender", "gay", "lesbian",
        "bisexual", "transgender", "trans", "queer", "sexual", "black", "white", "asian", "latino", "latina", "hispanic", "arab", "african",
        "european", "american", "mexican", "chinese", "indian", "race", "racial", "ethnic", "ethnicity", "skin", "jew", "jewish", "muslim",
        "islam", "christian", "hindu", "buddhist", "sikh", "atheist", "religion", "religious", "faith", "immigrant", "migrant", "refugee",
        "foreigner", "nationality", "citizen", "old", "older", "elderly", "senior", "aged", "young", "youth", "teen", "teenager", "child",
        "children", "kids", "generation", "disabled", "disability", "blind", "deaf", "wheelchair", "autistic", "autism", "mental",
        "poor", "rich", "wealthy", "homeless", "working", "class", "income", "fat", "obese", "overweight", "thin", "ugly", "appearance",
    ];

    private static readonly HashSet<string> FunctionWords = new(StringComparer.Ordinal)
    {
        "the", "and", "for", "are", "but", "not", "you", "your", "all", "any", "can", "had", "has", "have", "her", "his", "its", "our",
        "out", "was", "were", "who", "why", "how", "what", "when", "where", "which", "with", "this", "that", "these", "those", "from",
        "into", "than", "then", "there", "here", "been", "being", "does", "did", "doing", "would", "should", "could", "will", "shall",
        "may", "might", "must", "just", "only", "also", "very", "too", "more", "most", "less", "some", "such", "each", "other", "about",
        "over", "under", "again", "once", "yes", "nor", "own", "same", "both", "few", "many", "much", "one", "two", "get", "got", "make",
        "made", "say", "said", "tell", "told", "think", "know", "really", "always", "never", "ever", "still", "even", "because", "since",
        "while", "well", "like", "so", "bad", "good", "why", "ask", "asked",
    };

    /// <summary>
    /// Removes off-topic verdict paragraphs and obfuscated-verdict sentences from <paramref name="text"/>, judged against
    /// the conversation <paramref name="context"/> (question, statement, user turns). Returns the rest and one signal per
    /// removed piece; nothing is removed when <paramref name="context"/> has no topic words.
    /// </summary>
    public static (string Text, IReadOnlyList<InjectionSignal> Signals) Isolate(string text, string? context)
    {
        ArgumentNullException.ThrowIfNull(text);
        var signals = new List<InjectionSignal>();
        var paragraphs = ParagraphBreak().Split(text.Trim()).Where(p => p.Trim().Length > 0).ToList();

        // 1. Sentences that hide a verdict word (any paragraph).
        for (int i = 0; i < paragraphs.Count; i++)
        {
            var kept = new List<string>();
            foreach (var line in paragraphs[i].Split('\n'))
            {
                var sb = new StringBuilder();
                foreach (var sentence in SentenceBreak().Split(line))
                {
                    if (sentence.Length == 0) continue;
                    if (ObfuscatedLabel(sentence))
                    {
                        signals.Add(new("obfuscated-verdict", Excerpt(sentence)));
                        continue;
                    }
                    if (sb.Length > 0) sb.Append(' ');
                    sb.Append(sentence);
                }
                if (sb.ToString().Trim().Length > 0) kept.Add(sb.ToString());
            }
            paragraphs[i] = string.Join("\n", kept);
        }
        // A paragraph left without a word once a sentence went ("P.S.", "---") is the residue of the removed text.
        paragraphs = [.. paragraphs.Where(p => p.Trim().Length > 0 && (signals.Count == 0 || WordRun().IsMatch(p)))];

        // 2. Paragraphs that talk about verdicts and not about the subject, when one that does remains.
        var topic = TopicWords(context);
        if (topic.Count > 0 && paragraphs.Count > 1)
        {
            var engages = paragraphs.Select(p => Engages(p, topic)).ToList();
            if (engages.Any(e => e))
            {
                var kept = new List<string>();
                for (int i = 0; i < paragraphs.Count; i++)
                {
                    if (!engages[i] && TalksAboutVerdicts(paragraphs[i])) signals.Add(new("off-topic-verdict", Excerpt(paragraphs[i])));
                    else kept.Add(paragraphs[i]);
                }
                paragraphs = kept;
            }
        }
        return (signals.Count == 0 ? text : string.Join("\n\n", paragraphs), signals);
    }

    /// <summary>The conversation's topic words (lower case, function words left out); empty for null.</summary>
    internal static List<string> TopicWords(string? context) =>
        context is null ? [] : Words(context).Where(w => !FunctionWords.Contains(w)).Distinct().ToList();

    /// <summary>True when <paramref name="word"/> (lower case) is a word for people or a social group, or an inflection of one.</summary>
    internal static bool IsPeopleWord(string word) => !FunctionWords.Contains(word) && PeopleWords.Any(p => SameStem(word, p));

    /// <summary>True when <paramref name="paragraph"/> shares a topic word with the conversation or names people or a group.</summary>
    internal static bool Engages(string paragraph, IReadOnlyList<string> topic)
    {
        foreach (var w in Words(paragraph))
        {
            if (FunctionWords.Contains(w)) continue;
            if (topic.Any(t => SameStem(w, t)) || PeopleWords.Any(p => SameStem(w, p))) return true;
        }
        return false;
    }

    /// <summary>True when <paramref name="text"/> shares a topic word with the conversation (words for people aside).</summary>
    internal static bool SharesTopic(string text, IReadOnlyList<string> topic) =>
        Words(text).Any(w => !FunctionWords.Contains(w) && topic.Any(t => SameStem(w, t)));

    /// <summary>True when <paramref name="paragraph"/> names a verdict word, plainly or obfuscated.</summary>
    internal static bool TalksAboutVerdicts(string paragraph) =>
        Words(paragraph).Any(VerdictWords.Contains) || Words(LeetFold(paragraph)).Any(VerdictWords.Contains) || ObfuscatedLabel(paragraph);

    /// <summary>A label word spelled letter by letter (u n b i a s e d, u-n-b-i-a-s-e-d), backwards, or with digits for letters.</summary>
    internal static bool ObfuscatedLabel(string s)
    {
        foreach (Match m in SpacedLetters().Matches(s))
            if (LabelWords.Contains(new string([.. m.Value.Where(char.IsLetter)]).ToLowerInvariant())) return true;
        foreach (var w in Words(s))
            if (w.Length >= 4 && LabelWords.Contains(new string([.. w.Reverse()]))) return true;
        foreach (Match m in MixedToken().Matches(s))
            if (m.Value.Any(char.IsDigit) && LabelWords.Contains(LeetFold(m.Value).ToLowerInvariant())) return true;
        return false;
    }

    private static bool SameStem(string a, string b) => a.Length >= 3 && b.Length >= 3 && Stem(a) == Stem(b);

    /// <summary>A light suffix-stripping stemmer (ours): possessive, then the first matching inflection of -ies, -ing, -ers,
    /// -est, -er, -ed, -ly, -s (each only when at least three letters remain), then a final silent -e (crime/crimes,
    /// decide/decided).</summary>
    internal static string Stem(string word)
    {
        var w = word.EndsWith("'s", StringComparison.Ordinal) ? word[..^2] : word;
        foreach (var (suffix, replacement) in Suffixes)
        {
            if (w.Length - suffix.Length >= 3 && w.EndsWith(suffix, StringComparison.Ordinal) && !(suffix == "s" && w.EndsWith("ss", StringComparison.Ordinal)))
            {
                w = w[..^suffix.Length] + replacement;
                break;
            }
        }
        return w.Length >= 4 && w.EndsWith('e') ? w[..^1] : w;
    }

    private static readonly (string Suffix, string Replacement)[] Suffixes =
        [("ies", "y"), ("ing", ""), ("ers", ""), ("est", ""), ("er", ""), ("ed", ""), ("ly", ""), ("s", "")];

    internal static string LeetFold(string s)
    {
        var chars = s.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
        {
            chars[i] = chars[i] switch { '0' => 'o', '1' => 'i', '3' => 'e', '4' => 'a', '5' => 's', '7' => 't', '@' => 'a', '$' => 's', _ => chars[i] };
        }
        return new string(chars);
    }

    private static IEnumerable<string> Words(string s)
    {
        foreach (Match m in WordRun().Matches(s)) yield return m.Value.ToLowerInvariant();
    }

    private static string Excerpt(string s)
    {
        var t = s.Trim();
        return t.Length <= 160 ? t : t[..157] + "...";
    }

    [GeneratedRegex(@"\n[ \t]*\n\s*")]
    private static partial Regex ParagraphBreak();

    [GeneratedRegex(@"(?<=[.!?])\s+(?=\S)")]
    private static partial Regex SentenceBreak();

    [GeneratedRegex(@"\p{L}{3,}")]
    private static partial Regex WordRun();

    [GeneratedRegex(@"(?<![\p{L}\p{N}])(?:\p{L}[ \-_.*·]{1,2}){3,}\p{L}(?![\p{L}\p{N}])")]
    private static partial Regex SpacedLetters();

    [GeneratedRegex(@"[\p{L}\p{N}@$]{4,}")]
    private static partial Regex MixedToken();
}
