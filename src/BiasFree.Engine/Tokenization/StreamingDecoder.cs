namespace BiasFree.Engine.Tokenization;

/// <summary>
/// Turns ids arriving one at a time (generation) into text deltas. A delta is held back while the text
/// ends in an incomplete UTF-8 sequence (U+FFFD), and decoding always includes the previous token so
/// that decoders which treat the first token specially (SentencePiece leading space) give the right
/// spacing. The concatenated deltas plus <see cref="Flush"/> equal <see cref="HfTokenizer.Decode"/> of all ids.
/// </summary>
public sealed class StreamingDecoder
{
    private readonly HfTokenizer _tokenizer;
    private readonly bool _skipSpecialTokens;
    private readonly List<int> _ids = new();
    private int _prefixOffset;
    private int _readOffset;

    public StreamingDecoder(HfTokenizer tokenizer, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _tokenizer = tokenizer;
        _skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>All ids pushed so far.</summary>
    public IReadOnlyList<int> Ids => _ids;

    /// <summary>Adds one id; returns the text it completes (possibly empty).</summary>
    public string Push(int id)
    {
        _ids.Add(id);
        string prefixText = _tokenizer.Decode(_ids.GetRange(_prefixOffset, _readOffset - _prefixOffset), _skipSpecialTokens);
        string newText = _tokenizer.Decode(_ids.GetRange(_prefixOffset, _ids.Count - _prefixOffset), _skipSpecialTokens);
        if (newText.Length > prefixText.Length && !newText.EndsWith('\uFFFD') && newText.StartsWith(prefixText, StringComparison.Ordinal))
        {
            _prefixOffset = _readOffset;
            _readOffset = _ids.Count;
            return newText[prefixText.Length..];
        }
        return "";
    }

    /// <summary>Returns any text still held back (an incomplete UTF-8 tail decodes as U+FFFD).</summary>
    public string Flush()
    {
        if (_readOffset == _ids.Count) return "";
        string prefixText = _tokenizer.Decode(_ids.GetRange(_prefixOffset, _readOffset - _prefixOffset), _skipSpecialTokens);
        string newText = _tokenizer.Decode(_ids.GetRange(_prefixOffset, _ids.Count - _prefixOffset), _skipSpecialTokens);
        _prefixOffset = _readOffset;
        _readOffset = _ids.Count;
        return newText.StartsWith(prefixText, StringComparison.Ordinal) ? newText[prefixText.Length..] : newText;
    }
}
