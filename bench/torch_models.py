#!/usr/bin/env python3
"""PyTorch side of the inference benchmark (bench/run.ts starts it next to the tfjs backends).

A compact GPT-2 (learned positions, LayerNorm with bias, tanh GELU, biases everywhere, tied head) with a
preallocated KV cache, random init from a seed, fp32. The workload is the one bench/models_bench.ts
measures with the library's generate(): a P-token prefill that fills the cache and picks y_0 greedily
(logits of the last position only), then N one-token greedy decode steps. Like generate(), every step
brings its chosen tokens back to the host, which is also what synchronises CUDA.

Prints a JSON list of rows (the ModelBenchRow shape of models_bench.ts) on stdout; progress on stderr.

    python3 bench/torch_models.py --sizes '{"124m": [12, 768, 12]}' --batches 1,16 --prompt 128 --new 32
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

from torch_threads import pin_blas_threads  # noqa: E402  (before torch: it reads the variables once)

pin_blas_threads()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

VOCAB = 50257
POSITIONS = 1024


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d, eps=1e-5)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d, eps=1e-5)
        self.fc = nn.Linear(d, 4 * d)
        self.out = nn.Linear(4 * d, d)

    def forward(self, x, cache_k, cache_v, start):
        """x [B, T, d]; cache_k/v [B, H, maxLen, hd] written in place at start..start+T."""
        b, t, d = x.shape
        hd = d // self.heads
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, hd).transpose(1, 2) for z in (q, k, v))
        cache_k[:, :, start : start + t] = k
        cache_v[:, :, start : start + t] = v
        keys, values = cache_k[:, :, : start + t], cache_v[:, :, : start + t]
        att = (q @ keys.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        if t > 1:  # causal within the new positions; every cached position is visible
            mask = torch.ones(t, start + t, dtype=torch.bool, device=x.device).tril(diagonal=start)
            att = att.masked_fill(~mask, float("-inf"))
        y = (att.softmax(dim=-1) @ values).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(y)
        return x + self.out(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT2(nn.Module):
    def __init__(self, layers, d, heads, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.d, self.heads = d, heads
        self.wte = nn.Embedding(VOCAB, d)
        self.wpe = nn.Embedding(POSITIONS, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        for name, p in self.named_parameters():
            if p.dim() == 1:
                nn.init.zeros_(p) if name.endswith("bias") else nn.init.ones_(p)
            else:
                scaled = name.endswith("proj.weight") or name.endswith("out.weight")
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * layers) if scaled else 0.02)

    def new_cache(self, batch, length, device):
        hd = self.d // self.heads
        shape = (batch, self.heads, length, hd)
        return [(torch.empty(shape, device=device), torch.empty(shape, device=device)) for _ in self.blocks]

    def forward(self, ids, cache, start):
        """ids [B, T] -> logits of the last position [B, V]."""
        pos = torch.arange(start, start + ids.shape[1], device=ids.device)
        x = self.wte(ids) + self.wpe(pos)
        for block, (k, v) in zip(self.blocks, cache):
            x = block(x, k, v, start)
        return self.ln_f(x[:, -1]) @ self.wte.weight.t()


def load_library_weights(model, path):
    """Copies a safetensors file of the library's decoder parameters (names and [in, out] layouts of
    lib/models/params.ts, F32) into `model`: the check that both sides compute the same function."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header, base = json.loads(data[8 : 8 + n]), 8 + n
    w = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            sys.exit(f"torch_models.py: {path}: tensor {name} is {info['dtype']}, expected F32")
        start, end = info["data_offsets"]
        w[name] = torch.frombuffer(bytearray(data[base + start : base + end]), dtype=torch.float32).view(info["shape"])
    sd = {"wte.weight": w["embed.W_E"], "wpe.weight": w["pos_embed.W_pos"],
          "ln_f.weight": w["ln_final.w"], "ln_f.bias": w["ln_final.b"]}
    for i in range(len(model.blocks)):
        q = f"blocks.{i}."
        a = lambda k: w[q + k]
        sd.update({
            q + "ln1.weight": a("ln1.w"), q + "ln1.bias": a("ln1.b"),
            q + "qkv.weight": torch.cat([a("attn.W_Q"), a("attn.W_K"), a("attn.W_V")], dim=1).t(),
            q + "qkv.bias": torch.cat([a("attn.b_Q"), a("attn.b_K"), a("attn.b_V")]),
            q + "proj.weight": a("attn.W_O").t(), q + "proj.bias": a("attn.b_O"),
            q + "ln2.weight": a("ln2.w"), q + "ln2.bias": a("ln2.b"),
            q + "fc.weight": a("mlp.W_in").t(), q + "fc.bias": a("mlp.b_in"),
            q + "out.weight": a("mlp.W_out").t(), q + "out.bias": a("mlp.b_out"),
        })
    model.load_state_dict(sd)


def bench_prompts(batch, length, vocab, seed=0):
    """Same LCG as benchPrompts in models_bench.ts."""
    x = (seed * 2654435761 + 12345) % 2**32
    rows = []
    for _ in range(batch):
        row = []
        for _ in range(length):
            x = (x * 1664525 + 1013904223) % 2**32
            row.append(x % vocab)
        rows.append(row)
    return rows


SAMPLING = "greedy"


def pick(logits, gen):
    """The next tokens [B]: argmax, or top-p 0.9 at temperature 1 (sort, cumulative sum, mask, draw)."""
    if SAMPLING == "greedy":
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float(), dim=-1)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    keep = sorted_p.cumsum(dim=-1) - sorted_p < 0.9  # the smallest prefix holding 0.9 of the mass
    sorted_p = sorted_p * keep
    choice = torch.multinomial(sorted_p, 1, generator=gen)
    return order.gather(-1, choice).squeeze(-1)


