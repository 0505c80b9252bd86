using System.Text;

namespace BiasFree.Engine.Tokenization;

/// <summary>
/// A plain BPE model over a vocabulary and ranked merges, with HF semantics: a word is split into
/// characters (unknown characters become <c>&lt;0xNN&gt;</c> byte tokens when byte fallback is on,
/// otherwise the unknown token, fused if requested), then the adjacent pair with the lowest merge
/// rank is merged repeatedly, leftmost first among equal ranks.
/// </summary>
internal sealed class RankedBpe
{
    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<long, (int Rank, int NewId)> _merges;
    private readonly int[] _byteIds;
    private readonly int? _unkId;
    private readonly bool _fuseUnk;
    private readonly bool _ignoreMerges;
    private readonly Dictionary<string, int[]> _cache = new(StringComparer.Ordinal);
    private readonly Lock _cacheLock = new();

    public RankedBpe(Dictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges,
        bool byteFallback, string? unkToken, bool fuseUnk, bool ignoreMerges, Func<int, string> describeMerge)
    {
        _vocab = vocab;
        _merges = new Dictionary<long, (int, int)>(merges.Count);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (l, r) = merges[rank];
            if (!vocab.TryGetValue(l, out int a) || !vocab.TryGetValue(r, out int b) || !vocab.TryGetValue(l + r, out int n))
            {
                throw new InvalidDataException($"{describeMerge(rank)}: merge \"{l} {r}\" uses a token missing from model.vocab");
            }
            _merges.TryAdd(Key(a, b), (rank, n));
        }
        _byteIds = new int[256];
        for (int i = 0; i < 256; i++)
        {
            _byteIds[i] = byteFallback && vocab.TryGetValue($"<0x{i:X2}>", out int id) ? id : -1;
        }
        ByteFallback = byteFallback;
        if (unkToken is not null && vocab.TryGetValue(unkToken, out int unk)) _unkId = unk;
        _fuseUnk = fuseUnk;
        _ignoreMerges = ignoreMerges;
    }

    public bool ByteFallback { get; }

    private static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    public void Encode(string word, List<int> output)
    {
        if (word.Length == 0) return;
        if (_ignoreMerges && _vocab.TryGetValue(word, out int whole))
        {
            output.Add(whole);
            return;
        }
        int[]? cached = null;
        if (word.Length < 64)
        {
            lock (_cacheLock) _cache.TryGetValue(word, out cached);
        }
        if (cached is null)
        {
            cached = Merge(word);
            if (word.Length < 64)
            {
                lock (_cacheLock)
                {
                    if (_cache.Count > 100_000) _cache.Clear();
                    _cache[word] = cached;
                }
            }
        }
        output.AddRange(cached);
    }

    private int[] Merge(string word)
    {
        // Initial symbols.
        var ids = new List<int>(word.Length);
        bool lastWasUnk = false;
        var utf8 = new byte[4];
        for (int i = 0; i < word.Length; i++)
        {
            int len = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            string ch = word.Substring(i, len);
            i += len - 1;
            if (_vocab.TryGetValue(ch, out int id))
            {
                ids.Add(id);
                lastWasUnk = false;
                continue;
            }
            if (ByteFallback)
            {
                int n = Encoding.UTF8.GetBytes(ch, utf8);
                bool all = true;
                for (int k = 0; k < n; k++) all &= _byteIds[utf8[k]] >= 0;
                if (all)
                {
                    for (int k = 0; k < n; k++) ids.Add(_byteIds[utf8[k]]);
                    lastWasUnk = false;
                    continue;
                }
            }
            if (_unkId is int unk)
            {
                if (!(_fuseUnk && lastWasUnk)) ids.Add(unk);
                lastWasUnk = true;
                continue;
            }
            throw new InvalidOperationException($"character U+{char.ConvertToUtf32(ch, 0):X4} is not in the vocabulary and the model has no unk_token or byte fallback");
        }
        if (ids.Count < 2 || _merges.Count == 0) return ids.ToArray();

        // Doubly linked symbols + a heap of candidate merges ordered by (rank, position).
        int count = ids.Count;
        var sym = ids.ToArray();
        var prev = new int[count];
        var next = new int[count];
        var alive = new bool[count];
        for (int i = 0; i < count; i++) { prev[i] = i - 1; next[i] = i + 1 < count ? i + 1 : -1; alive[i] = true; }
        var heap = new PriorityQueue<(int Pos, int Left, int Right), (int Rank, int Pos)>();
        for (int i = 0; i + 1 < count; i++)
        {
            if (_merges.TryGetValue(Key(sym[i], sym[i + 1]), out var m)) heap.Enqueue((i, sym[i], sym[i + 1]), (m.Rank, i));
        }
        while (heap.TryDequeue(out var cand, out _))
        {
            int p = cand.Pos;
            if (!alive[p] || sym[p] != cand.Left) continue;
            int q = next[p];
            if (q < 0 || sym[q] != cand.Right) continue;
            var merge = _merges[Key(cand.Left, cand.Right)];
            sym[p] = merge.NewId;
            alive[q] = false;
            next[p] = next[q];
            if (next[q] >= 0) prev[next[q]] = p;
            if (prev[p] >= 0 && _merges.TryGetValue(Key(sym[prev[p]], sym[p]), out var ml))
            {
                heap.Enqueue((prev[p], sym[prev[p]], sym[p]), (ml.Rank, prev[p]));
            }
            if (next[p] >= 0 && _merges.TryGetValue(Key(sym[p], sym[next[p]]), out var mr))
            {
                heap.Enqueue((p, sym[p], sym[next[p]]), (mr.Rank, p));
            }
        }
        var result = new List<int>(count);
        for (int i = 0; i >= 0; i = next[i]) result.Add(sym[i]);
        return result.ToArray();
    }
}
