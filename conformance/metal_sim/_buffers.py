"""What the Metal host code does to arrays before it encodes a plan, on numpy buffers."""

from __future__ import annotations

import numpy as np

from ._runtime import poisoned

# numpy storage of each kernel dtype (bfloat16 as its uint16 bits).
STORAGE = {"float32": np.float32, "float16": np.float16, "bfloat16": np.uint16}


def rows(x: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray, int, int]:
    """``(x, out, axis_size, n_rows)``: ``x`` made row-contiguous (the op's ``mx::contiguous``
    on GPU streams) and a poisoned output of its shape."""
    storage = STORAGE[dtype]
    x = np.ascontiguousarray(x, dtype=storage)
    axis = x.shape[-1] if x.ndim else 1
    return x, poisoned(x.shape, storage), axis, (x.size // axis if axis else 0)


def vector_stride(a: np.ndarray | None, storage, name: str) -> int:
    """Elements between the entries of the 1-D ``a`` as bound (any sign, 0 for a broadcast);
    0 when ``a`` is absent."""
    if a is None:
        return 0
    if a.dtype != storage:
        raise TypeError(f"{name} must be stored as {np.dtype(storage).name}, got {a.dtype}")
    return a.strides[0] // a.itemsize
