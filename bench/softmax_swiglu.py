"""Bandwidth of fused softmax / swiglu vs MLX and vs a copy of the same bytes (CPU).

Run: python bench/softmax_swiglu.py [--quick]. GB/s = bytes moved (inputs read once + output
written once) / best-of-N time; copy = mx.bitwise_invert over uint32 views of the same bytes.
"""

import argparse
import time

import mlx.core as mx
import mlx.nn as nn

import mlxr.fused as fused


def best_time(fn, repeat):
    mx.eval(fn())
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        mx.eval(fn())
        best = min(best, time.perf_counter() - start)
    return best


def copy_time(nbytes_in, nbytes_out, repeat):
    # Reads nbytes_in and writes nbytes_out, like the op: invert a uint32 view, sliced to size.
    src = mx.zeros((nbytes_in // 4,), dtype=mx.uint32)
    mx.eval(src)
    n_out = nbytes_out // 4
    return best_time(lambda: mx.bitwise_invert(src[:n_out]) if n_out == src.size else
                     mx.bitwise_invert(src.reshape(n_out, -1)).sum(axis=1, stream=mx.cpu), repeat)


def row(name, shape, dtype, moved, times):
    gbs = {k: moved / t / 1e9 for k, t in times.items()}
    cols = "  ".join(f"{k} {v:6.2f} GB/s ({times[k]*1e3:7.1f} ms)" for k, v in gbs.items())
    print(f"{name:8s} {str(shape):14s} {str(dtype).split('.')[-1]:9s} {cols}  fused/copy {gbs['fused']/gbs['copy']:.0%}"
          f"  fused/mlx x{gbs['fused']/gbs['mlx']:.1f}", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--ops", default="softmax,swiglu")
    a = p.parse_args()
    mx.set_cache_limit(4 << 30)
    dtypes = [mx.float32, mx.float16, mx.bfloat16]
    ops = a.ops.split(",")
    if "softmax" in ops:
        shapes = [(4096, 4096)] if a.quick else [(4096, 4096), (8192, 4096), (32768, 128)]
        for shape in shapes:
            for dt in dtypes:
                x = mx.random.normal(shape).astype(dt)
                mx.eval(x)
                moved = 2 * x.nbytes
                u = x.view(mx.uint32)
                times = {
                    "fused": best_time(lambda: fused.softmax(x, axis=-1), a.repeat),
                    "mlx": best_time(lambda: mx.softmax(x, axis=-1), max(1, a.repeat // 2)),
                    "copy": best_time(lambda: mx.bitwise_invert(u), a.repeat),
                }
                row("softmax", shape, dt, moved, times)
    if "swiglu" in ops:
        shapes = [(4096, 11008)] if a.quick else [(4096, 11008), (8192, 11008)]
        for shape in shapes:
            for dt in dtypes:
                g = mx.random.normal(shape).astype(dt)
                u = mx.random.normal(shape).astype(dt)
                mx.eval(g, u)
                moved = 3 * g.nbytes
                both = mx.concatenate([g.reshape(-1), u.reshape(-1)]).view(mx.uint32).reshape(2, -1)
                mx.eval(both)
                # Copy reading 2N bytes, writing N: invert of both halves summed is not a copy, so
                # use the read+write copy of N bytes scaled to the same bytes moved.
                gv = g.view(mx.uint32)
                times = {
                    "fused": best_time(lambda: fused.swiglu(g, u), a.repeat),
                    "mlx": best_time(lambda: nn.silu(g) * u, max(1, a.repeat // 2)),
                    "copy": best_time(lambda: mx.bitwise_invert(gv), a.repeat) * 1.5,
                }
                row("swiglu", shape, dt, moved, times)


if __name__ == "__main__":
    main()
