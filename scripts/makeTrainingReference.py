# Makes a PyTorch reference for the engine's fine-tuning graphs: on a tiny random llama or qwen2 model (the model
# code of makeFamilyModels.py) or GPT-2 (GPT2LMHeadModel in plain torch below, Conv1D weights [in, out]), the logits,
# loss, every gradient and one clipped AdamW step, for full fine-tuning and for LoRA written as PEFT computes it
# (lora_B(lora_A(x)) * alpha / r beside each frozen layer, for GPT-2's Conv1D too: PEFT's fan_in_fan_out).
# Run: /usr/bin/python3 scripts/makeTrainingReference.py --family llama|qwen2|gpt2 --out DIR [--seed S]
#      [--targets q_proj,k_proj,v_proj,o_proj | c_attn,c_proj,c_fc] ; writes DIR/config.json, DIR/trainingReference.json
import argparse
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import makeFamilyModels as family  # noqa: E402

BATCH = 2
SEQ = 8
VOCAB = 96
LORA_B_STD = 0.05  # the fixture's lora_B is random (PEFT starts it at zero) so that lora_A's gradient is not zero
ADAMW = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1}


GPT2_CONFIG = {"n_positions": 2 * SEQ, "n_embd": 32, "n_layer": 2, "n_head": 4}
DEFAULT_TARGETS = {"llama": "q_proj,k_proj,v_proj,o_proj", "qwen2": "q_proj,k_proj,v_proj,o_proj", "gpt2": "c_attn"}


class Conv1D(nn.Module):
    """transformers' Conv1D, GPT-2's linear layer: its weight is stored [in, out] and y = x·W + b."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return x @ self.weight + self.bias


class GPT2Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.heads = cfg["n_head"]
        self.c_attn = Conv1D(cfg["n_embd"], 3 * cfg["n_embd"])
        self.c_proj = Conv1D(cfg["n_embd"], cfg["n_embd"])

    def forward(self, x):
        batch, seq, d = x.shape
        head_dim = d // self.heads
        q, k, v = (t.reshape(batch, seq, self.heads, head_dim).transpose(1, 2) for t in self.c_attn(x).split(d, -1))
        scores = q @ k.transpose(-2, -1) / math.sqrt(head_dim)
        causal = torch.ones(seq, seq, dtype=torch.bool).tril()
        weights = torch.softmax(scores.masked_fill(~causal, torch.finfo(scores.dtype).min), dim=-1)
        return self.c_proj((weights @ v).transpose(1, 2).reshape(batch, seq, d))


class GPT2MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.c_fc = Conv1D(cfg["n_embd"], 4 * cfg["n_embd"])
        self.c_proj = Conv1D(4 * cfg["n_embd"], cfg["n_embd"])

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))  # gelu_new


class GPT2Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg["n_embd"], eps=cfg["layer_norm_epsilon"])
        self.attn = GPT2Attention(cfg)
        self.ln_2 = nn.LayerNorm(cfg["n_embd"], eps=cfg["layer_norm_epsilon"])
        self.mlp = GPT2MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2Transformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.wte = nn.Embedding(cfg["vocab_size"], cfg["n_embd"])
        self.wpe = nn.Embedding(cfg["n_positions"], cfg["n_embd"])
        self.h = nn.ModuleList(GPT2Block(cfg) for _ in range(cfg["n_layer"]))
        self.ln_f = nn.LayerNorm(cfg["n_embd"], eps=cfg["layer_norm_epsilon"])


class GPT2LM(nn.Module):
    """GPT2LMHeadModel in Hugging Face's parameter names, without a cache: logits of input_ids, the head tied to wte."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.transformer = GPT2Transformer(cfg)

    def forward(self, input_ids):
        t = self.transformer
        x = t.wte(input_ids) + t.wpe(torch.arange(input_ids.shape[1]))
        for block in t.h:
            x = block(x)
        return t.ln_f(x) @ t.wte.weight.T


def gpt2_config(vocab_size):
    """config.json of a GPT-2 as our trainer writes it (GPT2Config's names)."""
    n = GPT2_CONFIG
    return {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": vocab_size,
        "n_positions": n["n_positions"],
        "n_ctx": n["n_positions"],
        "n_embd": n["n_embd"],
        "n_layer": n["n_layer"],
        "n_head": n["n_head"],
        "n_inner": None,
        "activation_function": "gelu_new",
        "layer_norm_epsilon": 1e-5,
        "tie_word_embeddings": True,
        "bos_token_id": 0,
        "eos_token_id": 0,
    }


def is_gpt2(cfg):
    return cfg.get("model_type") == "gpt2"


def linear_features(layer):
    """(in, out) of a linear layer: nn.Linear stores its weight [out, in], Conv1D [in, out] (PEFT's fan_in_fan_out)."""
    if isinstance(layer, Conv1D):
        return tuple(layer.weight.shape)
    return layer.in_features, layer.out_features


class LoraLinear(nn.Module):
    """PEFT's lora.Linear with dropout 0: base(x) + lora_B(lora_A(x)) * scaling, the base frozen; lora_A [r, in] and
    lora_B [out, r] whichever way the base stores its weight."""

    def __init__(self, base, rank, alpha, generator):
        super().__init__()
        in_features, out_features = linear_features(base)
        self.base_layer = base
        self.lora_A = nn.Linear(in_features, rank, bias=False)
        self.lora_B = nn.Linear(rank, out_features, bias=False)
        self.scaling = alpha / rank
        with torch.no_grad():
            bound = 1 / in_features**0.5  # kaiming_uniform_(a=sqrt(5)) on [r, in]
            self.lora_A.weight.copy_((torch.rand(self.lora_A.weight.shape, generator=generator) * 2 - 1) * bound)
            self.lora_B.weight.copy_(LORA_B_STD * torch.randn(self.lora_B.weight.shape, generator=generator))

    def forward(self, x):
        return self.base_layer(x) + self.lora_B(self.lora_A(x)) * self.scaling


