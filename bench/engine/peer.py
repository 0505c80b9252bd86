#!/usr/bin/env python3
"""Peer for the engine benchmark: an eager PyTorch decode loop written the way HF transformers' modeling_llama runs it.

It loads the same safetensors file the engine benchmark exported (config.json + model.safetensors in --model) and
answers one request per stdin line, so the C# benchmark can interleave engine and peer measurements (A/B/A/B) on a
contended machine:

    request:  {"dtype": "bfloat16", "batch": 8, "prompt": 128, "steps": 32, "ids": [[...128 ids...] x 8]}
    answer:   {"prefill_tok_s": ..., "decode_tok_s": ..., "decode_ms_step": ..., "cpu_ms_step": ..., "tokens": [...]}

What the loop does per step is what HF's LlamaForCausalLM + DynamicCache + greedy generate() do (transformers 4.4x):
  * under torch.inference_mode(), one forward of the [B, 1] new tokens with position_ids;
  * RMSNorm in float32 (hidden.to(float32), variance = pow(2).mean(-1), * rsqrt(variance + eps), .to(dtype), * weight);
  * separate q/k/v projections, view + transpose to [B, H, T, D], rotate_half RoPE with cos/sin computed from inv_freq
    and the position ids every forward (LlamaRotaryEmbedding), the cache grown with torch.cat (DynamicCache.update);
  * repeat_kv (expand + reshape) to match the query heads, then attention: F.scaled_dot_product_attention when this
    PyTorch has it (transformers' default "sdpa"), else the "eager" path (matmul, + causal mask, softmax in float32,
    matmul);
  * SwiGLU MLP down(silu(gate(x)) * up(x)), lm_head on the last position only, argmax on the logits.
It is not transformers itself (Debian packages no transformers); it is the same sequence of torch calls, written here.

Threads: torch.set_num_threads(--threads), the same number the engine uses.
"""
import argparse
import json
import math
import os
import resource
import struct
import sys
import time

import torch
import torch.nn.functional as F

DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F64": torch.float64, "I64": torch.int64}


