"""rms_norm on the simulator: what csrc/metal/rms_norm.cpp does on a Mac, with numpy buffers."""

from __future__ import annotations

import ctypes

import numpy as np

from . import _host
from ._runtime import Plan, call_plan


def plan_args(n_rows: int, axis_size: int, w_stride: int, dtype: str, has_weight: bool, eps: float,
              max_threads_per_group: int = 1024) -> tuple:
    """The C arguments of an ``RMSNormQuery`` (rms_norm's and add_rms_norm's) and the thread limit."""
    return (ctypes.c_int64(n_rows), ctypes.c_int64(axis_size), ctypes.c_int64(w_stride), dtype.encode(),
            ctypes.c_int(int(has_weight)), ctypes.c_float(eps), ctypes.c_int64(max_threads_per_group))


def plan(*args, **kwargs) -> Plan:
    """The launch plan of csrc/metal/launch/rms_norm.h for ``plan_args(*args, **kwargs)``."""
    return call_plan("rms_norm", *plan_args(*args, **kwargs))


def run(x: np.ndarray, weight: np.ndarray | None, eps: float, dtype: str, *,
        max_threads_per_group: int = 1024) -> np.ndarray:
    """RMSNorm of ``x`` (already in the output ``dtype``; bfloat16 as uint16 bits) on the simulator.

    As on the GPU, x is made row-contiguous first (the op's ``mx::contiguous``) and the weight
    is bound as it is, strides and all.
    """
    x, axis, n_rows = _host.rows(x, dtype)
    if x.size == 0:
        return np.empty(x.shape, _host.STORAGE[dtype])
    w_stride = _host.vector_stride(weight, _host.STORAGE[dtype], "weight")
    p = plan(n_rows, axis, w_stride, dtype, weight is not None, eps, max_threads_per_group)
    inputs = [x] if weight is None else [x, weight]
    return _host.dispatch("rms_norm", p, inputs, x.shape, dtype)
