"""Times mlxr's CUDA softmax against mx.softmax(precise=True), the plain-ops composite and a copy.

Amortised as bench_rms_norm.py times it; GB/s counts x read once plus the output written once.
Usage: python bench_softmax.py [--out DIR] [--only PREFIXES]
"""

import mlx.core as mx

import mlxr.fused as fused
from bench_common import main, median_times


def composite(x, axis):
    """Softmax from plain MLX ops (what the "ops MLX does not fuse" target compares against)."""
    e = mx.exp(x.astype(mx.float32) - mx.max(x, axis=axis, keepdims=True))
    return (e / mx.sum(e, axis=axis, keepdims=True)).astype(x.dtype)


def row(case, x, axis, with_copy):
    n_bytes = 2 * x.size * x.itemsize
    fns = {"ours": lambda a: fused.softmax(a, axis=axis), "mlx": lambda a: mx.softmax(a, axis=axis, precise=True),
           "composite": lambda a: composite(a, axis)}
    if with_copy:
        fns["copy"] = mx.negative
    t = median_times(fns, x, n_bytes)
    return {"case": case, "dtype": str(x.dtype).split(".")[-1], "shape": list(x.shape),
            "ours_us": t["ours"] * 1e6, "mlx_us": t["mlx"] * 1e6, "copy_us": t.get("copy", float("nan")) * 1e6,
            "ours_GBps": n_bytes / t["ours"] / 1e9, "speedup_vs_mlx": t["mlx"] / t["ours"],
            "composite_us": t["composite"] * 1e6, "speedup_vs_composite": t["composite"] / t["ours"],
            "pct_of_copy": 100 * t.get("copy", float("nan")) / t["ours"]}


def bench_all(only):
    rows = []
    for dtype in (mx.float32, mx.bfloat16):
        for case, shape, axis, view in [
            ("attn_scores", (32 * 2048, 2048), -1, None),  # (heads x queries, keys)
            ("vocab", (64, 128256), -1, None),  # logits over a large vocabulary (looped rows)
            ("short_rows", (1 << 20, 128), -1, None),
            ("axis0", (4096, 4096), 0, None),  # a non-last axis: transposed view
            ("axis1_mid", (256, 256, 512), 1, None),  # a middle axis: many tiles of adjacent rows
        ]:
            if not only or any(case.startswith(o) for o in only):
                x = mx.random.normal(shape, key=mx.random.key(0)).astype(dtype)
                mx.eval(x)
                rows.append(row(case, x, axis, axis == -1))
    return rows


# Negative widths: left-aligned text columns.
COLUMNS = [("case", "case", "", -14), ("dtype", "dtype", "", -10), ("shape", "shape", "", -14),
           ("ours us", "ours_us", ".1f", 10), ("mlx us", "mlx_us", ".1f", 10), ("copy us", "copy_us", ".1f", 10),
           ("ours GB/s", "ours_GBps", ".0f", 11), ("x mlx", "speedup_vs_mlx", ".2f", 8),
           ("% copy", "pct_of_copy", ".1f", 8), ("x comp", "speedup_vs_composite", ".2f", 8)]

if __name__ == "__main__":
    main("softmax", bench_all, COLUMNS)
