using System.Globalization;
using BiasFree.Engine.Chat;
using BiasFree.Engine.DemoModel;
using BiasFree.Engine.Evaluations;
using BiasFree.Evaluations;
using BiasFree.Judges;
using BiasFree.Judges.Defences;
using BiasFree.Judges.Evaluation;
using Microsoft.Extensions.AI;

namespace BiasFree.Cli.Commands;

/// <summary>
/// The embedded demo model as an offline judge: its judge family was trained on <see cref="DemoCorpus.JudgePrompt"/>
/// (statement + reply) under <see cref="DemoCorpus.JudgeSystemPrompt"/> and answers in <see cref="ReasonedVerdictFormat"/>,
/// so it is a compact <see cref="BiasGuardJudge"/>. Greedy decoding (temperature 0) makes its verdicts repeatable.
/// <c>demo</c> uses the shipped model; <c>demo:PATH</c> a model folder, or a PEFT adapter folder (or a folder with an
/// <c>adapter/</c> subfolder, such as models/demo-judge) applied to the demo model.
/// </summary>
internal static class DemoJudge
{
    /// <summary>Judge name recorded with verdicts.</summary>
    public const string Name = "demo-judge";

    /// <summary>Data spec prefix of held-out generated judge items: <c>demo-heldout:N</c>.</summary>
    public const string HeldOutPrefix = "demo-heldout:";

    /// <summary>Seed of the held-out items: not the training seed, and stream 2 (training uses stream 0, the model card's evaluation stream 1).</summary>
    public const int HeldOutSeed = 4242;

    /// <summary>
    /// The judge for <c>--judge demo</c> / <c>demo:PATH</c> (its model lives as long as the process). A pinned spec
    /// (<see cref="Pin"/>) is checked first: its folder must still hold the content it was pinned with.
    /// </summary>
    /// <exception cref="ArgumentException">A pinned folder is missing or its content changed.</exception>
    public static IJudge Create(JudgeSpec spec, JudgeDefences defences)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec is { Model: { } path, ContentHash: { } pinned })
        {
            if (!Directory.Exists(path))
                throw new ArgumentException($"judge demo:{path}: the folder is gone (the run recorded it at this absolute path, content sha256:{pinned}).");
            var now = FolderHash(path);
            if (!string.Equals(now, pinned, StringComparison.Ordinal))
                throw new ArgumentException($"judge demo:{path}: the folder's content changed since the run recorded it (sha256:{pinned}, now sha256:{now}); its verdicts would not be comparable.");
        }
        return CreateWithClient(spec.Model, spec.Model is null ? Name : $"{Name}:{spec.Model}", defences).Judge;
    }

    /// <summary>
    /// The judge list <paramref name="judges"/> with every <c>demo:PATH</c> made absolute and pinned to its content hash
    /// (<c>demo:/abs/path#sha256:HEX</c>), as a run records it: a resume from another working directory then finds the
    /// same folder, and one whose weights changed is refused rather than silently mixing two judges in one run.
    /// </summary>
    /// <exception cref="ArgumentException">A spec does not parse, or a demo path is not a folder.</exception>
    public static string Pin(string judges)
    {
        var specs = JudgeSpec.ParseList(judges).Select(s =>
        {
            if (s is not { Kind: JudgeKind.Demo, Model: { } path } || s.ContentHash is not null) return s;
            var full = Path.GetFullPath(path);
            if (!Directory.Exists(full)) throw new ArgumentException($"judge demo:{path}: '{full}' is not a folder");
            return s with { Model = full, ContentHash = FolderHash(full) };
        });
        return string.Join(",", specs.Select(s => s.Canonical));
    }

    /// <summary>
    /// First 16 hex digits of the SHA-256 of what a <c>demo:PATH</c> judge loads: the adapter files
    /// (<see cref="LocalTargets.AdapterHash"/>) of an adapter folder, else the model files (<see cref="LocalTargets.ContentHash"/>).
    /// </summary>
    internal static string FolderHash(string path) =>
        (AdapterFolder(path) is { } adapter ? LocalTargets.AdapterHash(adapter) : LocalTargets.ContentHash(path))[..16];

    /// <summary>The judge and the model client it uses (the caller disposes the client).</summary>
    public static (IJudge Judge, IChatClient Client) CreateWithClient(string? path, string name = Name, JudgeDefences defences = JudgeDefences.All)
    {
        var client = AdapterFolder(path) is { } adapter
            ? LocalModel.Load(DemoModel.Find() ?? throw new DirectoryNotFoundException("no demo model (models/demo) for the judge adapter"), new LocalModelOptions
            {
                ModelId = DemoModel.ModelId + "+" + Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetDirectoryName(adapter) ?? adapter)),
                DefaultTemperature = DemoModel.DefaultTemperature,
                DefaultMaxOutputTokens = DemoModel.DefaultMaxOutputTokens,
                Adapter = adapter,
            })
            : DemoModel.CreateChatClient(path);
        return (BiasGuardJudge.Compact(client, name, DemoCorpus.JudgeSystemPrompt, DemoCorpus.JudgePrompt, defences: defences), client);
    }

    /// <summary>A PEFT adapter folder at <paramref name="path"/> or at <paramref name="path"/>/adapter, else null (then the path is a model folder).</summary>
    internal static string? AdapterFolder(string? path)
    {
        if (path is null) return null;
        if (File.Exists(Path.Combine(path, "adapter_config.json"))) return Path.GetFullPath(path);
        var nested = Path.Combine(path, "adapter");
        return File.Exists(Path.Combine(nested, "adapter_config.json")) ? Path.GetFullPath(nested) : null;
    }

    /// <summary>
    /// The CLI's default judges: the rule-based extractor for multiple choice and, for dialogues, the demo judge, loaded
    /// only when a dialogue is judged (a bbq-only run never loads it). Named "rule" like <see cref="EvaluationJudges.Rule"/>,
    /// so stored runs and resumes are unchanged; when no demo model exists the dialogue judge answers JudgeError with the reason.
    /// </summary>
    public static EvaluationJudges RuleWithOfflineDialogueJudge() =>
        EvaluationJudges.Custom(EvaluationJudges.RuleName, new RuleBasedAnswerExtractor(), new OnDemand());

    /// <summary>The demo judge, created on first use (thread-safe) and kept for the process.</summary>
    internal sealed class OnDemand : IJudge
    {
        private readonly Lazy<IJudge> _judge = new(() => CreateWithClient(null).Judge, LazyThreadSafetyMode.ExecutionAndPublication);

        public string Name => DemoJudge.Name;

        public async Task<Verdict> JudgeAsync(Probes.Probe probe, string response, CancellationToken cancellationToken = default)
        {
            IJudge judge;
            try
            {
                judge = _judge.Value;
            }
            catch (Exception ex) when (ex is DirectoryNotFoundException or IOException or InvalidOperationException)
            {
                return new Verdict(Label.JudgeError, $"no offline dialogue judge: {ex.Message}; pass --judge URL --judge-model NAME", Name);
            }
            return await judge.JudgeAsync(probe, response, cancellationToken).ConfigureAwait(false);
        }
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
