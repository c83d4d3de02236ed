"""What every simulated Metal host does with numpy buffers: storage types, the op's
``mx::contiguous`` and the poisoned output."""

from __future__ import annotations

import ctypes

import numpy as np

from ._runtime import Plan, call_plan, execute, library, poisoned

# Buffer element types by kernel dtype name (bfloat16 as its uint16 bits).
STORAGE = {"float32": np.float32, "float16": np.float16, "bfloat16": np.uint16}


def row_contiguous(a: np.ndarray, dtype: str) -> np.ndarray:
    """``a`` as the kernel reads it after the op's ``mx::contiguous`` (a no-op when row-contiguous)."""
    return np.ascontiguousarray(a, dtype=STORAGE[dtype])


def rows(x: np.ndarray, dtype: str) -> tuple[np.ndarray, int, int]:
    """``(x, axis_size, n_rows)``: ``x`` made row-contiguous (the op's ``mx::contiguous``) and
    its row shape."""
    x = row_contiguous(x, dtype)
    axis = x.shape[-1] if x.ndim else 1
    return x, axis, (x.size // axis if axis else 0)


def vector_stride(a: np.ndarray | None, storage, name: str) -> int:
    """Elements between the entries of the 1-D ``a`` as bound (any sign, 0 for a broadcast);
    0 when ``a`` is absent."""
    if a is None:
        return 0
    if a.dtype != storage:
        raise TypeError(f"{name} must be stored as {np.dtype(storage).name}, got {a.dtype}")
    return a.strides[0] // a.itemsize


def byte_offset(a: np.ndarray) -> int:
    """Bytes between the start of ``a``'s allocation and its first element (MLX's array offset)."""
    root = a
    while isinstance(root.base, np.ndarray):
        root = root.base
    return a.ctypes.data - root.ctypes.data


def plan(op: str, *args, max_threads_per_group: int = 1024) -> Plan:
    """``mlxr_plan_<op>`` with int arguments as int64 and str as char*, then the thread limit."""
    c_args = [a.encode() if isinstance(a, str) else ctypes.c_int64(a) for a in args]
    return call_plan(op, *c_args, ctypes.c_int64(max_threads_per_group))


def dispatch(op: str, p: Plan, inputs: list[np.ndarray], out_shape, dtype: str) -> np.ndarray:
    """A poisoned output of ``out_shape`` filled by ``p`` on ``kernels/<op>.metal``."""
    out = poisoned(out_shape, STORAGE[dtype])
    execute(p, library(op), inputs, [out])
    return out
