using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using BiasFree.Engine.Models;
using BiasFree.Engine.Tokenization;
using BiasFree.Probes;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.DemoModel;

/// <summary>One tokenized training conversation: ids and a 0/1 target mask (1 = an assistant token to predict).</summary>
public sealed record EncodedConversation(int[] Ids, bool[] Targets);

/// <summary>
/// Trains the embedded demo model: a byte-level BPE vocabulary on the <see cref="DemoCorpus"/>, then a small Llama
/// from scratch with AdamW (fp32), loss on assistant tokens (plus prompt tokens at <see cref="DemoModelOptions.PromptLossWeight"/>), and writes a Hugging Face folder (config.json,
/// generation_config.json, model.safetensors, tokenizer.json, tokenizer_config.json with a ChatML chat template,
/// special_tokens_map.json, demo_training.json). Reproducible: the same options give bit-identical weights on the
/// same machine and thread count (TorchSharp manual seed, seeded init, deterministic batching).
/// </summary>
public static class DemoModelTrainer
{
    /// <summary>Special tokens of the demo tokenizer, in id order after the merges.</summary>
    public static IReadOnlyList<string> SpecialTokens { get; } = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

    /// <summary>The chat template family written into tokenizer_config.json.</summary>
    public static ChatTemplate Template => ChatTemplate.ChatML;

    /// <summary>Trains and saves the model; see <see cref="DemoModelOptions"/> for the knobs.</summary>
    public static Task<DemoTrainResult> TrainAsync(DemoModelOptions options, IProgress<DemoTrainProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        Validate(options);
        return Task.Run(() => Train(options, progress, cancellationToken), cancellationToken);
    }

