"""quantized_matmul on the simulator: what csrc/metal/quantized_matmul.cpp does on a Mac, with
numpy buffers."""

from __future__ import annotations

import ctypes

import numpy as np

from ._runtime import Plan, call_plan, execute, library, poisoned
from .rms_norm import _STORAGE


def plan(M: int, N: int, K: int, transpose: bool, group_size: int, bits: int, dtype: str) -> Plan:
    """The launch plan of csrc/metal/launch/quantized_matmul.h for these arguments."""
    return call_plan(
        "quantized_matmul",
        ctypes.c_int64(M),
        ctypes.c_int64(N),
        ctypes.c_int64(K),
        ctypes.c_int(int(transpose)),
        ctypes.c_int(group_size),
        ctypes.c_int(bits),
        dtype.encode(),
    )


def run(x: np.ndarray, w: np.ndarray, scales: np.ndarray, biases: np.ndarray, transpose: bool,
        group_size: int, bits: int, dtype: str) -> np.ndarray:
    """``x @ w_hat.T`` (transpose) or ``x @ w_hat`` on the simulator, for 2-D uint32 ``w`` and
    ``x``, ``scales``, ``biases`` already in the output ``dtype`` (bfloat16 as uint16 bits).

    As on the GPU, every input is made row-contiguous first (the op's ``mx::contiguous``) and an
    empty contraction gives zeros without a dispatch.
    """
    storage = _STORAGE[dtype]
    x, scales, biases = (np.ascontiguousarray(a, dtype=storage) for a in (x, scales, biases))
    w = np.ascontiguousarray(w, dtype=np.uint32)
    K = x.shape[-1]
    N = w.shape[0] if transpose else w.shape[1] * 32 // bits
    # The host trusts the op's validation; here a mismatch would read the wrong codes.
    codes = (N, K) if transpose else (K, N)
    if w.shape[1] * 32 // bits != codes[1] or w.shape[0] != codes[0] or codes[1] % group_size:
        raise ValueError(f"[quantized_matmul] w of shape {w.shape} does not fit x of shape {x.shape}")
    if scales.shape != biases.shape or scales.shape != (codes[0], codes[1] // group_size):
        raise ValueError(f"[quantized_matmul] scales/biases of shapes {scales.shape}, {biases.shape} do not fit w")
    if K == 0:  # the op returns zeros without a dispatch
        return np.zeros((*x.shape[:-1], N), storage)
    out = poisoned((*x.shape[:-1], N), storage)
    if out.size == 0:
        return out
    p = plan(out.size // N, N, K, transpose, group_size, bits, dtype)
    execute(p, library("quantized_matmul"), [x, w, scales, biases], [out])
    return out
