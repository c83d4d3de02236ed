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
    # 20 rows: enough for the kernels' checked-once finite-parameter path (16+ rows), with
    # special rows (NaN, inf, all zero with eps = 0, huge) among ordinary ones, and parameters
    # that are finite, zero somewhere, or hold an inf.
    tall = mx.random.normal((20, 100), key=mx.random.key(7)) * 3
    tall[3] = float("nan")
    tall[5, 7] = float("inf")
    tall[8] = 0.0
    tall[11] = 3e38
    tall[12, ::2] = -3e38
    tall[14, 4] = float("nan")
    tall[16] = 1e-40
    for t in (mx.float32, mx.float16, mx.bfloat16):
        x = tall.astype(t)
        w = (mx.random.normal((100,), key=mx.random.key(8)) * 2).astype(t)
        w_zero = mx.where(mx.arange(100) % 9 == 0, 0.0, w).astype(t)
        w_inf = mx.where(mx.arange(100) == 50, float("inf"), w).astype(t)
        for wn, ww in (("w", w), ("wz", w_zero), ("winf", w_inf), ("n", None)):
            for eps in (1e-5, 0.0):
                key = f"tall-{t}-{wn}-{eps}"
                out["rms-" + key] = fused.rms_norm(x, ww, eps)
                out["ln-" + key] = fused.layer_norm(x, ww, w, eps)
                out["ln-nobias-" + key] = fused.layer_norm(x, ww, None, eps)
                out["add-" + key], out["add-h-" + key] = fused.add_rms_norm(x, x[::-1], ww, eps)
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