def timed_generate(model, prompts, new_tokens, device):
    """Prefill + new_tokens decode steps (greedy, or --sampling top-p); returns (prefill s, decode s)."""
    ids = torch.tensor(prompts, dtype=torch.long, device=device)
    b, p = ids.shape
    gen = torch.Generator(device=device).manual_seed(1)
    t0 = time.perf_counter()
    cache = model.new_cache(b, p + new_tokens + 1, device)
    nxt = pick(model(ids, cache, 0), gen)
    out = [nxt.tolist()]  # the host copy is the sync point, as generate()'s readback is
    t1 = time.perf_counter()
    for i in range(new_tokens):
        nxt = pick(model(nxt.view(b, 1), cache, p + i), gen)
        out.append(nxt.tolist())
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default='{"124m": [12, 768, 12]}', help="JSON {name: [layers, d, heads]}")
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--new", type=int, default=32)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=1, help="measured runs per case (median reported)")
    ap.add_argument("--device", default="auto", help="auto (cuda when available), cpu or cuda")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sampling", choices=["greedy", "top-p"], default="greedy",
                    help="greedy, or top-p 0.9 at temperature 1 (as bench/models_bench.ts --sampling)")
    ap.add_argument("--parity", metavar="WEIGHTS", help="load the library's weights (safetensors) for the "
                    "first size, greedy-decode --parity-prompts and print tokens and prefill logits")
    ap.add_argument("--parity-prompts", default="[[1, 2, 3]]", help="JSON list of equal-length prompts")
    a = ap.parse_args()
    try:
        sizes = json.loads(a.sizes)
        batches = [int(s) for s in a.batches.split(",") if s.strip()]
    except ValueError as e:
        sys.exit(f"torch_models.py: bad --sizes JSON or --batches list: {e}")
    device = a.device if a.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(a.threads)
    global SAMPLING
    SAMPLING = a.sampling
    engine = f"torch-{device}"
    if device == "cuda":
        engine += f" ({torch.cuda.get_device_name(0)})"
    elif a.threads != os.cpu_count():
        engine += f" ({a.threads} thread{'s' if a.threads > 1 else ''})"
    if a.sampling == "top-p":
        engine += ", top-p 0.9"
    log = lambda s: print(f"[{engine}] {s}", file=sys.stderr, flush=True)
    log(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    P, N = a.prompt, a.new
    if a.parity:
        (layers, d, heads), = list(sizes.values())[:1]
        model = GPT2(layers, d, heads, a.seed).to(device).eval()
        load_library_weights(model, a.parity)
        prompts = json.loads(a.parity_prompts)
        with torch.inference_mode():
            ids = torch.tensor(prompts, dtype=torch.long, device=device)
            cache = model.new_cache(ids.shape[0], ids.shape[1] + N + 1, device)
            logits = model(ids, cache, 0)
            toks = [logits.argmax(dim=-1)]
            for i in range(N):
                toks.append(model(toks[-1].view(-1, 1), cache, ids.shape[1] + i).argmax(dim=-1))
        print(json.dumps({"tokens": torch.stack(toks, 1).tolist(), "logits": logits[:, :64].tolist()}))
        return
    rows = []
    with torch.inference_mode():
        for size, (layers, d, heads) in sizes.items():
            model = GPT2(layers, d, heads, a.seed).to(device).eval()
            params = sum(p.numel() for p in model.parameters())
            base = dict(size=size, params=params, prompt=P, newTokens=N, engine=engine)
            cal_p = min(P, 8)
            timed_generate(model, bench_prompts(1, cal_p, VOCAB, 1), 2, device)  # one-time costs
            pre, dec = timed_generate(model, bench_prompts(1, cal_p, VOCAB, 1), 2, device)
            per_tok, per_step = pre / cal_p, dec / 2
            log(f"{size}: {params} parameters; calibration {per_tok * 1e3:.1f} ms/prefill token, "
                f"{per_step * 1e3:.1f} ms/decode step at batch 1")
            for b in sorted(batches):
                warm_p = P if device == "cuda" else min(P, 16)
                est = (per_tok * b * P + N * max(per_step, per_tok * b)) * a.repeats
                if b != 1:
                    est += per_tok * b * warm_p + 2 * max(per_step, per_tok * b)
                if est > a.max_seconds:
                    why = f"estimated {est:.0f} s > --max-seconds {a.max_seconds:g}"
                    log(f"{size} batch {b}: skipped ({why})")
                    for w in ("prefill", "decode"):
                        rows.append(dict(workload=w, **base, batch=b, tokensPerSec=None, msPerToken=None,
                                         seconds=None, skipped=why))
                    continue
                if b != 1 or device == "cuda":
                    timed_generate(model, bench_prompts(b, warm_p, VOCAB, 2), 2, device)
                runs = [timed_generate(model, bench_prompts(b, P, VOCAB, 3 + r), N, device) for r in range(a.repeats)]
                pre, dec = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
                per_tok, per_step = pre / (b * P), min(per_step, dec / N)  # refine the cost model
                for w, tokens, s in (("prefill", b * P, pre), ("decode", b * N, dec)):
                    rows.append(dict(workload=w, **base, batch=b, tokensPerSec=tokens / s,
                                     msPerToken=1000 * s / tokens, seconds=s))
                log(f"{size} batch {b}: prefill {b * P / pre:.1f} tok/s ({pre:.2f} s), "
                    f"decode {b * N / dec:.1f} tok/s ({dec:.2f} s)")
            del model
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
