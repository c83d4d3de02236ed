"""A small run over every CUDA softmax kernel configuration, for compute-sanitizer.

Prints one line per case and exits non-zero if any output is off; kept small because every
kernel runs instrumented.
"""

import sys

import mlx.core as mx
import numpy as np

import mlxr.fused as fused

CASES = {  # warp / block / looped rows, 16-byte and strided elements
    "warp_tail": ((9, 7), None),
    "warp": ((5, 1000), None),
    "block": ((3, 8192), None),
    "looped": ((2, 70001), None),
    "transposed": ((77, 45), lambda a: a.T),
    "strided": ((20, 66), lambda a: a[:, ::2]),
    "strided_long": ((2, 2 * 40000), lambda a: a[:, ::2]),
}


def main():
    bad = 0
    for dtype in (mx.float32, mx.float16, mx.bfloat16):
        for name, (shape, view) in CASES.items():
            base = (4 * mx.random.normal(shape, key=mx.random.key(1))).astype(dtype)
            x = view(base) if view else base
            y = fused.softmax(x, stream=mx.gpu)
            inplace = fused.softmax(x * 1, stream=mx.gpu)
            # float64 in numpy: MLX's CPU float64 sum is only about float32-accurate.
            x64 = np.array(x.astype(mx.float32)).astype(np.float64)
            ref = np.exp(x64 - x64.max(-1, keepdims=True))
            ref /= ref.sum(-1, keepdims=True)
            for got in (y, inplace):
                err = np.abs(np.array(got.astype(mx.float32)) - ref).max() / max(np.abs(ref).max(), 1e-30)
                ok = err < {mx.float32: 1e-5, mx.float16: 2e-3, mx.bfloat16: 1.6e-2}[dtype]
                bad += not ok
            print(f"{name:<14}{str(dtype):<16} max_rel={err:.2e} {'ok' if ok else 'BAD'}")
    print("sanitize run:", "FAILED" if bad else "all ok")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
