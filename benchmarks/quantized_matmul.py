"""Benchmark: fused quantized_matmul vs mx.quantized_matmul vs dequantize-then-matmul.

Usage: python benchmarks/quantized_matmul.py [--shapes M,N,K ...] [--bits 4] [--group-size 64]
           [--cold] [--no-transpose]
Reports the best wall time of a few runs, GFLOP/s (2*M*N*K / t) and effective GB/s of
packed-weight traffic ((w + scales + biases bytes) / t). --cold cycles through enough weight
copies to overflow the last-level cache, so every call streams its weights from DRAM (the
decode situation); without it a 4096x4096 4-bit matrix (8.4 MB) stays cache-resident.
Not a test: run it by hand; on a shared machine, also read the CPU-time column.
"""

from __future__ import annotations

import argparse
import time

import mlx.core as mx

import mlxr.fused as fused
from mlxr.reference import quantized_matmul as reference

DEFAULT_SHAPES = ["1,4096,4096", "1,11008,4096", "1,4096,11008", "4,4096,4096", "512,4096,4096", "512,11008,4096"]


def best_time(fn, n_inputs: int, repeat: int, budget_s: float) -> tuple[float, float]:
    """(best wall seconds, best process-CPU seconds) per call; fn(i) uses input copy i."""
    mx.eval(fn(0))
    walls, cpus = [], []
    start = time.perf_counter()
    i = 1
    while len(walls) < repeat and (len(walls) < 2 or time.perf_counter() - start < budget_s):
        c0, w0 = time.process_time(), time.perf_counter()
        mx.eval(fn(i % n_inputs))
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        i += 1
    return min(walls), min(cpus)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--shapes", nargs="*", default=DEFAULT_SHAPES)
    p.add_argument("--bits", type=int, default=4)
    p.add_argument("--group-size", type=int, default=64)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--no-transpose", action="store_true")
    p.add_argument("--cold", action="store_true", help="stream weights from DRAM (cycle >64 MB of copies)")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--budget", type=float, default=2.0, help="seconds per implementation and shape")
    p.add_argument("--impls", default="fused,mlx,deq+mm")
    args = p.parse_args()
    mx.set_cache_limit(4 << 30)  # MLX caches 32 MB by default: large outputs would page-fault
    dtype = getattr(mx, args.dtype)
    transpose = not args.no_transpose
    gs, bits = args.group_size, args.bits
    print(f"bits={bits} group_size={gs} dtype={args.dtype} transpose={transpose} cold={args.cold}")
    print(f"{'M,N,K':>15} {'impl':>7} {'best ms':>9} {'cpu ms':>9} {'GFLOP/s':>8} {'GB/s w':>7} {'vs mlx':>7}")
    for shape in args.shapes:
        M, N, K = map(int, shape.split(","))
        w = mx.random.normal((N, K) if transpose else (K, N), key=mx.random.key(0)).astype(dtype) * 0.05
        wq, s, b = mx.quantize(w, group_size=gs, bits=bits)
        weight_bytes = wq.nbytes + s.nbytes + b.nbytes
        copies = max(1, -(-64 * 2**20 // weight_bytes)) if args.cold else 1
        ws = [(wq + 0 * i, s + 0, b + 0) for i in range(copies)]  # distinct buffers
        x = mx.random.normal((M, K), key=mx.random.key(1)).astype(dtype)
        mx.eval(ws, x)
        impls = {
            "fused": lambda i: fused.quantized_matmul(x, *ws[i], transpose, gs, bits),
            "mlx": lambda i: mx.quantized_matmul(x, *ws[i], transpose, gs, bits),
            "deq+mm": lambda i: reference(x, *ws[i], transpose, gs, bits),
        }
        results = {}
        for name in args.impls.split(","):
            results[name] = best_time(impls[name], copies, args.repeat, args.budget)
        base = results.get("mlx", (None,))[0]
        for name, (t, cpu) in results.items():
            ratio = f"{base / t:6.1f}x" if base else "   -"
            print(f"{shape:>15} {name:>7} {t * 1e3:9.2f} {cpu * 1e3:9.2f} {2 * M * N * K / t / 1e9:8.1f} {weight_bytes / t / 1e9:7.2f} {ratio:>7}", flush=True)


if __name__ == "__main__":
    main()
