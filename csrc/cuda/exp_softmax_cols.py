"""EXPERIMENT (not to land): softmax over a non-last axis, amortised (20 calls an eval) and single calls."""
import os
import statistics
import time

import mlx.core as mx

import mlxr.fused as fused


def per_call(fn, calls, reps):
    t = []
    for _ in range(reps):
        outs = None
        mx.synchronize()
        t0 = time.perf_counter()
        outs = [fn() for _ in range(calls)]
        mx.eval(outs)
        mx.synchronize()
        t.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(t)


print(f"# MLXR_SOFTMAX_COLS={os.environ.get('MLXR_SOFTMAX_COLS', '1')}")
for dtype in (mx.float32, mx.bfloat16):
    for name, shape, axis in (("axis0", (4096, 4096), 0), ("mid", (256, 256, 512), 1)):
        x = mx.random.normal(shape).astype(dtype)
        mx.eval(x)
        cells = []
        for impl, fn in (("ours", lambda: fused.softmax(x, axis=axis)), ("mlx", lambda: mx.softmax(x, axis=axis))):
            per_call(fn, 20, 3)
            cells.append(f"{impl} x20 {per_call(fn, 20, 15):7.1f} single {per_call(fn, 1, 51):7.1f}")
        print(f"{str(dtype).split('.')[-1]:9s} {name:6s} " + " | ".join(cells), flush=True)
