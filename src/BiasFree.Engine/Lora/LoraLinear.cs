using System.Text.Json;
using System.Text.Json.Nodes;
using BiasFree.Engine.Models;
using BiasFree.Engine.Safetensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BiasFree.Engine.Lora;

public sealed record LoraOptions
{
    public int Rank { get; init; } = 8;
    public double Alpha { get; init; } = 16;
    /// <summary>Projection names to adapt: any of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.</summary>
    public IReadOnlyList<string> TargetModules { get; init; } = ["q_proj", "v_proj"];
    public long Seed { get; init; }
    /// <summary>Dropout on the adapter's input during training (PEFT's lora_dropout; LLaMA-Factory's default is 0).</summary>
    public double Dropout { get; init; }
    public double Scaling => Alpha / Rank;

    /// <summary>Every linear projection of a Llama-family block (LLaMA-Factory's <c>lora_target: all</c>).</summary>
    public static IReadOnlyList<string> AllLinear { get; } = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
}

/// <summary>
/// Low-rank adapter around a frozen linear layer: y = base(x) + (alpha / r) · B(A(x)).
/// B starts at zero, so a fresh adapter leaves the model unchanged. Child names follow PEFT
/// (base_layer, lora_A, lora_B) so saved adapters read like PEFT ones.
/// </summary>
public sealed class LoraLinear : nn.Module<Tensor, Tensor>
{
    public readonly LinearLayer base_layer, lora_A, lora_B;
    public double Scaling { get; }
    public bool Merged { get; private set; }
    /// <summary>Dropout probability on the adapter path's input, applied only in training mode.</summary>
    public double Dropout { get; }

    public LoraLinear(LinearLayer baseLayer, int rank, double alpha, torch.Generator gen, double dropout = 0) : base("LoraLinear")
    {
        if (dropout is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "LoRA dropout must be in [0, 1)");
        Dropout = dropout;
        base_layer = baseLayer;
        var dtype = baseLayer.weight.dtype;
        var device = baseLayer.weight.device;
        lora_A = new LinearLayer(baseLayer.InFeatures, rank, false, dtype, device);
        lora_B = new LinearLayer(rank, baseLayer.OutFeatures, false, dtype, device);
        Scaling = alpha / rank;
        using (no_grad())
        {
            // A ~ U(-1/sqrt(in), 1/sqrt(in)) (what kaiming_uniform(a=sqrt(5)) gives), B = 0.
            double bound = 1.0 / Math.Sqrt(baseLayer.InFeatures);
            using var a = rand(lora_A.weight.shape, generator: gen).Times(2 * bound).Minus(bound);
            lora_A.weight.copy_(a);
            lora_B.weight.zero_();
        }
        register_module("base_layer", base_layer);
        register_module("lora_A", lora_A);
        register_module("lora_B", lora_B);
    }

    /// <summary>
    /// Where dropout masks are drawn from. Trainers set their own seeded generator so that a resumed run draws exactly what
    /// the uninterrupted one did: torch's global generator is shared by everything in the process (other trainings, tests
    /// running in parallel) and cannot promise that. Null: the global generator (inverted dropout either way).
    /// </summary>
    public torch.Generator? DropoutGenerator { get; set; }

    public override Tensor forward(Tensor x)
    {
        if (Merged) return base_layer.call(x);
        using var scope = NewDisposeScope();
        using Scalar dropout = Dropout, scale = Scaling; // rooted during the native calls (see RootedScalars)
        var adapterInput = !training || Dropout <= 0 ? x
            : DropoutGenerator is { } gen ? (x * (rand(x.shape, dtype: x.dtype, device: x.device, generator: gen) >= dropout).to_type(x.dtype)).Over(1 - Dropout)
            : nn.functional.dropout(x, Dropout, true);
        return base_layer.call(x).Plus(lora_B.call(lora_A.call(adapterInput)) * scale).MoveToOuterDisposeScope();
    }

