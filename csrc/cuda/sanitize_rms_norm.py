"""A small run over every CUDA rms_norm kernel path, for compute-sanitizer (memcheck, racecheck).

Prints one line per case and exits non-zero if any output is off; kept small because every
kernel runs instrumented.
"""

import sys

import mlx.core as mx
import numpy as np

import mlxr.fused as fused
from mlxr.reference import rms_norm as reference

CASES = {
    "warp_tail": ((9, 7), None),
    "warp_vec": ((5, 33), None),
    "rows_64": ((3, 1500), None),
    "rows_regs": ((3, 4097), None),
    "rows_loop": ((2, 70001), None),
    "cols": ((77, 45), lambda a: a.T),
    "cols_smem": ((2, 64, 48), lambda a: a.transpose(0, 2, 1)),
    "strided": ((20, 66), lambda a: a[:, ::2]),
    "reversed": ((20, 41), lambda a: a[::-1, ::-1]),
}


def main():
    bad = 0
    for dtype in (mx.float32, mx.float16, mx.bfloat16):
        for name, (shape, view) in CASES.items():
            base = mx.random.normal(shape, key=mx.random.key(1)).astype(dtype)
            x = view(base) if view else base
            w = mx.random.normal((x.shape[-1],), key=mx.random.key(2)).astype(dtype)
            for weight in (w, None):
                y = fused.rms_norm(x, weight, 1e-5, stream=mx.gpu)
                inplace = fused.rms_norm(x * 1, weight, 1e-5, stream=mx.gpu)
                with mx.stream(mx.cpu):
                    xc = mx.array(np.array(x.astype(mx.float32))).astype(dtype)
                    wc = None if weight is None else mx.array(np.array(weight.astype(mx.float32))).astype(dtype)
                    ref = np.array(reference(xc, wc, 1e-5).astype(mx.float32))
                for got in (y, inplace):
                    err = np.abs(np.array(got.astype(mx.float32)) - ref).max() / max(np.abs(ref).max(), 1e-30)
                    ok = err < {mx.float32: 1e-5, mx.float16: 2e-3, mx.bfloat16: 1.6e-2}[dtype]
                    bad += not ok
                print(f"{name:<10}{str(dtype):<16}{'w' if weight is not None else '-'} max_rel={err:.2e} {'ok' if ok else 'BAD'}")
    print("sanitize run:", "FAILED" if bad else "all ok")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
