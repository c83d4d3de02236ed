"""Times mlxr's CUDA swiglu against MLX's composite (g * sigmoid(g) * u) and a copy.

Amortised as bench_rms_norm.py times it; GB/s counts gate and up read once plus the output
written once (3 x bytes); the copy column is mx.negative of gate (2 x bytes).
Usage: python bench_swiglu.py [--out DIR] [--only PREFIXES]
"""

import mlx.core as mx

import mlxr.fused as fused
from bench_common import main, median_times


def composite(g, u):
    return g * mx.sigmoid(g) * u


def row(case, g, u):
    n_bytes = 3 * g.size * g.itemsize
    fns = {"ours": lambda a: fused.swiglu(a, u), "mlx": lambda a: composite(a, u), "copy": mx.negative}
    t = median_times(fns, g, n_bytes)
    return {"case": case, "dtype": str(g.dtype).split(".")[-1], "shape": list(g.shape),
            "ours_us": t["ours"] * 1e6, "mlx_us": t["mlx"] * 1e6, "copy_us": t["copy"] * 1e6,
            "ours_GBps": n_bytes / t["ours"] / 1e9, "copy_GBps": 2 * g.size * g.itemsize / t["copy"] / 1e9,
            "speedup_vs_mlx": t["mlx"] / t["ours"]}


def bench_all(only):
    rows = []
    for dtype in (mx.float32, mx.bfloat16):
        for case, shape in [("mlp_prefill", (8192, 14336)), ("decode", (8, 14336))]:
            if not only or any(case.startswith(o) for o in only):
                g = mx.random.normal(shape, key=mx.random.key(0)).astype(dtype)
                u = mx.random.normal(shape, key=mx.random.key(1)).astype(dtype)
                mx.eval(g, u)
                rows.append(row(case, g, u))
    return rows


# Negative widths: left-aligned text columns.
COLUMNS = [("case", "case", "", -14), ("dtype", "dtype", "", -10), ("shape", "shape", "", -12),
           ("ours us", "ours_us", ".1f", 10), ("mlx us", "mlx_us", ".1f", 10), ("copy us", "copy_us", ".1f", 10),
           ("ours GB/s", "ours_GBps", ".0f", 11), ("copy GB/s", "copy_GBps", ".0f", 11),
           ("x mlx", "speedup_vs_mlx", ".2f", 8)]

if __name__ == "__main__":
    main("swiglu", bench_all, COLUMNS)
