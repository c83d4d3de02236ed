"""add_rms_norm on the simulator: what csrc/metal/add_rms_norm.cpp does on a Mac, with numpy
buffers."""

from __future__ import annotations

import numpy as np

from . import _host
from ._runtime import Plan, call_plan, execute, library, poisoned
from .rms_norm import plan_args


def plan(*args, **kwargs) -> Plan:
    """The launch plan of csrc/metal/launch/add_rms_norm.h for ``rms_norm.plan_args(*args,
    **kwargs)`` (its query is an RMSNormQuery)."""
    return call_plan("add_rms_norm", *plan_args(*args, **kwargs))


def run(x: np.ndarray, residual: np.ndarray, weight: np.ndarray | None, eps: float, dtype: str, *,
        max_threads_per_group: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """``(normed, h)`` of ``x + residual`` (both already in the output ``dtype``; bfloat16 as
    uint16 bits) on the simulator. As on the GPU, x and residual are made row-contiguous first
    and the weight is bound as it is, strides and all."""
    storage = _host.STORAGE[dtype]
    x, axis, n_rows = _host.rows(x, dtype)
    residual = _host.row_contiguous(residual, dtype)
    normed, h = poisoned(x.shape, storage), poisoned(x.shape, storage)
    if x.size == 0:
        return normed, h
    w_stride = _host.vector_stride(weight, storage, "weight")
    p = plan(n_rows, axis, w_stride, dtype, weight is not None, eps, max_threads_per_group)
    inputs = [x, residual] if weight is None else [x, residual, weight]
    execute(p, library("add_rms_norm"), inputs, [normed, h])
    return normed, h
