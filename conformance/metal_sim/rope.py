"""rope on the simulator: what csrc/metal/rope.cpp does on a Mac, with numpy buffers."""

from __future__ import annotations

import ctypes

import numpy as np

from . import _host
from ._runtime import Plan, call_plan


def plan(n_groups: int, n_t: int, n_m: int, row_size: int, dims: int, offset_stride: int, inv_stride: int,
         dtype: str, traditional: bool, forward: bool, scale: float, max_threads_per_group: int = 1024) -> Plan:
    """The launch plan of csrc/metal/launch/rope.h for these arguments."""
    return call_plan(
        "rope",
        *(ctypes.c_int64(v) for v in (n_groups, n_t, n_m, row_size, dims, offset_stride, inv_stride)),
        dtype.encode(),
        ctypes.c_int(int(traditional)),
        ctypes.c_int(int(forward)),
        ctypes.c_float(scale),
        ctypes.c_int64(max_threads_per_group),
    )


def run(x: np.ndarray, offset: np.ndarray, inv_freqs: np.ndarray, dims: int, traditional: bool, scale: float,
        dtype: str, *, forward: bool = True, max_threads_per_group: int = 1024) -> np.ndarray:
    """RoPE of ``x`` (shape ``(B, *, T, D)``, in ``dtype``; bfloat16 as uint16 bits) on the
    simulator, ``offset`` int32 of size 1 or B, ``inv_freqs`` float32 of size ``dims / 2``. As on
    the GPU, x is made row-contiguous first; offset and inv_freqs are bound as they are."""
    x, row_size, n_rows = _host.rows(x, dtype)
    if x.size == 0:
        return np.empty(x.shape, _host.STORAGE[dtype])
    n_groups = offset.size if offset.size > 1 else 1
    n_t = x.shape[-2]
    p = plan(n_groups, n_t, n_rows // (n_groups * n_t), row_size, dims,
             _host.vector_stride(offset.reshape(-1) if offset.ndim == 0 else offset, np.int32, "offset"),
             _host.vector_stride(inv_freqs, np.float32, "inv_freqs"),
             dtype, traditional, forward, scale, max_threads_per_group)
    return _host.dispatch("rope", p, [x, offset, inv_freqs], x.shape, dtype)
