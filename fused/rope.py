"""Fused rotary positional encoding, a drop-in for ``mx.fast.rope``."""

from __future__ import annotations

import math
import numbers

import mlx.core as mx

from .. import _ext
from ..reference import rope as reference
from ..reference._dtypes import accumulation_dtype
from ..reference.rope import rope_inv_freqs, rope_rotate
from ._dispatch import has_kernel, resolve_stream, run_reference
from ._validate import require_array, require_floating, require_ndim_at_least

OP = "rope"
_INT32 = (-(2**31), 2**31 - 1)


def _require_dims(dims, last: int) -> int:
    if isinstance(dims, bool) or not isinstance(dims, numbers.Integral):
        raise ValueError(f"[rope] dims must be an int, got {type(dims).__name__}")
    if dims <= 0:
        raise ValueError(f"[rope] dims must be positive, got {dims}")
    if dims % 2:
        raise ValueError(f"[rope] dims must be even, got {dims}")
    if dims > last:
        raise ValueError(f"[rope] dims must not exceed the last axis of a ({last}), got {dims}")
    return int(dims)


def _require_real(name: str, value, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"[rope] {name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0):
        raise ValueError(f"[rope] {name} must be finite{' and > 0' if positive else ''}, got {value}")
    return value


def _offset_array(offset, batch: int) -> mx.array:
    """``offset`` as an integer array of size 1 or ``batch`` (MLX's rules; int32 range)."""
    if isinstance(offset, mx.array):
        if not mx.issubdtype(offset.dtype, mx.integer):
            raise ValueError(f"[rope] offset must have an integer dtype, got {offset.dtype}")
        if offset.ndim > 1:
            raise ValueError(f"[rope] offset must be a scalar or have one dimension, got shape {tuple(offset.shape)}")
        if offset.size not in (1, batch):
            raise ValueError(
                f"[rope] offset must be a scalar or have {batch} elements (the batch axis of a), "
                f"got shape {tuple(offset.shape)}"
            )
        return offset
    if isinstance(offset, bool) or not isinstance(offset, numbers.Integral):
        raise ValueError(f"[rope] offset must be an int or an integer mlx.core.array, got {type(offset).__name__}")
    if not _INT32[0] <= offset <= _INT32[1]:
        raise ValueError(f"[rope] offset must fit in int32, got {offset}")
    return mx.array(int(offset), dtype=mx.int32)


_INV_FREQS: dict = {}


def _cached_inv_freqs(dims: int, base: float, dtype: mx.Dtype, device: mx.Device) -> mx.array:
    # Base-derived frequencies are constants: build them once per device, not as three small
    # ops in every call's graph. Built on the call's device, as the reference builds them there:
    # MLX's CPU and CUDA float32 exp differ by an ulp, which at position 1000 moves an output
    # by 1e-6, and the kernel's angles are the reference's bit for bit.
    key = (dims, base, dtype, str(device))
    if key not in _INV_FREQS:
        with mx.stream(device):
            inv = rope_inv_freqs(dims, base, None, dtype)
            mx.eval(inv)
        _INV_FREQS[key] = inv
        if dtype == mx.float32:  # the hot path's frequencies (it never builds them)
            _ext.rope_keep_inv_freqs(dims, base, device, inv)
    return _INV_FREQS[key]


def rope(
    a: mx.array,
    dims: int,
    *,
    traditional: bool,
    base: float | None,
    scale: float,
    offset,
    freqs: mx.array | None = None,
    stream=None,
) -> mx.array:
    """Rotary positional encoding of the first ``dims`` features of ``a`` (shape ``(B, *, T, D)``).

    The row at position ``t`` (axis -2) of batch ``b`` has angles ``theta_i = (t + offset[b]) *
    scale * inv_freq_i``, ``inv_freq_i = base ** (-2i / dims)`` or ``1 / freqs[i]`` (exactly one
    of ``base``/``freqs``); each pair ``(x1, x2)`` becomes ``(x1 cos - x2 sin, x1 sin + x2 cos)``.
    Pairs are ``(x[2i], x[2i+1])`` when ``traditional``, else ``(x[i], x[i + dims/2])``; features
    from ``dims`` on pass through. ``offset`` is an int or an integer array of size 1 or B.

    The output dtype is ``a.dtype``; angles and the rotation are computed in float32 (float64
    for float64) and rounded once. Runs the fused kernel where one exists for the stream's
    device and dtype, otherwise the reference (``mlxr.reference.rope``); ``mlxr.fused.observe()``
    shows which ran.
    """
    if stream is None and freqs is None:  # the common call, checked in C++ (csrc/bindings/hot_path.h)
        y = _ext.rope_hot(a, dims, traditional, base, scale, offset, rope_rotate)
        if y is not None:
            return y
    require_array(OP, "a", a)
    require_ndim_at_least(OP, "a", a, 3)
    require_floating(OP, "a", a.dtype)
    dims = _require_dims(dims, a.shape[-1])
    if not isinstance(traditional, bool):
        raise ValueError(f"[rope] traditional must be a bool, got {type(traditional).__name__}")
    if (base is None) == (freqs is None):
        raise ValueError("[rope] exactly one of base and freqs must be given (the other None)")
    if base is not None:
        base = _require_real("base", base, positive=True)
    else:
        require_array(OP, "freqs", freqs)
        if tuple(freqs.shape) != (dims // 2,):
            raise ValueError(f"[rope] freqs must have shape ({dims // 2},) (dims / 2), got {tuple(freqs.shape)}")
        if freqs.dtype == mx.bool_ or mx.issubdtype(freqs.dtype, mx.complexfloating):
            raise ValueError(f"[rope] freqs must have a real dtype, got {freqs.dtype}")
    scale = _require_real("scale", scale)
    offset = _offset_array(offset, a.shape[0])
    s = resolve_stream(OP, stream)

    if not has_kernel(OP, s.device, a.dtype):
        return run_reference(
            OP, s, reference, a, dims, traditional=traditional, base=base, scale=scale, offset=offset, freqs=freqs
        )

    acc = accumulation_dtype(a.dtype)
    if freqs is None:
        inv_freqs = _cached_inv_freqs(dims, base, acc, s.device)
    else:
        with mx.stream(s):
            inv_freqs = rope_inv_freqs(dims, base, freqs, acc)
    return _ext.rope(a, offset, inv_freqs, dims, traditional, scale, True, rope_rotate, s)
