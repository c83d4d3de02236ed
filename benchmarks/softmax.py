"""CPU benchmark of mlxr.fused.softmax against copy bandwidth and mx.softmax.

GB/s = bytes moved (input read once + output written once) / time. Copy is
``mx.bitwise_invert(x.view(mx.uint32))``: it reads and writes the same bytes. Times are process
CPU time, best of interleaved rounds (on a shared machine wall time mostly measures the
neighbours, and interleaving gives every column the same quiet moments).
Usage: ``python benchmarks/softmax.py [fast] [float32|float16|bfloat16 ...]`` (``fast`` skips
mx.softmax, which takes 0.1-3 s per call on the CPU).
"""

import sys
import time

import mlx.core as mx

import mlxr.fused as fused

mx.set_cache_limit(4 << 30)  # MLX caches 32 MB by default: every large output would page-fault
SHAPES = [(4096, 4096), (8192, 4096), (32768, 128)]


def best_times(candidates, rounds):
    for f in candidates.values():
        mx.eval(f())  # warm-up: buffers come from MLX's cache from here on
    best = {name: float("inf") for name in candidates}
    for _ in range(rounds):
        for name, f in candidates.items():
            start = time.process_time()
            mx.eval(f())
            best[name] = min(best[name], time.process_time() - start)
    return best


def main():
    skip_mlx = "fast" in sys.argv
    only = [a for a in sys.argv[1:] if a != "fast"]
    print("shape          dtype     copy ms   GB/s | fused ms   GB/s  %copy | mx.softmax ms  speed-up")
    for shape in SHAPES:
        for dtype in (mx.float32, mx.float16, mx.bfloat16):
            name = str(dtype).split(".")[-1]
            if only and name not in only:
                continue
            x = mx.random.normal(shape).astype(dtype)
            bits = x.view(mx.uint32)
            mx.eval(x, bits)
            t = best_times({"copy": lambda: mx.bitwise_invert(bits), "fused": lambda: fused.softmax(x)}, 9)
            moved = 2 * x.nbytes
            line = (
                f"{str(shape):14s} {name:9s} {t['copy'] * 1e3:7.2f} {moved / t['copy'] / 1e9:6.1f} |"
                f" {t['fused'] * 1e3:8.2f} {moved / t['fused'] / 1e9:6.1f} {t['copy'] / t['fused']:6.0%} |"
            )
            if not skip_mlx:
                t_mlx = best_times({"mlx": lambda: mx.softmax(x, axis=-1)}, 2)["mlx"]
                line += f" {t_mlx * 1e3:13.1f} {t_mlx / t['fused']:8.1f}x"
            print(line, flush=True)


if __name__ == "__main__":
    main()
