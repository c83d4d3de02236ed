"""Argument checks shared by the fused ops: every failure is a ValueError starting '[op]'."""

from __future__ import annotations

import math
import numbers

import mlx.core as mx


def require_array(op: str, name: str, value) -> mx.array:
    if not isinstance(value, mx.array):
        raise ValueError(f"[{op}] {name} must be an mlx.core.array, got {type(value).__name__}")
    return value


def require_floating(op: str, name: str, dtype: mx.Dtype) -> None:
    if not mx.issubdtype(dtype, mx.floating):
        raise ValueError(f"[{op}] {name} must have a floating dtype, got {dtype}")


def require_ndim_at_least(op: str, name: str, a: mx.array, ndim: int) -> None:
    if a.ndim < ndim:
        raise ValueError(f"[{op}] {name} must have at least {ndim} dimension(s), got shape {tuple(a.shape)}")


def require_shape(op: str, name: str, a: mx.array, shape: tuple, why: str) -> None:
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"[{op}] {name} must have shape {tuple(shape)} ({why}), got {tuple(a.shape)}")


def require_eps(op: str, eps) -> float:
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise ValueError(f"[{op}] eps must be a real number, got {type(eps).__name__}")
    eps = float(eps)
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"[{op}] eps must be finite and >= 0, got {eps}")
    return eps
