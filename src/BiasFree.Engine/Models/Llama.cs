using BiasFree.Engine.Kernels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BiasFree.Engine.Models;

// The Llama family, as in HF's modeling_llama, modeling_qwen2 and modeling_mistral. The three architectures are one
// block; everything that differs between them is a config switch, so this one file implements all three:
//
//   h = embed_tokens(ids)
//   for each layer:  h = h + self_attn(input_layernorm(h));  h = h + mlp(post_attention_layernorm(h))
//   logits = lm_head(norm(h))        (lm_head = embed_tokens.weight when tie_word_embeddings)
//
// Attention is grouped-query: num_key_value_heads K/V heads are shared by num_attention_heads query heads.
// Rotary embeddings rotate q and k by position before the dot product; the KV cache stores rotated keys
// (Llama 3.1 "llama3" rope scaling is handled by RotaryEmbedding).
//
// What the config switches on, per architecture:
//   * Llama   — attention_bias / mlp_bias (usually false); rope_scaling.
//   * Qwen2   — q_proj, k_proj and v_proj carry biases (o_proj does not); small models tie lm_head to embed_tokens, so
//               checkpoints have no lm_head.weight; with use_sliding_window, layers at index >= max_window_layers
//               attend only to the last sliding_window positions.
//   * Mistral — sliding-window attention: each query attends only to keys with query - key < sliding_window.
// The KV cache keeps all keys; a sliding window is applied through the attention mask (ModelConfig.SlidingWindowForLayer).

/// <summary>Self-attention: q/k/v projections, rotary embedding, KV cache, SDPA, output projection.</summary>
public sealed class LlamaAttention : ProjectionOwnerModule, IProjectionOwner
{
    public nn.Module<Tensor, Tensor> q_proj, k_proj, v_proj, o_proj;
    private readonly int _layer, _heads, _kvHeads, _headDim;
    private readonly bool _windowed;
    private readonly FusedLinear _qkv;

    public LlamaAttention(ModelConfig c, int layer, ScalarType dtype, Device device) : base("LlamaAttention")
    {
        _layer = layer;
        _heads = c.NumAttentionHeads;
        _kvHeads = c.NumKeyValueHeads;
        _headDim = c.HeadDim;
        _windowed = c.SlidingWindowForLayer(layer) is not null;
        _qkv = new FusedLinear(c.HiddenSize, [_heads * _headDim, _kvHeads * _headDim, _kvHeads * _headDim], c.QkvBias, dtype, device);
        (q_proj, k_proj, v_proj) = (_qkv.Parts[0], _qkv.Parts[1], _qkv.Parts[2]);
        o_proj = new LinearLayer(_heads * _headDim, c.HiddenSize, c.OutputBias, dtype, device);
        register_module("q_proj", q_proj);
        register_module("k_proj", k_proj);
        register_module("v_proj", v_proj);
        register_module("o_proj", o_proj);
    }

    public Tensor forward(Tensor x, LayerInputs inputs)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1];
        Tensor q, k, v;
        if (_qkv.Serves(q_proj, k_proj, v_proj))
        {
            // Inference: one product gives [B, T, heads + 2 kv_heads, D]; q and k heads are adjacent, so one rotary
            // call covers both.
            var qkv = _qkv.Forward(x).view(b, t, _heads + 2 * _kvHeads, _headDim);
            var qk = RotaryEmbedding.Apply(qkv.narrow(2, 0, _heads + _kvHeads), inputs.Cos, inputs.Sin);
            q = qk.narrow(2, 0, _heads);
            k = qk.narrow(2, _heads, _kvHeads);
            v = qkv.narrow(2, _heads + _kvHeads, _kvHeads);
        }
        else
        {
            q = RotaryEmbedding.Apply(q_proj.call(x).view(b, t, _heads, _headDim), inputs.Cos, inputs.Sin);
            k = RotaryEmbedding.Apply(k_proj.call(x).view(b, t, _kvHeads, _headDim), inputs.Cos, inputs.Sin);
            v = v_proj.call(x).view(b, t, _kvHeads, _headDim);
        }
        // [B, T, heads, D] -> [B, heads, T, D]
        (q, k, v) = (q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2));
        Tensor y;
        if (inputs.Slots is { } slots)
        {
            // Continuous batch: the pass's tokens arrive packed as one row [1, N]; keys/values go to the cache straight
            // from the packed layout, and attention regroups the queries per sequence to read them back per slot.
            slots.Append(_layer, k, v);
            y = slots.Attend(_layer, q, _windowed);
        }
        else
        {
            if (inputs.Cache is { } cache) (k, v) = cache.Append(_layer, k, v);
            // Windowed layers (Mistral, Qwen2 with use_sliding_window) use the sliding-window mask; the others the plain
            // causal/padding mask.
            y = _windowed
                ? AttentionOps.Attend(q, k, v, inputs.WindowMask, inputs.WindowIsCausal)
                : AttentionOps.Attend(q, k, v, inputs.FullMask, inputs.IsCausal);
            y = y.transpose(1, 2).reshape(b, t, _heads * _headDim);
        }
        return o_proj.call(y).MoveToOuterDisposeScope();
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _qkv.Dispose();
        base.Dispose(disposing);
    }

    public IReadOnlyList<string> ProjectionNames => ["q_proj", "k_proj", "v_proj", "o_proj"];

    public nn.Module<Tensor, Tensor> GetProjection(string name) => name switch
    {
        "q_proj" => q_proj,
        "k_proj" => k_proj,
        "v_proj" => v_proj,
        "o_proj" => o_proj,
        _ => throw new ArgumentException($"no projection '{name}'"),
    };

    public void SetProjection(string name, nn.Module<Tensor, Tensor> module)
    {
        switch (name)
        {
            case "q_proj": q_proj = module; break;
            case "k_proj": k_proj = module; break;
            case "v_proj": v_proj = module; break;
            case "o_proj": o_proj = module; break;
            default: throw new ArgumentException($"no projection '{name}'");
        }
        ReplaceChild(name, module);
    }
}

