"""Times mlxr's CUDA rms_norm against mx.fast.rms_norm and a copy of the same bytes.

Amortised: CALLS independent calls per mx.eval, median over 15 evals (51 for small cases)
after warm-up, the implementations interleaved;
bandwidth counts x read once plus the output written once. `--cold` times the first
call on a fresh output in a fresh process (what managed memory makes slow).
Usage: python bench_rms_norm.py [--out DIR] | python bench_rms_norm.py --cold fused|fast
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import mlx.core as mx

import mlxr.fused as fused

CALLS, WARMUP = 20, 3


def one_eval(fn, x):
    outs = [fn(x) for _ in range(CALLS)]
    mx.synchronize()
    t0 = time.perf_counter()
    mx.eval(outs)
    mx.synchronize()
    return (time.perf_counter() - t0) / CALLS


def median_seconds(fns, x, reps):
    """Median seconds per call of each fn, the fns interleaved so that drift hits all alike.
    Each timed eval follows an untimed one of the same fn: MLX caches one CUDA graph per
    sequence of node types, and two fns of the same sequence (20 single-kernel calls) would
    otherwise time the graph's re-pointing from one kernel to the other (csrc/cuda/NOTES.md)."""
    for _ in range(WARMUP):
        for fn in fns.values():
            one_eval(fn, x)
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            one_eval(fn, x)
            times[name].append(one_eval(fn, x))
    return {name: statistics.median(t) for name, t in times.items()}


def make(shape, dtype, view=None, key=0):
    base = mx.random.normal(shape, key=mx.random.key(key)).astype(dtype)
    x = view(base) if view else base
    mx.eval(x)
    return x


def row(case, x, w, with_copy):
    n_bytes = 2 * x.size * x.itemsize
    fns = {
        "ours": lambda a: fused.rms_norm(a, w, 1e-5),
        "fast": lambda a: mx.fast.rms_norm(a, w, 1e-5),
    }
    if with_copy:
        fns["copy"] = mx.negative
    t = median_seconds(fns, x, reps=15 if n_bytes > (64 << 20) else 51)
    ours, fast, copy = t["ours"], t["fast"], t.get("copy", float("nan"))
    mx.clear_cache()
    return {
        "case": case, "dtype": str(x.dtype).split(".")[-1], "shape": list(x.shape),
        "ours_us": ours * 1e6, "fast_us": fast * 1e6, "copy_us": copy * 1e6,
        "ours_GBps": n_bytes / ours / 1e9, "fast_GBps": n_bytes / fast / 1e9,
        "copy_GBps": n_bytes / copy / 1e9, "speedup_vs_fast": fast / ours,
        "pct_of_copy": 100 * copy / ours,
    }


def bench_all(only):
    def wanted(case):
        return not only or any(case.startswith(o) for o in only)

    rows = []
    big = (65536, 4096)
    for dtype in (mx.float32, mx.bfloat16):
        w = make((4096,), dtype, key=1)
        if wanted("large"):
            x = make(big, dtype)
            rows.append(row("large", x, w, True))
            rows.append(row("large_noweight", x, None, True))
            del x
        for name, shape, view in [
            ("transposed", (4096, 65536), lambda a: a.T),
            ("sliced_rows", (65536, 8192), lambda a: a[:, 4096:]),
            ("strided", (65536, 8192), lambda a: a[:, ::2]),
        ]:
            if wanted(name):
                rows.append(row(name, make(shape, dtype, view), w, False))
                mx.clear_cache()
        for n_rows in (1, 4, 8, 16, 32):
            if wanted("decode"):
                rows.append(row(f"decode_{n_rows}", make((n_rows, 4096), dtype), w, False))
        if wanted("mid"):  # warp-per-row lengths
            for n in (1024, 2048):
                rows.append(row(f"mid_{n}", make((262144 * 1024 // n, n), dtype), w[:n], True))
    return rows


def cold(which):
    # A fresh process: module load and kernel lookup warmed on a small shape first, then the
    # first call at full size (fresh output memory), then a second one.
    x = make((65536, 4096), mx.bfloat16)
    w = make((4096,), mx.bfloat16, key=1)
    f = (lambda a: fused.rms_norm(a, w, 1e-5)) if which == "fused" else (
        lambda a: mx.fast.rms_norm(a, w, 1e-5))
    mx.eval(f(x[:8]))
    mx.synchronize()
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        y = f(x)
        mx.eval(y)
        mx.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
        del y
    return times


def cold_all():
    out = []
    here = os.path.abspath(__file__)
    for which, env in [("fast", {}), ("fused", {}), ("fused", {"MLXR_CUDA_ALLOC": "managed"})]:
        res = subprocess.run([sys.executable, here, "--cold", which], capture_output=True, text=True,
                             env={**os.environ, **env}, check=True)
        first, second = json.loads(res.stdout.strip().splitlines()[-1])
        out.append({"op": which + (" (managed)" if env else ""), "first_ms": first, "second_ms": second})
    return out


def table(rows, colds):
    lines = [f"{'case':<16}{'dtype':<10}{'shape':<14}{'ours us':>10}{'fast us':>10}{'copy us':>10}"
             f"{'ours GB/s':>11}{'fast GB/s':>11}{'x fast':>8}{'% copy':>8}"]
    for r in rows:
        shape = "x".join(map(str, r["shape"]))
        lines.append(f"{r['case']:<16}{r['dtype']:<10}{shape:<14}{r['ours_us']:>10.1f}{r['fast_us']:>10.1f}"
                     f"{r['copy_us']:>10.1f}{r['ours_GBps']:>11.0f}{r['fast_GBps']:>11.0f}"
                     f"{r['speedup_vs_fast']:>8.2f}{r['pct_of_copy']:>8.1f}")
    if not colds:
        return "\n".join(lines)
    lines.append("")
    lines.append("cold first call, 65536x4096 bfloat16 (ms): " + "; ".join(
        f"{c['op']}: first {c['first_ms']:.1f}, second {c['second_ms']:.1f}" for c in colds))
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", default=None)
    p.add_argument("--cold", choices=["fused", "fast"])
    p.add_argument("--only", default="", help="comma-separated case prefixes (default: all)")
    p.add_argument("--tag", default="", help="suffix of the output files")
    args = p.parse_args()
    if args.cold:
        print(json.dumps(cold(args.cold)))
        return
    only = [o for o in args.only.split(",") if o]
    colds = cold_all() if not only else []
    rows = bench_all(only)
    text = table(rows, colds)
    print(text)
    if args.out:
        with open(os.path.join(args.out, f"bench_rms_norm{args.tag}.json"), "w") as f:
            json.dump({"mlx": mx.__version__, "device": mx.device_info() if hasattr(mx, "device_info") else None,
                       "rows": rows, "cold": colds}, f, indent=1, default=str)
        with open(os.path.join(args.out, f"bench_rms_norm{args.tag}.txt"), "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
