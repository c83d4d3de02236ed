"""Times mlxr's CUDA add_rms_norm (h = x + residual; y = rms_norm(h) * w) against what a model
runs without it: `x + residual` then mx.fast.rms_norm ("fast"), and the plain MLX ops
("composite": h * rsqrt(mean(h^2) + eps) * w), plus a copy of x.

GB/s counts x and residual read, y and h written (4 x the bytes of x); the copy column moves
2 x (% copy scales it to 4 x). Decode shapes time no copy: MLX caches one CUDA graph per
sequence of node types, and 20 calls of our kernel or of mx.negative make the same sequence, so
timing them in turn re-points one cached graph between two kernels on every evaluation. That
cost ~1.5 us a call landed on ours (8x4096: 6.3-6.6 us alone or next to `fast`, 7.9-9.6 us
next to the copy; `fast`, a two-kernel graph of its own, 7.7-9.0 us in every mix).
Usage: python bench_add_rms_norm.py [--out DIR] [--only PREFIXES]
"""

import mlx.core as mx

import mlxr.fused as fused
from bench_common import main, median_times

CASES = [("large", (32768, 4096)), ("decode", (8, 4096))]


def composite(x, r, w):
    h = x + r
    hf = h.astype(mx.float32)
    return (hf * mx.rsqrt(mx.mean(hf * hf, axis=-1, keepdims=True) + 1e-5)).astype(x.dtype) * w, h


def row(case, x):
    r = mx.random.normal(x.shape, key=mx.random.key(1)).astype(x.dtype)
    w = mx.random.normal(x.shape[-1:], key=mx.random.key(2)).astype(x.dtype)
    mx.eval(r, w)
    n_bytes = 4 * x.size * x.itemsize
    fns = {"ours": lambda a: fused.add_rms_norm(a, r, w, 1e-5),
           "fast": lambda a: (lambda h: (mx.fast.rms_norm(h, w, 1e-5), h))(a + r),
           "composite": lambda a: composite(a, r, w)}
    if case != "decode":
        fns["copy"] = mx.negative
    t = median_times(fns, x, n_bytes)
    return {"case": case, "dtype": str(x.dtype).split(".")[-1], "shape": list(x.shape),
            **{f"{k}_us": v * 1e6 for k, v in t.items()}, "ours_GBps": n_bytes / t["ours"] / 1e9,
            "speedup_vs_fast": t["fast"] / t["ours"], "speedup_vs_composite": t["composite"] / t["ours"],
            "pct_of_copy": 100 * 2 * t.get("copy", float("nan")) / t["ours"]}


def bench_all(only):
    rows = []
    for dtype in (mx.float32, mx.bfloat16):
        for case, shape in CASES:
            if not only or any(case.startswith(o) for o in only):
                x = mx.random.normal(shape, key=mx.random.key(0)).astype(dtype)
                mx.eval(x)
                rows.append(row(case, x))
    return rows


COLUMNS = [("case", "case", "", 8), ("dtype", "dtype", "", 10), ("shape", "shape", "", 12),
           ("ours us", "ours_us", ".1f", 10), ("fast us", "fast_us", ".1f", 10), ("comp us", "composite_us", ".1f", 10),
           ("ours GB/s", "ours_GBps", ".0f", 11), ("x fast", "speedup_vs_fast", ".2f", 8),
           ("x comp", "speedup_vs_composite", ".2f", 8), ("% copy", "pct_of_copy", ".1f", 8)]

if __name__ == "__main__":
    main("add_rms_norm", bench_all, COLUMNS)
