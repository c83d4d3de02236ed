"""Per-core throughput of the fused CPU kernels by process CPU time, for a machine shared with
other work (where wall time mostly measures the neighbours).

    MLXR_NUM_THREADS=1 python tools/cpu_time_bench.py layer_norm softmax --repeats 15
    MLXR_NUM_THREADS=1 python tools/cpu_time_bench.py --ext /tmp/old/_ext...so layer_norm  # another build

Same inputs and byte counts as ``mlxr-conform bench`` (conformance/bench/<op>.py). Each
sample is the process CPU time of one evaluated call; fused and copy (``mx.bitwise_invert`` of
a uint32 view of as many bytes) alternate, so both see the same neighbours; min and median of
``--repeats`` samples. CPU time sums every thread of the process, so with threads it measures
the total work, not the wall time: run single-threaded kernels (MLXR_NUM_THREADS=1).

``--wall``: wall time instead (median of interleaved samples, conformance/bench/_timing.py),
with a second copy column split over two CPU streams (two threads): for threaded kernels,
with and without MLXR_NUM_THREADS=1, at the quietest moments one can find.
"""

import argparse
import importlib.util
import statistics
import sys
import time


def preload_ext(path):
    """Makes ``mlxr._ext`` the extension at ``path`` (e.g. a copy of an earlier build)."""
    spec = importlib.util.spec_from_file_location("mlxr._ext", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["mlxr._ext"] = module
    spec.loader.exec_module(module)


def cpu_seconds(fn, args):
    import mlx.core as mx

    start = time.process_time()
    mx.eval(fn(*args))
    return time.process_time() - start


def wall_row(op, shape, dtype_name, fused, args, nbytes, repeats):
    import mlx.core as mx

    from mlxr.conformance.bench import _timing
    from mlxr.conformance.cli.bench import _two_stream_invert

    src = mx.zeros((nbytes // 8,), mx.uint32)
    halves = tuple(mx.zeros((nbytes // 16,), mx.uint32) for _ in range(2))
    mx.eval(src, halves)
    columns = {"fused": (fused, args), "copy": (mx.bitwise_invert, (src,)), "copy2": (_two_stream_invert, halves)}
    t = _timing.measure_all(columns, mx.cpu, repeats=repeats, warmup=2, out_bytes=nbytes // 2)
    gbs = {k: nbytes / v.median / 1e9 for k, v in t.items()}
    print(f"{op:12} {'x'.join(map(str, shape)):>14} {dtype_name:9} wall GB/s fused {gbs['fused']:5.1f} "
          f"copy {gbs['copy']:5.1f} copy2 {gbs['copy2']:5.1f} | {100 * gbs['fused'] / gbs['copy']:4.0f}% of copy, "
          f"{100 * gbs['fused'] / gbs['copy2']:4.0f}% of copy2", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ops", nargs="+")
    p.add_argument("--dtypes", default="float32,float16,bfloat16")
    p.add_argument("--shape", help="e.g. 8192x4096 (default: each case's largest)")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--ext", help="path of an _ext shared library to use instead of the installed one")
    p.add_argument("--wall", action="store_true", help="wall time, with a two-stream copy column")
    a = p.parse_args()
    if a.ext:
        preload_ext(a.ext)
    import mlx.core as mx

    from mlxr.conformance.bench import load

    mx.set_cache_limit(4 << 30)
    load_avg = __import__("os").getloadavg()[0]
    if a.wall:
        print(f"load {load_avg:.1f}; GB/s by wall time, median of {a.repeats} interleaved samples")
    else:
        print(f"load {load_avg:.1f}; GB/s by CPU time, min / median of {a.repeats}")
        print(f"{'op':12} {'shape':>14} {'dtype':9} {'fused':>13} {'copy':>13} {'%copy(min)':>10} {'%copy(med)':>10}")
    for op in a.ops:
        bench = load(op)
        shape = tuple(int(s) for s in a.shape.split("x")) if a.shape else tuple(bench.shapes[-1])
        fused = bench.columns()["fused"][1]
        for name in a.dtypes.split(","):
            dtype = getattr(mx, name)
            args = bench.make_inputs(shape, dtype)
            nbytes = bench.bytes_moved(shape, dtype)
            src = mx.zeros((nbytes // 8,), mx.uint32)
            mx.eval([x for x in args if isinstance(x, mx.array)], src)
            if a.wall:
                wall_row(op, shape, name, fused, args, nbytes, a.repeats)
                continue
            samples = {"fused": [], "copy": []}
            for _ in range(2):  # warm-up: allocator cache, page faults
                cpu_seconds(fused, args), cpu_seconds(mx.bitwise_invert, (src,))
            for _ in range(a.repeats):
                samples["fused"].append(cpu_seconds(fused, args))
                samples["copy"].append(cpu_seconds(mx.bitwise_invert, (src,)))
            best = {k: min(v) for k, v in samples.items()}
            med = {k: statistics.median(v) for k, v in samples.items()}
            gbs = {k: nbytes / max(best[k], 1e-9) / 1e9 for k in best}
            gbs_med = {k: nbytes / max(med[k], 1e-9) / 1e9 for k in med}
            print(f"{op:12} {'x'.join(map(str, shape)):>14} {name:9} "
                  f"{gbs['fused']:5.1f} / {gbs_med['fused']:5.1f} {gbs['copy']:5.1f} / {gbs_med['copy']:5.1f} "
                  f"{100 * best['copy'] / best['fused']:9.0f}% {100 * med['copy'] / med['fused']:9.0f}%",
                  flush=True)


if __name__ == "__main__":
    main()
