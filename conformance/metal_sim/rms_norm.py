"""rms_norm on the simulator: what csrc/metal/rms_norm.cpp does on a Mac, with numpy buffers."""

from __future__ import annotations

import ctypes

import numpy as np

from . import _host
from ._runtime import Plan, call_plan


def plan(n_rows: int, axis_size: int, w_stride: int, dtype: str, has_weight: bool, eps: float,
         max_threads_per_group: int = 1024) -> Plan:
    """The launch plan of csrc/metal/launch/rms_norm.h for these arguments."""
    return call_plan(
        "rms_norm",
        ctypes.c_int64(n_rows),
        ctypes.c_int64(axis_size),
        ctypes.c_int64(w_stride),
        dtype.encode(),
        ctypes.c_int(int(has_weight)),
        ctypes.c_float(eps),
        ctypes.c_int64(max_threads_per_group),
    )


def run(x: np.ndarray, weight: np.ndarray | None, eps: float, dtype: str, *,
        max_threads_per_group: int = 1024) -> np.ndarray:
    """RMSNorm of ``x`` (already in the output ``dtype``; bfloat16 as uint16 bits) on the simulator.

    As on the GPU, x is made row-contiguous first (the op's ``mx::contiguous``) and the weight
    is bound as it is, strides and all.
    """
    storage = _host.STORAGE[dtype]
    x = _host.row_contiguous(x, dtype)
    axis = x.shape[-1] if x.ndim else 1
    if x.size == 0:
        return np.empty(x.shape, storage)
    w_stride = 0
    if weight is not None:
        if weight.dtype != storage:
            raise TypeError(f"weight must be stored as {storage.__name__}, got {weight.dtype}")
        w_stride = weight.strides[0] // weight.itemsize
    p = plan(x.size // axis, axis, w_stride, dtype, weight is not None, eps, max_threads_per_group)
    inputs = [x] if weight is None else [x, weight]
    return _host.dispatch("rms_norm", p, inputs, x.shape, dtype)
