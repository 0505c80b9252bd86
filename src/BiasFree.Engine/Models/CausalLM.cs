using BiasFree.Engine.Lora;
using BiasFree.Engine.Safetensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BiasFree.Engine.Models;

/// <summary>Optional inputs of one forward pass.</summary>
public sealed class ForwardArgs
{
    /// <summary>[B, past + T] with 1 for real tokens and 0 for (left) padding; null means no padding.</summary>
    public Tensor? AttentionMask { get; init; }
    /// <summary>Cache to read past keys/values from and append this pass's to.</summary>
    public KVCache? Cache { get; init; }
    /// <summary>Residual-stream callback for this call only (runs before the model-wide <see cref="CausalLM.OnLayer"/>).</summary>
    public Func<int, Tensor, Tensor>? OnLayer { get; init; }
    /// <summary>Return hidden states: [0] embeddings, [i + 1] output of layer i (after callbacks), detached copies.</summary>
    public bool CaptureHiddenStates { get; init; }
    /// <summary>Compute logits for the last position only (saves the lm_head on long prompts).</summary>
    public bool LastTokenLogitsOnly { get; init; }
}

/// <summary>Result of a forward pass. Dispose it (or let an outer dispose scope take the logits).</summary>
public sealed class ModelOutput(Tensor logits, IReadOnlyList<Tensor> hiddenStates) : IDisposable
{
    /// <summary>[B, T, V] (or [B, 1, V]) in the model's dtype.</summary>
    public Tensor Logits { get; } = logits;
    public IReadOnlyList<Tensor> HiddenStates { get; } = hiddenStates;

    public void Dispose()
    {
        Logits.Dispose();
        foreach (var h in HiddenStates) h.Dispose();
    }
}

/// <summary>Log-probability of a continuation given a prompt: the sum and each token's term.</summary>
public sealed record LogProbResult(double Sum, IReadOnlyList<double> PerToken)
{
    public double Mean => PerToken.Count == 0 ? 0 : Sum / PerToken.Count;
}

/// <summary>Per-call state handed to the architecture's layer loop.</summary>
public sealed class ForwardContext
{
    internal Func<int, Tensor, Tensor>? CallCallback;
    internal Func<int, Tensor, Tensor>? ModelCallback;
    internal List<Tensor>? Captured;

    public required LayerInputs Layers { get; init; }
    public bool LastTokenLogitsOnly { get; init; }

    /// <summary>Packed-token index of each row's last token, whose logits are wanted (continuous batching).</summary>
    internal Tensor? OutputPositions;

    /// <summary>Keeps the positions whose logits are wanted: all, the last, or one per row.</summary>
    public Tensor SelectOutputPositions(Tensor h)
    {
        // Packed continuous batch: h is [1, N, hidden]; row b's last token becomes [b, 0, :].
        if (OutputPositions is { } p) return h.index_select(1, p).transpose(0, 1);
        return LastTokenLogitsOnly ? h.narrow(1, h.shape[1] - 1, 1) : h;
    }

    public void AfterEmbedding(Tensor h) => Captured?.Add(h.detach().clone().DetachFromDisposeScope());

    /// <summary>Applies the steering callbacks to layer <paramref name="layer"/>'s output and records it when capturing.</summary>
    public Tensor AfterLayer(int layer, Tensor h)
    {
        if (CallCallback is not null) h = CallCallback(layer, h);
        if (ModelCallback is not null) h = ModelCallback(layer, h);
        Captured?.Add(h.detach().clone().DetachFromDisposeScope());
        return h;
    }
}

/// <summary>
/// A decoder-only causal language model with HF parameter names. Subclasses (one file per architecture)
/// define the modules and the forward pass; this base class owns loading, saving, masks, positions and scoring.
/// </summary>
public abstract class CausalLM : nn.Module
{
    public ModelConfig Config { get; }
    public ScalarType DType { get; }
    public Device Device { get; }
    protected RotaryEmbedding Rotary { get; }

    /// <summary>
    /// Model-wide residual-stream callback: receives (layer index, that layer's output [B, T, hidden]) for the tokens of
    /// the current pass and returns the tensor the next layer should see (return the input unchanged to only observe).
    /// </summary>
    public Func<int, Tensor, Tensor>? OnLayer { get; set; }

    /// <summary>generation_config.json of the loaded folder, when present (EOS lists, default sampling settings).</summary>
    public GenerationConfig? GenerationDefaults { get; set; }

