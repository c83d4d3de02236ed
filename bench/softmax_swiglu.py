"""Bandwidth of fused softmax / SwiGLU against MLX and against a copy of the same bytes (CPU).

    python bench/softmax_swiglu.py [--quick] [--rounds N]

GB/s = bytes moved (inputs read once + output written once) / best time. The copy column is
`mx.bitwise_invert` over a uint32 view of the input (softmax: reads and writes the same bytes;
SwiGLU: its time scaled by 1.5, as SwiGLU reads twice what it writes). Candidates are timed
in interleaved rounds so a busy machine slows every column alike; the best round counts.
"""

import argparse
import time

import mlx.core as mx
import mlx.nn as nn

import mlxr.fused as fused


def interleaved_best(candidates, rounds):
    best = {}
    for fn in candidates.values():
        mx.eval(fn())  # warm-up: allocations cached from here on
    for _ in range(rounds):
        for name, fn in candidates.items():
            start = time.perf_counter()
            mx.eval(fn())
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    return best


def report(op, shape, dtype, moved, times):
    gbs = {k: moved / t / 1e9 for k, t in times.items()}
    cols = "  ".join(f"{k} {gbs[k]:6.2f} GB/s ({times[k] * 1e3:7.1f} ms)" for k in times)
    print(
        f"{op:8s} {str(shape):14s} {str(dtype).split('.')[-1]:9s} {cols}"
        f"  fused/copy {gbs['fused'] / gbs['copy']:.0%}  fused/mlx x{gbs['fused'] / gbs['mlx']:.1f}",
        flush=True,
    )


def bench_softmax(shape, dtype, rounds, mlx_rounds):
    x = mx.random.normal(shape).astype(dtype)
    bits = x.view(mx.uint32)
    mx.eval(x, bits)
    times = interleaved_best(
        {"fused": lambda: fused.softmax(x, axis=-1), "copy": lambda: mx.bitwise_invert(bits)}, rounds
    )
    times["mlx"] = interleaved_best({"mlx": lambda: mx.softmax(x, axis=-1)}, mlx_rounds)["mlx"]
    report("softmax", shape, dtype, 2 * x.nbytes, times)


def bench_swiglu(shape, dtype, rounds, mlx_rounds):
    g = mx.random.normal(shape).astype(dtype)
    u = mx.random.normal(shape).astype(dtype)
    bits = g.view(mx.uint32)
    mx.eval(g, u, bits)
    times = interleaved_best(
        {"fused": lambda: fused.swiglu(g, u), "copy": lambda: mx.bitwise_invert(bits)}, rounds
    )
    times["copy"] *= 1.5
    times["mlx"] = interleaved_best({"mlx": lambda: nn.silu(g) * u}, mlx_rounds)["mlx"]
    report("swiglu", shape, dtype, 3 * g.nbytes, times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="one shape per op")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--ops", default="softmax,swiglu")
    p.add_argument("--dtypes", default="float32,float16,bfloat16")
    a = p.parse_args()
    mx.set_cache_limit(4 << 30)  # MLX caches 32 MB by default: every large output would page-fault
    dtypes = [getattr(mx, d) for d in a.dtypes.split(",")]
    mlx_rounds = 2  # MLX's CPU softmax and half-precision composites are 20-100x slower
    if "softmax" in a.ops:
        for shape in [(4096, 4096)] if a.quick else [(4096, 4096), (8192, 4096), (32768, 128)]:
            for dt in dtypes:
                bench_softmax(shape, dt, a.rounds, mlx_rounds)
    if "swiglu" in a.ops:
        for shape in [(4096, 11008)] if a.quick else [(4096, 11008), (8192, 11008)]:
            for dt in dtypes:
                bench_swiglu(shape, dt, a.rounds, mlx_rounds)


if __name__ == "__main__":
    main()
