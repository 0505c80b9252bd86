using System.Text;

namespace BiasFree.Engine.Tokenization;

/// <summary>
/// The GPT-2 byte-to-unicode alphabet used by byte-level BPE: every byte maps to one printable
/// character so that BPE tokens are ordinary strings. Printable Latin-1 bytes map to themselves;
/// the remaining 68 bytes map, in byte order, to U+0100, U+0101, ...
/// </summary>
public static class ByteLevelAlphabet
{
    private static readonly char[] s_byteToChar = BuildTable();
    private static readonly Dictionary<char, byte> s_charToByte = BuildReverse();

    /// <summary>The character that represents <paramref name="b"/>.</summary>
    public static char ToChar(byte b) => s_byteToChar[b];

    /// <summary>The byte a byte-level character stands for, if it is one.</summary>
    public static bool TryToByte(char c, out byte b) => s_charToByte.TryGetValue(c, out b);

    /// <summary>UTF-8 encodes <paramref name="text"/> and maps every byte to its alphabet character.</summary>
    public static string Encode(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        return Encode(bytes);
    }

    /// <summary>Maps every byte to its alphabet character.</summary>
    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        return string.Create(bytes.Length, bytes.ToArray(), static (span, arr) =>
        {
            for (int i = 0; i < arr.Length; i++) span[i] = s_byteToChar[arr[i]];
        });
    }

    /// <summary>
    /// Appends the bytes a token stands for. As in HF's ByteLevel decoder, a token containing any
    /// character outside the alphabet contributes its own UTF-8 bytes unchanged.
    /// </summary>
    public static void AppendTokenBytes(string token, List<byte> sink)
    {
        foreach (var c in token)
        {
            if (!s_charToByte.ContainsKey(c))
            {
                sink.AddRange(Encoding.UTF8.GetBytes(token));
                return;
            }
        }
        foreach (var c in token) sink.Add(s_charToByte[c]);
    }

    private static char[] BuildTable()
    {
        var table = new char[256];
        var isDirect = new bool[256];
        for (int b = '!'; b <= '~'; b++) isDirect[b] = true;
        for (int b = 0xA1; b <= 0xAC; b++) isDirect[b] = true;
        for (int b = 0xAE; b <= 0xFF; b++) isDirect[b] = true;
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            table[b] = isDirect[b] ? (char)b : (char)(256 + next++);
        }
        return table;
    }

    private static Dictionary<char, byte> BuildReverse()
    {
        var map = new Dictionary<char, byte>(256);
        for (int b = 0; b < 256; b++) map[s_byteToChar[b]] = (byte)b;
        return map;
    }
}
