#!/usr/bin/env python3
"""PyTorch reference of the five reFlow model files, in the nanoGPT state-dict layout that
tools/convert_reflow.py reads (spec docs/ of issue 8, section 1 and 2.4).

Used by the converter tests (tiny checkpoints in `ckpt.pt` form plus reference logits) and by
bench/reflow_bench.ts (training tokens/s of the same models in PyTorch). The upstream model code was not
available, so the names below are the nanoGPT ones plus `transformer.W_recipe` / `transformer.W_basis`;
the converter accepts the common alternatives too.

    python3 tools/reflow_torch.py tiny OUTDIR          # tiny ckpt.pt files + reference logits (JSON)
    python3 tools/reflow_torch.py train-bench --variant reflow --layers 4 --d 128 ...
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

VARIANTS = ("reflow", "reflow-topk", "reflow-lite", "gpt2", "gpt2-new")


def swiglu_hidden(d, multiple=256):
    return multiple * math.ceil((8 * d) / 3 / multiple)


def model_args_for(variant, n_layer, n_embd, n_head, vocab_size=50304, block_size=1024, n_signals=None,
                   n_kv_head=None, top_k=None):
    """The `model_args` dict a checkpoint of `variant` carries (nanoGPT fields + reFlow ones)."""
    args = dict(n_layer=n_layer, n_head=n_head, n_embd=n_embd, block_size=block_size, bias=False,
                vocab_size=vocab_size, dropout=0.0)
    if variant.startswith("reflow"):
        args["n_signals"] = n_signals or n_embd
    if variant == "reflow-lite":
        args["n_kv_head"] = n_kv_head or max(1, n_head // 4)
    if variant == "reflow-topk":
        args["top_k"] = top_k or 64
    return args


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LayerNormNoBias(nn.Module):
    """nanoGPT's LayerNorm with bias=False."""

    def __init__(self, d):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, None, 1e-5)


def rope(x, theta=10000.0):
    """Half-split ("rotate_half") RoPE over the full head width; x [B, H, T, hd]."""
    t, hd = x.shape[2], x.shape[3]
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    freqs = torch.outer(torch.arange(t, dtype=torch.float32), inv)
    emb = torch.cat([freqs, freqs], dim=-1)
    cos, sin = emb.cos(), emb.sin()
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def rope_interleaved(x, theta=10000.0):
    """Meta-style RoPE: rotates the pairs (x[2i], x[2i+1]) of each head; x [B, H, T, hd]."""
    t, hd = x.shape[2], x.shape[3]
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    freqs = torch.outer(torch.arange(t, dtype=torch.float32), inv)
    cos, sin = freqs.cos(), freqs.sin()
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).flatten(-2)


class Attention(nn.Module):
    def __init__(self, d, n_head, n_kv_head, rotary, rope_layout="half"):
        super().__init__()
        self.h, self.hkv, self.hd, self.rotary = n_head, n_kv_head, d // n_head, rotary
        self.rope = rope_interleaved if rope_layout == "interleaved" else rope
        self.c_attn = nn.Linear(d, (n_head + 2 * n_kv_head) * self.hd, bias=False)
        self.c_proj = nn.Linear(n_head * self.hd, d, bias=False)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.c_attn(x).split([self.h * self.hd, self.hkv * self.hd, self.hkv * self.hd], dim=2)
        q = q.view(b, t, self.h, self.hd).transpose(1, 2)
        k = k.view(b, t, self.hkv, self.hd).transpose(1, 2)
        v = v.view(b, t, self.hkv, self.hd).transpose(1, 2)
        if self.rotary:
            q, k = self.rope(q), self.rope(k)
        if self.hkv != self.h:  # each kv head serves h/hkv consecutive query heads
            k = k.repeat_interleave(self.h // self.hkv, dim=1)
            v = v.repeat_interleave(self.h // self.hkv, dim=1)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hd))  # torch 1.13 has no fused SDPA
        causal = torch.ones(t, t, dtype=torch.bool).tril()
        y = att.masked_fill(~causal, float("-inf")).softmax(dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).reshape(b, t, self.h * self.hd))


class GeluMLP(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.c_fc = nn.Linear(d, 4 * d, bias=False)
        self.c_proj = nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))  # exact erf GELU, as nn.GELU()


