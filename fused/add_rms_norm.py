"""Fused residual add + RMSNorm (no MLX counterpart: ``mx.fast.rms_norm(x + residual, ...)``)."""

from __future__ import annotations

import mlx.core as mx

from .. import _ext
from ..reference import add_rms_norm as reference
from ..reference._dtypes import output_dtype
from ._dispatch import cast, has_kernel, resolve_stream, run_reference
from ._validate import (
    require_array,
    require_eps,
    require_floating,
    require_ndim_at_least,
    require_shape,
)

OP = "add_rms_norm"


def add_rms_norm(
    x: mx.array, residual: mx.array, weight: mx.array | None, eps: float, *, stream=None
) -> tuple[mx.array, mx.array]:
    """Residual add then RMSNorm: returns ``(normed, h)`` with ``h = x + residual`` and
    ``normed = h / sqrt(mean(h**2, axis=-1) + eps) * weight``.

    ``residual`` must have the shape of ``x``; ``weight`` may be None, otherwise its shape must
    be ``(x.shape[-1],)``. Both outputs have dtype ``promote(x, residual[, weight])``; ``h`` is
    the sum rounded to it (what ``x + residual`` gives) and ``normed`` is
    ``mlxr.fused.rms_norm(h, weight, eps)`` of that rounded ``h``. The fused kernel reads
    ``x`` and ``residual`` once and writes both outputs once. Runs the fused kernel where one
    exists for the stream's device and the output dtype, otherwise the reference
    (``mlxr.reference.add_rms_norm``); ``mlxr.fused.observe()`` shows which ran.
    """
    if stream is None:  # the common call, checked in C++ (csrc/bindings/hot_path.h)
        out = _ext.add_rms_norm_hot(x, residual, weight, eps, reference)
        if out is not None:
            return out
    require_array(OP, "x", x)
    require_ndim_at_least(OP, "x", x, 1)
    require_array(OP, "residual", residual)
    require_shape(OP, "residual", residual, tuple(x.shape), "the shape of x")
    if weight is not None:
        require_array(OP, "weight", weight)
        require_shape(OP, "weight", weight, (x.shape[-1],), "the last axis of x")
    eps = require_eps(OP, eps)
    out_dtype = output_dtype(x, residual, weight)
    require_floating(OP, "the output", out_dtype)
    s = resolve_stream(OP, stream)

    if not has_kernel(OP, s.device, out_dtype):
        return run_reference(OP, s, reference, x, residual, weight, eps)

    x, residual, weight = cast(out_dtype, s, x, residual, weight)
    normed, h = _ext.add_rms_norm(x, residual, weight, eps, reference, s)
    return normed, h
