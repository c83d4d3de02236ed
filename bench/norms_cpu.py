"""CPU bandwidth of the fused norm kernels against MLX and a plain copy of the same bytes.

GB/s counts the bytes each op must move (inputs read once + outputs written once). The copy
column is ``mx.bitwise_invert(x.view(mx.uint32))`` over the same number of bytes (read+write).
Times are the minimum over interleaved repetitions (the box is shared: the minimum is the
least disturbed run). Usage:
    python bench/norms_cpu.py [--ext BUILT_EXT.so] [op ...]   (ops: rms_norm layer_norm add_rms_norm)
``--ext`` loads another build of mlxr._ext (e.g. an older commit's) for before/after tables.
"""

import importlib.util
import os
import sys
import time

import mlx.core as mx

if len(sys.argv) > 2 and sys.argv[1] == "--ext":
    spec = importlib.util.spec_from_file_location("mlxr._ext", sys.argv[2])
    sys.modules["mlxr._ext"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules["mlxr._ext"])
    del sys.argv[1:3]

import mlxr.fused as fused  # noqa: E402

mx.set_cache_limit(4 << 30)  # MLX's default 32 MB cache page-faults every large output
SHAPES = [tuple(int(v) for v in s.split("x")) for s in os.environ.get("MLXR_BENCH_SHAPES", "4096x4096,8192x4096").split(",")]
DTYPES = [getattr(mx, d) for d in os.environ.get("MLXR_BENCH_DTYPES", "float32,float16,bfloat16").split(",")]
REPS = 11
# CPU time of the process (the op runs on MLX's stream thread; the caller sleeps while it
# waits): on a box shared by many, being descheduled does not count against a kernel.
# MLXR_BENCH_CLOCK=wall switches to wall time.
CLOCK = time.perf_counter if os.environ.get("MLXR_BENCH_CLOCK") == "wall" else time.process_time


def best_seconds(*fns):
    """Minimum wall time of each fn, run interleaved so load spikes hit all of them alike."""
    best = [float("inf")] * len(fns)
    for fn in fns:
        mx.eval(fn())
    for _ in range(REPS):
        for k, fn in enumerate(fns):
            t0 = CLOCK()
            mx.eval(fn())
            best[k] = min(best[k], CLOCK() - t0)
    return best


def cases(op, x, w, b):
    eps = 1e-5
    if op == "rms_norm":
        yield "weight", lambda: fused.rms_norm(x, w, eps), lambda: mx.fast.rms_norm(x, w, eps), 2
        yield "none", lambda: fused.rms_norm(x, None, eps), lambda: mx.fast.rms_norm(x, None, eps), 2
    elif op == "layer_norm":
        yield "w+b", lambda: fused.layer_norm(x, w, b, eps), lambda: mx.fast.layer_norm(x, w, b, eps), 2
        yield "none", lambda: fused.layer_norm(x, None, None, eps), lambda: mx.fast.layer_norm(x, None, None, eps), 2
    elif op == "add_rms_norm":
        r = x[::-1]  # a different array of the same size
        mx.eval(r)
        yield "weight", lambda: fused.add_rms_norm(x, r, w, eps), lambda: (lambda h: (mx.fast.rms_norm(h, w, eps), h))(x + r), 4


def main(ops):
    for shape in SHAPES:
        for dtype in DTYPES:
            x = mx.random.normal(shape).astype(dtype)
            w = mx.random.normal(shape[-1:]).astype(dtype)
            b = mx.random.normal(shape[-1:]).astype(dtype)
            mx.eval(x, w, b)
            nbytes = x.nbytes
            for op in ops:
                for variant, ours, theirs, factor in cases(op, x, w, b):
                    # The copy moves the same bytes as the op: factor/2 arrays of x's size, read + written.
                    words = mx.zeros((factor // 2 * nbytes // 4,), mx.uint32)
                    mx.eval(words)
                    t_ours, t_mlx, t_copy = best_seconds(ours, theirs, lambda: mx.bitwise_invert(words))
                    moved = factor * nbytes
                    gbs = [moved / t / 1e9 for t in (t_ours, t_mlx, t_copy)]
                    print(f"{op:12} {variant:6} {str(shape):12} {str(dtype)[9:]:8}: fused {gbs[0]:5.1f}  "
                          f"mlx {gbs[1]:5.1f}  copy {gbs[2]:5.1f} GB/s  (fused {100 * gbs[0] / gbs[2]:3.0f}% of copy,"
                          f" {t_mlx / t_ours:4.1f}x mlx)")
                    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:] or ["rms_norm", "layer_norm", "add_rms_norm"])
