"""EXPERIMENT (not to land): rope decode per call, by where the offset lives and MLXR_ROPE_PIPE."""
import os
import statistics
import time

import mlx.core as mx

import mlxr.fused as fused

REPS = 201


def per_call(fn, calls=20):
    times = []
    for _ in range(REPS):
        mx.synchronize()
        t0 = time.perf_counter()
        mx.eval([fn() for _ in range(calls)])
        mx.synchronize()
        times.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(times)


def main():
    kw = dict(traditional=False, base=10000.0, scale=1.0)
    print(f"# MLXR_ROPE_PIPE={os.environ.get('MLXR_ROPE_PIPE', '0')}")
    for dtype in (mx.bfloat16, mx.float32):
        for batch in (1, 8, 32):
            x = mx.random.normal((batch, 32, 1, 128)).astype(dtype)
            offs = {"arange": mx.arange(batch, dtype=mx.int32) * 37 + 100,
                    # the same values in a 64-byte buffer: device memory, not MLX's managed scalar pool
                    "devmem": (mx.arange(batch + 16, dtype=mx.int32) * 37 + 100)[:batch],
                    "int": 100}
            mx.eval(x, *[o for o in offs.values() if isinstance(o, mx.array)])
            cells = []
            for name, off in offs.items():
                if name == "int" and batch > 1:
                    continue
                for impl, f in (("ours", fused.rope), ("fast", mx.fast.rope)):
                    fn = lambda: f(x, 128, offset=off, **kw)
                    per_call(fn)
                    cells.append(f"{impl}/{name} {per_call(fn):5.2f}")
            print(f"{str(dtype).split('.')[-1]:9s} b{batch:<3d} " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
