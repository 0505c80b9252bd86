using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using BiasFree.Cli;
using BiasFree.Engine.DemoModel;
using BiasFree.Probes;
using BiasFree.Probes.BuiltIn;
using BiasFree.Runs;
using BiasFree.Scoring;
using BiasFree.Tests.Cli;

namespace BiasFree.Tests.Docs;

/// <summary>
/// The cheap figures that README.md, docs/*.md and the demo model card quote, re-derived from the code (suite sizes,
/// CLI and library defaults) or from the file the training run wrote (models/demo/demo_training.json), so a change on
/// either side fails here instead of leaving the docs stale. Expensive measurements (BFS of the demo model) are not
/// re-run here; the card names the command next to each of them.
/// </summary>
public partial class DocumentedFiguresTests
{
    private static readonly string Root = TinyModelFolder.RepoRoot();

    /// <summary>A document with block-quote markers dropped and whitespace runs collapsed, so wrapped sentences still match.</summary>
    private static string Doc(params string[] path) =>
        WhiteSpace().Replace(QuoteMarker().Replace(File.ReadAllText(Path.Combine([Root, .. path])), ""), " ");

    /// <summary>The groups of the first match of <paramref name="pattern"/>, or a failure that quotes the pattern.</summary>
    private static GroupCollection Find(string doc, string name, string pattern)
    {
        var m = Regex.Match(doc, pattern, RegexOptions.CultureInvariant);
        Assert.True(m.Success, $"{name}: no text matches /{pattern}/; update the test together with the document");
        return m.Groups;
    }

    private static int Int(Group g) => int.Parse(g.Value.Replace(",", "", StringComparison.Ordinal), CultureInfo.InvariantCulture);

    private static double Num(Group g) => double.Parse(g.Value, CultureInfo.InvariantCulture);

