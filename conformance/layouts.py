"""Memory layouts of array inputs, each asserted to be what it claims before it is used.

A layout turns logical values (float64 numpy, already representable in the target dtype) into
an evaluated MLX array whose *memory* has the claimed shape: a stride-ignoring kernel reads the
NaN sentinels planted in the gaps of strided and offset views, or the wrong elements of
transposed, broadcast and reversed views.
"""

from __future__ import annotations

import dataclasses
import math

import mlx.core as mx
import numpy as np

LAYOUTS = ("contiguous", "transposed", "strided", "broadcast", "offset", "reversed")


class LayoutError(RuntimeError):
    """The engine failed to build the layout it claims (an engine bug, never a candidate's)."""


@dataclasses.dataclass
class Built:
    view: mx.array  # what the candidate receives
    parent: mx.array  # the buffer the view lives in (checked for mutation)
    values: np.ndarray  # the view's logical values, float64


def applicable(name: str, shape: tuple[int, ...]) -> bool:
    """Whether ``name`` can be realised (and told apart from contiguous) for ``shape``."""
    size = math.prod(shape)
    if name == "contiguous":
        return True
    if size == 0:
        return False
    if name == "transposed":
        return len(shape) >= 2 and shape[-1] > 1 and shape[-2] > 1
    if name in ("broadcast", "reversed", "strided"):
        return any(d > 1 for d in shape)
    return name in LAYOUTS


def to_mx(values: np.ndarray, dtype: mx.Dtype) -> mx.array:
    """An evaluated, row-contiguous MLX array holding ``values`` rounded to ``dtype``."""
    a = mx.array(np.ascontiguousarray(values, dtype=np.float64), dtype=mx.float64)
    a = a.astype(dtype, stream=mx.cpu)
    mx.eval(a)
    return a


def to_f64(a: mx.array) -> np.ndarray:
    """The logical values of ``a`` as float64 numpy (any layout, any float dtype)."""
    return np.array(a.astype(mx.float64, stream=mx.cpu))


def raw(a: mx.array) -> np.ndarray:
    """A zero-copy numpy view of ``a``'s memory (bfloat16 seen as uint16), strides included."""
    bits = a.view(mx.uint16) if a.dtype == mx.bfloat16 else a
    mx.eval(bits)
    return np.asarray(bits)


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _elem_strides(a: np.ndarray) -> tuple[int, ...]:
    return tuple(s // a.itemsize for s in a.strides)


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise LayoutError(what)


def _row_major(shape) -> tuple[int, ...]:
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= max(d, 1)
    return tuple(reversed(strides))


def _is_contiguous(r: np.ndarray) -> bool:
    want = _row_major(r.shape)
    return all(d <= 1 or s == w for d, s, w in zip(r.shape, _elem_strides(r), want))


def build(name: str, values: np.ndarray, dtype: mx.Dtype, params: dict | None = None) -> Built:
    """``values`` laid out as ``name`` (see module docstring); raises LayoutError if unrealised.

    params: strided {"axis", "step", "start"}; broadcast {"axis"}; offset {"offset"};
    reversed {"axes"}; transposed and contiguous none.
    """
    params = params or {}
    shape = values.shape
    if not applicable(name, shape):
        raise LayoutError(f"layout {name} is not realisable for shape {shape}")
    nan = np.nan
    if name == "contiguous":
        parent = view = to_mx(values, dtype)
    elif name == "transposed":
        parent = to_mx(np.swapaxes(values, -1, -2), dtype)
        view = mx.swapaxes(parent, -1, -2)
    elif name == "strided":
        axis, step, start = params.get("axis", -1) % len(shape), params.get("step", 2), params.get("start", 0)
        pshape = list(shape)
        pshape[axis] = shape[axis] * step
        host = np.full(pshape, nan)
        index = tuple(slice(start, None, step) if i == axis else slice(None) for i in range(len(shape)))
        host[index] = values
        parent = to_mx(host, dtype)
        view = parent[index]
    elif name == "broadcast":
        axis = params.get("axis", 0) % len(shape)
        values = np.broadcast_to(np.take(values, [0], axis=axis), shape)
        parent = to_mx(np.take(values, [0], axis=axis), dtype)
        view = mx.broadcast_to(parent, shape)
    elif name == "offset":
        offset = params.get("offset", 1)
        host = np.concatenate([np.full(offset, nan), values.ravel()])
        parent = to_mx(host, dtype)
        view = parent[offset:].reshape(shape)
    elif name == "reversed":
        axes = tuple(a % len(shape) for a in params.get("axes", (0,)))
        parent = to_mx(np.flip(values, axes), dtype)
        view = parent[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(len(shape)))]
    else:
        raise LayoutError(f"unknown layout {name}")
    mx.eval(view)
    _assert_layout(name, view, parent, params, shape)
    logical = to_f64(view)
    expected = to_f64(to_mx(values, dtype))
    _check(np.array_equal(logical, expected, equal_nan=True), f"{name}: view values differ from the intended values")
    return Built(view=view, parent=parent, values=expected)


def _assert_layout(name, view, parent, params, shape) -> None:
    rv, rp = raw(view), raw(parent)
    _check(rv.shape == tuple(shape), f"{name}: shape {rv.shape} != {shape}")
    if rv.size == 0:  # empty arrays have no memory to lay out
        return
    sv, sp = _elem_strides(rv), _elem_strides(rp)
    offset = (_address(rv) - _address(rp)) // rv.itemsize if rv.size else 0
    _check(_is_contiguous(rp), f"{name}: parent buffer is not row-contiguous")
    if name == "contiguous":
        _check(_is_contiguous(rv) and offset == 0, "contiguous: view is not row-contiguous at offset 0")
    elif name == "transposed":
        _check(sv[:-2] + (sv[-1], sv[-2]) == sp and not _is_contiguous(rv), f"transposed: strides {sv} vs parent {sp}")
    elif name == "strided":
        axis, step, start = params.get("axis", -1) % len(shape), params.get("step", 2), params.get("start", 0)
        want = tuple(s * step if i == axis else s for i, s in enumerate(sp))
        _check(sv == want and offset == start * sp[axis], f"strided: strides {sv} offset {offset}, want {want} {start * sp[axis]}")
        gaps = np.ones(rp.shape, dtype=bool)
        gaps[tuple(slice(start, None, step) if i == axis else slice(None) for i in range(len(shape)))] = False
        _check(step > 1 and bool(np.isnan(to_f64(parent)[gaps]).all()), "strided: gaps do not hold NaN sentinels")
    elif name == "broadcast":
        axis = params.get("axis", 0) % len(shape)
        _check(sv[axis] == 0 and shape[axis] > 1, f"broadcast: stride {sv[axis]} on axis {axis} of {shape}")
    elif name == "offset":
        n = params.get("offset", 1)
        _check(_is_contiguous(rv) and offset == n, f"offset: view at {offset}, want {n}")
        _check(bool(np.isnan(to_f64(parent)[:n]).all()), "offset: leading elements do not hold NaN sentinels")
    elif name == "reversed":
        axes = {a % len(shape) for a in params.get("axes", (0,))}
        _check(all((sv[a] < 0) == (a in axes and shape[a] > 1) for a in range(len(shape)) if shape[a] > 1)
               and any(shape[a] > 1 for a in axes), f"reversed: strides {sv} for axes {sorted(axes)}")
