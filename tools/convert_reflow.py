#!/usr/bin/env python3
"""Converts a reFlow / nanoGPT `ckpt.pt` into a folder that Coherence Lab's `loadModel` opens:
`config.json` (model_type "reflow", the variant and its sizes) and `model.safetensors` (F32, the
library's canonical parameter names, Linear weights transposed to [in, out]).

    python3 tools/convert_reflow.py CKPT OUTDIR [--rope-layout half|interleaved] [--sparsify recipe|signals]
                                                [--model-config VARIANT]

The checkpoint is nanoGPT's dict: `model` (state dict, possibly with torch.compile's `_orig_mod.`
prefix), `model_args` (n_layer, n_head, n_embd, block_size, vocab_size, + n_signals / n_kv_head / top_k),
`iter_num`, `best_val_loss` and `config` whose `model_config` names the variant (reflow, reflow-topk,
reflow-lite, gpt2, gpt2-new). Without `model_config` it is a plain nanoGPT checkpoint: the gpt2 baseline
(`--model-config` names the variant of a checkpoint that stores none, or overrides the stored one).

Names read (the upstream model code was not available, so common spellings are accepted):
  recipe R [V, S]: a key ending in W_recipe or recipe; basis Phi [S, d]: a key ending in W_basis or basis
  token table: transformer.wte.weight (lm_head.weight, its tied copy, is checked and dropped)
  positions (gpt2): transformer.wpe.weight
  block i: transformer.h.i.{ln_1,ln_2}.weight, attn.c_attn.weight (fused q|k|v) or attn.{q,k,v}_proj /
  attn.{c_q,c_k,c_v}, attn.c_proj.weight (or o_proj), mlp.c_fc / mlp.c_proj (GELU) or
  mlp.w1 (SiLU gate) / mlp.w3 (up) / mlp.w2 (down) (or gate_proj / up_proj / down_proj)
  final norm: transformer.ln_f.weight
Every tensor is checked against the shape model_args implies; any mismatch or leftover tensor stops the
conversion with one message listing them. Sizes model_args does not give (n_kv_head, d_mlp, n_signals) are
read off the tensors (spec 1.4: the published counts leave Lite's H_kv and F open); those that differ from
the spec's defaults are printed and listed in config.json's source.inferred.
"""

import argparse
import json
import math
import os
import struct
import sys

VARIANTS = ("reflow", "reflow-topk", "reflow-lite", "gpt2", "gpt2-new")
MAX_SIGNALS = 65536  # the library's bound on S (lib/reflow/embedding.ts)
# Buffers that are not parameters (causal masks, rotary tables).
BUFFER_SUFFIXES = (".attn.bias", ".attn.masked_bias", "inv_freq", "freqs_cis", "rope.cos", "rope.sin")


class ConversionError(Exception):
    pass


def swiglu_hidden(d, multiple=256):
    return multiple * math.ceil((8 * d) / 3 / multiple)


def strip_prefix(sd):
    prefix = "_orig_mod."
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in sd.items()}