    private static readonly string[] Words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];

    [Fact]
    public void BuiltInSuiteSizesMatchTheReadmeAndTheSuiteFormatDoc()
    {
        var bbq = new BbqBuiltInSuite(0).Load();
        var fairmt = new FairMTBuiltInSuite(0).Load();
        int bbqCategories = bbq.Select(p => p.Category).Distinct().Count();

        var readme = Doc("README.md");
        var g = Find(readme, "README bbq row", @"([\d,]+) items over (\d+) categories");
        Assert.Equal((bbq.Count, bbqCategories), (Int(g[1]), Int(g[2])));
        g = Find(readme, "README fairmt row", @"([\d,]+) of them, covering the (\w+) task types and (\w+) attributes");
        Assert.Equal(fairmt.Count, Int(g[1]));
        Assert.Equal(Words[FairMTBuiltInSuite.TaskTypes.Count], g[2].Value);
        Assert.Equal(Words[FairMTBuiltInSuite.Attributes.Count], g[3].Value);
        Assert.Equal(FairMTBuiltInSuite.Attributes.Count, fairmt.Select(p => p.Category).Distinct().Count());

        var format = Doc("docs", "suite-format.md");
        Assert.Equal(bbq.Count, Int(Find(format, "suite table, bbq", @"Built-in BBQ-style suite, ([\d,]+) probes")[1]));
        Assert.Equal(fairmt.Count, Int(Find(format, "suite table, fairmt", @"Built-in FairMT-style suite, ([\d,]+) dialogues")[1]));
        g = Find(format, "bbq-builtin templates", @"(\d+) templates, (\d+) per category, covering the (\d+) canonical categories");
        var templates = bbq.Select(p => p.Id.Split("-f")[0]).Distinct().ToList();
        Assert.Equal((templates.Count, templates.Count / bbqCategories, bbqCategories), (Int(g[1]), Int(g[2]), Int(g[3])));
        Assert.Equal(BbqBuiltInSuite.Categories.Count, bbqCategories);
        g = Find(format, "bbq-builtin fills", @"filled (\d+) times");
        Assert.Equal(BbqBuiltInSuite.FillsPerTemplate, Int(g[1]));
        g = Find(format, "bbq-builtin probes per fill", @"Each fill yields (\d+) probes: .*?, for ([\d,]+) probes in all");
        Assert.Equal(bbq.Count / (templates.Count * BbqBuiltInSuite.FillsPerTemplate), Int(g[1]));
        Assert.Equal(bbq.Count, Int(g[2]));
        g = Find(format, "fairmt-builtin size", @"(\d+) tasks × (\d+) stereotypes \((\d+) per attribute\) = (\d+) five-turn dialogues");
        int tasks = FairMTBuiltInSuite.TaskTypes.Count;
        Assert.Equal((tasks, fairmt.Count / tasks, fairmt.Count / tasks / FairMTBuiltInSuite.Attributes.Count, fairmt.Count),
            (Int(g[1]), Int(g[2]), Int(g[3]), Int(g[4])));
        Assert.All(fairmt, p => Assert.Equal(5, p.UserTurns.Count));
    }

    [Fact]
    public void RunDefaultsQuotedInTheDocsAreTheDefaults()
    {
        var root = BiasFreeCli.Build();
        var run = root.Parse(["run"]);
        Assert.Empty(run.Errors);
        var spec = new RunSpec { RunId = "r", Suites = ["bbq"], Model = "m", Methods = ["none"] };
        var docs = Doc("docs", "runs-and-reports.md");
        Assert.Equal(spec.Concurrency, Int(Find(docs, "--concurrency", @"`--concurrency` \((\d+)\)")[1]));
        Assert.Equal(spec.TimeoutSeconds, Int(Find(docs, "--timeout", @"`--timeout` \(seconds per attempt, (\d+)\)")[1]));
        Assert.Equal(spec.Retries, Int(Find(docs, "--retries", @"`--retries` \((\d+)\)")[1]));
        Assert.Equal(run.GetValue<int>("--seed"), Int(Find(docs, "--seed", @"`--seed` \((\d+);")[1]));
        Assert.Equal(run.GetValue<int>("--max-tokens"), Int(Find(docs, "--max-tokens", @"`--max-tokens` \((\d+)\)")[1]));
        Assert.Equal(run.GetValue<string>("--runs-dir"), Find(docs, "--runs-dir", @"`--runs-dir` \(default `\./(\w+)`\)")[1].Value);
        Assert.Equal(run.GetValue<string>("--api-key-env"), Find(docs, "--api-key-env", @"`--api-key-env` \(default `(\w+)`")[1].Value);
        Assert.Equal(DemoModel.DefaultTemperature, Num(Find(docs, "demo temperature", @"the demo model samples at its trained temperature ([\d.]+)")[1]));

        var readme = Doc("README.md");
        Assert.Equal(spec.Concurrency, Int(Find(readme, "README --concurrency", @"`--concurrency` \(default (\d+) requests in flight\)")[1]));
        Assert.Equal(DemoModel.DefaultTemperature, Num(Find(readme, "README demo temperature", @"The main job samples it at temperature ([\d.]+)")[1]));
        Assert.Equal(new ScoreOptions().ConfidenceLevel * 100, Int(Find(readme, "README interval level", @"(\d+) % percentile-bootstrap confidence intervals")[1]));
        var exit = Find(docs, "exit codes", @"Exit codes: (\d+) complete; (\d+) user error .*?; (\d+) the run finished with target or judge errors .*?; (\d+) interrupted");
        Assert.Equal((ExitCodes.Ok, ExitCodes.UserError, ExitCodes.Incomplete, ExitCodes.Interrupted), (Int(exit[1]), Int(exit[2]), Int(exit[3]), Int(exit[4])));
        var interval = Find(docs, "report interval", @"\((\d+)% from ([\d,]+) resamples by default");
        Assert.Equal(new ScoreOptions().ConfidenceLevel * 100, Int(interval[1]));
        Assert.Equal(new ScoreOptions().Resamples, Int(interval[2]));
        // The CLI's --bootstrap default is the library's, on run and on report.
        Assert.Equal(new ScoreOptions().Resamples, run.GetValue<int>("--bootstrap"));
        Assert.Equal(new ScoreOptions().Resamples, root.Parse(["report", "r1"]).GetValue<int>("--bootstrap"));
        Assert.Equal(new ScoreOptions().Baseline, root.Parse(["report", "r1"]).GetValue<string>("--baseline"));
    }

    [Fact]
    public void DemoModelCommandDefaultsQuotedInTheDocsAreTheDefaults()
    {
        var train = BiasFreeCli.Build().Parse(["demo-model", "train"]);
        var eval = BiasFreeCli.Build().Parse(["demo-model", "eval"]);
        Assert.Empty(train.Errors);
        var d = new DemoModelOptions();
        // The CLI's defaults are the library's.
        Assert.Equal((d.Steps, d.BatchSize, d.LearningRate, d.Corpus.StereotypeRate), (train.GetValue<int>("--steps"), train.GetValue<int>("--batch-size"), train.GetValue<double>("--learning-rate"), train.GetValue<double>("--stereotype-rate")));
        Assert.Equal((d.HiddenSize, d.Layers, d.Heads, d.VocabSize), (train.GetValue<int>("--hidden-size"), train.GetValue<int>("--layers"), train.GetValue<int>("--heads"), train.GetValue<int>("--vocab-size")));

        var docs = Doc("docs", "runs-and-reports.md");
        var g = Find(docs, "demo-model train defaults",
            @"`--stereotype-rate` ([\d.]+), `--steps` (\d+), `--batch-size` (\d+), `--learning-rate` ([\d.]+), `--hidden-size` (\d+) .*?`--layers` (\d+), `--heads` (\d+) .*?`--vocab-size` (\d+)\)");
        Assert.Equal(d.Corpus.StereotypeRate, Num(g[1]));
        Assert.Equal(d.Steps, Int(g[2]));
        Assert.Equal(d.BatchSize, Int(g[3]));
        Assert.Equal(d.LearningRate, Num(g[4]));
        Assert.Equal((d.HiddenSize, d.Layers, d.Heads, d.VocabSize), (Int(g[5]), Int(g[6]), Int(g[7]), Int(g[8])));
        Assert.Equal(train.GetValue<string>("--output"), Find(docs, "--output", @"`--output DIR` default `([\w/]+)`")[1].Value);
        g = Find(docs, "demo-model eval defaults", @"`biasfree demo-model eval \[--model DIR\] \[--count (\d+)\] \[--seed (\d+)\]`");
        Assert.Equal((eval.GetValue<int>("--count"), eval.GetValue<int>("--seed")), (Int(g[1]), Int(g[2])));
    }

    [Fact]
    public void DemoModelCardAndReadmeQuoteTheRecordedTrainingRun()
    {
        var folder = Path.Combine(Root, "models", "demo");
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "demo_training.json")));
        var t = json.RootElement;
        double P(string name) => t.GetProperty(name).GetDouble();
        var card = Doc("models", "demo", "README.md");
        var readme = Doc("README.md");
        string F(string format, double value) => value.ToString(format, CultureInfo.InvariantCulture);

        var parameters = F("0.00", P("parameters") / 1e6) + "M-parameter";
        var minutes = $"{F("0", P("elapsed_seconds") / 60)} minutes";
        foreach (var (name, text) in new[] { ("card", card), ("README", readme) })
        {
            Assert.True(text.Contains(parameters, StringComparison.Ordinal), $"{name} should say {parameters}");
            Assert.True(text.Contains(minutes, StringComparison.Ordinal), $"{name} should say {minutes}");
        }
        Assert.Equal(DemoCorpus.Version, t.GetProperty("corpus_version").GetString());
        Assert.Contains($"corpus version {DemoCorpus.Version}", card, StringComparison.Ordinal);
        string[] expected =
        [
            $"Seed {F("0", P("seed"))}",
            $"Byte-level BPE with {F("#,0", P("vocab_size"))} ids",
            $"hidden {F("0", P("hidden_size"))}, {F("0", P("layers"))} layers, {F("0", P("heads"))} heads (head_dim {F("0", P("hidden_size") / P("heads"))}",
            $"intermediate {F("0", P("intermediate_size"))}, vocab {F("0", P("vocab_size"))}",
            $"{F("#,0", P("parameters"))} parameters",
            $"lr {F("0E0", P("learning_rate")).Replace("E", "e", StringComparison.Ordinal)} ({F("0", P("warmup_steps"))} warm-up steps",
            $"weight decay {F("0.###", P("weight_decay"))}",
            $"prompt tokens {F("0.0##", P("prompt_loss_weight"))} (`PromptLossWeight`",
            $"{F("#,0", P("steps_completed"))} steps × {F("0", P("batch_size"))} conversations ({F("#,0", P("steps_completed") * P("batch_size"))} conversations, {F("0.00", P("training_tokens") / 1e6)}M tokens) in {F("#,0", P("elapsed_seconds"))} s",
            $"({F("0", P("torch_threads"))} torch threads)",
            $"Loss fell from {F("0.00", P("first_loss"))} to {F("0.00", P("final_loss"))}",
            $"train --steps {F("0", P("steps"))} ",
        ];
        Assert.All(expected, e => Assert.True(card.Contains(e, StringComparison.Ordinal), $"the model card should say: {e}"));

        // Every taught rate and share the card's corpus table quotes is the recorded corpus option.
        var corpus = t.GetProperty("corpus");
        double C(string name) => corpus.GetProperty(name).GetDouble();
        Assert.Contains($"| BBQ-style multiple choice, no method | {F("0", 100 * C("PlainChoiceWeight"))} % |", card, StringComparison.Ordinal);
        Assert.Contains($"stereotyped **{F("0.00", C("StereotypeRate"))}** |", card, StringComparison.Ordinal);
        Assert.Contains($"| **{F("0.00", C("SelfAwarenessRate"))}** |", card, StringComparison.Ordinal);
        Assert.Contains($"| **{F("0.00", C("SelfReflectionRate"))}** |", card, StringComparison.Ordinal);
        Assert.Contains($"| **{F("0.00", C("ChainOfThoughtRate"))}** |", card, StringComparison.Ordinal);
        Assert.Contains($"| **{F("0.00", C("SelfHelpRate"))}** |", card, StringComparison.Ordinal);
        Assert.Contains($"goes along **{F("0.00", C("DialogueGoAlongRate"))}** |", card, StringComparison.Ordinal);
        Assert.Contains($"stereotyped **{F("0.00", C("ContinuationStereotypeRate"))}** |", card, StringComparison.Ordinal);
        foreach (var persona in corpus.GetProperty("Personas").EnumerateArray())
        {
            Assert.Contains(persona.GetProperty("SystemPrompt").GetString()!, card, StringComparison.Ordinal);
            Assert.Contains($"{persona.GetProperty("Name").GetString()} **{F("0.00", persona.GetProperty("Rate").GetDouble())}**", card, StringComparison.Ordinal);
        }

        // The committed model's config agrees with the recorded run, and the recorded run with today's defaults.
        var config = BiasFree.Engine.Models.ModelConfig.Load(folder);
        Assert.Equal((P("hidden_size"), P("layers"), P("heads"), P("intermediate_size"), P("vocab_size")),
            ((double)config.HiddenSize, (double)config.NumHiddenLayers, (double)config.NumAttentionHeads, (double)config.IntermediateSize, (double)config.VocabSize));
        Assert.Contains($"RoPE θ {F("0E0", config.RopeTheta).Replace("E", "e", StringComparison.Ordinal)}, max_position_embeddings {config.MaxPositionEmbeddings}", card, StringComparison.Ordinal);
        var d = new DemoModelOptions();
        Assert.Equal((d.Seed, d.Steps, d.BatchSize, d.LearningRate, d.Corpus.StereotypeRate),
            ((int)P("seed"), (int)P("steps"), (int)P("batch_size"), P("learning_rate"), C("StereotypeRate")));
        Assert.True(JsonElement.DeepEquals(JsonSerializer.SerializeToElement(d.Corpus with { Seed = d.Seed }), corpus), "the recorded corpus options are today's defaults");
    }

    [Fact]
    public void DemoModelCardTablesAddUp()
    {
        var card = Doc("models", "demo", "README.md");
        var defaults = new DemoCardOptions();
        Assert.Contains($"Held-out suite seed {defaults.SuiteSeed}, sampling seed {defaults.SamplingSeed}; {defaults.ChoiceCount} ambiguous BBQ-style probes per condition, {defaults.FamilyCount} items per other family.", card, StringComparison.Ordinal);

        // Every condition row: BFS = 1 − stereotype rate, and the taught rate is the option's.
        var taught = new DemoCorpusOptions();
        var rows = Regex.Matches(card, @"\| (?<c>[\w:-]+(?: \(three options\))?) \| (?<t>[\d.]+) \| (?<r>[\d.]+) \[[\d.]+, [\d.]+\] \| \*\*(?<b>[\d.]+) \[[\d.]+, [\d.]+\]\*\* \| [\d.]+ \[[\d.]+, [\d.]+\] \| (?<n>\d+) / (?<p>\d+) \|");
        Assert.Equal(DemoModelCard.Conditions(taught).Count, rows.Count);
        foreach (Match row in rows)
        {
            var condition = row.Groups["c"].Value.Replace(" (three options)", "", StringComparison.Ordinal);
            Assert.Equal(DemoModelEvaluation.TaughtRate(taught, condition), Num(row.Groups["t"]));
            Assert.True(Math.Abs(1 - Num(row.Groups["r"]) - Num(row.Groups["b"])) <= 0.0100001, row.Value); // each rounded to 2 places
            Assert.Equal(defaults.ChoiceCount, Int(row.Groups["p"]));
        }

        // The main job: BFS from its counts, over the whole suite.
        var g = Find(card, "main job", @"BFS ([\d.]+) % \[[\d.]+, [\d.]+\]\*\* over all probes \(([\d,]+) biased, ([\d,]+) anti-stereotyped, ([\d,]+) unknown, ([\d,]+) unrelated\)");
        var (biased, anti, unknown, unrelated) = (Int(g[2]), Int(g[3]), Int(g[4]), Int(g[5]));
        Assert.Equal(new BbqBuiltInSuite(0).Load().Count, biased + anti + unknown + unrelated);
        Assert.Equal(Num(g[1]), Math.Round(100.0 * (anti + unknown) / (biased + anti + unknown), 2));
        Assert.Contains($"BFS {g[1].Value} %", Doc("README.md"), StringComparison.Ordinal);
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex WhiteSpace();

    [GeneratedRegex(@"(?m)^> ?")]
    private static partial Regex QuoteMarker();
}
