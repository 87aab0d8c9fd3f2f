# Makes a tiny random causal LM (llama, qwen2, starcoder2 or gpt_bigcode) with PyTorch, in Hugging Face's exact
# parameter names and config format, plus an ONNX export in the transformers.js layout and PyTorch reference
# logits, so the project's runtime can be checked against PyTorch. No transformers library needed.
# Run: /usr/bin/python3 scripts/makeFamilyModels.py --family llama|qwen2|starcoder2|gpt_bigcode --out DIR
#      --vocab-size N [--seed S] [--dtype float32|bfloat16|float16] [--tokens 1,2,3] [--shards 2]
import argparse
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_TOKENS = [17, 42, 7, 99, 23, 5, 61, 88, 12, 150, 33, 71]
GREEDY_TOKENS = 12
ONNX_OPSET = 14

# Init scales: large enough that a random model's greedy choices depend on the context.
EMBED_STD = 0.4  # token embeddings and lm_head, GPT-BigCode's wpe too (logits std ≈ EMBED_STD · sqrt(hidden))
MATRIX_STD = 0.15  # every other weight matrix
BIAS_STD = 0.1  # every bias (qwen2's q/k/v, starcoder2's and gpt_bigcode's linears and LayerNorms)
NORM_NOISE = 0.1  # RMSNorm and LayerNorm weights are 1 + NORM_NOISE · N(0, 1)
FAMILIES = ["llama", "qwen2", "starcoder2", "gpt_bigcode"]


def family_config(family, vocab_size, dtype, rope_scaling, tie, bos, eos, multi_query=True, sliding_window=None):
    """config.json as Hugging Face writes it for LlamaForCausalLM, Qwen2ForCausalLM, Starcoder2ForCausalLM and
    GPTBigCodeForCausalLM."""
    if family == "gpt_bigcode":
        # GPTBigCodeConfig's own names (n_embd, n_layer…); n_inner null means 4 · n_embd.
        config = {
            "architectures": ["GPTBigCodeForCausalLM"],
            "model_type": "gpt_bigcode",
            "n_embd": 64,
            "n_layer": 2,
            "n_head": 4,
            "n_inner": None,
            "n_positions": 256,
            "activation_function": "gelu_pytorch_tanh",
            "layer_norm_epsilon": 1e-5,
            "multi_query": multi_query,
            "scale_attn_weights": True,
            "attention_softmax_in_fp32": True,
            "scale_attention_softmax_in_fp32": True,
            "resid_pdrop": 0.1,
            "embd_pdrop": 0.1,
            "attn_pdrop": 0.1,
            "initializer_range": 0.02,
        }
        if tie is not None:
            config["tie_word_embeddings"] = tie
        config.update({"vocab_size": vocab_size, "bos_token_id": bos, "eos_token_id": eos, "torch_dtype": dtype, "use_cache": True})
        return config
    if family == "llama":
        config = {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "hidden_act": "silu",
            "max_position_embeddings": 256,
            "rms_norm_eps": 1e-5,
            "rope_theta": 500000.0,
            "attention_bias": False,
            "attention_dropout": 0.0,
            "mlp_bias": False,
            "pretraining_tp": 1,
            "initializer_range": 0.02,
            "tie_word_embeddings": False,
        }
        default_scaling = "llama3"
    elif family == "qwen2":
        config = {
            "architectures": ["Qwen2ForCausalLM"],
            "model_type": "qwen2",
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "hidden_act": "silu",
            "max_position_embeddings": 256,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "attention_dropout": 0.0,
            "use_sliding_window": False,
            "sliding_window": 256,
            "max_window_layers": 3,
            "initializer_range": 0.02,
            "tie_word_embeddings": True,
        }
        default_scaling = "none"
    elif family == "starcoder2":
        # A window shorter than the reference prompt, so that the sliding-window mask matters.
        config = {
            "architectures": ["Starcoder2ForCausalLM"],
            "model_type": "starcoder2",
            "hidden_size": 64,
            "intermediate_size": 256,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "hidden_act": "gelu_pytorch_tanh",
            "max_position_embeddings": 256,
            "norm_epsilon": 1e-5,
            "rope_theta": 100000.0,
            "sliding_window": sliding_window or 7,
            "use_bias": True,
            "attention_dropout": 0.0,
            "residual_dropout": 0.0,
            "embedding_dropout": 0.0,
            "initializer_range": 0.018,
            "tie_word_embeddings": True,
        }
        default_scaling = "none"
    else:
        raise SystemExit("unknown family %r (%s)" % (family, ", ".join(FAMILIES)))

    kind = rope_scaling or default_scaling
    if kind == "none":
        config["rope_scaling"] = None
    elif kind == "linear":
        config["rope_scaling"] = {"rope_type": "linear", "factor": 2.0}
    elif kind == "llama3":
        # original_max_position_embeddings is small so that, with head_dim 16, the frequencies fall in all three
        # bands of the llama3 rule (kept, smoothed, divided by factor).
        config["rope_scaling"] = {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64,
        }
    else:
        raise SystemExit("unknown --rope-scaling %r (none, linear or llama3)" % kind)
    if tie is not None:
        config["tie_word_embeddings"] = tie
    config.update(
        {
            "vocab_size": vocab_size,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "torch_dtype": dtype,
            "use_cache": True,
        }
    )
    return config