    /// <summary>End-of-sequence ids from config.json and generation_config.json together.</summary>
    public IReadOnlyList<int> EosTokenIds =>
        Config.EosTokenIds.Concat(GenerationDefaults?.EosTokenIds ?? []).Distinct().ToList();

    protected CausalLM(string name, ModelConfig config, ScalarType dtype, Device device) : base(name)
    {
        Config = config;
        DType = dtype;
        Device = device;
        Rotary = new RotaryEmbedding(config.HeadDim, config.RopeTheta, config.RopeScaling);
    }

    /// <summary>Runs embeddings → decoder layers (calling ctx.AfterLayer after each) → final norm → lm_head.</summary>
    protected abstract Tensor ForwardCore(Tensor inputIds, ForwardContext ctx);

    public IReadOnlyList<double> RotaryInverseFrequencies => Rotary.InvFreq;

    // ---------------------------------------------------------------- construction, loading, saving

    public static CausalLM Instantiate(ModelConfig config, ScalarType dtype = ScalarType.Float32, string device = "cpu")
    {
        if (dtype is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float64))
            throw new NotSupportedException($"dtype {dtype} is not supported (use Float32 or BFloat16; fp16 is unusably slow on CPU)");
        var dev = ResolveDevice(device);
        CausalLM model = config.ModelType switch
        {
            // One implementation for the family: Qwen2's biases/tied embeddings and Mistral's sliding window are config switches.
            "llama" or "qwen2" or "mistral" => new LlamaForCausalLM(config, dtype, dev),
            _ => throw new NotSupportedException($"model_type '{config.ModelType}' is not supported"),
        };
        model.eval();
        return model;
    }

    /// <summary>A randomly initialised model (HF init: normal(0, initializer_range) weights, unit norms, zero biases).</summary>
    public static CausalLM Create(ModelConfig config, ScalarType dtype = ScalarType.Float32, string device = "cpu", long seed = 0)
    {
        var model = Instantiate(config, dtype, device);
        model.InitializeWeights(seed);
        return model;
    }

    /// <summary>
    /// True when <see cref="Replicate"/> can copy this model: no LoRA-wrapped projections. A LoRA replica would need the
    /// same wrappers to compute the same numbers; merging the adapter would round differently.
    /// </summary>
    public bool CanReplicate => !modules().Any(m => m is LoraLinear);

    /// <summary>
    /// A second instance with a copy of this model's current weights, for a worker thread of its own: the forward pass keeps
    /// mutable per-instance state (rotary tables, the fused-projection storage), so two threads must never share one
    /// instance. Hooks (<see cref="OnLayer"/>) are not copied. The copy is a snapshot: later changes to this model's
    /// weights (training) do not reach it.
    /// </summary>
    /// <exception cref="NotSupportedException">The model has LoRA-wrapped projections (<see cref="CanReplicate"/>).</exception>
    public CausalLM Replicate()
    {
        if (!CanReplicate) throw new NotSupportedException("a model with LoRA-wrapped projections cannot be replicated");
        var copy = Instantiate(Config, DType, Device.ToString());
        try
        {
            using var _ = no_grad();
            var source = named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
            foreach (var (name, p) in copy.named_parameters()) p.copy_(source[name]);
            var buffers = named_buffers().ToDictionary(b => b.name, b => b.buffer, StringComparer.Ordinal);
            foreach (var (name, b) in copy.named_buffers()) b.copy_(buffers[name]);
        }
        catch
        {
            copy.Dispose();
            throw;
        }
        copy.GenerationDefaults = GenerationDefaults;
        return copy;
    }

    public void InitializeWeights(long seed)
    {
        // Draw every weight in fp32 on the CPU so a seed gives the same model for every dtype and device.
        using var gen = new torch.Generator((ulong)seed);
        using var _ = no_grad();
        // normal(mean, std) is randn · std + mean; written out so the two scalars stay referenced (see RootedScalars).
        using Scalar mean = 0.0;
        using Scalar std = Config.InitializerRange;
        foreach (var (name, p) in named_parameters())
        {
            using var scope = NewDisposeScope();
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) p.fill_(RootedScalars.One);
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
            else if (name.EndsWith("lora_B.weight", StringComparison.Ordinal)) p.zero_();
            else p.copy_(randn(p.shape, generator: gen).mul_(std).add_(mean, RootedScalars.One));
        }
    }

    public static Device ResolveDevice(string device)
    {
        if (device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase) && !torch.cuda.is_available())
            throw new InvalidOperationException($"device '{device}' requested but CUDA is not available (this build references libtorch-cpu)");
        if (!device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase) && !device.Equals("cpu", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"unknown device '{device}' (use cpu, cuda or cuda:N)");
        return torch.device(device);
    }

    /// <summary>Loads a HF folder: config.json plus model.safetensors or a sharded model.safetensors.index.json set.</summary>
    public static CausalLM Load(string folder, ScalarType dtype = ScalarType.Float32, string device = "cpu")
    {
        var config = ModelConfig.Load(folder);
        var model = Instantiate(config, dtype, device);
        using var ckpt = SafetensorsCheckpoint.Open(folder);
        model.LoadWeights(ckpt, folder);
        model.GenerationDefaults = GenerationConfig.Load(folder);
        return model;
    }

    public void LoadWeights(SafetensorsCheckpoint ckpt, string source)
    {
        var missing = new List<string>();
        var parameters = named_parameters().ToList();
        using (no_grad())
        {
            foreach (var (name, p) in parameters)
            {
                if (!ckpt.Contains(name))
                {
                    missing.Add(name);
                    continue;
                }
                using var t = ckpt.Read(name, DType);
                if (!t.shape.SequenceEqual(p.shape))
                    throw new InvalidDataException($"{source}: '{name}' has shape [{string.Join(",", t.shape)}] but the model expects [{string.Join(",", p.shape)}]");
                p.copy_(t);
            }
        }
        if (missing.Count > 0)
            throw new InvalidDataException($"{source}: checkpoint lacks {missing.Count} weight(s): {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", ..." : "")}");
        var known = parameters.Select(p => p.name).ToHashSet(StringComparer.Ordinal);
        var unexpected = ckpt.Names.Where(n => !known.Contains(n)
                                               && !n.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal)
                                               && !(Config.TieWordEmbeddings && n == "lm_head.weight")).ToList();
        if (unexpected.Count > 0)
            throw new InvalidDataException($"{source}: checkpoint has {unexpected.Count} weight(s) this {Config.ModelType} model does not: {string.Join(", ", unexpected.Take(5))}");
    }

    /// <summary>HF-named weights to save. LoRA-wrapped projections are written merged (base + scale·B·A) under their base names.</summary>
    public List<KeyValuePair<string, Tensor>> ExportStateDict()
    {
        var loras = named_modules().Where(m => m.module is LoraLinear).ToDictionary(m => m.name, m => (LoraLinear)m.module);
        var result = new List<KeyValuePair<string, Tensor>>();
        foreach (var (name, p) in named_parameters())
        {
            if (name.Contains(".lora_A.", StringComparison.Ordinal) || name.Contains(".lora_B.", StringComparison.Ordinal)) continue;
            int at = name.IndexOf(".base_layer.", StringComparison.Ordinal);
            if (at >= 0)
            {
                string prefix = name[..at];
                string leaf = name[(at + ".base_layer.".Length)..];
                result.Add(new(prefix + "." + leaf, leaf == "weight" ? loras[prefix].EffectiveWeight() : p.detach()));
            }
            else result.Add(new(name, p.detach()));
        }
        return result;
    }

    /// <summary>Writes config.json and model.safetensors (HF layout) into <paramref name="folder"/>.</summary>
    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        string dtypeName = DType switch
        {
            ScalarType.BFloat16 => "bfloat16",
            ScalarType.Float64 => "float64",
            _ => "float32",
        };
        File.WriteAllText(Path.Combine(folder, "config.json"), (Config with { TorchDtype = dtypeName }).ToJson());
        using var scope = NewDisposeScope();
        SafetensorsWriter.Save(Path.Combine(folder, "model.safetensors"), ExportStateDict());
    }

    // ---------------------------------------------------------------- forward

    public ModelOutput Forward(Tensor inputIds, ForwardArgs? args = null)
    {
        args ??= new ForwardArgs();
        using var scope = NewDisposeScope();
        if (inputIds.dim() == 1) inputIds = inputIds.unsqueeze(0);
        inputIds = inputIds.to(Device);
        int batch = (int)inputIds.shape[0], length = (int)inputIds.shape[1];
        int past = args.Cache?.Length ?? 0;
        var padding = args.AttentionMask?.to(Device);
        if (padding is not null && padding.shape[1] != past + length)
            throw new ArgumentException($"attention mask covers {padding.shape[1]} positions but the cache holds {past} and the input {length}");

        // Positions count real tokens only, so a left-padded row sees the same positions as the unpadded sequence.
        var positions = padding is null
            ? RootedScalars.Range(past, past + length, ScalarType.Int64, Device).unsqueeze(0).expand(batch, length)
            : padding.to_type(ScalarType.Int64).cumsum(1).sub(RootedScalars.IntegerOne).clamp_min(RootedScalars.Zero).narrow(1, past, length);
        var (cos, sin) = Rotary.CosSin(positions, DType, past + length);

        // Masks: SDPA's is_causal fast path whenever no padding or window applies; explicit boolean masks otherwise.
        int? window = Enumerable.Range(0, Config.NumHiddenLayers).Select(Config.SlidingWindowForLayer).FirstOrDefault(w => w is not null);
        bool windowBinds = window is { } w && past + length > w;
        bool simple = padding is null && (past == 0 || length == 1);
        var inputs = new LayerInputs
        {
            Cos = cos,
            Sin = sin,
            Cache = args.Cache,
            FullMask = simple ? null : AttentionOps.BuildMask(batch, past, length, padding, null, Device),
            IsCausal = simple && past == 0 && length > 1,
            WindowMask = window is null ? null : simple && !windowBinds ? null : AttentionOps.BuildMask(batch, past, length, padding, window, Device),
            WindowIsCausal = simple && !windowBinds && past == 0 && length > 1,
        };
        var ctx = new ForwardContext
        {
            Layers = inputs,
            LastTokenLogitsOnly = args.LastTokenLogitsOnly,
            CallCallback = args.OnLayer,
            ModelCallback = OnLayer,
            Captured = args.CaptureHiddenStates ? [] : null,
        };
        Tensor logits;
        try
        {
            logits = ForwardCore(inputIds, ctx);
        }
        catch
        {
            foreach (var t in ctx.Captured ?? []) t.Dispose();
            throw;
        }
        args.Cache?.Advance(length);
        return new ModelOutput(logits.MoveToOuterDisposeScope(), (IReadOnlyList<Tensor>?)ctx.Captured ?? []);
    }

    /// <summary>
    /// One pass of a continuous batch: rows <paramref name="firstSlot"/>.. of <paramref name="cache"/> advance by their
    /// <paramref name="newTokens"/> (one token for a decoding sequence, a prompt chunk for a prefilling one). Row b already
    /// holds <paramref name="past"/>[b] positions. Returns float32 logits [n, V] at each row's last new token.
    /// </summary>
    /// <remarks>
    /// Row b's token i sits at position past[b] + i and may attend keys 0..past[b] + i of its own slot (within the
    /// sliding window, if any): exactly what it would see alone, so batching changes results only by floating-point
    /// rounding. The tokens travel packed as one row [1, N], so projections and MLPs run as single matrix products
    /// over every sequence's tokens; attention regroups the queries per sequence, right-padded to the longest chunk of
    /// their group: the leading rows that feed one token (the decoding rows), then the others. Keys and
    /// values go into the cache straight from the packed layout, real tokens only; padding queries may read stale
    /// entries of their own slot, but their outputs are dropped.
    /// </remarks>
    public Tensor ForwardSlots(IReadOnlyList<IReadOnlyList<int>> newTokens, SlotKVCache cache, int firstSlot, IReadOnlyList<int> past,
        Func<int, Tensor, Tensor>? onLayer = null)
    {
        using var scope = NewDisposeScope();
        int n = newTokens.Count;
        if (n == 0 || past.Count != n) throw new ArgumentException("past needs one entry per row, and there must be at least one row");
        if (firstSlot < 0 || firstSlot + n > cache.Slots) throw new ArgumentOutOfRangeException(nameof(firstSlot), $"rows {firstSlot}..{firstSlot + n - 1} are outside the {cache.Slots} slots");
        int total = 0;
        for (int b = 0; b < n; b++)
        {
            int len = newTokens[b].Count;
            if (len < 1) throw new ArgumentException($"row {b} has no new tokens");
            if (past[b] + len > cache.Width) throw new ArgumentException($"row {b}: {past[b] + len} positions do not fit the cache width {cache.Width}");
            total += len;
        }
        var ids = new long[total];
        var packedPositions = new long[total];
        var writeSlots = new long[total];
        var last = new long[n];
        var offsets = new int[n + 1];
        for (int b = 0; b < n; b++)
        {
            int len = newTokens[b].Count;
            offsets[b + 1] = offsets[b] + len;
            for (int i = 0; i < len; i++)
            {
                ids[offsets[b] + i] = newTokens[b][i];
                packedPositions[offsets[b] + i] = past[b] + i;
                writeSlots[offsets[b] + i] = firstSlot + b;
            }
            last[b] = offsets[b + 1] - 1;
        }
        int? window = Enumerable.Range(0, Config.NumHiddenLayers).Select(Config.SlidingWindowForLayer).FirstOrDefault(w => w is not null);
        // Attention groups: the leading rows that feed one token each (decoding rows come first), then the rest.
        int singles = 0;
        while (singles < n && newTokens[singles].Count == 1) singles++;
        var groups = new List<SlotAttentionGroup>(2);
        if (singles > 0) groups.Add(AttentionGroup(0, singles, newTokens, past, offsets, window));
        if (singles < n) groups.Add(AttentionGroup(singles, n - singles, newTokens, past, offsets, window));
        // The rotary tables must cover the furthest position any row reaches in this pass: the widest group's.
        var (cos, sin) = Rotary.CosSin(tensor(packedPositions, [1, total], ScalarType.Int64, Device), DType, groups.Max(g => g.UsedWidth));
        var inputs = new LayerInputs
        {
            Cos = cos,
            Sin = sin,
            Slots = new SlotBatch
            {
                Cache = cache,
                FirstSlot = firstSlot,
                Rows = n,
                WriteSlots = tensor(writeSlots, ScalarType.Int64, Device),
                WritePositions = tensor(packedPositions, ScalarType.Int64, Device),
                Groups = groups,
            },
        };
        var ctx = new ForwardContext
        {
            Layers = inputs,
            OutputPositions = tensor(last, ScalarType.Int64, Device),
            CallCallback = onLayer,
            ModelCallback = OnLayer,
        };
        var logits = ForwardCore(tensor(ids, [1, total], ScalarType.Int64, Device), ctx); // [n, 1, V]
        return logits.squeeze(1).to_type(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Rows <paramref name="first"/>.. (<paramref name="rows"/> of them) of a slot pass as one attention call: queries
    /// right-padded to the group's longest chunk, each allowed keys 0..its own position (within the window, if any).
    /// </summary>
    private SlotAttentionGroup AttentionGroup(int first, int rows, IReadOnlyList<IReadOnlyList<int>> newTokens, IReadOnlyList<int> past, int[] offsets, int? window)
    {
        int longest = 0, used = 0, tokens = offsets[first + rows] - offsets[first];
        for (int b = first; b < first + rows; b++)
        {
            longest = Math.Max(longest, newTokens[b].Count);
            used = Math.Max(used, past[b] + newTokens[b].Count);
        }
        var packedToPadded = new long[rows * longest];
        var paddedToPacked = new long[tokens];
        var paddedPositions = new long[rows * longest];
        for (int r = 0; r < rows; r++)
        {
            int b = first + r, len = newTokens[b].Count;
            for (int i = 0; i < longest; i++)
            {
                packedToPadded[r * longest + i] = offsets[b] + Math.Min(i, len - 1);
                paddedPositions[r * longest + i] = past[b] + i;
                if (i < len) paddedToPacked[offsets[b] - offsets[first] + i] = r * longest + i;
            }
        }
        var queryPos = tensor(paddedPositions, [rows, 1, longest, 1], ScalarType.Int64, Device);
        var keyPos = RootedScalars.Range(0, used, ScalarType.Int64, Device).view(1, 1, 1, used);
        var allowed = keyPos.le(queryPos);
        using Scalar? windowScalar = window is { } w ? (Scalar)w : null;
        return new SlotAttentionGroup
        {
            FirstRow = first,
            Rows = rows,
            PaddedLength = longest,
            PackedToPadded = tensor(packedToPadded, ScalarType.Int64, Device),
            PaddedToPacked = tensor(paddedToPacked, ScalarType.Int64, Device),
            UsedWidth = used,
            FullMask = allowed,
            WindowMask = windowScalar is not null ? allowed.logical_and((queryPos - keyPos).lt(windowScalar)) : null,
        };
    }

    /// <summary>Float32 logits [T, V] for one unpadded sequence (no cache).</summary>
    public Tensor Logits(IReadOnlyList<int> ids)
    {
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        using var output = Forward(IdsTensor([ids]));
        return output.Logits[0].to_type(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    /// <summary>Hidden states ([0] embeddings, [i + 1] after layer i), each [T, hidden], detached; caller disposes.</summary>
    public IReadOnlyList<Tensor> HiddenStates(IReadOnlyList<int> ids)
    {
        using var _ = no_grad();
        using var output = Forward(IdsTensor([ids]), new ForwardArgs { CaptureHiddenStates = true, LastTokenLogitsOnly = true });
        return output.HiddenStates.Select(h =>
        {
            var row = h[0].DetachFromDisposeScope();
            h.Dispose();
            return row;
        }).ToList();
    }

    /// <summary>log P(continuation | prompt) = Σ_j log softmax(logits at the position before token j)[token j].</summary>
    public LogProbResult LogProbability(IReadOnlyList<int> prompt, IReadOnlyList<int> continuation) =>
        LogProbabilities([(prompt, continuation)])[0];

    /// <summary>
    /// Batched scoring. Rows are right-padded: under causal attention trailing padding cannot influence earlier positions,
    /// so no mask is needed and each row matches its unpadded forward pass.
    /// </summary>
    public IReadOnlyList<LogProbResult> LogProbabilities(IReadOnlyList<(IReadOnlyList<int> Prompt, IReadOnlyList<int> Continuation)> items)
    {
        if (items.Count == 0) return [];
        foreach (var (p, _) in items)
            if (p.Count == 0) throw new ArgumentException("the prompt must hold at least one token (prepend BOS)");
        using var _ng = no_grad();
        using var scope = NewDisposeScope();
        var rows = items.Select(it => it.Prompt.Concat(it.Continuation).ToList()).ToList();
        int maxLen = rows.Max(r => r.Count);
        var padded = rows.Select(r => r.Concat(Enumerable.Repeat(0, maxLen - r.Count)).ToList()).ToList();
        using var output = Forward(IdsTensor(padded));
        var logProbs = output.Logits.to_type(ScalarType.Float32).log_softmax(-1).cpu();
        var results = new List<LogProbResult>(items.Count);
        for (int b = 0; b < items.Count; b++)
        {
            var (prompt, cont) = items[b];
            var per = new double[cont.Count];
            for (int j = 0; j < cont.Count; j++)
                per[j] = logProbs[b, prompt.Count + j - 1, cont[j]].item<float>();
            results.Add(new LogProbResult(per.Sum(), per));
        }
        return results;
    }

    /// <summary>
    /// Mean next-token cross-entropy (keeps autograd, for fine-tuning). <paramref name="lossMask"/> [B, T] selects which
    /// tokens count as targets (1 = predict this token), e.g. only the response part of a prompt/response pair.
    /// </summary>
    public Tensor NextTokenLoss(Tensor inputIds, Tensor? lossMask = null)
    {
        using var scope = NewDisposeScope();
        if (inputIds.dim() == 1) inputIds = inputIds.unsqueeze(0);
        inputIds = inputIds.to(Device);
        long t = inputIds.shape[1];
        var logits = Forward(inputIds).Logits;
        var predictions = logits.narrow(1, 0, t - 1).to_type(ScalarType.Float32).reshape(-1, logits.shape[2]);
        var targets = inputIds.narrow(1, 1, t - 1).reshape(-1);
        Tensor loss;
        if (lossMask is null) loss = nn.functional.cross_entropy(predictions, targets);
        else
        {
            var perToken = nn.functional.cross_entropy(predictions, targets, reduction: nn.Reduction.None);
            var m = lossMask.to(Device).narrow(1, 1, t - 1).reshape(-1).to_type(ScalarType.Float32);
            loss = (perToken * m).sum() / m.sum().AtLeast(1);
        }
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>[B, T] int64 tensor on the model's device from equally long rows.</summary>
    public Tensor IdsTensor(IReadOnlyList<IReadOnlyList<int>> rows)
    {
        int t = rows[0].Count;
        var flat = new long[rows.Count * t];
        for (int b = 0; b < rows.Count; b++)
        {
            if (rows[b].Count != t) throw new ArgumentException("rows must have equal length");
            for (int i = 0; i < t; i++) flat[b * t + i] = rows[b][i];
        }
        return tensor(flat, [rows.Count, t], ScalarType.Int64, Device);
    }

    public KVCache NewCache(int initialCapacity = 128) => new(Config.NumHiddenLayers, initialCapacity);

    public long ParameterCount() => parameters().Sum(p => p.numel());
}