def entries(named):
    return [{"name": n, "shape": list(t.shape), "data": family.floats(t.detach().reshape(-1))} for n, t in named]


def logits_of(lm, ids):
    if isinstance(lm, GPT2LM):
        return lm(ids)
    past = lm.empty_cache(ids.shape[0])
    mask = torch.ones_like(ids)
    positions = torch.arange(ids.shape[1])[None, :].expand_as(ids)
    logits, _ = lm(ids, mask, positions, past)
    return logits


def loss_of(lm, ids, targets):
    logits = logits_of(lm, ids)
    loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    return logits, loss


def one_step(lm, named, ids, targets, max_grad_norm):
    """Logits, loss, gradients, then clip_grad_norm_ and one torch.optim.AdamW step (decay on matrices only)."""
    params = [p for _, p in named]
    logits, loss = loss_of(lm, ids, targets)
    loss.backward()
    grads = [(n, p.grad.clone()) for n, p in named]
    norm = float(torch.nn.utils.clip_grad_norm_(params, max_grad_norm))
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": ADAMW["weight_decay"]},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(
        groups, lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]), eps=ADAMW["eps"]
    )
    optimizer.step()
    return {
        "logits": {"shape": list(logits.shape), "data": family.floats(logits.detach().reshape(-1))},
        "loss": float(loss),
        "grads": entries(grads),
        "grad_norm": norm,
        "adamw": {**ADAMW, "max_grad_norm": max_grad_norm},
        "updated": entries(named),
    }


def gradient_norm(lm, named, ids, targets):
    _, loss = loss_of(lm, ids, targets)
    grads = torch.autograd.grad(loss, [p for _, p in named])
    return float(torch.sqrt(sum((g * g).sum() for g in grads)))


def make_model(cfg, seed):
    lm = GPT2LM(cfg) if is_gpt2(cfg) else family.CausalLM(cfg)
    family.init_weights(lm, seed, "float32")
    return lm


def main():
    parser = argparse.ArgumentParser(description="PyTorch reference for the engine's fine-tuning graphs.")
    parser.add_argument("--family", required=True, choices=sorted(DEFAULT_TARGETS))
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--targets", help="default: PEFT's modules for gpt2 (c_attn); q_proj,k_proj,v_proj,o_proj")
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--alpha", type=float, default=8.0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)

    if args.family == "gpt2":
        cfg = gpt2_config(VOCAB)
    else:
        cfg = family.family_config(args.family, VOCAB, "float32", None, None, 0, 0)
    os.makedirs(args.out, exist_ok=True)
    family.write_json(os.path.join(args.out, "config.json"), cfg)
    generator = torch.Generator().manual_seed(args.seed + 1)
    ids = torch.randint(0, VOCAB, (BATCH, SEQ), generator=generator)
    targets = torch.randint(0, VOCAB, (BATCH, SEQ), generator=generator)

    # Full fine-tuning: every parameter (the tied head appears once, as the token embedding).
    lm = make_model(cfg, args.seed)
    base = [(n, p.detach().clone()) for n, p in lm.named_parameters()]
    named = list(lm.named_parameters())
    # Clipping at half the gradient's norm, so that the step always exercises it.
    full = one_step(lm, named, ids, targets, round(gradient_norm(lm, named, ids, targets) / 2, 4))

    # LoRA: the same base, frozen, with adapters on the target layers.
    lm = make_model(cfg, args.seed)
    for p in lm.parameters():
        p.requires_grad_(False)
    targets_list = (args.targets or DEFAULT_TARGETS[args.family]).split(",")
    adapted = []
    # PEFT matches target_modules as suffixes of the layers' names: GPT-2's c_proj is attn.c_proj and mlp.c_proj.
    for name, module in list(lm.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in targets_list and isinstance(child, (nn.Linear, Conv1D)):
                setattr(module, child_name, LoraLinear(child, args.rank, args.alpha, generator))
                adapted.append(name + "." + child_name)
    named = []
    for module_name in adapted:
        layer = lm.get_submodule(module_name)
        named.append(("base_model.model.%s.lora_A.weight" % module_name, layer.lora_A.weight))
        named.append(("base_model.model.%s.lora_B.weight" % module_name, layer.lora_B.weight))
    adapter = entries(named)
    lora = one_step(lm, named, ids, targets, round(gradient_norm(lm, named, ids, targets) / 2, 4))
    frozen_after = {n.replace(".base_layer.", "."): p for n, p in lm.named_parameters() if not p.requires_grad}
    lora["settings"] = {"r": args.rank, "lora_alpha": args.alpha, "lora_dropout": 0.0, "target_modules": targets_list}
    lora["adapter"] = adapter
    lora["base_unchanged"] = all(torch.equal(frozen_after[n], t) for n, t in base)

    reference = {
        "family": args.family,
        "batch": BATCH,
        "seq": SEQ,
        "input_ids": ids.tolist(),
        "targets": targets.tolist(),
        "params": entries(base),
        "full": full,
        "lora": lora,
    }
    family.write_json(os.path.join(args.out, "trainingReference.json"), reference)


if __name__ == "__main__":
    main()
