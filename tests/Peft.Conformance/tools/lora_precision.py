#!/usr/bin/python3
"""Development tool, not run by CI: PyTorch's own float32 rounding of LoRA gradients of GPT-2 (Conv1D) and Llama.

Reads a GPT-2 or Llama causal-LM case laid out like tests/fixtures/hf-peft (models/<m>/, cases/<c>/adapter/,
cases/<c>/io.safetensors with input.* and grad.*), runs transformers' eager GPT-2 or Llama forward and
backward with the adapter's LoRA (on the modules its file has; rsLoRA or plain scaling from adapter_config.json)
in torch float32 and float64, and prints per gradient tensor max|g32 - g64| / max|g64| and
max|grad.* - torch64| / max|torch64| (grad32.* too where present). On a reference fixture grad.* is the
reference's float32 gradient; on a case kept by `Peft.Conformance precision-sweep` it is our float64 one and
grad32.* our float32 one.

Needs only numpy and torch (Debian: apt-get install python3-torch python3-numpy; torch 1.13 is enough).
With --float32-scaling, the LoRA scaling is rounded to float32 in both runs, as this library's fused update
(LoraLayer.AddUpdate, addmm's float alpha) rounds it also in float64: then our float64 gradients match torch's to ~1e-12.

usage: lora_precision.py [--float32-scaling] <model-dir> <case-dir>
"""
import json
import math
import struct
import sys

import numpy as np
import torch

FLOAT32_SCALING = False
DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}


