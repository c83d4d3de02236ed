"""Fused LayerNorm, a drop-in for ``mx.fast.layer_norm``."""

from __future__ import annotations

import mlx.core as mx

from .. import _ext
from ..reference import layer_norm as reference
from ..reference.layer_norm import layer_norm_dtype
from ._dispatch import cast, has_kernel, resolve_stream, run_reference
from ._validate import (
    require_array,
    require_eps,
    require_floating,
    require_ndim_at_least,
    require_shape,
)

OP = "layer_norm"


def layer_norm(
    x: mx.array, weight: mx.array | None, bias: mx.array | None, eps: float, *, stream=None
) -> mx.array:
    """LayerNorm over the last axis:
    ``y = (x - mean(x, -1)) / sqrt(var(x, -1) + eps) * weight + bias`` (biased variance).

    ``weight`` and ``bias`` may each be None; otherwise their shape must be
    ``(x.shape[-1],)``. The output dtype is that of ``mx.fast.layer_norm``:
    ``promote(x.dtype, weight.dtype[, bias.dtype])`` with a weight, ``x.dtype`` without one.
    Mean and variance accumulate in float32 (float64 for float64 outputs); the normalised
    value is rounded to the output dtype before the weight multiply and the bias add, each
    done in the output dtype. Runs the fused kernel where one exists for the stream's device
    and the output dtype, otherwise the reference (``mlxr.reference.layer_norm``);
    ``mlxr.fused.observe()`` shows which ran.
    """
    if stream is None:  # the common call, checked in C++ (csrc/bindings/hot_path.h)
        y = _ext.layer_norm_hot(x, weight, bias, eps, reference)
        if y is not None:
            return y
    require_array(OP, "x", x)
    require_ndim_at_least(OP, "x", x, 1)
    for name, param in (("weight", weight), ("bias", bias)):
        if param is not None:
            require_array(OP, name, param)
            require_shape(OP, name, param, (x.shape[-1],), "the last axis of x")
    eps = require_eps(OP, eps)
    out_dtype = layer_norm_dtype(x, weight, bias)
    require_floating(OP, "the output", out_dtype)
    s = resolve_stream(OP, stream)

    if not has_kernel(OP, s.device, out_dtype):
        return run_reference(OP, s, reference, x, weight, bias, eps)

    x, weight, bias = cast(out_dtype, s, x, weight, bias)
    return _ext.layer_norm(x, weight, bias, eps, reference, s)
