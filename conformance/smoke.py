"""Smoke certification of the fused RMSNorm: runs until the full engine (`pytest conformance/`)
replaces it. Exits non-zero if the fused kernel did not run or disagrees with the float64 oracle."""

import sys

import mlx.core as mx
import numpy as np

from mlxr.fused import observe, rms_norm
from mlxr.reference import rms_norm as reference

TOL = {mx.float32: 1e-5, mx.float16: 2e-3, mx.bfloat16: 1.6e-2}


def main() -> int:
    failures = 0
    for dtype, tol in TOL.items():
        for shape in [(1, 1), (3, 7), (17, 4096), (2, 4097)]:
            x = mx.random.normal(shape, key=mx.random.key(shape[1])).astype(dtype)
            w = mx.random.normal(shape[-1:], key=mx.random.key(1)).astype(dtype)
            with observe() as seen:
                y = rms_norm(x, w, 1e-5, stream=mx.cpu)
                mx.eval(y)
            oracle = reference(x.astype(mx.float64), w.astype(mx.float64), 1e-5)
            err = np.abs(np.array(y.astype(mx.float32), dtype=np.float64) - np.array(oracle)).max()
            ok = seen.ran_kernel("cpu", "rms_norm") and err <= tol * max(1.0, np.abs(np.array(oracle)).max())
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} rms_norm {dtype} {shape}: max abs err {err:.3g}")
    print("certified (smoke)" if not failures else f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