    private static void Validate(DemoModelOptions o)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(o.Steps, 1, nameof(o.Steps));
        ArgumentOutOfRangeException.ThrowIfLessThan(o.BatchSize, 1, nameof(o.BatchSize));
        ArgumentOutOfRangeException.ThrowIfLessThan(o.VocabSize, 256 + SpecialTokens.Count, nameof(o.VocabSize));
        if (o.HiddenSize % o.Heads != 0 || (o.HiddenSize / o.Heads) % 2 != 0)
            throw new ArgumentException("HiddenSize must be a multiple of Heads with an even head size", nameof(o));
        if (o.Heads % o.KeyValueHeads != 0) throw new ArgumentException("Heads must be a multiple of KeyValueHeads", nameof(o));
        if (o.LearningRate <= 0) throw new ArgumentOutOfRangeException(nameof(o), "LearningRate must be positive");
        ArgumentException.ThrowIfNullOrWhiteSpace(o.OutputDir, nameof(o.OutputDir));
    }

    private static DemoTrainResult Train(DemoModelOptions o, IProgress<DemoTrainProgress>? progress, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        void Report(string phase, int step = 0, double loss = double.NaN) =>
            progress?.Report(new DemoTrainProgress(phase, step, o.Steps, loss, clock.Elapsed));

        if (o.Threads is int threads) torch.set_num_threads(threads);
        torch.manual_seed(o.Seed);

        // 1. Corpus: one conversation per training slot, plus the tokenizer's sample (the first conversations).
        Report("corpus");
        var corpus = new DemoCorpus(o.CorpusOptions);
        var conversations = corpus.Generate(Math.Max(o.Steps * o.BatchSize, o.TokenizerCorpusSize));
        ct.ThrowIfCancellationRequested();

        // 2. Tokenizer.
        Report("tokenizer");
        var bpeTexts = conversations.Take(o.TokenizerCorpusSize).SelectMany(c => c.Messages.Select(m => m.Content));
        var bpe = BpeTrainer.Train(bpeTexts, o.VocabSize, SpecialTokens);
        string dir = Path.GetFullPath(o.OutputDir);
        Directory.CreateDirectory(dir);
        TokenizerJsonWriter.Write(dir, bpe, new TokenizerWriteOptions
        {
            EosToken = "<|im_end|>",
            PadToken = "<|endoftext|>",
            ChatTemplate = Template.JinjaSource,
            ModelMaxLength = o.MaxPositions,
        });
        var tokenizer = HfTokenizer.FromFolder(dir);
        int imEnd = tokenizer.TokenToId("<|im_end|>") ?? throw new InvalidOperationException("<|im_end|> missing from the trained tokenizer");
        int eot = tokenizer.TokenToId("<|endoftext|>") ?? throw new InvalidOperationException("<|endoftext|> missing from the trained tokenizer");
        ct.ThrowIfCancellationRequested();

        // 3. Encode and batch (deterministic: length-sorted within windows, then the batch order shuffled).
        Report("encode");
        var encoded = conversations.Take(o.Steps * o.BatchSize)
            .Select(c => Encode(tokenizer, c.Messages, o.MaxSequenceLength)).ToList();
        var batches = MakeBatches(encoded, o.BatchSize, o.Seed);

        // 4. Model.
        var config = new ModelConfig
        {
            ModelType = "llama",
            Architectures = ["LlamaForCausalLM"],
            VocabSize = tokenizer.VocabSize,
            HiddenSize = o.HiddenSize,
            IntermediateSize = o.IntermediateSize,
            NumHiddenLayers = o.Layers,
            NumAttentionHeads = o.Heads,
            NumKeyValueHeads = o.KeyValueHeads,
            HeadDim = o.HiddenSize / o.Heads,
            RmsNormEps = 1e-5,
            RopeTheta = 10000,
            MaxPositionEmbeddings = o.MaxPositions,
            TieWordEmbeddings = false,
            InitializerRange = 0.02,
            EosTokenIds = [imEnd, eot],
            PadTokenId = eot,
        };
        using var model = CausalLM.Create(config, ScalarType.Float32, o.Device, o.Seed);
        model.train();
        var parameters = model.parameters().ToList();
        using var optimizer = optim.AdamW(parameters, lr: o.LearningRate, beta1: 0.9, beta2: 0.95, weight_decay: o.WeightDecay);

        var losses = new List<double>(o.Steps);
        var trainClock = Stopwatch.StartNew();
        double window = 0;
        int windowCount = 0;
        int completed = o.Steps;
        string? stopReason = null;
        for (int step = 0; step < o.Steps; step++)
        {
            ct.ThrowIfCancellationRequested();
            if (o.StopAfterSteps is int stopAt && step >= stopAt)
            {
                (completed, stopReason) = (step, "stop_after_steps");
                break;
            }
            if (o.MaxTrainingTime is TimeSpan budget && trainClock.Elapsed > budget)
            {
                (completed, stopReason) = (step, "max_training_time");
                break;
            }
            double lr = LearningRateAt(step, o);
            foreach (var g in optimizer.ParamGroups) g.LearningRate = lr;
            using var scope = NewDisposeScope();
            var (ids, mask) = ToTensors(batches[step % batches.Count], eot, o.PromptLossWeight);
            optimizer.zero_grad();
            var loss = model.NextTokenLoss(ids, mask);
            loss.backward();
            nn.utils.clip_grad_norm_(parameters, o.GradientClip);
            optimizer.step();
            double value = loss.item<float>();
            losses.Add(value);
            window += value;
            windowCount++;
            if ((step + 1) % Math.Max(1, o.ProgressEvery) == 0 || step == o.Steps - 1)
            {
                Report("train", step + 1, window / windowCount);
                window = 0;
                windowCount = 0;
            }
        }
        model.eval();

        // 5. Save.
        Report("save", completed);
        model.Save(dir);
        WriteGenerationConfig(dir, imEnd, eot);
        long trainingTokens = Enumerable.Range(0, completed).Sum(i => batches[i % batches.Count].Sum(e => (long)e.Ids.Length));
        int tail = Math.Max(1, losses.Count / 10);
        var result = new DemoTrainResult(dir, model.ParameterCount(), tokenizer.VocabSize, losses[0],
            losses.Skip(losses.Count - tail).Average(), losses, trainingTokens, clock.Elapsed, completed);
        WriteTrainingRecord(dir, o, result, stopReason);
        return result;
    }

    /// <summary>Warm-up then cosine decay to 10 % of the peak.</summary>
    internal static double LearningRateAt(int step, DemoModelOptions o)
    {
        if (step < o.WarmupSteps) return o.LearningRate * (step + 1) / o.WarmupSteps;
        double t = (step - o.WarmupSteps) / (double)Math.Max(1, o.Steps - o.WarmupSteps);
        return o.LearningRate * (0.1 + 0.9 * 0.5 * (1 + Math.Cos(Math.PI * t)));
    }

    /// <summary>
    /// Tokenizes a conversation as the chat client will see it: every prompt part is the ChatML rendering encoded as a
    /// whole (the same text <see cref="Chat.EngineChatClient"/> encodes), every assistant reply is its content's ids plus
    /// &lt;|im_end|&gt; and is marked as a target. Special tokens split pre-tokenization, so the concatenation equals the
    /// encoding of the full rendered conversation.
    /// </summary>
    public static EncodedConversation Encode(HfTokenizer tokenizer, IReadOnlyList<DemoMessage> messages, int maxLength = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(messages);
        int imEnd = tokenizer.TokenToId("<|im_end|>") ?? throw new ArgumentException("tokenizer lacks <|im_end|>", nameof(tokenizer));
        var ids = new List<int>();
        var targets = new List<bool>();
        string rendered = "";
        var history = new List<(string Role, string Content)>();
        foreach (var m in messages)
        {
            if (m.Role == "assistant")
            {
                string prompt = Template.Render(history, addGenerationPrompt: true);
                Append(prompt[rendered.Length..], false);
                Append(m.Content, true);
                ids.Add(imEnd);
                targets.Add(true);
                history.Add((m.Role, m.Content));
                rendered = Template.Render(history, addGenerationPrompt: false)[..^1]; // all but the trailing "\n"
            }
            else history.Add((m.Role, m.Content));
        }
        if (ids.Count > maxLength)
        {
            ids.RemoveRange(maxLength, ids.Count - maxLength);
            targets.RemoveRange(maxLength, targets.Count - maxLength);
        }
        return new EncodedConversation([.. ids], [.. targets]);

        void Append(string text, bool target)
        {
            var t = tokenizer.Encode(text, addSpecialTokens: false);
            ids.AddRange(t);
            targets.AddRange(Enumerable.Repeat(target, t.Count));
        }
    }

    /// <summary>Batches of equal-ish length: windows of 32 batches are sorted by length and cut, then all batches are shuffled.</summary>
    internal static List<List<EncodedConversation>> MakeBatches(IReadOnlyList<EncodedConversation> items, int batchSize, int seed)
    {
        var batches = new List<List<EncodedConversation>>();
        int windowSize = batchSize * 32;
        for (int start = 0; start < items.Count; start += windowSize)
        {
            var window = items.Skip(start).Take(windowSize).Select((e, i) => (e, i))
                .OrderBy(x => x.e.Ids.Length).ThenBy(x => x.i).Select(x => x.e).ToList();
            for (int b = 0; b < window.Count; b += batchSize) batches.Add(window.Skip(b).Take(batchSize).ToList());
        }
        return StableRandom.For(seed, "demo-trainer/batches").Shuffle(batches);
    }

    private static (Tensor Ids, Tensor Mask) ToTensors(List<EncodedConversation> batch, int pad, double promptWeight)
    {
        int t = batch.Max(e => e.Ids.Length);
        var ids = new long[batch.Count * t];
        var mask = new float[batch.Count * t];
        for (int b = 0; b < batch.Count; b++)
        {
            var e = batch[b];
            for (int i = 0; i < t; i++)
            {
                ids[b * t + i] = i < e.Ids.Length ? e.Ids[i] : pad;
                mask[b * t + i] = i >= e.Ids.Length ? 0f : e.Targets[i] ? 1f : (float)promptWeight;
            }
        }
        return (tensor(ids, [batch.Count, t], ScalarType.Int64), tensor(mask, [batch.Count, t], ScalarType.Float32));
    }

    private static void WriteGenerationConfig(string dir, int imEnd, int eot)
    {
        var o = new JsonObject
        {
            ["eos_token_id"] = new JsonArray(imEnd, eot),
            ["pad_token_id"] = eot,
            ["do_sample"] = true,
            ["temperature"] = 1.0,
            ["top_p"] = 1.0,
            ["max_new_tokens"] = DemoModel.DefaultMaxOutputTokens,
        };
        File.WriteAllText(Path.Combine(dir, "generation_config.json"), o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    private static void WriteTrainingRecord(string dir, DemoModelOptions o, DemoTrainResult r, string? stopReason)
    {
        var rec = new JsonObject
        {
            ["trainer"] = "BiasFree.Engine.DemoModel.DemoModelTrainer",
            ["seed"] = o.Seed,
            ["corpus_version"] = DemoCorpus.Version,
            ["corpus"] = JsonSerializer.SerializeToNode(o.CorpusOptions, EngineJson.Default.DemoCorpusOptions),
            ["steps"] = o.Steps,
            ["steps_completed"] = r.StepsCompleted,
            ["stopped_by"] = stopReason,
            ["batch_size"] = o.BatchSize,
            ["learning_rate"] = o.LearningRate,
            ["warmup_steps"] = o.WarmupSteps,
            ["weight_decay"] = o.WeightDecay,
            ["prompt_loss_weight"] = o.PromptLossWeight,
            ["vocab_size"] = r.VocabSize,
            ["hidden_size"] = o.HiddenSize,
            ["layers"] = o.Layers,
            ["heads"] = o.Heads,
            ["kv_heads"] = o.KeyValueHeads,
            ["intermediate_size"] = o.IntermediateSize,
            ["max_sequence_length"] = o.MaxSequenceLength,
            ["parameters"] = r.ParameterCount,
            ["training_tokens"] = r.TrainingTokens,
            ["first_loss"] = Math.Round(r.FirstLoss, 4),
            ["final_loss"] = Math.Round(r.FinalLoss, 4),
            ["elapsed_seconds"] = Math.Round(r.Elapsed.TotalSeconds, 1),
            ["torch_threads"] = torch.get_num_threads(),
            ["device"] = o.Device,
            ["created_utc"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
        };
        File.WriteAllText(Path.Combine(dir, "demo_training.json"), rec.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
