"""swiglu on the simulator: what csrc/metal/swiglu.cpp does on a Mac, with numpy buffers."""

from __future__ import annotations

import numpy as np

from . import _host
from ._runtime import Plan

WORK = 4  # kSwiGLUWork in csrc/metal/launch/swiglu.h


def plan(size: int, dtype: str, aligned: bool, max_threads_per_group: int = 1024) -> Plan:
    """The launch plan of csrc/metal/launch/swiglu.h for these arguments."""
    return _host.plan("swiglu", size, dtype, int(aligned), max_threads_per_group=max_threads_per_group)


def run(gate: np.ndarray, up: np.ndarray, dtype: str, *, max_threads_per_group: int = 1024) -> np.ndarray:
    """SwiGLU of ``gate`` and ``up`` (one shape, already in ``dtype``; bfloat16 as uint16 bits) on
    the simulator. As on the GPU, both are made row-contiguous first (views into a larger buffer
    keep their offset: the vector kernel runs only where every buffer is WORK-element aligned)."""
    gate, up = _host.row_contiguous(gate, dtype), _host.row_contiguous(up, dtype)
    if gate.shape != up.shape:
        raise ValueError(f"gate and up must have one shape, got {gate.shape} and {up.shape}")
    if gate.size == 0:
        return np.empty(gate.shape, gate.dtype)
    # The output is a fresh allocation: aligned.
    aligned = all(_host.byte_offset(a) % (WORK * a.itemsize) == 0 for a in (gate, up))
    p = plan(gate.size, dtype, aligned, max_threads_per_group)
    return _host.dispatch("swiglu", p, [gate, up], gate.shape, dtype)
