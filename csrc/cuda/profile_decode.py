"""Where a decode-sized call (rms_norm, 1-32 rows of 4096) spends its time, ours against
mx.fast.rms_norm: graph building (Python, no evaluation), evaluation (mx.eval + synchronize)
and the sum, 20 independent calls per evaluation as bench_rms_norm.py times them.

python profile_decode.py            prints the split per case
python profile_decode.py ours|fast  only runs that implementation (for nsys: its CUDA API
                                    and kernel summaries show host calls and GPU time per call)
"""

import statistics
import sys
import time

import mlx.core as mx

import mlxr.fused as fused

CALLS, REPS = 20, 301
IMPLS = {
    "ours": lambda x, w: fused.rms_norm(x, w, 1e-5),
    "fast": lambda x, w: mx.fast.rms_norm(x, w, 1e-5),
}


def split(fn, x, w):
    """Median microseconds per call: (building the graph, evaluating it)."""
    build, run = [], []
    for _ in range(REPS):
        mx.synchronize()
        t0 = time.perf_counter()
        outs = [fn(x, w) for _ in range(CALLS)]
        t1 = time.perf_counter()
        mx.eval(outs)
        mx.synchronize()
        t2 = time.perf_counter()
        build.append((t1 - t0) / CALLS * 1e6)
        run.append((t2 - t1) / CALLS * 1e6)
    return statistics.median(build), statistics.median(run)


def main():
    only = sys.argv[1:]
    for dtype in (mx.bfloat16, mx.float32):
        w = mx.random.normal((4096,)).astype(dtype)
        for rows in (1, 8, 32):
            x = mx.random.normal((rows, 4096)).astype(dtype)
            mx.eval(x, w)
            cells = []
            for name, fn in IMPLS.items():
                if only and name not in only:
                    continue
                split(fn, x, w)  # warm-up: kernels loaded, graphs cached, buffers pooled
                b, r = split(fn, x, w)
                cells.append(f"{name}: build {b:5.2f} eval {r:5.2f} total {b + r:5.2f} us")
            print(f"{str(dtype).split('.')[-1]:9s} {rows:3d}x4096  " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
