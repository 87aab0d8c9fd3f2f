# The PyTorch reference of the engine's classifier encoder: Hugging Face BertForSequenceClassification's math
# (post-LayerNorm blocks, eps 1e-12, gelu_new, additive attention mask, tanh pooler over the first token) written
# out with the same parameter names. Reads {config, params, input_ids, attention_mask, labels, class_weights?} as JSON on stdin and
# prints {logits, loss, grads} as JSON. Run with Debian's /usr/bin/python3 (torch 1.13).
import json
import math
import sys

import torch

spec = json.load(sys.stdin)
c = spec["config"]
params = {
    p["name"]: torch.tensor(p["data"], dtype=torch.float64).reshape(p["shape"]).requires_grad_(True)
    for p in spec["params"]
}
ids = torch.tensor(spec["input_ids"], dtype=torch.long)
mask = torch.tensor(spec["attention_mask"], dtype=torch.float64)
labels = torch.tensor(spec["labels"], dtype=torch.long)
batch, time = ids.shape
d, heads = c["hidden_size"], c["num_attention_heads"]
hs = d // heads


def linear(x, name):
    return x @ params[name + ".weight"].T + params[name + ".bias"]


def layer_norm(x, name):
    return torch.nn.functional.layer_norm(x, (d,), params[name + ".weight"], params[name + ".bias"], 1e-12)


def gelu_new(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


e = "bert.embeddings."
x = params[e + "word_embeddings.weight"][ids]
x = x + params[e + "position_embeddings.weight"][torch.arange(time)]
x = x + params[e + "token_type_embeddings.weight"][torch.zeros_like(ids)]
x = layer_norm(x, e + "LayerNorm")
bias = (1 - mask)[:, None, None, :] * -10000.0
for i in range(c["num_hidden_layers"]):
    p = f"bert.encoder.layer.{i}."
    split = lambda t: t.view(batch, time, heads, hs).transpose(1, 2)
    q, k, v = (split(linear(x, p + "attention.self." + n)) for n in ("query", "key", "value"))
    scores = q @ k.transpose(-1, -2) / math.sqrt(hs) + bias
    context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, time, d)
    x = layer_norm(linear(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
    h = gelu_new(linear(x, p + "intermediate.dense"))
    x = layer_norm(linear(h, p + "output.dense") + x, p + "output.LayerNorm")
pooled = torch.tanh(linear(x[:, 0], "bert.pooler.dense"))
logits = linear(pooled, "classifier")
weight = spec.get("class_weights")
loss = torch.nn.functional.cross_entropy(
    logits, labels, weight=None if weight is None else torch.tensor(weight, dtype=torch.float64)
)
loss.backward()
json.dump(
    {
        "logits": logits.detach().flatten().tolist(),
        "loss": loss.item(),
        "grads": {name: t.grad.flatten().tolist() for name, t in params.items()},
    },
    sys.stdout,
)