    /// <summary>The weight the layer currently computes with: W, plus scale·B·A when not merged.</summary>
    public Tensor EffectiveWeight()
    {
        using var _ = no_grad();
        if (Merged) return base_layer.weight.detach().clone();
        return base_layer.weight.Plus(matmul(lora_B.weight, lora_A.weight).Times(Scaling)).to_type(base_layer.weight.dtype);
    }

    /// <summary>Folds the adapter into the base weight (faster inference); <see cref="Unmerge"/> undoes it.</summary>
    public void Merge()
    {
        if (Merged) return;
        using var _ = no_grad();
        using var delta = matmul(lora_B.weight, lora_A.weight).Times(Scaling);
        base_layer.weight.PlusInPlace(delta);
        Merged = true;
    }

    public void Unmerge()
    {
        if (!Merged) return;
        using var _ = no_grad();
        using var delta = matmul(lora_B.weight, lora_A.weight).Times(Scaling);
        base_layer.weight.sub_(delta);
        Merged = false;
    }
}

/// <summary>Attaching, training support, merging and saving of LoRA adapters on a <see cref="CausalLM"/>.</summary>
public static class LoraAdapter
{
    /// <summary>
    /// Wraps every targeted projection in a <see cref="LoraLinear"/> and freezes all other parameters.
    /// Returns the adapters; their lora_A/lora_B weights are the only trainable parameters.
    /// </summary>
    public static IReadOnlyList<LoraLinear> Apply(CausalLM model, LoraOptions options)
    {
        if (Adapters(model).Any()) throw new InvalidOperationException("the model already has LoRA adapters");
        foreach (var p in model.parameters()) p.requires_grad = false;
        using var gen = new torch.Generator((ulong)options.Seed);
        var added = new List<LoraLinear>();
        var owners = model.named_modules().Select(m => m.module).OfType<IProjectionOwner>().ToList();
        foreach (var owner in owners)
            foreach (var name in owner.ProjectionNames.Where(options.TargetModules.Contains))
            {
                if (owner.GetProjection(name) is not LinearLayer baseLayer) continue;
                var lora = new LoraLinear(baseLayer, options.Rank, options.Alpha, gen, options.Dropout);
                // New modules start in training mode; follow the model's mode so an eval-mode model gets no dropout.
                lora.train(model.training);
                owner.SetProjection(name, lora);
                added.Add(lora);
            }
        if (added.Count == 0) throw new ArgumentException($"no projection matched {string.Join(", ", options.TargetModules)}");
        foreach (var p in TrainableParameters(model)) p.requires_grad = true;
        return added;
    }

    public static IEnumerable<LoraLinear> Adapters(CausalLM model) => model.modules().OfType<LoraLinear>();

    /// <summary>Makes every adapter of <paramref name="model"/> draw its dropout masks from <paramref name="generator"/>.</summary>
    public static void UseDropoutGenerator(CausalLM model, torch.Generator generator)
    {
        foreach (var adapter in Adapters(model)) adapter.DropoutGenerator = generator;
    }

    public static IReadOnlyList<Parameter> TrainableParameters(CausalLM model) =>
        Adapters(model).SelectMany(a => new[] { a.lora_A.weight, a.lora_B.weight }).ToList();

    public static void Merge(CausalLM model)
    {
        foreach (var a in Adapters(model)) a.Merge();
    }

    public static void Unmerge(CausalLM model)
    {
        foreach (var a in Adapters(model)) a.Unmerge();
    }

    /// <summary>PEFT-style names: "base_model.model.&lt;module path&gt;.lora_A.weight".</summary>
    public static List<KeyValuePair<string, Tensor>> AdapterStateDict(CausalLM model) =>
        model.named_parameters()
            .Where(p => p.name.Contains(".lora_A.", StringComparison.Ordinal) || p.name.Contains(".lora_B.", StringComparison.Ordinal))
            .Select(p => new KeyValuePair<string, Tensor>("base_model.model." + p.name, p.parameter.detach()))
            .ToList();

