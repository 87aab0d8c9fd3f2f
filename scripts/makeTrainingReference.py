# Makes a PyTorch reference for the engine's Llama-family training graphs: on a tiny random llama or qwen2 model
# (the model code of makeFamilyModels.py), the logits, loss, every gradient and one clipped AdamW step, for full
# fine-tuning and for LoRA written as PEFT computes it (lora_B(lora_A(x)) * alpha / r beside each frozen layer).
# Run: /usr/bin/python3 scripts/makeTrainingReference.py --family llama|qwen2 --out DIR [--seed S]
#      [--targets q_proj,k_proj,v_proj,o_proj] ; writes DIR/config.json and DIR/trainingReference.json
import argparse
import json
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import makeFamilyModels as family  # noqa: E402

BATCH = 2
SEQ = 8
VOCAB = 96
LORA_B_STD = 0.05  # the fixture's lora_B is random (PEFT starts it at zero) so that lora_A's gradient is not zero
ADAMW = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1}


class LoraLinear(nn.Module):
    """PEFT's lora.Linear with dropout 0: base(x) + lora_B(lora_A(x)) * scaling, the base frozen."""

    def __init__(self, base, rank, alpha, generator):
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.Linear(base.in_features, rank, bias=False)
        self.lora_B = nn.Linear(rank, base.out_features, bias=False)
        self.scaling = alpha / rank
        with torch.no_grad():
            bound = 1 / base.in_features**0.5  # kaiming_uniform_(a=sqrt(5)) on [r, in]
            self.lora_A.weight.copy_((torch.rand(self.lora_A.weight.shape, generator=generator) * 2 - 1) * bound)
            self.lora_B.weight.copy_(LORA_B_STD * torch.randn(self.lora_B.weight.shape, generator=generator))

    def forward(self, x):
        return self.base_layer(x) + self.lora_B(self.lora_A(x)) * self.scaling


def entries(named):
    return [{"name": n, "shape": list(t.shape), "data": family.floats(t.detach().reshape(-1))} for n, t in named]


def loss_of(lm, ids, targets):
    past = lm.empty_cache(ids.shape[0])
    mask = torch.ones_like(ids)
    positions = torch.arange(ids.shape[1])[None, :].expand_as(ids)
    logits, _ = lm(ids, mask, positions, past)
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
    lm = family.CausalLM(cfg)
    family.init_weights(lm, seed, "float32")
    return lm


def main():
    parser = argparse.ArgumentParser(description="PyTorch reference for the engine's Llama-family training graphs.")
    parser.add_argument("--family", required=True, choices=["llama", "qwen2"])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj")
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--alpha", type=float, default=8.0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(1)

    cfg = family.family_config(args.family, VOCAB, "float32", None, None, 0, 0)
    os.makedirs(args.out, exist_ok=True)
    family.write_json(os.path.join(args.out, "config.json"), cfg)
    generator = torch.Generator().manual_seed(args.seed + 1)
    ids = torch.randint(0, VOCAB, (BATCH, SEQ), generator=generator)
    targets = torch.randint(0, VOCAB, (BATCH, SEQ), generator=generator)

    # Full fine-tuning: every parameter (the tied head appears once, as model.embed_tokens.weight).
    lm = make_model(cfg, args.seed)
    base = [(n, p.detach().clone()) for n, p in lm.named_parameters()]
    named = list(lm.named_parameters())
    # Clipping at half the gradient's norm, so that the step always exercises it.
    full = one_step(lm, named, ids, targets, round(gradient_norm(lm, named, ids, targets) / 2, 4))

    # LoRA: the same base, frozen, with adapters on the target layers.
    lm = make_model(cfg, args.seed)
    for p in lm.parameters():
        p.requires_grad_(False)
    targets_list = args.targets.split(",")
    adapted = []
    for name, module in list(lm.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in targets_list and isinstance(child, nn.Linear):
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
