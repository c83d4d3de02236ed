"""Times mlxr's CUDA rope against mx.fast.rope and a copy of the same bytes (mx.negative).

Amortised as bench_rms_norm.py times it (20 independent calls per mx.eval, median of 15 or 51
evals after warm-up, implementations interleaved); GB/s counts x read once plus the output
written once. Usage: python bench_rope.py [--out DIR] [--only PREFIXES]
"""

import argparse
import json
import os

import mlx.core as mx

import mlxr.fused as fused
from bench_common import median_times


def make(shape, dtype, view=None, key=0):
    base = mx.random.normal(shape, key=mx.random.key(key)).astype(dtype)
    x = view(base) if view else base
    mx.eval(x)
    return x


def row(case, x, dims, traditional, offset, with_copy):
    n_bytes = 2 * x.size * x.itemsize
    kw = dict(traditional=traditional, base=10000.0, scale=1.0, offset=offset)
    fns = {
        "ours": lambda a: fused.rope(a, dims, **kw),
        "fast": lambda a: mx.fast.rope(a, dims, **kw),
    }
    if with_copy:
        fns["copy"] = mx.negative
    t = median_times(fns, x, n_bytes)
    ours, fast, copy = t["ours"], t["fast"], t.get("copy", float("nan"))
    return {
        "case": case, "dtype": str(x.dtype).split(".")[-1], "shape": list(x.shape),
        "traditional": traditional, "ours_us": ours * 1e6, "fast_us": fast * 1e6,
        "copy_us": copy * 1e6, "ours_GBps": n_bytes / ours / 1e9, "fast_GBps": n_bytes / fast / 1e9,
        "speedup_vs_fast": fast / ours, "pct_of_copy": 100 * copy / ours,
    }


def bench_all(only):
    def wanted(case):
        return not only or any(case.startswith(o) for o in only)

    rows = []
    for dtype in (mx.float32, mx.bfloat16):
        for trad in (False, True):
            if wanted("prefill"):  # (B, H, T, D) = (1, 32, 8192, 128)
                rows.append(row("prefill", make((1, 32, 8192, 128), dtype), 128, trad, 0, True))
            if wanted("bthd"):  # (B, T, H, D) activations viewed as (B, H, T, D)
                x = make((1, 8192, 32, 128), dtype, lambda a: a.transpose(0, 2, 1, 3))
                rows.append(row("bthd_view", x, 128, trad, 0, False))
        if wanted("partial"):  # rotate half the head, pass the rest through
            for trad in (False, True):
                rows.append(row("partial_64of128", make((4, 32, 2048, 128), dtype), 64, trad, 5, True))
        if wanted("decode"):  # one new token per sequence, per-sequence offsets
            for batch in (1, 32):
                off = mx.arange(batch, dtype=mx.int32) * 37 + 100
                rows.append(row(f"decode_b{batch}", make((batch, 32, 1, 128), dtype), 128, False, off, False))
            # mlx-lm's KV cache passes its offset as an int
            rows.append(row("decode_b1_int", make((1, 32, 1, 128), dtype), 128, False, 100, False))
    return rows


def table(rows):
    lines = [f"{'case':<16}{'dtype':<10}{'trad':<6}{'shape':<18}{'ours us':>10}{'fast us':>10}{'copy us':>10}"
             f"{'ours GB/s':>11}{'fast GB/s':>11}{'x fast':>8}{'% copy':>8}"]
    for r in rows:
        shape = "x".join(map(str, r["shape"]))
        lines.append(f"{r['case']:<16}{r['dtype']:<10}{str(r['traditional'])[0]:<6}{shape:<18}{r['ours_us']:>10.1f}"
                     f"{r['fast_us']:>10.1f}{r['copy_us']:>10.1f}{r['ours_GBps']:>11.0f}{r['fast_GBps']:>11.0f}"
                     f"{r['speedup_vs_fast']:>8.2f}{r['pct_of_copy']:>8.1f}")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=None)
    p.add_argument("--only", default="", help="comma-separated case prefixes (default: all)")
    args = p.parse_args()
    rows = bench_all([o for o in args.only.split(",") if o])
    text = table(rows)
    print(text)
    if args.out:
        with open(os.path.join(args.out, "bench_rope.json"), "w") as f:
            json.dump({"mlx": mx.__version__, "rows": rows}, f, indent=1, default=str)
        with open(os.path.join(args.out, "bench_rope.txt"), "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
