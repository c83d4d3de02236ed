"""layer_norm on the simulator: what csrc/metal/layer_norm.cpp does on a Mac, with numpy buffers."""

from __future__ import annotations

import ctypes

import numpy as np

from . import _host
from ._runtime import Plan, call_plan


def plan(n_rows: int, axis_size: int, w_stride: int, b_stride: int, dtype: str, has_weight: bool,
         has_bias: bool, eps: float, max_threads_per_group: int = 1024) -> Plan:
    """The launch plan of csrc/metal/launch/layer_norm.h for these arguments."""
    return call_plan(
        "layer_norm",
        ctypes.c_int64(n_rows),
        ctypes.c_int64(axis_size),
        ctypes.c_int64(w_stride),
        ctypes.c_int64(b_stride),
        dtype.encode(),
        ctypes.c_int(int(has_weight)),
        ctypes.c_int(int(has_bias)),
        ctypes.c_float(eps),
        ctypes.c_int64(max_threads_per_group),
    )


def run(x: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None, eps: float, dtype: str, *,
        max_threads_per_group: int = 1024) -> np.ndarray:
    """LayerNorm of ``x`` (already in the output ``dtype``; bfloat16 as uint16 bits) on the
    simulator. As on the GPU, x is made row-contiguous first and the weight and bias are bound
    as they are, strides and all."""
    x, axis, n_rows = _host.rows(x, dtype)
    if x.size == 0:
        return np.empty(x.shape, _host.STORAGE[dtype])
    w_stride = _host.vector_stride(weight, _host.STORAGE[dtype], "weight")
    b_stride = _host.vector_stride(bias, _host.STORAGE[dtype], "bias")
    p = plan(n_rows, axis, w_stride, b_stride, dtype, weight is not None, bias is not None, eps,
             max_threads_per_group)
    inputs = [x] + [a for a in (weight, bias) if a is not None]
    return _host.dispatch("layer_norm", p, inputs, x.shape, dtype)
