# PyTorch side of `npm run bench:train`: trains the same GPT-2 model as the TypeScript engine on the
# token windows the TS side wrote to --data, and prints ONE JSON line with throughput and losses.
# Run with: OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/torchTrain.py --data FILE --threads N ...
import argparse
import ctypes
import json
import math
import os
import statistics
import struct
import sys
import time


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--embd", type=int, default=128)
    ap.add_argument("--positions", type=int, default=0, help="n_positions (default: seq from the data header)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--min-lr-ratio", type=float, default=0.1)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--untimed", type=int, default=3, help="leading steps trained on but excluded from timing")
    ap.add_argument("--blas-coretype", default="auto",
                    help="OPENBLAS_CORETYPE to force: 'auto' (from CPU flags, only if the env var is unset), "
                         "'none' (leave OpenBLAS detection alone) or a core name such as SkylakeX/Haswell")
    return ap.parse_args()


ARGS = parse_args()

# Thread pools must be sized before torch loads. torch.set_num_threads only sizes the OpenMP pool;
# this Debian build calls a generic libblas.so.3 (OpenBLAS-pthread here) that keeps its own pool,
# sized to all cores unless told otherwise, so it is pinned too.
_T = str(max(1, ARGS.threads))
os.environ["OMP_NUM_THREADS"] = _T
os.environ["OPENBLAS_NUM_THREADS"] = _T
os.environ["MKL_NUM_THREADS"] = _T
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _auto_coretype():
    """OpenBLAS 0.3.21 does not know newer Xeons (e.g. family 6 model 207) and falls back to the SSE3
    'Prescott' kernels, ~5x slower. Pick a kernel set from the CPU flags instead."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((ln.split(":", 1)[1].split() for ln in fh if ln.startswith("flags")), [])
    except OSError:
        return None
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"} <= set(flags):
        return "SkylakeX"
    if {"avx2", "fma"} <= set(flags):
        return "Haswell"
    return None


if ARGS.blas_coretype == "auto":
    if "OPENBLAS_CORETYPE" not in os.environ and _auto_coretype():
        os.environ["OPENBLAS_CORETYPE"] = _auto_coretype()
elif ARGS.blas_coretype != "none":
    os.environ["OPENBLAS_CORETYPE"] = ARGS.blas_coretype

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

LN_EPS = 1e-5


def configure_blas(threads):
    """Pin the BLAS thread count (if it is OpenBLAS) and return a short description of it."""
    parts = []
    cfg = torch.__config__.show()
    for key in ("BLAS_INFO", "LAPACK_INFO"):
        i = cfg.find(key + "=")
        if i >= 0:
            parts.append(cfg[i:].split(",", 1)[0])
    libs = set()
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                path = line.strip().split(" ")[-1]
                base = os.path.basename(path)
                if base.startswith(("libblas", "libopenblas", "libmkl", "libblis")):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    parts += sorted(libs)
    for name in ("libopenblas.so.0", "libopenblas.so"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            lib.openblas_set_num_threads(ctypes.c_int(threads))
            lib.openblas_get_num_threads.restype = ctypes.c_int
            lib.openblas_get_config.restype = ctypes.c_char_p
            lib.openblas_get_corename.restype = ctypes.c_char_p
            parts.append("%s threads=%d core=%s" % (lib.openblas_get_config().decode(), lib.openblas_get_num_threads(),
                                                    lib.openblas_get_corename().decode()))
        except AttributeError:
            pass
        break
    return "; ".join(parts)


def read_data(path):
    with open(path, "rb") as fh:
        raw = fh.read()
    steps, batch, seq, vocab, val_batches, seed = struct.unpack("<6i", raw[:24])
    tokens = np.frombuffer(raw, dtype="<i4", offset=24)
    n_train = steps * batch * (seq + 1)
    n_val = val_batches * batch * (seq + 1)
    if tokens.size != n_train + n_val:
        raise SystemExit("data file has %d tokens, header implies %d" % (tokens.size, n_train + n_val))
    all_tok = torch.from_numpy(tokens.astype(np.int64))
    train = all_tok[:n_train].reshape(steps, batch, seq + 1)
    val = all_tok[n_train:].reshape(val_batches, batch, seq + 1)
    if int(all_tok.min()) < 0 or int(all_tok.max()) >= vocab:
        raise SystemExit("token id out of range [0, %d)" % vocab)
    return dict(steps=steps, batch=batch, seq=seq, vocab=vocab, val_batches=val_batches, seed=seed), train, val


class GPT(torch.nn.Module):
    """GPT-2 with Hugging Face parameter names/layouts (Conv1D weights [in, out]) and a tied head."""

    def __init__(self, vocab, positions, d, heads, layers):
        super().__init__()
        self.d, self.heads, self.layers = d, heads, layers
        self.names = []
        P = torch.nn.Parameter

        def add(name, shape, std=None, fill=None):
            t = torch.empty(*shape)
            if std is not None:
                torch.nn.init.normal_(t, 0.0, std)
            else:
                t.fill_(fill)
            self.register_parameter(name.replace(".", "__"), P(t))
            self.names.append(name)

        proj_std = 0.02 / math.sqrt(2 * layers)
        add("transformer.wte.weight", [vocab, d], std=0.02)
        add("transformer.wpe.weight", [positions, d], std=0.02)
        for i in range(layers):
            p = "transformer.h.%d." % i
            add(p + "ln_1.weight", [d], fill=1.0)
            add(p + "ln_1.bias", [d], fill=0.0)
            add(p + "attn.c_attn.weight", [d, 3 * d], std=0.02)
            add(p + "attn.c_attn.bias", [3 * d], fill=0.0)
            add(p + "attn.c_proj.weight", [d, d], std=proj_std)
            add(p + "attn.c_proj.bias", [d], fill=0.0)
            add(p + "ln_2.weight", [d], fill=1.0)
            add(p + "ln_2.bias", [d], fill=0.0)
            add(p + "mlp.c_fc.weight", [d, 4 * d], std=0.02)
            add(p + "mlp.c_fc.bias", [4 * d], fill=0.0)
            add(p + "mlp.c_proj.weight", [4 * d, d], std=proj_std)
            add(p + "mlp.c_proj.bias", [d], fill=0.0)
        add("transformer.ln_f.weight", [d], fill=1.0)
        add("transformer.ln_f.bias", [d], fill=0.0)

    def p(self, name):
        return getattr(self, name.replace(".", "__"))

    def ordered(self):
        return [self.p(n) for n in self.names]

    def forward(self, ids):
        B, T = ids.shape
        d, H = self.d, self.heads
        hd = d // H
        wte = self.p("transformer.wte.weight")
        x = wte[ids] + self.p("transformer.wpe.weight")[:T]
        mask = torch.full((T, T), float("-inf")).triu(1)
        scale = 1.0 / math.sqrt(hd)
        for i in range(self.layers):
            pre = "transformer.h.%d." % i
            h = F.layer_norm(x, (d,), self.p(pre + "ln_1.weight"), self.p(pre + "ln_1.bias"), LN_EPS)
            qkv = torch.addmm(self.p(pre + "attn.c_attn.bias"), h.reshape(B * T, d),
                              self.p(pre + "attn.c_attn.weight")).view(B, T, 3, H, hd)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, H, T, hd]
            att = torch.softmax(torch.baddbmm(mask.expand(B * H, T, T), q.reshape(B * H, T, hd),
                                              k.reshape(B * H, T, hd).transpose(1, 2), alpha=scale), dim=-1)
            y = torch.bmm(att, v.reshape(B * H, T, hd)).view(B, H, T, hd).transpose(1, 2).reshape(B * T, d)
            x = x + torch.addmm(self.p(pre + "attn.c_proj.bias"), y, self.p(pre + "attn.c_proj.weight")).view(B, T, d)
            h = F.layer_norm(x, (d,), self.p(pre + "ln_2.weight"), self.p(pre + "ln_2.bias"), LN_EPS)
            h = F.gelu(torch.addmm(self.p(pre + "mlp.c_fc.bias"), h.reshape(B * T, d), self.p(pre + "mlp.c_fc.weight")),
                       approximate="tanh")
            x = x + torch.addmm(self.p(pre + "mlp.c_proj.bias"), h, self.p(pre + "mlp.c_proj.weight")).view(B, T, d)
        x = F.layer_norm(x, (d,), self.p("transformer.ln_f.weight"), self.p("transformer.ln_f.bias"), LN_EPS)
        return x @ wte.t()


def lr_at(step, lr, warmup, total, min_ratio):
    """Same schedule as server/src/engine/optimizer.ts learningRateAt."""
    if step < warmup:
        return lr * (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    floor = lr * min_ratio
    return floor + 0.5 * (lr - floor) * (1 + math.cos(math.pi * progress))


def main():
    a = ARGS
    threads = max(1, a.threads)
    torch.set_num_threads(threads)
    blas = configure_blas(threads)
    hdr, train, val = read_data(a.data)
    torch.manual_seed(hdr["seed"])
    steps, batch, seq = hdr["steps"], hdr["batch"], hdr["seq"]
    positions = a.positions or seq
    if a.embd % a.heads:
        raise SystemExit("--embd must be divisible by --heads")

    model = GPT(hdr["vocab"], positions, a.embd, a.heads, a.layers)
    params = model.ordered()
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=a.lr, betas=(0.9, 0.95), eps=1e-8, foreach=True,
    )

    step_ms = []
    timed_seconds = 0.0
    last_loss = float("nan")
    model.train()
    for step in range(steps):
        t0 = time.perf_counter()
        lr = lr_at(step, a.lr, a.warmup, steps, a.min_lr_ratio)
        for g in opt.param_groups:
            g["lr"] = lr
        row = train[step]
        logits = model(row[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), row[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, a.clip)
        opt.step()
        last_loss = loss.item()
        dt = time.perf_counter() - t0
        if step >= a.untimed:
            step_ms.append(dt * 1000.0)
            timed_seconds += dt

    model.eval()
    with torch.no_grad():
        vl = []
        for row in val:
            logits = model(row[:, :-1])
            vl.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), row[:, 1:].reshape(-1)).item())
    timed_steps = len(step_ms)
    median_ms = statistics.median(step_ms) if step_ms else None
    out = {
        # From the median step, as bench/train.ts computes its own figure; the mean-based rate is also given.
        "tokensPerSecond": (batch * seq / (median_ms / 1000.0)) if median_ms else None,
        "tokensPerSecondMean": (timed_steps * batch * seq / timed_seconds) if timed_seconds > 0 else None,
        "stepMsMedian": median_ms,
        "valLoss": (sum(vl) / len(vl)) if vl else None,
        "finalTrainLoss": last_loss,
        "steps": steps,
        "timedSteps": timed_steps,
        "threads": threads,
        "torch": torch.__version__,
        "blas": blas,
    }
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
