"""Test helper: a tiny PhaseGPT checkpoint in the original's layout, plus reference logits.

    python3 tests/phasegpt/make_checkpoint.py OUTDIR '{"n_layers": 3, ...}' PHASE_LAYERS_JSON N SEED

Writes OUTDIR/ckpt.pt (save_checkpoint's dict) and OUTDIR/reference.json ({"ids", "logits"}) from the
spec-written torch model in tools/phasegpt_torch.py, in eval mode (no dropout).
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
from phasegpt_torch import GPT2Model, save_checkpoint  # noqa: E402


def main():
    out, cfg, layers, n, seed = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(
        sys.argv[4]), int(sys.argv[5])
    torch.manual_seed(seed)
    model = GPT2Model(cfg, use_phase_attention=bool(layers), phase_layer_idx=layers or None,
                      num_oscillators=n, coupling_strength=1.0)
    with torch.no_grad():
        # Move K and the biases off their inits so the test also checks their mapping.
        for name, p in model.named_parameters():
            if name.endswith("coupling_matrix"):
                p.copy_(torch.tensor([0.7, -1.3][: p.shape[0]]).view(-1, 1, 1))
            elif name.endswith("bias"):
                p.normal_(0, 0.05)
    model.eval()
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, cfg["vocab_size"], (2, min(cfg["max_seq_len"], 11)), generator=g)
    with torch.no_grad():
        logits = model(ids)
    os.makedirs(out, exist_ok=True)
    save_checkpoint(model, os.path.join(out, "ckpt.pt"))
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({"ids": ids.tolist(), "logits": logits.reshape(-1).tolist()}, f)


if __name__ == "__main__":
    main()