class SwiGLU(nn.Module):
    def __init__(self, d, f):
        super().__init__()
        self.w1 = nn.Linear(d, f, bias=False)
        self.w3 = nn.Linear(d, f, bias=False)
        self.w2 = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, variant, args):
        super().__init__()
        d = args["n_embd"]
        gpt2 = variant == "gpt2"
        norm = LayerNormNoBias if gpt2 else RMSNorm
        self.ln_1, self.ln_2 = norm(d), norm(d)
        self.attn = Attention(d, args["n_head"], args.get("n_kv_head", args["n_head"]), rotary=not gpt2,
                              rope_layout=args.get("rope_layout", "half"))
        self.mlp = GeluMLP(d) if gpt2 else SwiGLU(d, args.get("d_mlp", swiglu_hidden(d)))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


def topk_rows(x, k):
    """ReLU, then keep the k largest entries per row (gradient through the kept ones only)."""
    pos = F.relu(x)
    idx = pos.topk(k, dim=-1).indices
    mask = torch.zeros_like(pos).scatter_(-1, idx, 1.0) * (x > 0)
    return pos * mask


class ReflowGPT(nn.Module):
    def __init__(self, variant, args, seed=1337, sparsify="recipe"):
        super().__init__()
        torch.manual_seed(seed)
        self.variant, self.args, self.sparsify = variant, args, sparsify
        d, V, L = args["n_embd"], args["vocab_size"], args["n_layer"]
        self.transformer = nn.ModuleDict(dict(h=nn.ModuleList(Block(variant, args) for _ in range(L))))
        self.transformer["ln_f"] = LayerNormNoBias(d) if variant == "gpt2" else RMSNorm(d)
        if variant.startswith("reflow"):
            s = args["n_signals"]
            self.transformer.W_recipe = nn.Parameter(torch.randn(V, s) * 0.02)
            self.transformer.W_basis = nn.Parameter(torch.randn(s, d) / math.sqrt(s))
        else:
            self.transformer["wte"] = nn.Embedding(V, d)
            if variant == "gpt2":
                self.transformer["wpe"] = nn.Embedding(args["block_size"], d)
            self.lm_head = nn.Linear(d, V, bias=False)
            self.lm_head.weight = self.transformer["wte"].weight  # tied
        for name, p in self.named_parameters():
            if name.endswith(("W_recipe", "W_basis")):
                continue
            if p.dim() == 1:
                nn.init.ones_(p)
            else:
                scaled = name.endswith(("c_proj.weight", "w2.weight"))
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * L) if scaled else 0.02)

    def recipe(self):
        r = self.transformer.W_recipe
        k = self.args.get("top_k")
        return topk_rows(r, k) if k and self.sparsify == "recipe" else r

    def forward(self, ids, targets=None):
        t = ids.shape[1]
        if self.variant.startswith("reflow"):
            r = self.recipe()
            x = r[ids] @ self.transformer.W_basis
        else:
            x = self.transformer["wte"](ids)
            if self.variant == "gpt2":
                x = x + self.transformer["wpe"](torch.arange(t))
        for block in self.transformer["h"]:
            x = block(x)
        y = self.transformer["ln_f"](x)
        if self.variant.startswith("reflow"):
            sig = y @ self.transformer.W_basis.t()
            k = self.args.get("top_k")
            if k and self.sparsify == "signals":
                sig = topk_rows(sig, k)
            logits = sig @ r.t()
        else:
            logits = self.lm_head(y)
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def tiny(outdir):
    """Tiny checkpoints of every variant in nanoGPT's ckpt.pt form, with reference logits."""
    os.makedirs(outdir, exist_ok=True)
    ids = [[1, 5, 9, 33, 2, 17], [7, 7, 0, 39, 11, 3]]
    cases = {
        "reflow": dict(n_signals=24),
        "reflow-interleaved": dict(n_signals=24),
        "reflow-topk": dict(n_signals=24, top_k=5),
        "reflow-lite": dict(n_signals=24),
        "gpt2": {},
        "gpt2-new": {},
    }
    index = {}
    for i, (name, extra) in enumerate(cases.items()):
        # "reflow-interleaved": the reflow variant trained with Meta-style RoPE pairs (--rope-layout interleaved).
        variant = "reflow" if name == "reflow-interleaved" else name
        args = model_args_for(variant, 2, 32, 4, vocab_size=40, block_size=32, **extra)
        if name == "reflow-interleaved":
            args["rope_layout"] = "interleaved"
        model = ReflowGPT(variant, args, seed=100 + i).eval()
        with torch.no_grad():
            for p in model.parameters():  # norm weights away from 1, so a dropped norm would show
                if p.dim() == 1:
                    p.uniform_(0.5, 1.5)
            logits = model(torch.tensor(ids)).tolist()
        sd = model.state_dict()
        if variant == "reflow-topk":  # torch.compile's prefix, which the converter must strip
            sd = {"_orig_mod." + k: v for k, v in sd.items()}
        ckpt = dict(model=sd, model_args=args, iter_num=1000 + i, best_val_loss=torch.tensor(3.5 - i / 10),
                    optimizer={})
        if variant != "gpt2":  # a plain nanoGPT checkpoint has no model_config: the gpt2 baseline
            ckpt["config"] = dict(model_config=variant, out_dir=f"out/{variant}")
        path = os.path.join(outdir, f"{name}.pt")
        torch.save(ckpt, path)
        index[name] = dict(ckpt=path, ids=ids, logits=logits)
    with open(os.path.join(outdir, "reference.json"), "w") as f:
        json.dump(index, f)
    print(json.dumps({v: e["ckpt"] for v, e in index.items()}))