def load_safetensors(path):
    """safetensors: 8-byte little-endian header length, JSON header, raw little-endian data."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[8 + n + start:8 + n + end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"]).copy())
    return out


def run(config, base, adapter, lora, inputs, dtype):
    w = {k: v.to(dtype) for k, v in base.items()}
    params = {k: v.to(dtype).clone().requires_grad_(True) for k, v in adapter.items()}
    r, alpha = lora["r"], lora["lora_alpha"]
    scale = alpha / math.sqrt(r) if lora.get("use_rslora") else alpha / r
    if FLOAT32_SCALING:  # this library's LoRA passes the scaling to addmm as a float32 (see --float32-scaling)
        scale = float(np.float32(scale))
    ids, mask, labels = inputs["input.input_ids"], inputs["input.attention_mask"], inputs["input.labels"]
    b, t = ids.shape
    allowed = torch.tril(torch.ones(t, t, dtype=torch.bool))[None, None] & mask.bool()[:, None, None, :]
    bias = torch.zeros(b, 1, t, t, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)

    def lora_delta(h, module):
        a_key = f"base_model.model.{module}.lora_A.weight"
        if a_key not in params:
            return 0
        return (h @ params[a_key].T) @ params[a_key.replace("lora_A", "lora_B")].T * scale

    def attend(q, k, v):
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + bias
        return torch.softmax(scores, dim=-1) @ v

    forward = gpt2 if config["model_type"] == "gpt2" else llama
    logits = forward(config, w, ids, lora_delta, attend)
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)
    loss.backward()
    return loss.item(), {k: p.grad.double() for k, p in params.items()}


def gpt2(config, w, ids, lora_delta, attend):
    heads, width, eps = config["n_head"], config["n_embd"], config.get("layer_norm_epsilon", 1e-5)
    b, t = ids.shape
    x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][torch.arange(t)]

    def ln(h, p):
        return torch.nn.functional.layer_norm(h, (width,), w[p + ".weight"], w[p + ".bias"], eps)

    def conv1d(h, p):  # Conv1D: weight stored [in, out]
        return h @ w[p + ".weight"] + w[p + ".bias"] + lora_delta(h, p)

    for i in range(config["n_layer"]):
        p = f"transformer.h.{i}"
        q, k, v = (z.view(b, t, heads, -1).transpose(1, 2) for z in conv1d(ln(x, p + ".ln_1"), p + ".attn.c_attn").split(width, dim=-1))
        x = x + conv1d(attend(q, k, v).transpose(1, 2).reshape(b, t, width), p + ".attn.c_proj")
        x = x + conv1d(torch.nn.functional.gelu(conv1d(ln(x, p + ".ln_2"), p + ".mlp.c_fc"), approximate="tanh"), p + ".mlp.c_proj")
    return ln(x, "transformer.ln_f") @ w["transformer.wte.weight"].T


def llama(config, w, ids, lora_delta, attend):
    heads, kv_heads, eps = config["num_attention_heads"], config["num_key_value_heads"], config["rms_norm_eps"]
    dim = config.get("head_dim") or config["hidden_size"] // heads
    theta = (config.get("rope_parameters") or {}).get("rope_theta", config.get("rope_theta", 10000.0))
    b, t = ids.shape
    x = w["model.embed_tokens.weight"][ids]
    inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float32) / dim))
    angles = torch.arange(t, dtype=torch.float32)[:, None] * inv_freq[None]
    emb = torch.cat((angles, angles), dim=-1)
    cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)

    def rotate(z):
        half = z.shape[-1] // 2
        return z * cos + torch.cat((-z[..., half:], z[..., :half]), dim=-1) * sin

    def rms(h, p):
        return w[p + ".weight"] * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps))

    def linear(h, p):
        return h @ w[p + ".weight"].T + lora_delta(h, p)

    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}"
        h = rms(x, p + ".input_layernorm")
        q = rotate(linear(h, p + ".self_attn.q_proj").view(b, t, heads, dim).transpose(1, 2))
        k = rotate(linear(h, p + ".self_attn.k_proj").view(b, t, kv_heads, dim).transpose(1, 2))
        v = linear(h, p + ".self_attn.v_proj").view(b, t, kv_heads, dim).transpose(1, 2)
        k, v = (z.repeat_interleave(heads // kv_heads, dim=1) for z in (k, v))
        x = x + linear(attend(q, k, v).transpose(1, 2).reshape(b, t, heads * dim), p + ".self_attn.o_proj")
        h = rms(x, p + ".post_attention_layernorm")
        x = x + linear(torch.nn.functional.silu(linear(h, p + ".mlp.gate_proj")) * linear(h, p + ".mlp.up_proj"), p + ".mlp.down_proj")
    return rms(x, "model.norm") @ w["lm_head.weight"].T


def relative(a, b):
    return ((a - b).abs().max() / b.abs().max()).item()


def main(model_dir, case_dir):
    config = json.load(open(f"{model_dir}/config.json"))
    lora = json.load(open(f"{case_dir}/adapter/adapter_config.json"))
    base = load_safetensors(f"{model_dir}/model.safetensors")
    adapter = load_safetensors(f"{case_dir}/adapter/adapter_model.safetensors")
    io = load_safetensors(f"{case_dir}/io.safetensors")
    loss32, g32 = run(config, base, adapter, lora, io, torch.float32)
    loss64, g64 = run(config, base, adapter, lora, io, torch.float64)
    print(f"loss torch32 {loss32:.8f} torch64 {loss64:.8f}")
    for name in sorted(g64):
        ours = io.get("grad." + name.replace(".weight", ".default.weight"))
        line = f"{name}: torch32 vs torch64 {relative(g32[name], g64[name]):.2e}"
        if ours is not None:
            line += f", grad.* vs torch64 {relative(ours.double(), g64[name]):.2e}"
        ours32 = io.get("grad32." + name.replace(".weight", ".default.weight"))
        if ours32 is not None:
            line += f", grad32.* vs torch64 {relative(ours32.double(), g64[name]):.2e}"
        print(line)


if __name__ == "__main__":
    torch.set_num_threads(1)
    arguments = [a for a in sys.argv[1:] if a != "--float32-scaling"]
    FLOAT32_SCALING = len(arguments) < len(sys.argv) - 1
    main(arguments[0], arguments[1])
