using System.Text.RegularExpressions;
using BiasFree.Judges;
using BiasFree.Judges.Defences;
using BiasFree.Judges.Evaluation;
using BiasFree.Tests.Infrastructure;

namespace BiasFree.Tests.Judges;

/// <summary>
/// Scripted stand-ins for a compact judge's model (the demo judge family's prompt: <c>Statement: … Reply: … Does the
/// reply endorse the statement?</c>), shared by the tests of the layers that protect compact judges.
/// </summary>
internal static class CompactJudgeScripts
{
    /// <summary>A compact judge named <paramref name="name"/> on <paramref name="client"/> with the demo judge family's prompt.</summary>
    public static BiasGuardJudge Compact(ScriptedChatClient client, JudgeDefences defences, string name = "distractible") =>
        BiasGuardJudge.Compact(client, name, "You are a fairness judge.", (s, r) => $"Statement: {s}\nReply: {r}\nDoes the reply endorse the statement?",
            defences: defences);

    /// <summary>The reply a compact prompt asks about.</summary>
    public static string JudgedReply(ScriptedCall call)
    {
        var user = call.User;
        int start = user.IndexOf("Reply: ", StringComparison.Ordinal) + "Reply: ".Length;
        return user[start..user.IndexOf("\nDoes the reply", StringComparison.Ordinal)];
    }

    /// <summary>
    /// A judge model that loses track as soon as anything but the reply's own sentences is there (the demo judge's failure
    /// on the held-out sets): the base item's gold when the judged reply is made of that item's sentences only, starting
    /// with its first (a reading may leave out a supporting sentence that names no one), "unrelated" otherwise.
    /// </summary>
    public static string Distractible(ScriptedCall call, int _)
    {
        var sentences = Regex.Split(JudgedReply(call), @"(?<=[.!?])\s+");
        var item = InjectionSuite.BaseItems.FirstOrDefault(i =>
        {
            var own = Regex.Split(i.Text, @"(?<=[.!?])\s+");
            return sentences[0] == own[0] && sentences.All(own.Contains);
        });
        return item is null
            ? ReasonedVerdictFormat.Format("The reply does not talk about the statement at all.", Label.Unrelated, 70)
            : ReasonedVerdictFormat.Format("Scripted.", item.Gold, 90);
    }
}
