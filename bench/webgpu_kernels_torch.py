"""PyTorch side of bench/webgpu_kernels_bench.ts: the same ops on CUDA when available (else the CPU, labelled).

Usage: python3 bench/webgpu_kernels_torch.py '[{"op": "matmul", "m": 1, "k": 768, "n": 2304, "transposeB": false}, ...]'
Prints a JSON list of {"ms": float, "device": str}, one per case, in order. fp32 throughout (TF32 off, as tfjs).
"""
import json
import sys
import time

import torch


def timed(fn, device, min_ms=300.0):
    """Milliseconds per call: the slope of n queued calls, synchronised at the end of each timing."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run(n):
        sync()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        sync()
        return (time.perf_counter() - t0) * 1000

    run(2)
    t1 = run(1)
    n, tn = 4, run(4)
    while tn - t1 < min_ms and n < 4096:
        n *= 4
        tn = run(n)
    return max(tn - t1, 0.0) / (n - 1)


def case_fn(c, device):
    g = torch.Generator(device="cpu").manual_seed(1)

    def rand(*shape):
        return (torch.rand(*shape, generator=g) * 2 - 1).to(device)

    if c["op"] == "matmul":
        a = rand(c["m"], c["k"])
        b = rand(c["n"], c["k"]) if c["transposeB"] else rand(c["k"], c["n"])
        return (lambda: a @ b.T) if c["transposeB"] else (lambda: a @ b)
    if c["op"] == "layernorm":
        x = rand(c["rows"], c["width"])
        ln = torch.nn.LayerNorm(c["width"]).to(device)
        return lambda: ln(x)
    if c["op"] == "attention":
        q, k, v = (rand(1, c["heads"], c["t"], c["hd"]) for _ in range(3))
        f = getattr(torch.nn.functional, "scaled_dot_product_attention", None)
        if f is not None:
            return lambda: f(q, k, v, is_causal=True)
        # torch < 2.0: the composed formulation
        mask = torch.full((c["t"], c["t"]), float("-inf"), device=device).triu(1)
        scale = c["hd"] ** -0.5
        return lambda: torch.softmax(q @ k.transpose(-1, -2) * scale + mask, dim=-1) @ v
    raise ValueError(f"unknown op {c['op']}")


def main():
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    name = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    out = []
    with torch.no_grad():
        for c in json.loads(sys.argv[1]):
            try:
                ms = timed(case_fn(c, device), device)
            except Exception as e:  # one failing case must not hide the others
                print(f"webgpu_kernels_torch: {c}: {e}", file=sys.stderr)
                ms = None
            out.append({"ms": ms, "device": f"{name}, torch {torch.__version__}"})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
