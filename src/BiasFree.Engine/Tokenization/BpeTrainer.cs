namespace BiasFree.Engine.Tokenization;

/// <summary>Options of <see cref="BpeTrainer.Train"/>.</summary>
public sealed record BpeTrainerOptions
{
    /// <summary>The pre-tokenizer split regex (HF Split, behavior Isolated). Defaults to Llama-3's.</summary>
    public string PreTokenizerPattern { get; init; } = CodePointRegex.Llama3Pattern;

    /// <summary>Pairs seen fewer times than this are never merged (training stops early).</summary>
    public int MinFrequency { get; init; } = 2;

    /// <summary>Apply NFC normalization (and write an NFC normalizer into tokenizer.json).</summary>
    public bool NfcNormalize { get; init; }
}

/// <summary>The result of <see cref="BpeTrainer.Train"/>: a byte-level BPE ready for <see cref="TokenizerJsonWriter"/>.</summary>
public sealed class TrainedBpe
{
    internal TrainedBpe(Dictionary<string, int> vocab, List<(string, string)> merges, List<(string, int)> specials, BpeTrainerOptions options)
    {
        Vocab = vocab;
        Merges = merges;
        SpecialTokens = specials;
        Options = options;
    }

    /// <summary>Model vocabulary in byte-level alphabet strings: ids 0..255 are the bytes, then one id per merge.</summary>
    public IReadOnlyDictionary<string, int> Vocab { get; }

    /// <summary>Merges in rank order, as byte-level alphabet strings.</summary>
    public IReadOnlyList<(string Left, string Right)> Merges { get; }

    /// <summary>Special tokens and their ids (after the merged tokens).</summary>
    public IReadOnlyList<(string Content, int Id)> SpecialTokens { get; }

    /// <summary>The options used for training (pre-tokenizer regex, NFC).</summary>
    public BpeTrainerOptions Options { get; }

    /// <summary>Total number of ids: 256 bytes + merges + special tokens.</summary>
    public int VocabSize => Vocab.Count + SpecialTokens.Count;
}

/// <summary>
/// Trains a byte-level BPE (GPT-2 byte alphabet, 256 base tokens). Words are the pre-tokenizer regex
/// matches; pair frequencies are counted over unique words weighted by their counts and updated
/// incrementally after each merge. Deterministic: the most frequent pair wins, ties go to the pair
/// whose left token bytes, then right token bytes, are ordinally smallest.
/// </summary>
public static class BpeTrainer
{
    /// <summary>
    /// Trains on <paramref name="corpus"/> (documents or lines) until the vocabulary holds
    /// <paramref name="vocabSize"/> ids including the 256 bytes and the <paramref name="specialTokens"/>,
    /// or no pair reaches <see cref="BpeTrainerOptions.MinFrequency"/>. Occurrences of special tokens in
    /// the corpus are cut out before counting.
    /// </summary>
    public static TrainedBpe Train(IEnumerable<string> corpus, int vocabSize, IReadOnlyList<string> specialTokens, BpeTrainerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(corpus);
        ArgumentNullException.ThrowIfNull(specialTokens);
        options ??= new BpeTrainerOptions();
        if (specialTokens.Distinct(StringComparer.Ordinal).Count() != specialTokens.Count) throw new ArgumentException("special tokens must be distinct", nameof(specialTokens));
        if (specialTokens.Any(string.IsNullOrEmpty)) throw new ArgumentException("special tokens must be non-empty", nameof(specialTokens));
        int targetMerges = vocabSize - 256 - specialTokens.Count;
        if (targetMerges < 0) throw new ArgumentOutOfRangeException(nameof(vocabSize), $"vocabSize must be at least 256 + {specialTokens.Count} special tokens");

        var regex = new CodePointRegex(options.PreTokenizerPattern);

        // 1. Count words.
        var wordCounts = new Dictionary<string, long>(StringComparer.Ordinal);
        var sortedSpecials = specialTokens.OrderByDescending(s => s.Length).ToArray();
        foreach (var doc in corpus)
        {
            if (string.IsNullOrEmpty(doc)) continue;
            foreach (var part in SplitOutSpecials(doc, sortedSpecials))
            {
                string text = options.NfcNormalize ? UnicodeNormalization.Normalize(part, System.Text.NormalizationForm.FormC) : part;
                foreach (var (start, length) in regex.Matches(text))
                {
                    var w = text.Substring(start, length);
                    wordCounts[w] = wordCounts.TryGetValue(w, out long c) ? c + 1 : 1;
                }
            }
        }

        // 2. Words as byte id sequences, in a fixed order (ordinal) so that training is deterministic.
        var wordList = wordCounts.Keys.OrderBy(w => w, StringComparer.Ordinal).ToArray();
        var words = new int[wordList.Length][];
        var freqs = new long[wordList.Length];
        for (int i = 0; i < wordList.Length; i++)
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(wordList[i]);
            words[i] = Array.ConvertAll(bytes, b => (int)b);
            freqs[i] = wordCounts[wordList[i]];
        }

