"""CPU benchmark of mlxr.fused.swiglu against copy bandwidth and the MLX composite.

GB/s = bytes moved (gate and up read once + output written once) / time. Copy is
``mx.bitwise_invert`` over a uint32 view of gate and up side by side (one array of their joint
size): it reads 2N and writes 2N bytes, so its GB/s is a copy's rate; SwiGLU's 3N bytes are
compared at that rate. The MLX column is ``nn.silu(gate) * up``. Times are process CPU time,
best of interleaved rounds. Usage: ``python benchmarks/swiglu.py [fast] [float32|float16|bfloat16
...]`` (``fast`` skips the composite, 1-7 s per call in half precision on the CPU).
"""

import sys
import time

import mlx.core as mx
import mlx.nn as nn

import mlxr.fused as fused

mx.set_cache_limit(4 << 30)  # MLX caches 32 MB by default: every large output would page-fault
SHAPES = [(4096, 11008), (8192, 11008)]


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
    print("shape           dtype     copy GB/s | fused ms   GB/s  %copy | silu*up ms  speed-up")
    for shape in SHAPES:
        for dtype in (mx.float32, mx.float16, mx.bfloat16):
            name = str(dtype).split(".")[-1]
            if only and name not in only:
                continue
            gate = mx.random.normal(shape).astype(dtype)
            up = mx.random.normal(shape).astype(dtype)
            both = mx.concatenate([gate.reshape(-1), up.reshape(-1)]).view(mx.uint32)
            mx.eval(gate, up, both)
            t = best_times({"copy": lambda: mx.bitwise_invert(both), "fused": lambda: fused.swiglu(gate, up)}, 7)
            copy_gbs = 2 * both.nbytes / t["copy"] / 1e9
            moved = 3 * gate.nbytes
            fused_gbs = moved / t["fused"] / 1e9
            line = (
                f"{str(shape):15s} {name:9s} {copy_gbs:9.1f} |"
                f" {t['fused'] * 1e3:8.2f} {fused_gbs:6.1f} {fused_gbs / copy_gbs:6.0%} |"
            )
            if not skip_mlx:
                t_mlx = best_times({"mlx": lambda: nn.silu(gate) * up}, 2)["mlx"]
                line += f" {t_mlx * 1e3:10.1f} {t_mlx / t['fused']:8.1f}x"
            print(line, flush=True)


if __name__ == "__main__":
    main()
