"""A small run over every CUDA rope kernel path, for compute-sanitizer (memcheck, racecheck).

Prints one line per case and exits non-zero if any output is off; kept small because every
kernel runs instrumented.
"""

import sys

import mlx.core as mx
import numpy as np

import mlxr.fused as fused
from mlxr.reference import rope as reference

CASES = {  # name: (base shape, view, dims); vec and scalar units, pass-through, layouts
    "vec": ((2, 4, 9, 128), None, 128),
    "vec_partial": ((2, 3, 5, 136), None, 64),
    "scalar_odd": ((2, 3, 5, 41), None, 34),
    "bthd_view": ((2, 9, 4, 64), lambda a: a.transpose(0, 2, 1, 3), 64),
    "strided": ((2, 3, 5, 80), lambda a: a[..., ::2], 40),
    "misaligned": ((2, 3, 5, 72), lambda a: a[..., 1:65], 64),
    "many_heads": ((1, 64, 33, 64), None, 64),
}


def main():
    bad = 0
    for dtype in (mx.float32, mx.float16, mx.bfloat16):
        for name, (shape, view, dims) in CASES.items():
            base = mx.random.normal(shape, key=mx.random.key(1)).astype(dtype)
            x = view(base) if view else base
            for trad in (False, True):
                kw = dict(traditional=trad, base=10000.0, scale=1.0, offset=mx.array([3, 70][: shape[0]]))
                y = fused.rope(x, dims, **kw, stream=mx.gpu)
                inplace = fused.rope(x * 1, dims, **kw, stream=mx.gpu)
                with mx.stream(mx.cpu):
                    xc = mx.array(np.array(x.astype(mx.float32))).astype(dtype)
                    ref = np.array(reference(xc, dims, **kw).astype(mx.float32))
                for got in (y, inplace):
                    err = np.abs(np.array(got.astype(mx.float32)) - ref).max() / max(np.abs(ref).max(), 1e-30)
                    ok = err < {mx.float32: 1e-5, mx.float16: 2e-3, mx.bfloat16: 1.6e-2}[dtype]
                    bad += not ok
                print(f"{name:<12}{str(dtype):<16}{'trad' if trad else 'half'} max_rel={err:.2e} {'ok' if ok else 'BAD'}")
    print("sanitize run:", "FAILED" if bad else "all ok")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