        var tokenBytes = new List<byte[]>(vocabSize);
        var idByString = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int b = 0; b < 256; b++)
        {
            tokenBytes.Add([(byte)b]);
            idByString[ByteLevelAlphabet.ToChar((byte)b).ToString()] = b;
        }

        var pairCounts = new Dictionary<long, long>();
        var pairWords = new Dictionary<long, List<int>>();
        for (int w = 0; w < words.Length; w++)
        {
            var s = words[w];
            for (int i = 0; i + 1 < s.Length; i++)
            {
                long key = Key(s[i], s[i + 1]);
                pairCounts[key] = pairCounts.GetValueOrDefault(key) + freqs[w];
                if (!pairWords.TryGetValue(key, out var list)) pairWords[key] = list = new List<int>();
                if (list.Count == 0 || list[^1] != w) list.Add(w);
            }
        }

        var comparer = new CandidateComparer(tokenBytes);
        var heap = new PriorityQueue<long, (long Count, long Pair)>(comparer);
        foreach (var (pair, count) in pairCounts) heap.Enqueue(pair, (count, pair));

        var merges = new List<(int, int)>(Math.Max(0, targetMerges));
        var stamp = new int[words.Length];
        var changed = new HashSet<long>();
        int round = 0;
        while (merges.Count < targetMerges && heap.TryDequeue(out long best, out var prio))
        {
            long current = pairCounts.GetValueOrDefault(best);
            if (current != prio.Count || current <= 0) continue;
            if (current < options.MinFrequency) break;
            round++;
            int a = (int)(best >> 32), b = (int)(best & 0xFFFFFFFF);
            byte[] merged = [.. tokenBytes[a], .. tokenBytes[b]];
            string mergedString = ByteLevelAlphabet.Encode(merged);
            if (!idByString.TryGetValue(mergedString, out int newId))
            {
                // (Rarely, two different pairs spell the same bytes; they then share one token.)
                newId = tokenBytes.Count;
                tokenBytes.Add(merged);
                idByString[mergedString] = newId;
            }
            merges.Add((a, b));
            changed.Clear();

            var affected = pairWords[best];
            pairWords.Remove(best);
            foreach (int w in affected)
            {
                if (stamp[w] == round) continue;
                stamp[w] = round;
                var s = words[w];
                bool has = false;
                for (int i = 0; i + 1 < s.Length; i++)
                {
                    if (s[i] == a && s[i + 1] == b) { has = true; break; }
                }
                if (!has) continue;
                long f = freqs[w];
                for (int i = 0; i + 1 < s.Length; i++) Add(Key(s[i], s[i + 1]), -f);
                var ns = new List<int>(s.Length);
                for (int i = 0; i < s.Length; i++)
                {
                    if (i + 1 < s.Length && s[i] == a && s[i + 1] == b) { ns.Add(newId); i++; }
                    else ns.Add(s[i]);
                }
                var arr = ns.ToArray();
                words[w] = arr;
                for (int i = 0; i + 1 < arr.Length; i++)
                {
                    long key = Key(arr[i], arr[i + 1]);
                    Add(key, f);
                    if (arr[i] == newId || arr[i + 1] == newId)
                    {
                        if (!pairWords.TryGetValue(key, out var list)) pairWords[key] = list = new List<int>();
                        if (list.Count == 0 || list[^1] != w) list.Add(w);
                    }
                }
            }
            foreach (long key in changed)
            {
                long c = pairCounts.GetValueOrDefault(key);
                if (c <= 0)
                {
                    pairCounts.Remove(key);
                    continue;
                }
                heap.Enqueue(key, (c, key));
            }
        }

        // 3. Result in byte-level alphabet strings.
        var tokenStrings = tokenBytes.Select(bytes => ByteLevelAlphabet.Encode(bytes)).ToArray();
        var vocab = new Dictionary<string, int>(idByString, StringComparer.Ordinal);
        var mergeStrings = merges.Select(m => (tokenStrings[m.Item1], tokenStrings[m.Item2])).ToList();
        var specials = specialTokens.Select((s, i) => (s, tokenStrings.Length + i)).ToList();
        return new TrainedBpe(vocab, mergeStrings, specials, options);

        void Add(long key, long delta)
        {
            pairCounts[key] = pairCounts.GetValueOrDefault(key) + delta;
            changed.Add(key);
        }
    }

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    private static IEnumerable<string> SplitOutSpecials(string doc, string[] specials)
    {
        if (specials.Length == 0)
        {
            yield return doc;
            yield break;
        }
        int pos = 0;
        for (int i = 0; i < doc.Length; i++)
        {
            foreach (var s in specials)
            {
                if (string.CompareOrdinal(doc, i, s, 0, s.Length) == 0 && s.Length <= doc.Length - i)
                {
                    if (i > pos) yield return doc[pos..i];
                    pos = i + s.Length;
                    i = pos - 1;
                    break;
                }
            }
        }
        if (pos < doc.Length) yield return doc[pos..];
    }

    /// <summary>Higher count first; ties: smaller left token bytes, then smaller right token bytes.</summary>
    private sealed class CandidateComparer(List<byte[]> tokenBytes) : IComparer<(long Count, long Pair)>
    {
        public int Compare((long Count, long Pair) x, (long Count, long Pair) y)
        {
            int c = y.Count.CompareTo(x.Count);
            if (c != 0) return c;
            if (x.Pair == y.Pair) return 0;
            c = tokenBytes[(int)(x.Pair >> 32)].AsSpan().SequenceCompareTo(tokenBytes[(int)(y.Pair >> 32)]);
            if (c != 0) return c;
            return tokenBytes[(int)(x.Pair & 0xFFFFFFFF)].AsSpan().SequenceCompareTo(tokenBytes[(int)(y.Pair & 0xFFFFFFFF)]);
        }
    }
}
