"""Residual add + RMSNorm reference (the pre-norm transformer block's `h = x + residual`)."""

import mlx.core as mx

from ._dtypes import output_dtype
from .rms_norm import rms_norm


def add_rms_norm(
    x: mx.array, residual: mx.array, weight: mx.array | None, eps: float
) -> tuple[mx.array, mx.array]:
    """Returns ``(rms_norm(h, weight, eps), h)`` with ``h = x + residual``.

    Dtype rules: everything is in ``promote(x, residual[, weight])``; ``h`` is the sum rounded
    to that dtype (exactly what ``x + residual`` gives in MLX), and the norm is
    ``mlxr.reference.rms_norm`` of that rounded ``h`` (float32 accumulation, float64 for
    float64). Arguments are not validated here; ``mlxr.fused.add_rms_norm`` validates.
    """
    out_dtype = output_dtype(x, residual, weight)
    h = x.astype(out_dtype) + residual.astype(out_dtype)
    return rms_norm(h, None if weight is None else weight.astype(out_dtype), eps), h
