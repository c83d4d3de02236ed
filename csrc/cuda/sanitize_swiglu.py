"""A small run over every CUDA swiglu kernel path, for compute-sanitizer.

Prints one line per case and exits non-zero if any output is off.
"""

import sys

import mlx.core as mx
import numpy as np

import mlxr.fused as fused

CASES = {  # name: (shape, gate view, up view)
    "vec": ((33, 64), lambda a: a, lambda a: a),
    "flat_tail": ((7, 9), lambda a: a, lambda a: a),
    "misaligned": ((10, 16), lambda a: a.reshape(-1)[1:], lambda a: a.reshape(-1)[1:]),
    "transposed": ((24, 40), lambda a: a.T, lambda a: a.T),
    "broadcast": ((24, 40), lambda a: a, lambda a: mx.broadcast_to(a[:1], a.shape)),
    "reversed": ((24, 40), lambda a: a[::-1, ::-1], lambda a: a),
}


def main():
    bad = 0
    for dtype in (mx.float32, mx.float16, mx.bfloat16):
        for name, (shape, gv, uv) in CASES.items():
            g = gv((4 * mx.random.normal(shape, key=mx.random.key(1))).astype(dtype))
            u = uv(mx.random.normal(shape, key=mx.random.key(2)).astype(dtype))
            y = fused.swiglu(g, u, stream=mx.gpu)
            inplace = fused.swiglu(g * 1, u, stream=mx.gpu)
            # float64 in numpy: MLX's CPU float64 exp is only about float32-accurate.
            g64, u64 = (np.array(a.astype(mx.float32)).astype(np.float64) for a in (g, u))
            ref = g64 / (1 + np.exp(-g64)) * u64
            for got in (y, inplace):
                err = np.abs(np.array(got.astype(mx.float32)) - ref).max() / max(np.abs(ref).max(), 1e-30)
                ok = err < {mx.float32: 1e-5, mx.float16: 2e-3, mx.bfloat16: 1.6e-2}[dtype]
                bad += not ok
            print(f"{name:<12}{str(dtype):<16} max_rel={err:.2e} {'ok' if ok else 'BAD'}")
    print("sanitize run:", "FAILED" if bad else "all ok")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
