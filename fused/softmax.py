"""Fused softmax, a drop-in for ``mx.softmax``."""

from __future__ import annotations

import numbers

import mlx.core as mx

from .. import _ext
from ..reference import softmax as reference
from ._dispatch import has_kernel, resolve_stream, run_reference
from ._validate import require_array, require_floating

OP = "softmax"


def _axes(x: mx.array, axis) -> tuple[int, ...]:
    """``axis`` (int, sequence of ints, or None for every axis) as sorted non-negative axes."""
    if axis is None:
        return tuple(range(x.ndim))
    many = isinstance(axis, (list, tuple))
    items = list(axis) if many else [axis]
    if many and not items:
        raise ValueError(f"[{OP}] axis must name at least one axis, got {axis!r}")
    out = []
    for a in items:
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            raise ValueError(f"[{OP}] axis must be None, an int or a sequence of ints, got {axis!r}")
        if not -x.ndim <= a < x.ndim:
            raise ValueError(f"[{OP}] axis {a} is out of range for an array of shape {tuple(x.shape)}")
        out.append(int(a) % x.ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"[{OP}] axis contains a repeated axis: {axis!r}")
    return tuple(sorted(out))


def softmax(x: mx.array, axis=-1, *, precise: bool = False, stream=None) -> mx.array:
    """Softmax over ``axis``: ``y = exp(x - max(x)) / sum(exp(x - max(x)))``.

    ``axis`` is an int, a sequence of ints or None (every axis); note the default is the last
    axis (``mx.softmax`` defaults to every axis). ``x`` must have a floating dtype, which is
    also the output dtype. Arithmetic is float32 (float64 for float64) with one rounding at
    the end, whatever ``precise`` says: the result equals ``mx.softmax(..., precise=True)`` to
    rounding, and ``precise`` is accepted for signature compatibility. A slice containing NaN
    or +inf, or entirely -inf, is NaN (see ``mlxr.reference.softmax``).

    The fused kernel makes one online pass over each slice (running max and rescaled sum) and
    one writing pass. Other axes reach it as a transposed view (no copy): a single non-last
    axis of a dense array runs 16 neighbouring slices at once, one per vector lane. Runs the
    fused kernel where one exists for the stream's device and dtype, otherwise the reference;
    ``mlxr.fused.observe()`` shows which ran.
    """
    if stream is None:  # the common call, checked in C++ (csrc/bindings/hot_path.h)
        y = _ext.softmax_hot(x, axis, precise, reference)
        if y is not None:
            return y
    require_array(OP, "x", x)
    require_floating(OP, "x", x.dtype)
    axes = _axes(x, axis)
    if not isinstance(precise, bool):
        raise ValueError(f"[{OP}] precise must be a bool, got {type(precise).__name__}")
    s = resolve_stream(OP, stream)

    if not has_kernel(OP, s.device, x.dtype):
        return run_reference(OP, s, reference, x, axis=list(axes) if axes else None)

    if x.ndim == 0:  # a scalar is its own (one-element) softmax axis
        return _ext.softmax(x.reshape(1, stream=s), 1, reference, s).reshape((), stream=s)
    if axes == (x.ndim - 1,):
        return _ext.softmax(x, 1, reference, s)
    # Other axes are transposed to the end (a view, no copy or reshape: shapeless-compile safe).
    perm = [a for a in range(x.ndim) if a not in axes] + list(axes)
    y = _ext.softmax(mx.transpose(x, perm, stream=s), len(axes), reference, s)
    return mx.transpose(y, [perm.index(a) for a in range(x.ndim)], stream=s)
