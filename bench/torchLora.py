# PyTorch side of `npm run bench:train -- --family llama`: LoRA fine-tuning of the same Llama-family model (the
# model code of scripts/makeFamilyModels.py, PEFT-style adapters as in scripts/makeTrainingReference.py) on the
# base weights and token windows the TS side wrote, with AdamW and clipping; prints ONE JSON line (with
# --interleaved, `ready` first and a line per step asked for on stdin, so the TS side can alternate the engines).
# Run with: OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/torchLora.py --spec SPEC.json --threads N
import argparse
import json
import os
import resource
import statistics
import sys
import time

ap = argparse.ArgumentParser(description=__doc__)
ap.add_argument("--spec", required=True)
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--interleaved", action="store_true",
                help="print `ready`, then run the step whose number each stdin line gives, answering with one line")
ARGS = ap.parse_args()
# Thread pools are sized before torch loads (OpenMP and Debian's OpenBLAS-pthread keep separate pools).
for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[key] = str(ARGS.threads)
sys.argv = [sys.argv[0], "--data", "-", "--threads", str(ARGS.threads)]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import torchTrain  # noqa: E402  (sets OPENBLAS_CORETYPE from the CPU flags, as the GPT-2 bench does)

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import makeFamilyModels as family  # noqa: E402
from makeTrainingReference import LoraLinear  # noqa: E402


def main():
    spec = json.load(open(ARGS.spec))
    torch.set_num_threads(ARGS.threads)
    blas = torchTrain.configure_blas(ARGS.threads)
    cfg = spec["config"]
    lm = family.CausalLM(cfg)
    flat = torch.from_file(spec["weights"], size=spec["weightCount"], dtype=torch.float32)
    state = {}
    offset = 0
    for name, shape in spec["shapes"]:
        size = 1
        for d in shape:
            size *= d
        state[name] = flat[offset : offset + size].view(*shape)
        offset += size
    with torch.no_grad():
        for name, p in lm.named_parameters():
            p.copy_(state[name])
    del flat, state
    for p in lm.parameters():
        p.requires_grad_(False)
    generator = torch.Generator().manual_seed(1)
    targets = spec["targetModules"]
    for _, module in list(lm.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in targets and isinstance(child, nn.Linear):
                lora = LoraLinear(child, spec["rank"], spec["alpha"], generator)
                nn.init.zeros_(lora.lora_B.weight)
                setattr(module, child_name, lora)
    params = [p for p in lm.parameters() if p.requires_grad]
    a = spec["adamw"]
    opt = torch.optim.AdamW(params, lr=spec["lr"], betas=(a["beta1"], a["beta2"]), eps=a["epsilon"],
                            weight_decay=a["weightDecay"])
    batch, seq = spec["batch"], spec["time"]
    tokens = torch.from_file(spec["tokens"], size=spec["steps"] * batch * (seq + 1), dtype=torch.int32).long()
    tokens = tokens.view(spec["steps"], batch, seq + 1)
    mask = torch.ones(batch, seq, dtype=torch.long)
    positions = torch.arange(seq)[None, :].expand(batch, seq)
    step_ms, cpu_ms, losses = [], [], []
    if ARGS.interleaved:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        order = (int(line) for line in sys.stdin)
    else:
        order = range(spec["steps"])
    for step in order:
        t0 = time.perf_counter()
        c0 = time.process_time()
        logits, _ = lm(tokens[step, :, :-1], mask, positions, lm.empty_cache(batch))
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[step, :, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, a["maxGradNorm"])
        opt.step()
        losses.append(loss.item())
        if step >= spec["untimed"]:
            step_ms.append((time.perf_counter() - t0) * 1000)
            cpu_ms.append((time.process_time() - c0) * 1000)
        if ARGS.interleaved:
            sys.stdout.write(json.dumps({"step": step, "loss": losses[-1]}) + "\n")
            sys.stdout.flush()
    median_ms = statistics.median(step_ms)
    out = {
        "tokensPerSecond": batch * seq / (median_ms / 1000),
        "stepMsMedian": median_ms,
        "cpuMsMedian": statistics.median(cpu_ms),
        "losses": losses,
        "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch": torch.__version__,
        "blas": blas,
    }
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