    /// <summary>
    /// Writes adapter_model.safetensors and adapter_config.json in PEFT's layout (peft/tuners/lora/config.py keys; tensor
    /// names "base_model.model.{module}.lora_A.weight" / ".lora_B.weight", the adapter name "default" left out as PEFT's
    /// save_pretrained does). <paramref name="baseModel"/> is recorded as base_model_name_or_path.
    /// </summary>
    public static void Save(CausalLM model, string folder, LoraOptions options, string? baseModel = null)
    {
        Directory.CreateDirectory(folder);
        SafetensorsWriter.Save(Path.Combine(folder, "adapter_model.safetensors"), AdapterStateDict(model));
        var cfg = new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["base_model_name_or_path"] = baseModel,
            ["r"] = options.Rank,
            ["lora_alpha"] = options.Alpha,
            ["lora_dropout"] = options.Dropout,
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["init_lora_weights"] = true,
            ["use_rslora"] = false,
            ["use_dora"] = false,
            ["modules_to_save"] = null,
            ["target_modules"] = new JsonArray(options.TargetModules.Select(t => (JsonNode?)JsonValue.Create(t)).ToArray()),
        };
        File.WriteAllText(Path.Combine(folder, "adapter_config.json"), cfg.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Reads adapter_config.json (PEFT layout); rejects the PEFT features this engine does not implement.</summary>
    public static LoraOptions ReadConfig(string folder)
    {
        var cfgPath = Path.Combine(folder, "adapter_config.json");
        if (!File.Exists(cfgPath)) throw new FileNotFoundException($"{folder}: not a PEFT adapter folder (no adapter_config.json)", cfgPath);
        JsonObject cfg;
        try
        {
            cfg = JsonNode.Parse(File.ReadAllText(cfgPath)) as JsonObject ?? throw new InvalidDataException($"{cfgPath}:1: not a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{cfgPath}:{(e.LineNumber ?? 0) + 1}: not valid JSON ({e.Message})", e);
        }
        string peftType = cfg["peft_type"]?.GetValue<string>() ?? "LORA";
        if (peftType != "LORA") throw new InvalidDataException($"{cfgPath}:1: field 'peft_type': '{peftType}' is not supported (only LORA)");
        foreach (var flag in new[] { "use_rslora", "use_dora", "fan_in_fan_out" })
            if (cfg[flag] is JsonValue v && v.TryGetValue<bool>(out var on) && on)
                throw new InvalidDataException($"{cfgPath}:1: field '{flag}': true is not supported");
        foreach (var pattern in new[] { "rank_pattern", "alpha_pattern" })
            if (cfg[pattern] is JsonObject o && o.Count > 0)
                throw new InvalidDataException($"{cfgPath}:1: field '{pattern}': per-module ranks are not supported");
        if (cfg["bias"]?.GetValue<string>() is { } bias && bias != "none")
            throw new InvalidDataException($"{cfgPath}:1: field 'bias': '{bias}' is not supported (only none)");
        int rank = cfg["r"]?.GetValue<int>() ?? throw new InvalidDataException($"{cfgPath}:1: field 'r': missing");
        double alpha = cfg["lora_alpha"]?.GetValue<double>() ?? throw new InvalidDataException($"{cfgPath}:1: field 'lora_alpha': missing");
        IReadOnlyList<string> targets = cfg["target_modules"] switch
        {
            JsonArray a => a.Select(x => x!.GetValue<string>()).ToList(),
            JsonValue v when v.GetValue<string>() == "all-linear" => AllLinearTargets,
            JsonValue v => [v.GetValue<string>()],
            _ => throw new InvalidDataException($"{cfgPath}:1: field 'target_modules': missing"),
        };
        return new LoraOptions
        {
            Rank = rank,
            Alpha = alpha,
            TargetModules = targets,
            Dropout = cfg["lora_dropout"]?.GetValue<double>() ?? 0,
        };
    }

    private static IReadOnlyList<string> AllLinearTargets => LoraOptions.AllLinear;

    /// <summary>
    /// Writes one adapter equal to applying <paramref name="first"/> and then <paramref name="second"/> (trained on the base
    /// with <paramref name="first"/> merged): ΔW = s·B₁A₁ + s·B₂A₂ = s·[B₁ B₂][A₁; A₂], so the stacked adapter has rank r₁ + r₂,
    /// A = [A₁; A₂] (rows), B = [B₁ B₂] (columns) and the same scale s = α/r. Both adapters must share targets and scale.
    /// Used to ship a two-stage (SFT, then DPO on the SFT model) LoRA as one PEFT adapter on the original base.
    /// </summary>
    public static void Stack(string first, string second, string outFolder)
    {
        var a = ReadConfig(first);
        var b = ReadConfig(second);
        if (!a.TargetModules.OrderBy(t => t, StringComparer.Ordinal).SequenceEqual(b.TargetModules.OrderBy(t => t, StringComparer.Ordinal)))
            throw new ArgumentException($"{first} and {second} target different modules");
        double scaleA = a.Alpha / a.Rank, scaleB = b.Alpha / b.Rank;
        if (Math.Abs(scaleA - scaleB) > 1e-9) throw new ArgumentException($"{first} (alpha/r {scaleA}) and {second} (alpha/r {scaleB}) have different scales");
        using var fa = SafetensorsFile.Open(Path.Combine(first, "adapter_model.safetensors"));
        using var fb = SafetensorsFile.Open(Path.Combine(second, "adapter_model.safetensors"));
        var stacked = new List<KeyValuePair<string, Tensor>>();
        try
        {
            foreach (var name in fa.Names.OrderBy(n => n, StringComparer.Ordinal))
            {
                if (!fb.Contains(name)) throw new InvalidDataException($"{second}: tensor '{name}' is missing");
                using var ta = fa.Read(name, ScalarType.Float32);
                using var tb = fb.Read(name, ScalarType.Float32);
                var dim = name.Contains(".lora_A.", StringComparison.Ordinal) ? 0 : 1;
                stacked.Add(new(name, cat([ta, tb], dim)));
            }
            Directory.CreateDirectory(outFolder);
            SafetensorsWriter.Save(Path.Combine(outFolder, "adapter_model.safetensors"), stacked);
        }
        finally
        {
            foreach (var kv in stacked) kv.Value.Dispose();
        }
        var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(first, "adapter_config.json")))!.AsObject();
        cfg["r"] = a.Rank + b.Rank;
        cfg["lora_alpha"] = scaleA * (a.Rank + b.Rank);
        File.WriteAllText(Path.Combine(outFolder, "adapter_config.json"), cfg.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Attaches adapters as described by adapter_config.json and loads their weights (unmerged).</summary>
    public static LoraOptions Load(CausalLM model, string folder)
    {
        var options = ReadConfig(folder);
        Apply(model, options);
        var weights = Path.Combine(folder, "adapter_model.safetensors");
        if (!File.Exists(weights)) throw new FileNotFoundException($"{folder}: adapter_model.safetensors is missing", weights);
        using var file = SafetensorsFile.Open(weights);
        using var _ = no_grad();
        foreach (var (name, p) in model.named_parameters().Where(p => p.name.Contains(".lora_", StringComparison.Ordinal)))
        {
            var key = "base_model.model." + name;
            if (!file.Contains(key)) throw new InvalidDataException($"{weights}: tensor '{key}' is missing");
            using var t = file.Read(key, p.dtype);
            if (!t.shape.SequenceEqual(p.shape))
                throw new InvalidDataException($"{weights}: '{key}' has shape [{string.Join(",", t.shape)}] but the model expects [{string.Join(",", p.shape)}]");
            p.copy_(t);
        }
        foreach (var p in TrainableParameters(model)) p.requires_grad = false;
        return options;
    }
}