/// <summary>Pre-norm transformer block: attention and MLP, each added onto the residual stream.</summary>
public sealed class LlamaDecoderLayer : nn.Module
{
    public readonly LlamaAttention self_attn;
    public readonly GatedMlp mlp;
    public readonly RMSNorm input_layernorm, post_attention_layernorm;

    public LlamaDecoderLayer(ModelConfig c, int layer, ScalarType dtype, Device device) : base("LlamaDecoderLayer")
    {
        self_attn = new LlamaAttention(c, layer, dtype, device);
        mlp = new GatedMlp(c.HiddenSize, c.IntermediateSize, c.MlpBias, dtype, device);
        input_layernorm = new RMSNorm(c.HiddenSize, c.RmsNormEps, dtype, device);
        post_attention_layernorm = new RMSNorm(c.HiddenSize, c.RmsNormEps, dtype, device);
        register_module("self_attn", self_attn);
        register_module("mlp", mlp);
        register_module("input_layernorm", input_layernorm);
        register_module("post_attention_layernorm", post_attention_layernorm);
    }

    public Tensor forward(Tensor h, LayerInputs inputs)
    {
        using var scope = NewDisposeScope();
        // The layer's input may be held by a caller (steering callbacks, captures), so the first residual sum is a new
        // tensor; at inference the second adds in place onto that one, which only this call has seen (autograd needs
        // it unchanged when gradients are on).
        var mid = h.Plus(self_attn.forward(input_layernorm.call(h), inputs));
        var mlpOut = mlp.forward(post_attention_layernorm.call(mid));
        return (is_grad_enabled() ? mid.Plus(mlpOut) : mid.PlusInPlace(mlpOut)).MoveToOuterDisposeScope();
    }
}

/// <summary>The decoder stack ("model." prefix in checkpoints).</summary>
public sealed class LlamaModel : nn.Module
{
    public readonly EmbeddingLayer embed_tokens;
    public readonly ModuleList<LlamaDecoderLayer> layers;
    public readonly RMSNorm norm;

    public LlamaModel(ModelConfig c, ScalarType dtype, Device device) : base("LlamaModel")
    {
        embed_tokens = new EmbeddingLayer(c.VocabSize, c.HiddenSize, dtype, device);
        layers = new ModuleList<LlamaDecoderLayer>();
        for (int i = 0; i < c.NumHiddenLayers; i++) layers.Add(new LlamaDecoderLayer(c, i, dtype, device));
        norm = new RMSNorm(c.HiddenSize, c.RmsNormEps, dtype, device);
        register_module("embed_tokens", embed_tokens);
        register_module("layers", layers);
        register_module("norm", norm);
    }
}

/// <summary>A Llama, Qwen2 or Mistral causal LM (see the file header for what differs between them).</summary>
public sealed class LlamaForCausalLM : CausalLM
{
    public readonly LlamaModel model;
    /// <summary>Null when tie_word_embeddings: logits then reuse the embedding matrix.</summary>
    public readonly LinearLayer? lm_head;

    public LlamaForCausalLM(ModelConfig c, ScalarType dtype, Device device) : base("LlamaForCausalLM", c, dtype, device)
    {
        model = new LlamaModel(c, dtype, device);
        register_module("model", model);
        if (!c.TieWordEmbeddings)
        {
            lm_head = new LinearLayer(c.HiddenSize, c.VocabSize, false, dtype, device);
            register_module("lm_head", lm_head);
        }
    }

    protected override Tensor ForwardCore(Tensor inputIds, ForwardContext ctx)
    {
        using var scope = NewDisposeScope();
        var h = model.embed_tokens.call(inputIds);
        ctx.AfterEmbedding(h);
        for (int i = 0; i < model.layers.Count; i++)
            h = ctx.AfterLayer(i, model.layers[i].forward(h, ctx.Layers));
        h = ctx.SelectOutputPositions(h);
        h = model.norm.call(h);
        var logits = lm_head is null ? Bf16Linear.Forward(h, model.embed_tokens.weight, null) : lm_head.call(h);
        return logits.MoveToOuterDisposeScope();
    }
}
