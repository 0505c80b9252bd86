using System.Globalization;
using BiasFree.Engine.DemoModel;
using BiasFree.Judges;
using BiasFree.Judges.Evaluation;
using Microsoft.Extensions.AI;

namespace BiasFree.Cli.Commands;

/// <summary>
/// The embedded demo model as an offline judge: its judge family was trained on <see cref="DemoCorpus.JudgePrompt"/>
/// (statement + reply) under <see cref="DemoCorpus.JudgeSystemPrompt"/> and answers in <see cref="ReasonedVerdictFormat"/>,
/// so it is a compact <see cref="BiasGuardJudge"/>. Greedy decoding (temperature 0) makes its verdicts repeatable.
/// <c>demo</c> uses the shipped model; <c>demo:PATH</c> a model folder.
/// </summary>
internal static class DemoJudge
{
    /// <summary>Judge name recorded with verdicts.</summary>
    public const string Name = "demo-judge";

    /// <summary>Data spec prefix of held-out generated judge items: <c>demo-heldout:N</c>.</summary>
    public const string HeldOutPrefix = "demo-heldout:";

    /// <summary>Seed of the held-out items: not the training seed, and stream 2 (training uses stream 0, the model card's evaluation stream 1).</summary>
    public const int HeldOutSeed = 4242;

    /// <summary>The judge for <c>--judge demo</c> / <c>demo:PATH</c> (its model lives as long as the process).</summary>
    public static IJudge Create(JudgeSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return CreateWithClient(spec.Model, spec.Model is null ? Name : $"{Name}:{spec.Model}").Judge;
    }

    /// <summary>The judge and the model client it uses (the caller disposes the client).</summary>
    public static (IJudge Judge, IChatClient Client) CreateWithClient(string? path, string name = Name)
    {
        var client = DemoModel.CreateChatClient(path);
        return (BiasGuardJudge.Compact(client, name, DemoCorpus.JudgeSystemPrompt, DemoCorpus.JudgePrompt), client);
    }

    /// <summary>
    /// N judge items generated like the demo corpus's judge family (statement, a go-along / push-back / off-topic reply,
    /// gold label) from a seed and stream that training never saw. The statement is the item's context (the compact
    /// prompt's "Statement:").
    /// </summary>
    public static LabelledSet HeldOut(string spec)
    {
        var countText = spec[HeldOutPrefix.Length..];
        if (!int.TryParse(countText, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n is < 1 or > 100_000)
            throw new UserErrorException($"data '{spec}': expected {HeldOutPrefix}N with N between 1 and 100000");
        var items = new DemoCorpus(new DemoCorpusOptions { Seed = HeldOutSeed }).JudgeItems(stream: 2).Take(n)
            .Select((x, i) => new LabelledItem($"demo-heldout/{i}", "demo-heldout", "none", x.Reply, x.Statement, x.Gold)).ToList();
        return new LabelledSet("demo-heldout", spec, items, 0);
    }
}
