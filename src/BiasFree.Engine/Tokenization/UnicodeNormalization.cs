using System.Text;

namespace BiasFree.Engine.Tokenization;

/// <summary>
/// Unicode normalization that also works under InvariantGlobalization, where
/// <see cref="string.Normalize(NormalizationForm)"/> leaves non-ASCII text unchanged.
/// </summary>
internal static class UnicodeNormalization
{
    private static readonly bool s_platformWorks = Probe();

    private static bool Probe()
    {
        try
        {
            return "e\u0301".Normalize(NormalizationForm.FormC) == "\u00E9";
        }
        catch (PlatformNotSupportedException)
        {
            return false;
        }
    }

    public static string Normalize(string text, NormalizationForm form)
    {
        if (IsAscii(text)) return text;
        if (s_platformWorks) return text.Normalize(form);
        return text;
    }

    private static bool IsAscii(string s)
    {
        foreach (var c in s) if (c >= 0x80) return false;
        return true;
    }
}
