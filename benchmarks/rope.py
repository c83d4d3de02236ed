"""CPU benchmark of mlxr.fused.rope against copy bandwidth and mx.fast.rope.

Copy is ``mx.bitwise_invert(x.view(mx.uint32))`` (reads and writes the same bytes as RoPE).
Times are process CPU time (min of n runs): on a shared machine wall time mostly measures
the neighbours. Usage: ``python benchmarks/rope.py [fast] [float32|float16|bfloat16 ...]``
(``fast`` skips mx.fast.rope, which takes 30-300 ms per call).
"""

import sys
import time

import mlx.core as mx

import mlxr.fused as fused

mx.set_cache_limit(4 << 30)  # MLX caches 32 MB by default: every large output would page-fault


def bench(f, n=5):
    mx.eval(f())
    times = []
    for _ in range(n):
        start = time.process_time()
        mx.eval(f())
        times.append(time.process_time() - start)
    return min(times)


def main():
    skip_mlx = "fast" in sys.argv
    only = [a for a in sys.argv[1:] if a != "fast"]
    print("layout       dtype    traditional  copy ms  GB/s | fused ms  GB/s  %copy | mx.fast ms  speed-up")
    for layout in ("bhtd", "bthd->bhtd"):
        for dtype in (mx.float32, mx.float16, mx.bfloat16):
            name = str(dtype).split(".")[-1]
            if only and name not in only:
                continue
            shape = (1, 32, 4096, 128) if layout == "bhtd" else (1, 4096, 32, 128)
            x0 = mx.random.normal(shape).astype(dtype)
            mx.eval(x0)
            x = x0 if layout == "bhtd" else x0.transpose(0, 2, 1, 3)  # a strided view, no copy
            moved = 2 * x.nbytes
            t_copy = bench(lambda: mx.bitwise_invert(x0.view(mx.uint32)))
            for traditional in (False, True):
                kw = dict(traditional=traditional, base=10000.0, scale=1.0, offset=0)
                t_fused = bench(lambda: fused.rope(x, 128, **kw))
                t_mlx = 0.0 if skip_mlx else bench(lambda: mx.fast.rope(x, 128, **kw), 2)
                print(
                    f"{layout:12s} {name:8s} {traditional!s:12s} {t_copy * 1e3:7.2f} {moved / t_copy / 1e9:5.1f} | "
                    f"{t_fused * 1e3:8.2f} {moved / t_fused / 1e9:5.1f} {t_copy / t_fused * 100:5.0f}% | "
                    + (f"{t_mlx * 1e3:10.1f} {t_mlx / t_fused:8.1f}x" if t_mlx else "")
                )


if __name__ == "__main__":
    main()
