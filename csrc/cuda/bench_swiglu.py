"""Times mlxr's CUDA swiglu against MLX's composite (g * sigmoid(g) * u) and a copy.

Amortised as bench_rms_norm.py times it; GB/s counts gate and up read once plus the output
written once (3 x bytes); the copy column is mx.negative of gate (2 x bytes).
Usage: python bench_swiglu.py [--out DIR]
"""

import argparse
import json
import os

import mlx.core as mx

import mlxr.fused as fused
from bench_rms_norm import median_seconds  # same folder: the shared interleaved timer


def composite(g, u):
    return g * mx.sigmoid(g) * u


def row(case, g, u):
    n_bytes = 3 * g.size * g.itemsize
    fns = {"ours": lambda a: fused.swiglu(a, u), "mlx": lambda a: composite(a, u), "copy": mx.negative}
    t = median_seconds(fns, g, reps=15 if n_bytes > (64 << 20) else 51)
    mx.clear_cache()
    return {"case": case, "dtype": str(g.dtype).split(".")[-1], "shape": list(g.shape),
            "ours_us": t["ours"] * 1e6, "mlx_us": t["mlx"] * 1e6, "copy_us": t["copy"] * 1e6,
            "ours_GBps": n_bytes / t["ours"] / 1e9, "copy_GBps": 2 * g.size * g.itemsize / t["copy"] / 1e9,
            "speedup_vs_mlx": t["mlx"] / t["ours"]}


def bench_all():
    rows = []
    for dtype in (mx.float32, mx.bfloat16):
        for case, shape in [("mlp_prefill", (8192, 14336)), ("decode", (8, 14336))]:
            g = mx.random.normal(shape, key=mx.random.key(0)).astype(dtype)
            u = mx.random.normal(shape, key=mx.random.key(1)).astype(dtype)
            mx.eval(g, u)
            rows.append(row(case, g, u))
    return rows


def table(rows):
    lines = [f"{'case':<14}{'dtype':<10}{'shape':<12}{'ours us':>10}{'mlx us':>10}{'copy us':>10}{'ours GB/s':>11}"
             f"{'copy GB/s':>11}{'x mlx':>8}"]
    for r in rows:
        lines.append(f"{r['case']:<14}{r['dtype']:<10}{'x'.join(map(str, r['shape'])):<12}{r['ours_us']:>10.1f}"
                     f"{r['mlx_us']:>10.1f}{r['copy_us']:>10.1f}{r['ours_GBps']:>11.0f}{r['copy_GBps']:>11.0f}"
                     f"{r['speedup_vs_mlx']:>8.2f}")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=None)
    p.add_argument("--only", default="")
    args = p.parse_args()
    text = table(rows := bench_all())
    print(text)
    if args.out:
        with open(os.path.join(args.out, "bench_swiglu.json"), "w") as f:
            json.dump({"mlx": mx.__version__, "rows": rows}, f, indent=1)
        with open(os.path.join(args.out, "bench_swiglu.txt"), "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
