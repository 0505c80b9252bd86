using System.Text;
using BiasFree.Engine.Tokenization;

namespace BiasFree.Engine.Tests.Tokenization;

/// <summary>Our NFC/NFD (needed under InvariantGlobalization) equals Python's unicodedata on normalization.json.</summary>
public sealed class NormalizationTests
{
    [Fact]
    public void NfcAndNfd_MatchUnicodedataVectors()
    {
        var cases = Fixtures.ReadJson("normalization.json").GetProperty("cases");
        Assert.True(cases.GetArrayLength() > 300);
        foreach (var c in cases.EnumerateArray())
        {
            string input = c.GetProperty("input").GetString()!;
            Assert.Equal(c.GetProperty("nfc").GetString(), UnicodeNormalization.Normalize(input, NormalizationForm.FormC));
            Assert.Equal(c.GetProperty("nfd").GetString(), UnicodeNormalization.Normalize(input, NormalizationForm.FormD));
        }
    }

    [Fact]
    public void Nfc_ComposesCommonCases()
    {
        Assert.Equal("\u00e9", UnicodeNormalization.Normalize("e\u0301", NormalizationForm.FormC));
        Assert.Equal("\uac01", UnicodeNormalization.Normalize("\u1100\u1161\u11a8", NormalizationForm.FormC));
        Assert.Equal("plain ascii", UnicodeNormalization.Normalize("plain ascii", NormalizationForm.FormC));
    }
}