def load_safetensors(path):
    """Minimal safetensors reader: 8-byte little-endian header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = DTYPES[info["dtype"]]
        start, end = info["data_offsets"]
        count = (end - start) // torch.tensor([], dtype=dtype).element_size()
        t = torch.frombuffer(bytearray(data[base + start:base + end]), dtype=dtype, count=count)
        out[name] = t.reshape(info["shape"])
    return out


class Llama:
    def __init__(self, folder, dtype):
        with open(os.path.join(folder, "config.json")) as f:
            c = json.load(f)
        self.c = c
        self.heads = c["num_attention_heads"]
        self.kv_heads = c.get("num_key_value_heads", self.heads)
        self.head_dim = c.get("head_dim") or c["hidden_size"] // self.heads
        self.eps = c["rms_norm_eps"]
        self.layers = c["num_hidden_layers"]
        theta = c.get("rope_theta", 10000.0)
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.int64).float() / self.head_dim))
        w = load_safetensors(os.path.join(folder, "model.safetensors"))
        self.w = {k: v.to(dtype).contiguous() for k, v in w.items()}
        if "lm_head.weight" not in self.w:
            self.w["lm_head.weight"] = self.w["model.embed_tokens.weight"]
        self.dtype = dtype
        self.params = sum(v.numel() for k, v in w.items())

    def rms(self, x, weight):
        dtype = x.dtype
        x = x.to(torch.float32)
        variance = x.pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(variance + self.eps)
        return weight * x.to(dtype)

    def rotary(self, position_ids):
        inv = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        pos = position_ids[:, None, :].float()
        freqs = (inv @ pos).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(self.dtype), emb.sin().to(self.dtype)

    @staticmethod
    def rotate_half(x):
        x1 = x[..., : x.shape[-1] // 2]
        x2 = x[..., x.shape[-1] // 2:]
        return torch.cat((-x2, x1), dim=-1)

    def repeat_kv(self, h, n_rep):
        b, kvh, s, d = h.shape
        if n_rep == 1:
            return h
        h = h[:, :, None, :, :].expand(b, kvh, n_rep, s, d)
        return h.reshape(b, kvh * n_rep, s, d)

    def attention(self, q, k, v, causal):
        if hasattr(F, "scaled_dot_product_attention"):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        # transformers' eager_attention_forward: scores, + causal mask, softmax in float32, weights @ values.
        scores = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(self.head_dim))
        if causal:
            t, s = q.shape[2], k.shape[2]
            mask = torch.full((t, s), float("-inf"), dtype=scores.dtype).triu(s - t + 1)
            scores = scores + mask
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        return torch.matmul(probs, v)

    def forward(self, ids, position_ids, cache):
        w = self.w
        h = F.embedding(ids, w["model.embed_tokens.weight"])
        cos, sin = self.rotary(position_ids)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        b, t = ids.shape
        for i in range(self.layers):
            p = f"model.layers.{i}."
            residual = h
            x = self.rms(h, w[p + "input_layernorm.weight"])
            q = F.linear(x, w[p + "self_attn.q_proj.weight"]).view(b, t, -1, self.head_dim).transpose(1, 2)
            k = F.linear(x, w[p + "self_attn.k_proj.weight"]).view(b, t, -1, self.head_dim).transpose(1, 2)
            v = F.linear(x, w[p + "self_attn.v_proj.weight"]).view(b, t, -1, self.head_dim).transpose(1, 2)
            q = (q * cos) + (self.rotate_half(q) * sin)
            k = (k * cos) + (self.rotate_half(k) * sin)
            if cache[i] is None:
                cache[i] = (k, v)
            else:  # DynamicCache.update: concatenate along the sequence
                k = torch.cat([cache[i][0], k], dim=-2)
                v = torch.cat([cache[i][1], v], dim=-2)
                cache[i] = (k, v)
            rep = self.heads // self.kv_heads
            y = self.attention(q, self.repeat_kv(k, rep), self.repeat_kv(v, rep), causal=t > 1)
            y = y.transpose(1, 2).reshape(b, t, -1).contiguous()
            h = residual + F.linear(y, w[p + "self_attn.o_proj.weight"])
            residual = h
            x = self.rms(h, w[p + "post_attention_layernorm.weight"])
            x = F.linear(F.silu(F.linear(x, w[p + "mlp.gate_proj.weight"])) * F.linear(x, w[p + "mlp.up_proj.weight"]),
                         w[p + "mlp.down_proj.weight"])
            h = residual + x
        h = self.rms(h[:, -1:, :], w["model.norm.weight"])
        return F.linear(h, w["lm_head.weight"])


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(model, batch, prompt_len, steps, prompt):
    ids = torch.tensor(prompt, dtype=torch.int64)
    with torch.inference_mode():
        # Warm-up, as the engine does (first-call allocations, oneDNN kernel selection): a short prefill, two steps.
        cache = [None] * model.layers
        short = min(8, prompt_len)
        w = model.forward(ids[:, :short], torch.arange(short).unsqueeze(0).expand(batch, -1), cache)
        for s in range(2):
            w = model.forward(w[:, -1, :].argmax(-1, keepdim=True), torch.full((batch, 1), short + s, dtype=torch.int64), cache)
        pos = torch.arange(prompt_len).unsqueeze(0).expand(batch, -1)

        cache = [None] * model.layers
        t0 = time.perf_counter()
        logits = model.forward(ids, pos, cache)
        nxt = logits[:, -1, :].argmax(-1, keepdim=True)
        prefill = time.perf_counter() - t0

        tokens = []
        c0 = cpu_seconds()
        t0 = time.perf_counter()
        for s in range(steps):
            pos = torch.full((batch, 1), prompt_len + s, dtype=torch.int64)
            logits = model.forward(nxt, pos, cache)
            nxt = logits[:, -1, :].argmax(-1, keepdim=True)
            tokens.append(int(nxt[0, 0]))
        decode = time.perf_counter() - t0
        cpu = cpu_seconds() - c0
    return {
        "prefill_tok_s": batch * prompt_len / prefill,
        "decode_tok_s": batch * steps / decode,
        "decode_ms_step": decode / steps * 1000,
        "cpu_ms_step": cpu / steps * 1000,
        "tokens": tokens,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="folder with config.json and model.safetensors")
    ap.add_argument("--threads", type=int, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    models = {}
    hello = {"torch": torch.__version__, "threads": torch.get_num_threads(),
             "attention": "sdpa" if hasattr(F, "scaled_dot_product_attention") else "eager"}
    print(json.dumps(hello), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        dtype = torch.bfloat16 if req["dtype"] == "bfloat16" else torch.float32
        if dtype not in models:
            models[dtype] = Llama(args.model, dtype)
        print(json.dumps(measure(models[dtype], req["batch"], req["prompt"], req["steps"], req["ids"])), flush=True)


if __name__ == "__main__":
    main()
