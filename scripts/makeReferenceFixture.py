# Generates test/fixtures/gptReference.json: a tiny GPT-2 forward/backward/AdamW reference computed
# with PyTorch, which the TypeScript engine tests compare against (logits, loss, gradients, two steps).
# Run with: OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 scripts/makeReferenceFixture.py
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

CONFIG = {"vocab_size": 29, "n_positions": 8, "n_embd": 16, "n_head": 2, "n_layer": 2, "batch": 2, "seq": 8}
ADAMW = {"lr": 0.01, "beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.1, "max_grad_norm": 0.5}
INIT_STD = 0.1
LN_EPS = 1e-5

OUT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "gptReference.json")


def param_specs(cfg):
    """(name, shape, kind) in the canonical order; kind is 'w' (plain), 'lnw' or 'lnb'."""
    V, P, d, L = cfg["vocab_size"], cfg["n_positions"], cfg["n_embd"], cfg["n_layer"]
    specs = [("transformer.wte.weight", [V, d], "w"), ("transformer.wpe.weight", [P, d], "w")]
    for i in range(L):
        p = "transformer.h.%d." % i
        specs += [
            (p + "ln_1.weight", [d], "lnw"),
            (p + "ln_1.bias", [d], "lnb"),
            (p + "attn.c_attn.weight", [d, 3 * d], "w"),
            (p + "attn.c_attn.bias", [3 * d], "w"),
            (p + "attn.c_proj.weight", [d, d], "w"),
            (p + "attn.c_proj.bias", [d], "w"),
            (p + "ln_2.weight", [d], "lnw"),
            (p + "ln_2.bias", [d], "lnb"),
            (p + "mlp.c_fc.weight", [d, 4 * d], "w"),
            (p + "mlp.c_fc.bias", [4 * d], "w"),
            (p + "mlp.c_proj.weight", [4 * d, d], "w"),
            (p + "mlp.c_proj.bias", [d], "w"),
        ]
    specs += [("transformer.ln_f.weight", [d], "lnw"), ("transformer.ln_f.bias", [d], "lnb")]
    return specs