def head_dim_of(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def rope_inv_freq(cfg):
    """Inverse frequencies as Hugging Face's ROPE_INIT_FUNCTIONS compute them (default, linear, llama3)."""
    dim = head_dim_of(cfg)
    inv_freq = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    scaling = cfg.get("rope_scaling")
    if not scaling:
        return inv_freq
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "linear":
        # Dividing the frequencies is the same as dividing the positions by the factor.
        return inv_freq / scaling["factor"]
    if kind == "llama3":
        factor = scaling["factor"]
        low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
        old_context = scaling["original_max_position_embeddings"]
        low_freq_wavelen = old_context / low
        high_freq_wavelen = old_context / high
        wavelen = 2 * math.pi / inv_freq
        # Long wavelengths are divided by factor, short ones kept, the ones between interpolated smoothly.
        scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth = (old_context / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        return torch.where(medium, smoothed, scaled)
    raise SystemExit("rope_scaling type %r is not supported here" % kind)


def rotate_half(x):
    """HF's convention: the first half and the second half of head_dim are the two coordinates of each pair."""
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def repeat_kv(x, n_rep):
    """[batch, kv_heads, seq, head_dim] → [batch, kv_heads · n_rep, seq, head_dim], each kv head n_rep times."""
    if n_rep == 1:
        return x
    batch, kv_heads, seq, head_dim = x.shape
    return x[:, :, None, :, :].expand(batch, kv_heads, n_rep, seq, head_dim).reshape(batch, kv_heads * n_rep, seq, head_dim)


class RMSNorm(nn.Module):
    def __init__(self, size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.to(torch.float32)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def norm_of(cfg):
    """RMSNorm for Llama and Qwen2; StarCoder2 uses nn.LayerNorm (weight and bias) with norm_epsilon."""
    if cfg["model_type"] == "starcoder2":
        return nn.LayerNorm(cfg["hidden_size"], eps=cfg["norm_epsilon"])
    return RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


def linear_biases(cfg):
    """(q/k/v bias, o_proj bias, MLP bias) as HF's modeling files read them from the config."""
    if cfg["model_type"] == "starcoder2":
        return cfg["use_bias"], cfg["use_bias"], cfg["use_bias"]
    if cfg["model_type"] == "qwen2":
        return True, False, False
    attention_bias = cfg.get("attention_bias", False)
    return attention_bias, attention_bias, cfg.get("mlp_bias", False)


ACTIVATIONS = {
    "silu": F.silu,
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
}


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        hidden = cfg["hidden_size"]
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg["num_key_value_heads"]
        self.head_dim = head_dim_of(cfg)
        qkv_bias, output_bias, _ = linear_biases(cfg)
        self.q_proj = nn.Linear(hidden, self.heads * self.head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(hidden, self.kv_heads * self.head_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(hidden, self.kv_heads * self.head_dim, bias=qkv_bias)
        self.o_proj = nn.Linear(self.heads * self.head_dim, hidden, bias=output_bias)

    def forward(self, x, cos, sin, mask, past_key, past_value):
        batch, seq, _ = x.shape
        q = self.q_proj(x).view(batch, seq, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, seq, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, seq, self.kv_heads, self.head_dim).transpose(1, 2)
        # cos, sin: [batch, seq, head_dim] → broadcast over heads.
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        # The cache holds keys after RoPE, as HF's DynamicCache does.
        k = torch.cat((past_key, k), dim=2)
        v = torch.cat((past_value, v), dim=2)
        n_rep = self.heads // self.kv_heads
        scores = (q @ repeat_kv(k, n_rep).transpose(2, 3)) * (self.head_dim**-0.5) + mask
        weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        y = (weights @ repeat_kv(v, n_rep)).transpose(1, 2).reshape(batch, seq, self.heads * self.head_dim)
        return self.o_proj(y), k, v


class MLP(nn.Module):
    """Llama's and Qwen2's SwiGLU: down(silu(gate(x)) · up(x))."""

    def __init__(self, cfg):
        super().__init__()
        hidden, inner = cfg["hidden_size"], cfg["intermediate_size"]
        bias = linear_biases(cfg)[2]
        self.gate_proj = nn.Linear(hidden, inner, bias=bias)
        self.up_proj = nn.Linear(hidden, inner, bias=bias)
        self.down_proj = nn.Linear(inner, hidden, bias=bias)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class PlainMLP(nn.Module):
    """StarCoder2's MLP: c_proj(act(c_fc(x))), act from hidden_act."""

    def __init__(self, cfg):
        super().__init__()
        hidden, inner = cfg["hidden_size"], cfg["intermediate_size"]
        bias = linear_biases(cfg)[2]
        self.c_fc = nn.Linear(hidden, inner, bias=bias)
        self.c_proj = nn.Linear(inner, hidden, bias=bias)
        self.act = ACTIVATIONS[cfg["hidden_act"]]

    def forward(self, x):
        return self.c_proj(self.act(self.c_fc(x)))


class DecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = norm_of(cfg)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = norm_of(cfg)
        self.mlp = PlainMLP(cfg) if cfg["model_type"] == "starcoder2" else MLP(cfg)

    def forward(self, x, cos, sin, mask, past_key, past_value):
        y, key, value = self.self_attn(self.input_layernorm(x), cos, sin, mask, past_key, past_value)
        x = x + y
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, key, value


class Backbone(nn.Module):
    """HF's LlamaModel / Qwen2Model / Starcoder2Model: the `model.` prefix of every parameter name."""

    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList([DecoderLayer(cfg) for _ in range(cfg["num_hidden_layers"])])
        self.norm = norm_of(cfg)


class CausalLM(nn.Module):
    """LlamaForCausalLM / Qwen2ForCausalLM / Starcoder2ForCausalLM with the cache passed in and returned as plain
    tensors: one (key, value) pair [batch, kv_heads, past, head_dim] per layer."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = Backbone(cfg)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)
        if cfg["tie_word_embeddings"]:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.register_buffer("inv_freq", rope_inv_freq(cfg), persistent=False)

    def empty_cache(self, batch=1):
        shape = (batch, self.cfg["num_key_value_heads"], 0, head_dim_of(self.cfg))
        return [(torch.zeros(shape), torch.zeros(shape)) for _ in range(self.cfg["num_hidden_layers"])]

    @staticmethod
    def past_length(past):
        return past[0][0].shape[2]

    def forward(self, input_ids, attention_mask, position_ids, past):
        """input_ids, position_ids: [batch, seq]; attention_mask: [batch, past + seq] of 1 (token) and 0 (padding);
        past: per layer (key, value) [batch, kv_heads, past, head_dim]. Returns logits and the new cache."""
        x = self.model.embed_tokens(input_ids)
        # RoPE in float32: angle = position · inv_freq, duplicated for the two halves.
        freqs = position_ids[:, :, None].float() * self.inv_freq[None, None, :].float()
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
        # Query i sits at cache position past + i and sees keys 0..past+i that the attention mask does not hide.
        seq = input_ids.shape[1]
        total = attention_mask.shape[1]
        past_length = total - seq
        query_positions = torch.arange(seq, device=input_ids.device)[:, None] + past_length
        key_positions = torch.arange(total, device=input_ids.device)[None, :]
        causal = key_positions <= query_positions
        window = self.cfg.get("sliding_window") if self.cfg["model_type"] == "starcoder2" else None
        if window is not None:
            # HF's sliding-window mask: a query sees the keys less than `window` cache positions before it.
            causal = causal & (key_positions > query_positions - window)
        allowed = causal[None, None, :, :] & attention_mask[:, None, None, :].bool()
        mask = torch.zeros_like(allowed, dtype=x.dtype).masked_fill(~allowed, torch.finfo(x.dtype).min)
        present = []
        for layer, (past_key, past_value) in zip(self.model.layers, past):
            x, key, value = layer(x, cos, sin, mask, past_key, past_value)
            present.append((key, value))
        logits = self.lm_head(self.model.norm(x)).float()
        return logits, present


def mask_value(scores):
    """HF's masked score: the dtype's lowest value, as a 0-d tensor of the scores' dtype."""
    return torch.full([], torch.finfo(scores.dtype).min, dtype=scores.dtype)


class BigCodeAttention(nn.Module):
    """GPTBigCodeAttention. Multi-query: c_attn gives every head's query, then ONE head's key and value, and the
    layer caches them fused, [batch, past, 2 · head_dim] (keys first). Otherwise c_attn gives [q | k | v] per head
    and the cache is [batch, heads, past, 2 · head_dim]."""

    def __init__(self, cfg):
        super().__init__()
        self.multi_query = cfg["multi_query"]
        self.embed_dim = cfg["n_embd"]
        self.heads = cfg["n_head"]
        self.head_dim = self.embed_dim // self.heads
        self.kv_dim = self.head_dim if self.multi_query else self.embed_dim
        self.scale = self.head_dim**-0.5 if cfg["scale_attn_weights"] else 1.0
        self.c_attn = nn.Linear(self.embed_dim, self.embed_dim + 2 * self.kv_dim)
        self.c_proj = nn.Linear(self.embed_dim, self.embed_dim)

    def forward(self, x, allowed, layer_past):
        """allowed: [batch, seq, total] booleans; layer_past: the fused cache of this layer."""
        batch, seq, _ = x.shape
        if self.multi_query:
            query, key_value = self.c_attn(x).split((self.embed_dim, 2 * self.kv_dim), dim=2)
            key_value = torch.cat((layer_past, key_value), dim=-2)  # [batch, total, 2 · head_dim]
            key, value = key_value.split((self.head_dim, self.head_dim), dim=-1)
            # Every head's query against the one key head: [batch, seq · heads, head_dim] x [batch, head_dim, total].
            q = query.reshape(batch, seq * self.heads, self.head_dim)
            scores = torch.bmm(q, key.transpose(1, 2)).view(batch, seq, self.heads, -1) * self.scale
            scores = torch.where(allowed[:, :, None, :], scores, mask_value(scores))
            weights = F.softmax(scores, dim=-1)
            y = torch.bmm(weights.view(batch, seq * self.heads, -1), value).view(batch, seq, self.embed_dim)
        else:
            qkv = self.c_attn(x).view(batch, seq, self.heads, 3 * self.head_dim).transpose(1, 2)
            query, key_value = qkv.split((self.head_dim, 2 * self.head_dim), dim=3)
            key_value = torch.cat((layer_past, key_value), dim=-2)  # [batch, heads, total, 2 · head_dim]
            key, value = key_value.split((self.head_dim, self.head_dim), dim=-1)
            scores = (query @ key.transpose(-1, -2)) * self.scale
            scores = torch.where(allowed[:, None, :, :], scores, mask_value(scores))
            y = (F.softmax(scores, dim=-1) @ value).transpose(1, 2).reshape(batch, seq, self.embed_dim)
        return self.c_proj(y), key_value


class BigCodeMLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        inner = cfg["n_inner"] or 4 * cfg["n_embd"]
        self.c_fc = nn.Linear(cfg["n_embd"], inner)
        self.c_proj = nn.Linear(inner, cfg["n_embd"])
        self.act = ACTIVATIONS[cfg["activation_function"]]

    def forward(self, x):
        return self.c_proj(self.act(self.c_fc(x)))


class BigCodeBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg["n_embd"], eps=cfg["layer_norm_epsilon"])
        self.attn = BigCodeAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg["n_embd"], eps=cfg["layer_norm_epsilon"])
        self.mlp = BigCodeMLP(cfg)

    def forward(self, x, allowed, layer_past):
        y, present = self.attn(self.ln_1(x), allowed, layer_past)
        x = x + y
        return x + self.mlp(self.ln_2(x)), present


class BigCodeTransformer(nn.Module):
    """HF's GPTBigCodeModel: the `transformer.` prefix of every parameter name."""

    def __init__(self, cfg):
        super().__init__()
        self.wte = nn.Embedding(cfg["vocab_size"], cfg["n_embd"])
        self.wpe = nn.Embedding(cfg["n_positions"], cfg["n_embd"])
        self.h = nn.ModuleList([BigCodeBlock(cfg) for _ in range(cfg["n_layer"])])
        self.ln_f = nn.LayerNorm(cfg["n_embd"], eps=cfg["layer_norm_epsilon"])


class BigCodeLM(nn.Module):
    """GPTBigCodeForCausalLM (tied lm_head by default) with one cache tensor per layer passed in and returned."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.transformer = BigCodeTransformer(cfg)
        self.lm_head = nn.Linear(cfg["n_embd"], cfg["vocab_size"], bias=False)
        if cfg.get("tie_word_embeddings", True):
            self.lm_head.weight = self.transformer.wte.weight

    def cache_shape(self, batch, past):
        head_dim = self.cfg["n_embd"] // self.cfg["n_head"]
        if self.cfg["multi_query"]:
            return (batch, past, 2 * head_dim)
        return (batch, self.cfg["n_head"], past, 2 * head_dim)

    def empty_cache(self, batch=1):
        return [torch.zeros(self.cache_shape(batch, 0)) for _ in range(self.cfg["n_layer"])]

    @staticmethod
    def past_length(past):
        return past[0].shape[-2]

    def forward(self, input_ids, attention_mask, position_ids, past):
        seq = input_ids.shape[1]
        total = attention_mask.shape[1]
        query_positions = torch.arange(seq, device=input_ids.device)[:, None] + (total - seq)
        key_positions = torch.arange(total, device=input_ids.device)[None, :]
        allowed = (key_positions <= query_positions)[None, :, :] & attention_mask[:, None, :].bool()
        x = self.transformer.wte(input_ids) + self.transformer.wpe(position_ids)
        present = []
        for block, layer_past in zip(self.transformer.h, past):
            x, key_value = block(x, allowed, layer_past)
            present.append(key_value)
        return self.lm_head(self.transformer.ln_f(x)).float(), present


def make_lm(cfg):
    return BigCodeLM(cfg) if cfg["model_type"] == "gpt_bigcode" else CausalLM(cfg)


def layers_of(cfg):
    return cfg["n_layer"] if cfg["model_type"] == "gpt_bigcode" else cfg["num_hidden_layers"]


def tied(cfg):
    return cfg.get("tie_word_embeddings", True) if cfg["model_type"] == "gpt_bigcode" else cfg["tie_word_embeddings"]


def cache_layout(cfg):
    """The transformers.js names of one layer's cache inputs and outputs, and the past axis of each tensor.
    Multi-query GPT-BigCode keeps one fused key_value [batch, past, 2 · head_dim]; every other model (GPT-BigCode
    with a key/value head per query head too) a key and a value [batch, kv_heads, past, head_dim]."""
    if cfg["model_type"] == "gpt_bigcode" and cfg["multi_query"]:
        return ["key_value"], 1
    return ["key", "value"], 2


def cache_entries(lm, layer_cache):
    """One layer's cache as the ONNX graph's tensors (GPT-BigCode's multi-head cache is split in two)."""
    if isinstance(lm, BigCodeLM):
        if lm.cfg["multi_query"]:
            return [layer_cache]
        return list(layer_cache.chunk(2, dim=-1))
    return list(layer_cache)


def layer_cache(lm, entries):
    """The inverse of cache_entries."""
    if isinstance(lm, BigCodeLM):
        return entries[0] if lm.cfg["multi_query"] else torch.cat(entries, dim=-1)
    return tuple(entries)


class OnnxWrapper(nn.Module):
    """The transformers.js decoder signature: (input_ids, attention_mask, position_ids, past...) → (logits, present...)."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm
        self.per_layer = len(cache_layout(lm.cfg)[0])

    def forward(self, input_ids, attention_mask, position_ids, *past_flat):
        n = self.per_layer
        past = [layer_cache(self.lm, past_flat[n * i : n * (i + 1)]) for i in range(len(past_flat) // n)]
        logits, present = self.lm(input_ids, attention_mask, position_ids, past)
        flat = [t for entry in present for t in cache_entries(self.lm, entry)]
        return (logits, *flat)


def init_weights(lm, seed, dtype):
    """Random weights from the seed in a fixed order, rounded to the saved dtype so that every consumer (the
    safetensors file, the ONNX export and the reference) sees the same numbers."""
    generator = torch.Generator().manual_seed(seed)
    norms = {name + ".weight" for name, m in lm.named_modules() if isinstance(m, (RMSNorm, nn.LayerNorm))}
    with torch.no_grad():
        for name, p in lm.named_parameters():  # the tied lm_head appears once, as the token embedding
            noise = torch.randn(p.shape, generator=generator)
            if name in norms:
                p.copy_(1.0 + NORM_NOISE * noise)
            elif name.endswith(".bias"):
                p.copy_(BIAS_STD * noise)
            elif name in ("model.embed_tokens.weight", "lm_head.weight", "transformer.wte.weight", "transformer.wpe.weight"):
                p.copy_(EMBED_STD * noise)
            else:
                p.copy_(MATRIX_STD * noise)
            p.copy_(p.to(TORCH_DTYPES[dtype]).to(torch.float32))


TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
SAFETENSORS_DTYPES = {"float32": "F32", "bfloat16": "BF16", "float16": "F16"}


def state_to_save(lm):
    """HF's state dict: every parameter by name, without lm_head.weight when it is tied."""
    state = {name: p.detach() for name, p in lm.state_dict().items() if name != "inv_freq"}
    if tied(lm.cfg):
        del state["lm_head.weight"]
    return dict(sorted(state.items()))


def tensor_bytes(t, dtype):
    """Raw little-endian bytes of a tensor in the saved dtype (bfloat16 via its 16-bit pattern: numpy has none)."""
    t = t.to(TORCH_DTYPES[dtype]).contiguous()
    if dtype == "float32":
        return t.numpy().astype("<f4").tobytes()
    if dtype == "float16":
        return t.numpy().astype("<f2").tobytes()
    return t.view(torch.int16).numpy().astype("<i2").tobytes()


def write_safetensors(path, tensors, dtype):
    """The safetensors format: u64 little-endian header size, JSON header (padded with spaces to 8 bytes), data."""
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        data = tensor_bytes(t, dtype)
        header[name] = {"dtype": SAFETENSORS_DTYPES[dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    with open(path, "wb") as f:
        f.write(len(header_bytes).to_bytes(8, "little"))
        f.write(header_bytes)
        for data in blobs:
            f.write(data)
    return offset


def write_weights(out, lm, dtype, shards):
    state = state_to_save(lm)
    if shards <= 1:
        write_safetensors(os.path.join(out, "model.safetensors"), state, dtype)
        return
    # Consecutive tensors (in name order) in shards of about equal size; HF's index maps each name to its file.
    names = list(state)
    element_size = torch.empty(0, dtype=TORCH_DTYPES[dtype]).element_size()
    sizes = [state[n].numel() * element_size for n in names]
    total = sum(sizes)
    groups = [[] for _ in range(shards)]
    running = 0
    for name, size in zip(names, sizes):
        index = min(shards - 1, int(running * shards // total))
        groups[index].append(name)
        running += size
    weight_map = {}
    for i, group in enumerate(groups):
        file = "model-%05d-of-%05d.safetensors" % (i + 1, shards)
        write_safetensors(os.path.join(out, file), {n: state[n] for n in group}, dtype)
        for n in group:
            weight_map[n] = file
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    write_json(os.path.join(out, "model.safetensors.index.json"), index)


def export_onnx(out, lm):
    cfg = lm.cfg
    layers = layers_of(cfg)
    kinds, past_axis = cache_layout(cfg)
    # Example inputs: 2 cached positions and 3 new ones, so that no traced size is 0 or 1.
    input_ids = torch.tensor([[3, 4, 5]], dtype=torch.int64)
    attention_mask = torch.ones(1, 5, dtype=torch.int64)
    position_ids = torch.tensor([[2, 3, 4]], dtype=torch.int64)
    example = [torch.randn(t.shape[:past_axis] + (2,) + t.shape[past_axis + 1 :]) for t in cache_entries(lm, lm.empty_cache()[0])]
    past = [t.clone() for _ in range(layers) for t in example]
    past_names, present_names = [], []
    for i in range(layers):
        past_names += ["past_key_values.%d.%s" % (i, kind) for kind in kinds]
        present_names += ["present.%d.%s" % (i, kind) for kind in kinds]
    dynamic_axes = {
        "input_ids": {0: "batch_size", 1: "sequence_length"},
        "attention_mask": {0: "batch_size", 1: "total_sequence_length"},
        "position_ids": {0: "batch_size", 1: "sequence_length"},
        "logits": {0: "batch_size", 1: "sequence_length"},
    }
    for name in past_names:
        dynamic_axes[name] = {0: "batch_size", past_axis: "past_sequence_length"}
    for name in present_names:
        dynamic_axes[name] = {0: "batch_size", past_axis: "total_sequence_length"}
    os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
    path = os.path.join(out, "onnx", "model.onnx")
    torch.onnx.export(
        OnnxWrapper(lm),
        (input_ids, attention_mask, position_ids, *past),
        path,
        input_names=["input_ids", "attention_mask", "position_ids", *past_names],
        output_names=["logits", *present_names],
        dynamic_axes=dynamic_axes,
        opset_version=ONNX_OPSET,
        do_constant_folding=True,
    )
    try:
        import onnx

        onnx.checker.check_model(onnx.load(path))
    except ImportError:
        pass


def run(lm, ids, past):
    """One forward over `ids` (a list) after the cached positions; batch 1, no padding."""
    past_length = lm.past_length(past)
    total = past_length + len(ids)
    input_ids = torch.tensor([ids], dtype=torch.int64)
    attention_mask = torch.ones(1, total, dtype=torch.int64)
    position_ids = torch.arange(past_length, total, dtype=torch.int64)[None, :]
    return lm(input_ids, attention_mask, position_ids, past)


def f9(v):
    """9 significant digits: enough to round-trip a float32 exactly."""
    return float("%.9g" % v)


def floats(t):
    return [f9(v) for v in t.tolist()]


def make_reference(lm, tokens, eos):
    with torch.no_grad():
        n = len(tokens)
        logits, _ = run(lm, tokens, lm.empty_cache())
        full = {
            "positions": [n - 2, n - 1],
            "logits": [floats(logits[0, n - 2]), floats(logits[0, n - 1])],
            "argmax": logits[0].argmax(-1).tolist(),
        }
        prefill = n - 3
        step_logits, cache = run(lm, tokens[:prefill], lm.empty_cache())
        steps = []
        for i in range(prefill, n):
            step_logits, cache = run(lm, [tokens[i]], cache)
            steps.append(floats(step_logits[0, -1]))
        cached = {"prefill_length": prefill, "positions": list(range(prefill, n)), "logits": steps}
        # Greedy continuation as HF's generate does it: argmax, stop after the end-of-text token.
        # min_margin (the smallest gap between the best and the second-best logit) says how much numerical
        # noise another runtime may add before its greedy tokens can differ.
        generated = []
        margins = []
        step_logits, cache = run(lm, tokens, lm.empty_cache())
        for _ in range(GREEDY_TOKENS):
            top = step_logits[0, -1].topk(2).values
            margins.append(float(top[0] - top[1]))
            token = int(step_logits[0, -1].argmax())
            generated.append(token)
            if token == eos:
                break
            step_logits, cache = run(lm, [token], cache)
    return {
        "token_ids": tokens,
        "full": full,
        "cached": cached,
        "greedy": {"max_new_tokens": GREEDY_TOKENS, "eos_token_id": eos, "tokens": generated, "min_margin": f9(min(margins))},
    }


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=1)
        f.write("\n")


def main():
    parser = argparse.ArgumentParser(description="Makes a tiny random model folder of one family with reference logits.")
    parser.add_argument("--family", required=True, choices=FAMILIES)
    parser.add_argument("--out", required=True)
    parser.add_argument("--vocab-size", type=int, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dtype", default="float32", choices=sorted(TORCH_DTYPES))
    parser.add_argument("--tokens", help="comma-separated token ids for reference.json (default: a fixed list)")
    parser.add_argument("--shards", type=int, default=1, help="write the weights in this many safetensors files")
    parser.add_argument("--rope-scaling", choices=["none", "linear", "llama3"], help="default: llama3 for llama, none for qwen2")
    parser.add_argument("--tie-word-embeddings", choices=["true", "false"], help="default: false for llama, true for qwen2")
    parser.add_argument("--bos-token-id", type=int, default=0)
    parser.add_argument("--eos-token-id", type=int, default=0)
    parser.add_argument("--multi-query", choices=["true", "false"], default="true", help="gpt_bigcode's multi_query")
    parser.add_argument("--sliding-window", type=int, help="starcoder2's sliding_window (default 7)")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX export")
    args = parser.parse_args()

    if args.tokens:
        tokens = [int(t) for t in args.tokens.split(",") if t.strip()]
    else:
        tokens = [t % args.vocab_size for t in DEFAULT_TOKENS]
    if len(tokens) < 4 or any(not 0 <= t < args.vocab_size for t in tokens):
        raise SystemExit("--tokens needs at least 4 ids in [0, %d)" % args.vocab_size)

    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    tie = None if args.tie_word_embeddings is None else args.tie_word_embeddings == "true"
    cfg = family_config(
        args.family, args.vocab_size, args.dtype, args.rope_scaling, tie, args.bos_token_id, args.eos_token_id,
        multi_query=args.multi_query == "true", sliding_window=args.sliding_window,
    )
    lm = make_lm(cfg)
    init_weights(lm, args.seed, args.dtype)
    lm.eval()

    os.makedirs(args.out, exist_ok=True)
    write_json(os.path.join(args.out, "config.json"), cfg)
    generation = {"_from_model_config": True, "bos_token_id": cfg["bos_token_id"], "eos_token_id": cfg["eos_token_id"]}
    write_json(os.path.join(args.out, "generation_config.json"), generation)
    write_weights(args.out, lm, args.dtype, args.shards)
    reference = make_reference(lm, tokens, cfg["eos_token_id"])
    reference.update({"family": args.family, "seed": args.seed, "dtype": args.dtype})
    write_json(os.path.join(args.out, "reference.json"), reference)
    if not args.no_onnx:
        export_onnx(args.out, lm)


if __name__ == "__main__":
    sys.exit(main())
