"""A small run over every CUDA layer_norm kernel configuration, for compute-sanitizer.

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
    "strided_long": ((2, 2 * 40000), lambda a: a[:, ::2]),
}


def as_np(a):
    return np.array(a.astype(mx.float32)).astype(np.float64)


def main():
    bad = 0
    for dtype in (mx.float32, mx.float16, mx.bfloat16):
        for name, (shape, view) in CASES.items():
            base = (4 * mx.random.normal(shape, key=mx.random.key(1))).astype(dtype)
            x = view(base) if view else base
            w = mx.random.normal((x.shape[-1],), key=mx.random.key(2)).astype(dtype)
            outs = RUN(x, w)
            for got, ref in outs:
                err = np.abs(as_np(got) - ref).max() / max(np.abs(ref).max(), 1e-30)
                ok = err < {mx.float32: 1e-5, mx.float16: 4e-3, mx.bfloat16: 3.2e-2}[dtype]
                bad += not ok
            print(f"{name:<14}{str(dtype):<16} max_rel={err:.2e} {'ok' if ok else 'BAD'}")
    print("sanitize run:", "FAILED" if bad else "all ok")
    sys.exit(1 if bad else 0)


def RUN(x, w):  # noqa: N802 - the op-specific part of main()
    b = w[::-1]
    y = fused.layer_norm(x, w, b, 1e-5, stream=mx.gpu)
    inplace = fused.layer_norm(x * 1, w, b, 1e-5, stream=mx.gpu)
    x64 = as_np(x)
    c = x64 - x64.mean(-1, keepdims=True)
    ref = c / np.sqrt((c * c).mean(-1, keepdims=True) + 1e-5) * as_np(w) + as_np(b)
    return [(y, ref), (inplace, ref)]


if __name__ == "__main__":
    main()
