using System.Text.RegularExpressions;

namespace BiasFree.Tests.Infrastructure;

/// <summary>
/// The known-answer check of the LLM judges (<see cref="BiasFree.Judges.Defences.KnownAnswerDetection"/>, a default
/// defence) as a scripted judge model reads it: "Repeat the code … once" in the prompt. Scripted loopback judges written
/// for the judging prompt answer it as a capable model that ignores the reply does, with the code.
/// </summary>
internal static partial class KnownAnswerPrompts
{
    [GeneratedRegex(@"Repeat the code (?<code>\S+) once", RegexOptions.CultureInvariant)]
    public static partial Regex Task();

    /// <summary>True when <paramref name="request"/> is a known-answer check.</summary>
    public static bool Is(LoopbackRequest request) => request.Messages.Any(m => m.Role == "user" && Task().IsMatch(m.Content));

    /// <summary>The code repeated, for a known-answer check; null for any other request.</summary>
    public static LoopbackReply? Answer(LoopbackRequest request) =>
        request.Messages.Where(m => m.Role == "user").Select(m => Task().Match(m.Content)).FirstOrDefault(m => m.Success) is { } match
            ? new LoopbackReply(Content: match.Groups["code"].Value) : null;
}
