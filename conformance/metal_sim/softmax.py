"""softmax on the simulator: what csrc/metal/softmax.cpp does on a Mac, with numpy buffers."""

from __future__ import annotations

import math

import numpy as np

from . import _host
from ._runtime import Plan


def plan(n_rows: int, axis_size: int, dtype: str, max_threads_per_group: int = 1024) -> Plan:
    """The launch plan of csrc/metal/launch/softmax.h for these arguments."""
    return _host.plan("softmax", n_rows, axis_size, dtype, max_threads_per_group=max_threads_per_group)


def run(x: np.ndarray, n_axes: int, dtype: str, *, max_threads_per_group: int = 1024) -> np.ndarray:
    """Softmax over the last ``n_axes`` axes of ``x`` (flattened into one row) on the simulator;
    ``x`` is in ``dtype`` (bfloat16 as uint16 bits) and made row-contiguous first, as on the GPU."""
    x = _host.row_contiguous(x, dtype)
    axis_size = math.prod(x.shape[x.ndim - n_axes :])
    if x.size == 0:
        return np.empty(x.shape, x.dtype)
    p = plan(x.size // axis_size, axis_size, dtype, max_threads_per_group)
    return _host.dispatch("softmax", p, [x], x.shape, dtype)
