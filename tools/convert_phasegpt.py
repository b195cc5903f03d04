#!/usr/bin/env python3
"""Convert an original PhaseGPT checkpoint (a PyTorch pickle written by its save_checkpoint or by
src/train.py) into a folder that Coherence Lab's loadModel opens as the faithful model:

    python3 tools/convert_phasegpt.py CKPT OUTDIR [--steps 10]

OUTDIR gets config.json (model_type "phasegpt") and model.safetensors holding the original's tensors
under normalised original names (token_embedding.weight, blocks.{l}.attention.to_phase.weight, ...,
blocks.{l}.ffn.fc1.weight / fc2.weight, ln_f.weight). Needs torch; writes safetensors by hand (json +
struct) when the safetensors package is missing.
"""
import argparse
import json
import os
import struct
import sys

import torch

SKIP = ("causal_mask", "last_R_param", "lm_head.weight")


def model_section(ckpt):
    """The GPT2Config fields: the flat dict of save_checkpoint, or src/train.py's nested YAML dict."""
    cfg = ckpt.get("config") or {}
    if isinstance(cfg.get("model"), dict):
        cfg = cfg["model"]
    return cfg


def phase_layers(ckpt, cfg, n_layers):
    use = ckpt.get("use_phase_attention", cfg.get("use_phase_attention", False))
    idx = ckpt.get("phase_layer_idx", cfg.get("phase_layer_idx"))
    if not use or idx is None:
        return []
    idx = [idx] if isinstance(idx, int) else [int(i) for i in idx]
    for i in idx:
        if not 0 <= i < n_layers:
            sys.exit(f"convert_phasegpt: phase layer {i} is out of range: use 0..{n_layers - 1}")
    return sorted(set(idx))


def normalise(state, n_layers, d):
    """Original names -> normalised names; the FFN's two Linears are found by shape, whatever their
    Sequential indices or names, so minor layout differences between commits still convert."""
    out = {}
    for name, t in state.items():
        if any(name.endswith(s) for s in SKIP):
            continue
        out[name] = t
    for l in range(n_layers):
        pre = f"blocks.{l}."
        ffn = [n for n in list(out) if n.startswith(pre) and ".attention." not in n
               and ".ln1." not in n and ".ln2." not in n]
        weights = [n for n in ffn if n.endswith(".weight") and out[n].dim() == 2]
        up = [n for n in weights if out[n].shape[1] == d and out[n].shape[0] != d]
        down = [n for n in weights if out[n].shape[0] == d and out[n].shape[1] != d]
        if len(up) != 1 or len(down) != 1:
            sys.exit(f"convert_phasegpt: cannot find block {l}'s feed-forward Linears among {ffn}")
        for src, dst in ((up[0], "fc1"), (down[0], "fc2")):
            base = src[: -len(".weight")]
            out[f"{pre}ffn.{dst}.weight"] = out.pop(src)
            out[f"{pre}ffn.{dst}.bias"] = out.pop(base + ".bias")
    for n in list(out):
        if "position" in n and n.endswith("weight") and n != "position_embedding.weight":
            out["position_embedding.weight"] = out.pop(n)
    return out


def write_safetensors(path, tensors):
    try:
        from safetensors.torch import save_file  # type: ignore
        save_file({k: v.contiguous() for k, v in tensors.items()}, path)
        return
    except ImportError:
        pass
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = tensors[name].detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)  # keep the data 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ckpt")
    ap.add_argument("outdir")
    ap.add_argument("--steps", type=int, default=10, help="phase_iterations (the original's default 10)")
    a = ap.parse_args()
    if a.steps <= 0:
        sys.exit(f"convert_phasegpt: --steps must be a positive integer, got {a.steps}")
    try:
        # The original's save_checkpoint pickles its config, which torch >= 2.6 refuses unless
        # weights_only=False (torch 1.13 added the flag). Unpickling runs code: convert only files you trust.
        ckpt = torch.load(a.ckpt, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same message
        sys.exit(f"convert_phasegpt: cannot read {a.ckpt} as a PyTorch checkpoint: {e}")
    state = ckpt.get("model_state_dict", ckpt)
    cfg = model_section(ckpt)
    emb = state["token_embedding.weight"]
    vocab, d = int(emb.shape[0]), int(emb.shape[1])
    n_layers = int(cfg.get("n_layers") or 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks.")))
    n_heads = int(cfg.get("n_heads", 12))
    pos = [v for k, v in state.items() if "position" in k and k.endswith("weight")]
    max_seq = int(pos[0].shape[0]) if pos else int(cfg.get("max_seq_len", 512))
    layers = phase_layers(ckpt, cfg, n_layers)
    tensors = normalise(state, n_layers, d)
    osc = None
    for l in layers:
        key = f"blocks.{l}.attention.natural_freq"
        if key not in tensors:
            sys.exit(f"convert_phasegpt: block {l} is listed as a phase layer but has no {key}")
        osc = int(tensors[key].shape[1])
        tensors[f"blocks.{l}.attention.coupling_matrix"] = tensors[f"blocks.{l}.attention.coupling_matrix"].reshape(-1)
    d_ff = int(tensors["blocks.0.ffn.fc1.weight"].shape[0])
    config = {
        "model_type": "phasegpt",
        "vocab_size": vocab,
        "d_model": d,
        "n_layers": n_layers,
        "n_heads": n_heads,
        "d_ff": d_ff,
        "max_seq_len": max_seq,
        "dropout": float(cfg.get("dropout", 0.1)),
        "layer_norm_eps": 1e-5,
        "phase_layer_idx": layers,
        "num_oscillators": osc,
        "phase_iterations": a.steps,
        "converted_from": os.path.basename(a.ckpt),
    }
    os.makedirs(a.outdir, exist_ok=True)
    write_safetensors(os.path.join(a.outdir, "model.safetensors"), tensors)
    with open(os.path.join(a.outdir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    print(f"wrote {a.outdir}: {len(tensors)} tensors, {n_layers} layers, phase layers {layers}")


if __name__ == "__main__":
    main()
