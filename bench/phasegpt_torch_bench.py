"""The original PhaseAttention (O(T^2 N) pairwise step, tools/phasegpt_torch.py) forward + backward in
PyTorch on CPU, for bench/phasegpt_bench.ts. One case per process, so the peak RSS is this case's:

    OMP_WAIT_POLICY=ACTIVE python3 bench/phasegpt_torch_bench.py --B 8 --T 128 --threads 1

Prints one JSON line: median ms, peak RSS growth over the process baseline (MiB) and the bytes autograd
saved for backward (saved_tensors_hooks).
"""
import argparse
import json
import os
import resource
import sys
import time

from torch_threads import pin_blas_threads  # noqa: E402  (before torch: it reads the variables once)

pin_blas_threads()

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))

import torch  # noqa: E402
from phasegpt_torch import PhaseAttention  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    for k, v in (("B", 8), ("T", 128), ("H", 12), ("N", 32), ("d", 768), ("steps", 10), ("threads", 1),
                 ("reps", 3)):
        ap.add_argument(f"--{k}", type=int, default=v)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    layer = PhaseAttention(a.d, a.H, a.N, 1.0, phase_iterations=a.steps, dropout=0.0)
    x = torch.randn(a.B, a.T, a.d, requires_grad=True)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    saved = [0]

    def pack(t):
        saved[0] += t.numel() * t.element_size()
        return t

    def run(count=False):
        layer.zero_grad(set_to_none=True)
        x.grad = None
        if count:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                out = layer(x)
        else:
            out = layer(x)
        out.sum().backward()

    run(count=True)
    times = []
    for _ in range(a.reps):
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "engine": f"torch {torch.__version__} O(T²N), {a.threads} thread(s)",
        "B": a.B, "T": a.T, "H": a.H, "N": a.N, "steps": a.steps, "threads": a.threads,
        "ms": times[len(times) // 2], "peakRssMiB": peak - base, "savedMiB": saved[0] / 2**20,
    }))


if __name__ == "__main__":
    main()
