# PyTorch's view of a fine-tuned export: loads the output folder's model.safetensors (merged weights, Hugging Face
# names) into the reference model (makeFamilyModels.py's, or makeTrainingReference.py's GPT-2), and the base's weights
# (model.safetensors, else onnx/model.onnx) with the PEFT adapter of <out>/adapter applied as PEFT computes it:
# base(x) + lora_B(lora_A(x)) · alpha / r on each target layer, and merged as PEFT merges it (fan_in_fan_out: (B·A)ᵀ).
# Run: /usr/bin/python3 scripts/checkFineTunedExport.py --out DIR [--base DIR] --tokens 1,2,3 ; prints JSON logits.
import argparse
import copy
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import makeFamilyModels as family  # noqa: E402
from makeTrainingReference import GPT2LM, Conv1D, is_gpt2  # noqa: E402


def read_safetensors(path):
    """Float32 tensors of a safetensors file (F32 only: what the engine writes and what the fixtures use)."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = f.read()
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] != "F32":
            raise SystemExit("%s: %s is %s, only F32 is read here" % (path, name, entry["dtype"]))
        start, end = entry["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[start:end], dtype="<f4").copy()).reshape(entry["shape"])
    return out


def read_onnx_initializers(path):
    """The float32 initializers of an ONNX graph (our exports keep the weights there under Hugging Face names)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(path).graph
    return {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in graph.initializer if t.data_type == 1}


def read_weights(weights_dir, names):
    """The named weights of a folder: its model.safetensors, else the initializers of its onnx/model.onnx."""
    file = os.path.join(weights_dir, "model.safetensors")
    stored = read_safetensors(file) if os.path.exists(file) else read_onnx_initializers(
        os.path.join(weights_dir, "onnx", "model.onnx")
    )
    return {n: stored[n] for n in names if n in stored}


def load_model(folder, weights_dir):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    if is_gpt2(cfg):
        cfg.setdefault("layer_norm_epsilon", 1e-5)
        lm = GPT2LM(cfg)
        state = read_weights(weights_dir, [n for n, _ in lm.named_parameters()])
        missing, unexpected = lm.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise SystemExit("weights do not match the model: missing %s, unexpected %s" % (missing, unexpected))
        return lm
    lm = family.CausalLM(cfg)
    state = read_safetensors(os.path.join(weights_dir, "model.safetensors"))
    if family.tied(cfg):
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    missing, unexpected = lm.load_state_dict(state, strict=False)
    if [m for m in missing if m != "inv_freq"] or unexpected:
        raise SystemExit("weights do not match the model: missing %s, unexpected %s" % (missing, unexpected))
    return lm


class PeftLinear(nn.Module):
    """PEFT's lora.Linear at inference (dropout off): base(x) + lora_B(lora_A(x)) * lora_alpha / r."""

    def __init__(self, base, a, b, scaling):
        super().__init__()
        self.base_layer = base
        self.a = a
        self.b = b
        self.scaling = scaling

    def forward(self, x):
        return self.base_layer(x) + (x @ self.a.T) @ self.b.T * self.scaling


def read_adapter(adapter_dir):
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        config = json.load(f)
    return config, read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))


def adapted_layers(lm, config, weights):
    """(parent, child name, layer, lora_A, lora_B) of each target layer (PEFT matches target_modules as suffixes)."""
    found = []
    for name, module in list(lm.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in config["target_modules"] and isinstance(child, (nn.Linear, Conv1D)):
                full = "base_model.model.%s.%s" % (name, child_name)
                a, b = weights[full + ".lora_A.weight"], weights[full + ".lora_B.weight"]
                found.append((module, child_name, child, a, b))
    if len(found) * 2 != len(weights):
        raise SystemExit("the adapter has %d tensors, %d layers took them" % (len(weights), len(found)))
    return found


def apply_adapter(lm, adapter_dir):
    config, weights = read_adapter(adapter_dir)
    scaling = config["lora_alpha"] / config["r"]
    for module, child_name, child, a, b in adapted_layers(lm, config, weights):
        setattr(module, child_name, PeftLinear(child, a, b, scaling))
    return lm


def merge_adapter(lm, adapter_dir):
    """PEFT's merge: W += (B·A) · alpha / r, transposed when fan_in_fan_out says the weight is stored [in, out]."""
    config, weights = read_adapter(adapter_dir)
    scaling = config["lora_alpha"] / config["r"]
    with torch.no_grad():
        for _, _, child, a, b in adapted_layers(lm, config, weights):
            delta = b @ a
            child.weight += (delta.T if config.get("fan_in_fan_out") else delta) * scaling
    return lm


def logits_of(lm, ids):
    ids = torch.tensor([ids])
    with torch.no_grad():
        if isinstance(lm, GPT2LM):
            logits = lm(ids)
        else:
            logits, _ = lm(ids, torch.ones_like(ids), torch.arange(ids.shape[1])[None, :], lm.empty_cache(1))
    return [[float(v) for v in row] for row in logits[0]]


def main():
    parser = argparse.ArgumentParser(description="PyTorch logits of a fine-tuned export and of base + PEFT adapter.")
    parser.add_argument("--out", required=True)
    parser.add_argument("--base")
    parser.add_argument("--tokens", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ids = [int(t) for t in args.tokens.split(",")]
    result = {"merged": logits_of(load_model(args.out, args.out), ids)}
    if args.base:
        adapter = os.path.join(args.out, "adapter")
        base = load_model(args.out, args.base)
        result["peft_merged"] = logits_of(merge_adapter(copy.deepcopy(base), adapter), ids)
        result["peft"] = logits_of(apply_adapter(base, adapter), ids)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