def train_bench(a):
    """Training tokens/s of one model: forward + backward + AdamW on random tokens, after warm-up."""
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    extra = {}
    if a.variant.startswith("reflow"):
        extra["n_signals"] = a.signals
    if a.variant == "reflow-topk":
        extra["top_k"] = a.top_k
    args = model_args_for(a.variant, a.layers, a.d, a.heads, vocab_size=a.vocab, block_size=a.block, **extra)
    model = ReflowGPT(a.variant, args).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, a.vocab, (a.batch, a.block), generator=g)
    y = torch.randint(0, a.vocab, (a.batch, a.block), generator=g)

    def step():
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    t0, n = time.perf_counter(), 0
    while n < a.steps or (time.perf_counter() - t0 < a.min_seconds and n < 10 * a.steps):
        step()
        n += 1
    dt = (time.perf_counter() - t0) / n
    params = sum(p.numel() for p in model.parameters())
    print(json.dumps(dict(variant=a.variant, params=params, threads=a.threads, msPerStep=dt * 1e3,
                          tokensPerSecond=a.batch * a.block / dt, engine=f"torch {torch.__version__} cpu")))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("tiny")
    t.add_argument("outdir")
    b = sub.add_parser("train-bench")
    b.add_argument("--variant", choices=VARIANTS, default="reflow")
    b.add_argument("--layers", type=int, default=4)
    b.add_argument("--d", type=int, default=128)
    b.add_argument("--heads", type=int, default=2)
    b.add_argument("--signals", type=int, default=128)
    b.add_argument("--top-k", type=int, default=8)
    b.add_argument("--vocab", type=int, default=50304)
    b.add_argument("--batch", type=int, default=4)
    b.add_argument("--block", type=int, default=64)
    b.add_argument("--steps", type=int, default=5)
    b.add_argument("--warmup", type=int, default=2)
    b.add_argument("--min-seconds", type=float, default=2.0)
    b.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    if a.cmd == "tiny":
        tiny(a.outdir)
    else:
        train_bench(a)


if __name__ == "__main__":
    sys.exit(main())
