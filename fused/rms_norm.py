"""Fused RMSNorm, a drop-in for ``mx.fast.rms_norm``."""

from __future__ import annotations

import mlx.core as mx

from .. import _ext
from ..reference import rms_norm as reference
from ..reference._dtypes import output_dtype
from ._dispatch import cast, has_kernel, resolve_stream, run_reference
from ._validate import (
    require_array,
    require_eps,
    require_floating,
    require_ndim_at_least,
    require_shape,
)

OP = "rms_norm"


def rms_norm(x: mx.array, weight: mx.array | None, eps: float, *, stream=None) -> mx.array:
    """RMSNorm over the last axis: ``y = x / sqrt(mean(x**2, axis=-1) + eps) * weight``.

    ``weight`` may be None (no scaling); otherwise its shape must be ``(x.shape[-1],)``.
    The output dtype is ``promote(x.dtype, weight.dtype)``. Accumulation is in float32
    (float64 for float64 outputs); the normalised value is rounded to the output dtype before
    the weight multiply, as in ``mx.fast.rms_norm``. Runs the fused kernel where one exists
    for the stream's device and the output dtype, otherwise the reference
    (``mlxr.reference.rms_norm``); ``mlxr.fused.observe()`` shows which ran.
    """
    if stream is None:  # the common call, checked in C++ (csrc/bindings/hot_path.h)
        y = _ext.rms_norm_hot(x, weight, eps, reference)
        if y is not None:
            return y
    require_array(OP, "x", x)
    require_ndim_at_least(OP, "x", x, 1)
    if weight is not None:
        require_array(OP, "weight", weight)
        require_shape(OP, "weight", weight, (x.shape[-1],), "the last axis of x")
    eps = require_eps(OP, eps)
    out_dtype = output_dtype(x, weight)
    require_floating(OP, "the output", out_dtype)
    s = resolve_stream(OP, stream)

    if not has_kernel(OP, s.device, out_dtype):
        return run_reference(OP, s, reference, x, weight, eps)

    x, weight = cast(out_dtype, s, x, weight)
    return _ext.rms_norm(x, weight, eps, reference, s)
