"""Where a decode-sized call (1-32 rows of 4096; rope: 1-32 tokens) spends its time, ours against what MLX runs
without us: graph building (Python, no evaluation), evaluation (mx.eval + synchronize) and
the sum, per call, with CALLS independent calls per evaluation (20, as the benches time them),
the implementations interleaved; (N.NNx) is an implementation's time over the first's (ours).
Varying CALLS separates a per-evaluation cost (graph launch, synchronisation) from a per-call
one (eval_gpu, graph nodes).

python profile_decode.py [OP] [IMPL ...]   OP: rms_norm (default), add_rms_norm or rope; IMPLs
                                           limit the implementations (for a profiler)
CALLS=1,20,60 python profile_decode.py ... several call counts
"""

import os
import statistics
import sys
import time

import mlx.core as mx

import mlxr.fused as fused

REPS = int(os.environ.get("REPS", "201"))
EPS = 1e-5
IMPLS = {
    "rms_norm": {
        "ours": lambda x, r, w: fused.rms_norm(x, w, EPS),
        "fast": lambda x, r, w: mx.fast.rms_norm(x, w, EPS),
        "copy": lambda x, r, w: mx.negative(x),
    },
    "add_rms_norm": {
        "ours": lambda x, r, w: fused.add_rms_norm(x, r, w, EPS),
        "fast": lambda x, r, w: (lambda h: (mx.fast.rms_norm(h, w, EPS), h))(x + r),
        # Our rms_norm after MLX's add: one of our nodes with one output, plus MLX's add.
        "add+ours": lambda x, r, w: (lambda h: (fused.rms_norm(h, w, EPS), h))(x + r),
        "add": lambda x, r, w: x + r,
    },
    # One new token a sequence: x (rows, 32, 1, 128), r the per-sequence offsets.
    "rope": {
        "ours": lambda x, r, w: fused.rope(x, 128, traditional=False, base=10000.0, scale=1.0, offset=r),
        "fast": lambda x, r, w: mx.fast.rope(x, 128, traditional=False, base=10000.0, scale=1.0, offset=r),
        "copy": lambda x, r, w: mx.negative(x),
    },
}


def inputs(op, rows, dtype):
    """x, r, w of one case: rows x 4096 (rope: rows sequences of 32 heads x 128)."""
    if op == "rope":
        x = mx.random.normal((rows, 32, 1, 128)).astype(dtype)
        return x, mx.arange(rows, dtype=mx.int32) * 37 + 100, None
    return (mx.random.normal((rows, 4096)).astype(dtype), mx.random.normal((rows, 4096)).astype(dtype),
            mx.random.normal((4096,)).astype(dtype))


def split(fn, calls, x, r, w):
    """Microseconds per call of one repetition: (building the graph, evaluating it)."""
    mx.synchronize()
    t0 = time.perf_counter()
    outs = [fn(x, r, w) for _ in range(calls)]
    t1 = time.perf_counter()
    mx.eval(outs)
    mx.synchronize()
    t2 = time.perf_counter()
    return (t1 - t0) / calls * 1e6, (t2 - t1) / calls * 1e6


def paired(impls, calls, x, r, w):
    """Median (build, evaluate) per implementation over REPS repetitions, the implementations
    interleaved within each repetition (timed alone, one after another, the same case read
    4.5 or 7 us a call from run to run: the host's state drifts), and the median over
    repetitions of each one's total over the first's (ours / fast)."""
    samples = {name: [] for name in impls}
    for rep in range(REPS + 3):
        for name, fn in impls.items():
            split(fn, calls, x, r, w)  # untimed first: MLX's graph cached for this fn's node
            sample = split(fn, calls, x, r, w)
            if rep >= 3:  # warm-up: kernels loaded, graphs cached, buffers pooled
                samples[name].append(sample)
    first = samples[next(iter(impls))]
    result = {}
    for name, s in samples.items():
        ratio = statistics.median((o[0] + o[1]) / (f[0] + f[1]) for o, f in zip(s, first))
        result[name] = (statistics.median(b for b, _ in s), statistics.median(e for _, e in s), ratio)
    return result


def main():
    args = sys.argv[1:]
    op = args.pop(0) if args and args[0] in IMPLS else "rms_norm"
    impls = {k: v for k, v in IMPLS[op].items() if not args or k in args}
    counts = [int(c) for c in os.environ.get("CALLS", "20").split(",")]
    print(f"# {op}, MLX_USE_CUDA_GRAPHS={os.environ.get('MLX_USE_CUDA_GRAPHS', '(default)')}")
    for dtype in (mx.bfloat16, mx.float32):
        for rows in (1, 8, 32):
            x, r, w = inputs(op, rows, dtype)
            mx.eval(x, r, w)
            for calls in counts:
                cells = [f"{name}: {b:4.2f} + {e:5.2f} = {b + e:5.2f} ({ratio:4.2f}x)"
                         for name, (b, e, ratio) in paired(impls, calls, x, r, w).items()]
                print(f"{str(dtype).split('.')[-1]:9s} {rows:3d}x4096 calls {calls:3d}  " + " | ".join(cells),
                      flush=True)


if __name__ == "__main__":
    main()
