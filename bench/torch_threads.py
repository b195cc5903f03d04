"""Pins the BLAS threads of a PyTorch bench to its --threads before torch loads.

Debian's torch multiplies on OpenBLAS, whose own thread pool ignores torch.set_num_threads: without this a
"1 thread" run used every core for its GEMMs (BENCHMARKS.md, 2026-12-03). Import it before torch.
"""
import os
import sys


def pin_blas_threads(argv=None):
    """Sets OPENBLAS/OMP/MKL_NUM_THREADS from a `--threads N` (or `--threads=N`) argument, when positive."""
    argv = sys.argv if argv is None else argv
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--threads=") else (
            argv[i + 1] if arg == "--threads" and i + 1 < len(argv) else None)
        if value and value.isdigit() and int(value) > 0:
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ[var] = value