def forward(params, ids, cfg):
    """params: dict name -> tensor. ids: [B, T] int64. Returns logits [B, T, V]."""
    B, T = ids.shape
    d, H, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    hd = d // H
    pos = torch.arange(T)
    x = params["transformer.wte.weight"][ids] + params["transformer.wpe.weight"][pos]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(L):
        p = "transformer.h.%d." % i
        h = F.layer_norm(x, (d,), params[p + "ln_1.weight"], params[p + "ln_1.bias"], LN_EPS)
        qkv = h @ params[p + "attn.c_attn.weight"] + params[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(d, dim=-1)
        q = q.reshape(B, T, H, hd).transpose(1, 2)
        k = k.reshape(B, T, H, hd).transpose(1, 2)
        v = v.reshape(B, T, H, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        att = att.masked_fill(~causal, float("-inf"))
        att = torch.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, d)
        x = x + (y @ params[p + "attn.c_proj.weight"] + params[p + "attn.c_proj.bias"])
        h = F.layer_norm(x, (d,), params[p + "ln_2.weight"], params[p + "ln_2.bias"], LN_EPS)
        h = F.gelu(h @ params[p + "mlp.c_fc.weight"] + params[p + "mlp.c_fc.bias"], approximate="tanh")
        x = x + (h @ params[p + "mlp.c_proj.weight"] + params[p + "mlp.c_proj.bias"])
    x = F.layer_norm(x, (d,), params["transformer.ln_f.weight"], params["transformer.ln_f.bias"], LN_EPS)
    return x @ params["transformer.wte.weight"].t()


def loss_fn(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def f9(v):
    """Round to 9 significant digits (enough to round-trip float32 exactly)."""
    return float("%.9g" % v)


def tensor_entry(name, t):
    return {"name": name, "shape": list(t.shape), "data": [f9(v) for v in t.detach().reshape(-1).tolist()]}


def finite_difference_check(specs, params, ids, targets, cfg, n_checks=3, seed=1234):
    """Compare float32 autograd gradients with float64 central differences for random entries."""
    gen = torch.Generator().manual_seed(seed)
    p64 = {n: params[n].detach().double().clone() for n, _, _ in specs}

    def loss64():
        with torch.no_grad():
            return loss_fn(forward(p64, ids, cfg), targets).item()

    h = 1e-6
    worst = 0.0
    for _ in range(n_checks):
        pi = int(torch.randint(len(specs), (1,), generator=gen))
        name = specs[pi][0]
        flat = p64[name].view(-1)
        j = int(torch.randint(flat.numel(), (1,), generator=gen))
        orig = flat[j].item()
        flat[j] = orig + h
        lp = loss64()
        flat[j] = orig - h
        lm = loss64()
        flat[j] = orig
        fd = (lp - lm) / (2 * h)
        ag = params[name].grad.reshape(-1)[j].item()
        err = abs(fd - ag) / max(1e-4, abs(fd) + abs(ag))
        worst = max(worst, err)
        print("  fd check %-34s [%4d]: autograd % .8e  fd64 % .8e  relerr %.2e" % (name, j, ag, fd, err))
        if err > 1e-3:
            raise AssertionError("finite-difference mismatch for %s[%d]" % (name, j))
    return worst


def main():
    torch.set_default_dtype(torch.float32)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = CONFIG
    V, B, T = cfg["vocab_size"], cfg["batch"], cfg["seq"]

    specs = param_specs(cfg)
    params = {}
    for name, shape, kind in specs:
        t = torch.randn(*shape) * INIT_STD
        if kind == "lnw":
            t = t + 1.0
        params[name] = torch.nn.Parameter(t)
    ordered = [params[n] for n, _, _ in specs]
    initial = [(n, params[n].detach().clone()) for n, _, _ in specs]

    ids = torch.randint(0, V, (B, T))
    targets = torch.randint(0, V, (B, T))

    decay = [params[n] for n, _, _ in specs if params[n].dim() >= 2]
    no_decay = [params[n] for n, _, _ in specs if params[n].dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": ADAMW["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]), eps=ADAMW["eps"],
    )

    # Step 1: forward, backward, record raw grads, clip, step.
    logits = forward(params, ids, cfg)
    loss = loss_fn(logits, targets)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    grads = [(n, params[n].grad.detach().clone()) for n, _, _ in specs]
    manual_norm = math.sqrt(sum(float((g.double() ** 2).sum()) for _, g in grads))
    print("loss %.6f  unclipped grad norm %.6f" % (loss.item(), manual_norm))

    print("finite-difference self-check (float64):")
    worst = finite_difference_check(specs, params, ids, targets, cfg)
    print("  worst relative error %.2e" % worst)

    grad_norm = float(torch.nn.utils.clip_grad_norm_(ordered, ADAMW["max_grad_norm"]))
    assert abs(grad_norm - manual_norm) < 1e-4 * manual_norm, (grad_norm, manual_norm)
    assert grad_norm > ADAMW["max_grad_norm"], "clipping must be active: norm %.4f" % grad_norm
    opt.step()
    updated = [(n, params[n].detach().clone()) for n, _, _ in specs]

    # Step 2 on the same batch (checks bias correction at t=2).
    opt.zero_grad(set_to_none=True)
    loss2 = loss_fn(forward(params, ids, cfg), targets)
    loss2.backward()
    norm2 = float(torch.nn.utils.clip_grad_norm_(ordered, ADAMW["max_grad_norm"]))
    opt.step()
    updated2 = [(n, params[n].detach().clone()) for n, _, _ in specs]
    print("loss_step2 %.6f  (grad norm at step 2 %.6f)" % (loss2.item(), norm2))
    for group in opt.param_groups:
        for p in group["params"]:
            assert int(opt.state[p]["step"]) == 2

    out = {
        "config": cfg,
        "input_ids": ids.tolist(),
        "targets": targets.tolist(),
        "params": [tensor_entry(n, t) for n, t in initial],
        "logits": {"shape": list(logits.shape), "data": [f9(v) for v in logits.detach().reshape(-1).tolist()]},
        "loss": f9(loss.item()),
        "grads": [tensor_entry(n, g) for n, g in grads],
        "grad_norm": f9(grad_norm),
        "adamw": ADAMW,
        "updated": [tensor_entry(n, t) for n, t in updated],
        "updated_step2": [tensor_entry(n, t) for n, t in updated2],
        "loss_step2": f9(loss2.item()),
    }

    # Compact JSON, one tensor entry per line so diffs stay readable.
    def dumps(v):
        return json.dumps(v, separators=(",", ":"))

    lines = ["{"]
    keys = list(out.keys())
    for ki, k in enumerate(keys):
        v = out[k]
        tail = "," if ki < len(keys) - 1 else ""
        if isinstance(v, list) and v and isinstance(v[0], dict):
            lines.append('"%s":[' % k)
            for ei, e in enumerate(v):
                lines.append(dumps(e) + ("," if ei < len(v) - 1 else ""))
            lines.append("]" + tail)
        else:
            lines.append('"%s":%s%s' % (k, dumps(v), tail))
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)  # sanity: valid JSON

    path = os.path.normpath(OUT_PATH)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)
    print("wrote %s (%d bytes)" % (path, len(text.encode())))


if __name__ == "__main__":
    sys.exit(main())
