"""Times mlxr's CUDA layer_norm against mx.fast.layer_norm and a copy of the same bytes.

GB/s counts x read once plus the output written once (weight and bias are noise).
Usage: python bench_layer_norm.py [--out DIR] [--only PREFIXES]
"""

import mlx.core as mx

import mlxr.fused as fused
from bench_common import main, median_times

CASES = [("large", (32768, 4096), None), ("transposed", (4096, 32768), lambda a: a.T), ("decode", (8, 4096), None)]


def row(case, x):
    w = mx.random.normal(x.shape[-1:], key=mx.random.key(1)).astype(x.dtype)
    b = mx.random.normal(x.shape[-1:], key=mx.random.key(2)).astype(x.dtype)
    n_bytes = 2 * x.size * x.itemsize
    fns = {"ours": lambda a: fused.layer_norm(a, w, b, 1e-5), "mlx": lambda a: mx.fast.layer_norm(a, w, b, 1e-5),
           "copy": mx.negative}
    t = median_times(fns, x, n_bytes)
    return {"case": case, "dtype": str(x.dtype).split(".")[-1], "shape": list(x.shape),
            **{f"{k}_us": v * 1e6 for k, v in t.items()}, "ours_GBps": n_bytes / t["ours"] / 1e9,
            "speedup_vs_mlx": t["mlx"] / t["ours"], "pct_of_copy": 100 * t["copy"] / t["ours"]}


def bench_all(only):
    rows = []
    for dtype in (mx.float32, mx.bfloat16):
        for case, shape, view in CASES:
            if not only or any(case.startswith(o) for o in only):
                base = mx.random.normal(shape, key=mx.random.key(0)).astype(dtype)
                x = view(base) if view else base
                mx.eval(x)
                rows.append(row(case, x))
    return rows


COLUMNS = [("case", "case", "", 12), ("dtype", "dtype", "", 10), ("shape", "shape", "", 12),
           ("ours us", "ours_us", ".1f", 10), ("mlx us", "mlx_us", ".1f", 10), ("copy us", "copy_us", ".1f", 10),
           ("ours GB/s", "ours_GBps", ".0f", 11), ("x mlx", "speedup_vs_mlx", ".2f", 8), ("% copy", "pct_of_copy", ".1f", 8)]

if __name__ == "__main__":
    main("layer_norm", bench_all, COLUMNS)