def plain(value):
    """A JSON-able copy of a checkpoint value (tensors become numbers or lists)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def normalise_variant(v):
    v = str(v).replace("_", "-")
    return v[:-3] if v.endswith(".py") else v


def variant_of(ckpt, override=None):
    """The variant: `override` (--model-config), else the stored model_config, else gpt2 (plain nanoGPT)."""
    if override is not None:
        v = normalise_variant(override)
        if v not in VARIANTS:
            raise ConversionError(f"--model-config is '{override}'; expected one of {', '.join(VARIANTS)}")
        return v
    cfg = ckpt.get("config") or {}
    args = ckpt.get("model_args") or {}
    v = cfg.get("model_config") if isinstance(cfg, dict) else None
    v = v or args.get("model_config") or "gpt2"
    v = normalise_variant(v)
    if v not in VARIANTS:
        raise ConversionError(f"config.model_config is '{v}'; expected one of {', '.join(VARIANTS)} "
                              f"(or name the variant with --model-config)")
    return v


def stored_variant(ckpt):
    """Whether the checkpoint names its variant itself (else it was read as the gpt2 baseline)."""
    cfg = ckpt.get("config")
    return bool((cfg.get("model_config") if isinstance(cfg, dict) else None)
                or (ckpt.get("model_args") or {}).get("model_config"))


def shape_of(sd, names):
    """The shape of the first of names present in the state dict sd (None when none is)."""
    for n in names:
        if sd is not None and n in sd:
            return list(sd[n].shape)
    return None


def inferred_sizes(sd, variant, d, h):
    """n_kv_head, d_mlp and n_signals read off the tensors, for model_args that do not give them (spec 1.4:
    the parameter counts do not pin down Lite's H_kv and F). Absent keys could not be read."""
    out, hd, p = {}, d // h, "transformer.h.0."
    fused = shape_of(sd, [p + "attn.c_attn.weight"])
    k = shape_of(sd, [p + "attn.k_proj.weight", p + "attn.c_k.weight"])
    if fused and (fused[0] - h * hd) > 0 and (fused[0] - h * hd) % (2 * hd) == 0:
        out["n_kv_head"] = (fused[0] - h * hd) // (2 * hd)
    elif k and k[0] % hd == 0:
        out["n_kv_head"] = k[0] // hd
    mlp = [p + "mlp.c_fc.weight"] if variant == "gpt2" else [p + "mlp.w1.weight", p + "mlp.gate_proj.weight"]
    f = shape_of(sd, mlp)
    if f:
        out["d_mlp"] = f[0]
    if variant.startswith("reflow") and sd is not None:
        basis = by_suffix(sd, ["W_basis", "basis"])
        if len(basis) == 1 and sd[basis[0]].dim() == 2:
            out["n_signals"] = int(sd[basis[0]].shape[0])
    return out


def library_config(variant, args, sparsify, sd=None):
    """The config.json fields. Sizes model_args lacks are read off the state dict sd when given (listed under
    `inferred` where they differ from the spec's defaults), else the spec's defaults."""
    def need(key):
        if key not in args:
            raise ConversionError(f"model_args has no '{key}' (needed for the {variant} variant)")
        return int(args[key])

    d, h, layers = need("n_embd"), need("n_head"), need("n_layer")
    if d % h:
        raise ConversionError(f"model_args: n_embd {d} is not a multiple of n_head {h}")
    if args.get("bias"):
        raise ConversionError("model_args.bias is true: only the bias-free models of reFlow are supported")
    out = dict(model_type="reflow", model_config=variant, n_layer=layers, n_head=h, n_embd=d,
               vocab_size=need("vocab_size"), block_size=need("block_size"))
    seen, inferred = inferred_sizes(sd, variant, d, h), []

    def size(keys, default):
        for key in keys:
            if key in args:
                return int(args[key])
        if keys[0] in seen:
            if seen[keys[0]] != default:  # listed only where the tensors overrule the spec's default
                inferred.append(keys[0])
            return int(seen[keys[0]])
        return default

    out["n_kv_head"] = size(["n_kv_head", "n_kv_heads"], h if variant != "reflow-lite" else h // 4)
    if out["n_kv_head"] < 1 or h % out["n_kv_head"]:
        raise ConversionError(f"model_args: n_kv_head {out['n_kv_head']} must divide n_head {h}")
    out["d_mlp"] = size(["d_mlp", "intermediate_size"], 4 * d if variant == "gpt2" else swiglu_hidden(d))
    if variant.startswith("reflow"):
        out["n_signals"] = size(["n_signals"], d)
        if not 1 <= out["n_signals"] <= MAX_SIGNALS:
            raise ConversionError(f"model_args: n_signals {out['n_signals']} is out of range 1..{MAX_SIGNALS}")
    if variant == "reflow-topk":
        out["top_k"] = int(args.get("top_k", args.get("topk", 64)))
        if not 1 <= out["top_k"] <= out["n_signals"]:
            raise ConversionError(f"model_args: top_k {out['top_k']} is out of range 1..{out['n_signals']} (n_signals)")
        out["sparsify"] = sparsify
    out["norm_eps"] = float(args.get("norm_eps", 1e-5))
    out["rope_theta"] = float(args.get("rope_theta", 10000.0))
    if inferred:
        out["inferred"] = inferred
    return out


def pick(sd, used, problems, candidates, shape, what):
    """The first present name among candidates (exact names), checked against shape."""
    for name in candidates:
        if name in sd:
            used.add(name)
            t = sd[name]
            if list(t.shape) != list(shape):
                problems.append(f"{name} ({what}): expected shape {list(shape)}, found {list(t.shape)}")
                return None
            return t.float()
    problems.append(f"missing {what}: none of {', '.join(candidates)} (expected shape {list(shape)})")
    return None


def by_suffix(sd, suffixes):
    """Names ending in one of suffixes (for the recipe and basis, whose module path is unknown)."""
    return [k for k in sd if any(k == s or k.endswith("." + s) for s in suffixes)]


def interleaved_to_half(w, heads, hd):
    """Reorders the output rows of a q/k projection from interleaved RoPE pairs to half-split order."""
    perm = []
    for h in range(heads):
        base = h * hd
        perm += [base + 2 * i for i in range(hd // 2)] + [base + 2 * i + 1 for i in range(hd // 2)]
    return w[perm]


def convert_state(sd, c, rope_layout):
    import torch

    v = c["model_config"]
    d, h, hkv, L, V, f = c["n_embd"], c["n_head"], c["n_kv_head"], c["n_layer"], c["vocab_size"], c["d_mlp"]
    hd = d // h
    used, problems, out = set(), [], {}

    def put(name, t, transpose=False):
        if t is not None:
            out[name] = (t.t() if transpose else t).contiguous()

    if v.startswith("reflow"):
        s = c["n_signals"]
        for what, suffixes, shape, name in (("recipe", ["W_recipe", "recipe"], [V, s], "embed.W_recipe"),
                                            ("basis", ["W_basis", "basis"], [s, d], "embed.W_basis")):
            names = by_suffix(sd, suffixes)
            used.update(names)
            if len(names) != 1:
                problems.append(f"expected one {what} tensor (a name ending in {' or '.join(suffixes)}), found "
                                f"{', '.join(names) if names else 'none'}")
                continue
            t = sd[names[0]]
            if what == "recipe" and list(t.shape) == [s, V] and s != V:
                t = t.t()  # stored in a Linear's [out, in] orientation
            if list(t.shape) != shape:
                problems.append(f"{names[0]} ({what}): expected shape {shape} from model_args, found {list(t.shape)}")
            else:
                out[name] = t.float().contiguous()
    else:
        wte = pick(sd, used, problems, ["transformer.wte.weight", "wte.weight"], [V, d], "token table")
        put("embed.W_E", wte)
        if "lm_head.weight" in sd:
            used.add("lm_head.weight")
            if wte is not None and not torch.equal(sd["lm_head.weight"].float(), wte):
                problems.append("lm_head.weight differs from transformer.wte.weight (the baselines are tied)")
        if v == "gpt2":
            put("pos_embed.W_pos", pick(sd, used, problems, ["transformer.wpe.weight", "wpe.weight"],
                                        [c["block_size"], d], "position table"))

    for i in range(L):
        p, q = f"transformer.h.{i}.", f"blocks.{i}."
        put(q + "ln1.w", pick(sd, used, problems, [p + "ln_1.weight", p + "attn_norm.weight"], [d], f"block {i} ln_1"))
        put(q + "ln2.w", pick(sd, used, problems, [p + "ln_2.weight", p + "ffn_norm.weight"], [d], f"block {i} ln_2"))
        widths = [h * hd, hkv * hd, hkv * hd]
        if p + "attn.c_attn.weight" in sd:
            qkv = pick(sd, used, problems, [p + "attn.c_attn.weight"], [sum(widths), d], f"block {i} attn.c_attn")
            parts = list(qkv.split(widths, dim=0)) if qkv is not None else [None] * 3
        else:
            parts = [pick(sd, used, problems, [p + f"attn.{n}_proj.weight", p + f"attn.c_{n}.weight"], [w, d],
                          f"block {i} attn.{n}") for n, w in zip("qkv", widths)]
        if rope_layout == "interleaved" and v != "gpt2":
            parts[0] = interleaved_to_half(parts[0], h, hd) if parts[0] is not None else None
            parts[1] = interleaved_to_half(parts[1], hkv, hd) if parts[1] is not None else None
        for n, t in zip("QKV", parts):
            put(q + f"attn.W_{n}", t, transpose=True)
        put(q + "attn.W_O", pick(sd, used, problems, [p + "attn.c_proj.weight", p + "attn.o_proj.weight"],
                                 [d, h * hd], f"block {i} attn.c_proj"), transpose=True)
        if v == "gpt2":
            put(q + "mlp.W_in", pick(sd, used, problems, [p + "mlp.c_fc.weight"], [f, d], f"block {i} mlp.c_fc"), True)
            put(q + "mlp.W_out", pick(sd, used, problems, [p + "mlp.c_proj.weight"], [d, f], f"block {i} mlp.c_proj"), True)
        else:
            put(q + "mlp.W_gate", pick(sd, used, problems, [p + "mlp.w1.weight", p + "mlp.gate_proj.weight"], [f, d],
                                       f"block {i} mlp.w1 (gate)"), True)
            put(q + "mlp.W_in", pick(sd, used, problems, [p + "mlp.w3.weight", p + "mlp.up_proj.weight"], [f, d],
                                     f"block {i} mlp.w3 (up)"), True)
            put(q + "mlp.W_out", pick(sd, used, problems, [p + "mlp.w2.weight", p + "mlp.down_proj.weight"], [d, f],
                                      f"block {i} mlp.w2 (down)"), True)
    put("ln_final.w", pick(sd, used, problems, ["transformer.ln_f.weight", "ln_f.weight", "norm.weight"], [d], "final norm"))
    left = [k for k in sd if k not in used and not k.endswith(BUFFER_SUFFIXES)]
    if left:
        problems.append(f"tensors the {v} variant does not use: {', '.join(sorted(left)[:20])}"
                        + (f" ... and {len(left) - 20} more" if len(left) > 20 else ""))
    if problems:
        raise ConversionError(f"the checkpoint's tensors do not match its config ({v}, model_args):\n  "
                              + "\n  ".join(problems[:30]))
    return out


def write_safetensors(path, tensors, metadata):
    """The safetensors format by hand: u64 header length, JSON header, then raw little-endian F32 data."""
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, t in tensors.items():
        data = t.detach().cpu().float().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)  # keeps the data 8-byte aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def convert(ckpt_path, outdir, rope_layout=None, sparsify="recipe", model_config=None):
    import torch

    try:
        # A training checkpoint may pickle config objects, which torch >= 2.6 refuses unless weights_only=False
        # (torch 1.13 added the flag). Unpickling runs code: convert only checkpoints you trust.
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same message
        raise ConversionError(f"cannot read {ckpt_path} as a PyTorch checkpoint: {e}")
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise ConversionError(f"{ckpt_path}: expected nanoGPT's ckpt.pt dict with a 'model' state dict")
    variant = variant_of(ckpt, model_config)
    # The flag wins; else a layout the checkpoint names; else the spec's default, half-split.
    rope_layout = rope_layout or (ckpt.get("model_args") or {}).get("rope_layout") or "half"
    if rope_layout not in ("half", "interleaved"):
        raise ConversionError(f"rope layout '{rope_layout}' is not half or interleaved")
    sd = strip_prefix(ckpt["model"])
    config = library_config(variant, ckpt.get("model_args") or {}, sparsify, sd)
    inferred = config.pop("inferred", [])
    try:
        tensors = convert_state(sd, config, rope_layout)
    except ConversionError as e:
        if model_config is None and not stored_variant(ckpt):
            raise ConversionError(f"{e}\n(the checkpoint names no model_config, so it was read as the plain nanoGPT "
                                  f"gpt2 baseline; if it is another variant, pass --model-config "
                                  f"{'|'.join(VARIANTS)})") from None
        raise
    for key in ("iter_num", "best_val_loss"):
        if key in ckpt:
            config[key] = plain(ckpt[key])
    config["rope_layout"] = "half"
    config["source"] = {"checkpoint": os.path.basename(ckpt_path), "model_args": plain(ckpt.get("model_args") or {}),
                        "converted_rope_layout": rope_layout, "inferred": inferred}
    os.makedirs(outdir, exist_ok=True)
    write_safetensors(os.path.join(outdir, "model.safetensors"), tensors, {"format": "pt", "variant": variant})
    with open(os.path.join(outdir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    return config


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpt")
    ap.add_argument("outdir")
    ap.add_argument("--rope-layout", choices=["half", "interleaved"], default=None,
                    help="RoPE layout the checkpoint was trained with (default: model_args.rope_layout, else "
                         "half-split, spec 1.3); interleaved q/k rows are reordered to half-split")
    ap.add_argument("--sparsify", choices=["recipe", "signals"], default="recipe",
                    help="where reflow-topk applies top-k (default recipe, spec 1.4)")
    ap.add_argument("--model-config", default=None, metavar="VARIANT",
                    help=f"the variant ({', '.join(VARIANTS)}) when the checkpoint names none or a wrong one "
                         "(default: config.model_config, else gpt2)")
    a = ap.parse_args()
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.exit("convert_reflow.py: needs PyTorch (pip install torch, or apt install python3-torch)")
    try:
        c = convert(a.ckpt, a.outdir, a.rope_layout, a.sparsify, a.model_config)
    except ConversionError as e:
        sys.exit(f"convert_reflow.py: {e}")
    print(f"convert_reflow.py: {c['model_config']} ({c['n_layer']} layers, d {c['n_embd']}) -> {a.outdir}")
    for key in c["source"]["inferred"]:
        print(f"convert_reflow.py: model_args has no {key}; read {c[key]} off the tensors")


if __name__ == "__main__":
    main()
