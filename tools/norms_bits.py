"""Bit-exactness guard for kernel rewrites: save the fused norms' output bits, compare later.

    MLXR_CPU_ISA=avx2 python tools/norms_bits.py save before_avx2.npz   # before a change
    MLXR_CPU_ISA=avx2 python tools/norms_bits.py check before_avx2.npz  # after it
Covers every dtype, block tails, reversed (strided) rows, with/without parameters and
NaN/inf/denormal/overflow rows, on whichever ISA path MLXR_CPU_ISA selects.
"""

import sys

import mlx.core as mx
import numpy as np

import mlxr._ext as ext
import mlxr.fused as fused

BITS = {mx.float16: mx.uint16, mx.bfloat16: mx.uint16, mx.float32: mx.uint32, mx.float64: mx.uint64}


def outputs():
    out = {}
    for t in BITS:
        for d in (1, 7, 16, 17, 33, 100, 4096, 4103):
            x = (mx.random.normal((6, d), key=mx.random.key(d)) * 3).astype(t)
            r = mx.random.normal((6, d), key=mx.random.key(d + 2)).astype(t)
            w = mx.random.normal((d,), key=mx.random.key(d + 1)).astype(t)
            for name, ww in (("w", w), ("n", None)):
                for lay, xx in (("c", x), ("r", x[:, ::-1])):
                    key = f"{t}-{d}-{name}-{lay}"
                    out["rms-" + key] = fused.rms_norm(xx, ww, 1e-5)
                    out["ln-" + key] = fused.layer_norm(xx + 2, ww, ww, 1e-5)
                    out["add-" + key], out["add-h-" + key] = fused.add_rms_norm(xx, r, ww, 1e-5)
    special = mx.array([[0.0, float("nan"), 1.0, 2.0] * 8, [1e-40, -0.0, float("inf"), 3.0] * 8, [3e38] * 32])
    for t in (mx.float32, mx.float16, mx.bfloat16):
        s = special.astype(t)
        out[f"rms-special-{t}"] = fused.rms_norm(s, mx.ones((32,), t) * 0.5, 1e-5)
        out[f"ln-special-{t}"] = fused.layer_norm(s, mx.ones((32,), t) * 0.5, None, 1e-5)
    return {k: np.array(v.view(BITS[v.dtype])) for k, v in out.items()}


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    got = outputs()
    if mode == "save":
        np.savez(path, **got)
        print(f"{ext.cpu_isa()}: saved {len(got)} outputs")
    else:
        want = np.load(path)
        bad = [k for k in want.files if not np.array_equal(want[k], got[k])]
        print(f"{ext.cpu_isa()}: " + (f"{len(got)} outputs identical" if not bad else f"DIFFER {len(bad)}: {bad[:8]}"))
        sys.exit(1 if bad else 0)
