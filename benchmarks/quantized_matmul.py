"""Benchmark: fused quantized_matmul vs mx.quantized_matmul vs dequantize-then-matmul.

Usage: python benchmarks/quantized_matmul.py [--shapes M,N,K ...] [--bits 4] [--group-size 64]
Reports median time, GFLOP/s (2*M*N*K) and effective GB/s of packed-weight traffic
(w + scales + biases bytes / time). Not a test: run it by hand on a quiet machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import mlx.core as mx

import mlxr.fused as fused
from mlxr.reference import quantized_matmul as reference


def timeit(fn, repeat: int, min_time: float = 0.2) -> float:
    mx.eval(fn())  # warm up (allocator cache, first-use paths)
    times = []
    start = time.perf_counter()
    while len(times) < repeat or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        mx.eval(fn())
        times.append(time.perf_counter() - t0)
        if len(times) >= 50 * repeat:
            break
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--shapes", nargs="*", default=["1,4096,4096", "1,11008,4096", "4,4096,4096", "512,4096,4096", "512,11008,4096"])
    p.add_argument("--bits", type=int, default=4)
    p.add_argument("--group-size", type=int, default=64)
    p.add_argument("--dtype", default="float32")
    p.add_argument("--no-transpose", action="store_true")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--skip-mlx-above", type=int, default=64, help="skip mx.quantized_matmul for M above this (it is slow)")
    args = p.parse_args()
    mx.set_cache_limit(4 << 30)
    dtype = getattr(mx, args.dtype)
    transpose = not args.no_transpose
    gs, bits = args.group_size, args.bits
    print(f"bits={bits} group_size={gs} dtype={args.dtype} transpose={transpose}")
    print(f"{'M,N,K':>16} {'impl':>10} {'ms':>9} {'GFLOP/s':>8} {'GB/s(w)':>8} {'speedup':>8}")
    for shape in args.shapes:
        M, N, K = map(int, shape.split(","))
        w = mx.random.normal((N, K) if transpose else (K, N), key=mx.random.key(0)).astype(dtype) * 0.05
        wq, s, b = mx.quantize(w, group_size=gs, bits=bits)
        x = mx.random.normal((M, K), key=mx.random.key(1)).astype(dtype)
        mx.eval(wq, s, b, x)
        weight_bytes = wq.nbytes + s.nbytes + b.nbytes
        impls = {
            "fused": lambda: fused.quantized_matmul(x, wq, s, b, transpose, gs, bits),
            "mlx": lambda: mx.quantized_matmul(x, wq, s, b, transpose, gs, bits),
            "deq+mm": lambda: reference(x, wq, s, b, transpose, gs, bits),
        }
        if M > args.skip_mlx_above:
            impls.pop("mlx")
        results = {}
        for name, fn in impls.items():
            results[name] = timeit(fn, args.repeat)
        base = results.get("mlx", results["deq+mm"])
        for name, t in results.items():
            print(f"{shape:>16} {name:>10} {t * 1e3:9.3f} {2 * M * N * K / t / 1e9:8.1f} {weight_bytes / t / 1e9:8.2f} {base / t:8.2f}x")


if __name__ == "__main__":
    main()
