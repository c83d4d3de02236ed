"""Planted-bug RMSNorm candidates: each is wrong in one realistic way, and the conformance
engine must reject each (tests/test_engine_rejects.py asserts which check does).

Same signature as ``mx.fast.rms_norm(x, weight, eps)``.
"""

import ctypes

import mlx.core as mx
import numpy as np

from mlxr.reference import rms_norm as reference
from mlxr.reference._dtypes import accumulation_dtype, output_dtype


def _finish(normed, weight, out_dtype):
    y = normed.astype(out_dtype)
    return y * weight.astype(out_dtype) if weight is not None else y


def eps_outside_sqrt(x, weight, eps):
    """x / (sqrt(mean(x^2)) + eps): eps added after the square root."""
    out = output_dtype(x, weight)
    xa = x.astype(accumulation_dtype(out))
    return _finish(xa / (mx.sqrt(mx.mean(xa * xa, axis=-1, keepdims=True)) + eps), weight, out)


def half_accumulation(x, weight, eps):
    """Mean of squares in the input dtype: float16 overflows and loses bits on long rows."""
    out = output_dtype(x, weight)
    mean_sq = mx.mean(mx.square(x), axis=-1, keepdims=True)
    xa = x.astype(accumulation_dtype(out))
    return _finish(xa * mx.rsqrt(mean_sq.astype(xa.dtype) + eps), weight, out)


def wrong_axis(x, weight, eps):
    """Normalises over the last two axes once rank >= 3 (a flattening bug)."""
    out = output_dtype(x, weight)
    xa = x.astype(accumulation_dtype(out))
    axes = (-2, -1) if x.ndim >= 3 else -1
    return _finish(xa * mx.rsqrt(mx.mean(xa * xa, axis=axes, keepdims=True) + eps), weight, out)


def nan_swallowed(x, weight, eps):
    """Replaces NaN outputs by zero ("sanitising")."""
    y = reference(x, weight, eps)
    return mx.where(mx.isnan(y), mx.zeros_like(y), y)


def float32_output(x, weight, eps):
    """Always returns float32."""
    return reference(x, weight, eps).astype(mx.float32)


@mx.custom_function
def _wrong_grad(x, weight, eps):
    return reference(x, weight, eps)


@_wrong_grad.vjp
def _wrong_grad_vjp(primals, cotangent, output):
    # Drops the projection term of d/dx: treats 1/rms as a constant.
    x, weight, eps = primals
    xa = x.astype(mx.float32)
    inv = mx.rsqrt(mx.mean(xa * xa, axis=-1, keepdims=True) + eps)
    w = weight if weight is not None else mx.ones(x.shape[-1:], dtype=x.dtype)
    grad_x = (cotangent * w * inv).astype(x.dtype)
    grad_w = (cotangent * (xa * inv)).reshape(-1, x.shape[-1]).sum(axis=0).astype(w.dtype)
    return grad_x, grad_w if weight is not None else None, None


def wrong_gradient(x, weight, eps):
    """Correct forward, wrong vjp."""
    return _wrong_grad(x, weight, eps)


def skips_tail(x, weight, eps):
    """Sum of squares over whole 16-element blocks only: the row tail is never accumulated."""
    out = output_dtype(x, weight)
    xa = x.astype(accumulation_dtype(out))
    n = x.shape[-1]
    body = (n // 16) * 16
    sum_sq = mx.sum(xa[..., :body] ** 2, axis=-1, keepdims=True) if body else mx.zeros(xa.shape[:-1] + (1,), xa.dtype)
    return _finish(xa * mx.rsqrt(sum_sq / max(n, 1) + eps), weight, out)


def _raw_contiguous(a):
    """What a C kernel that ignores strides sees: size elements from the data pointer."""
    mx.eval(a)
    view = np.asarray(a)
    if view.size == 0:
        return np.zeros(view.shape, view.dtype)
    buffer = (ctypes.c_char * (view.size * view.itemsize)).from_address(view.__array_interface__["data"][0])
    return np.frombuffer(buffer, dtype=view.dtype, count=view.size).reshape(view.shape).copy()


def stride_ignoring(x, weight, eps):
    """A numpy 'kernel' reading the raw buffers as if row-contiguous (bfloat16: the reference)."""
    if x.dtype == mx.bfloat16 or (weight is not None and weight.dtype == mx.bfloat16):
        return reference(x, weight, eps)
    out = output_dtype(x, weight)
    acc = np.float64 if out == mx.float64 else np.float32
    out_np = np.float64 if out == mx.float64 else np.float32 if out == mx.float32 else np.float16
    xa = _raw_contiguous(x).astype(acc)
    inv = 1.0 / np.sqrt(np.mean(xa * xa, axis=-1, keepdims=True) + acc(eps))
    y = (xa * inv).astype(out_np)
    if weight is not None:
        y = y * _raw_contiguous(weight).astype(out_np)
    return mx.array(y)


def shape_baked_in(x, weight, eps):
    """Divides by the row length as a Python int: right eagerly, stale under shapeless compile."""
    out = output_dtype(x, weight)
    xa = x.astype(accumulation_dtype(out))
    mean_sq = mx.sum(xa * xa, axis=-1, keepdims=True) / x.shape[-1]
    return _finish(xa * mx.rsqrt(mean_sq + eps), weight, out)


def vmap_ignores_axis(x, weight, eps):
    """A custom vmap rule that assumes the batch axis is 0."""
    @mx.custom_function
    def f(a):
        return reference(a, weight, eps)

    @f.vmap
    def f_vmap(inputs, axes):
        return [reference(inputs[0], weight, eps)], [0]

    return f(x)


def writes_input(x, weight, eps):
    """Leaves its output in the input's buffer (an in-place kernel that was not allowed to be)."""
    y = reference(x, weight, eps)
    mx.eval(y)
    if x.dtype == y.dtype and x.dtype != mx.bfloat16:
        np.asarray(x)[...] = np.asarray(y)
    return y


def nondeterministic(x, weight, eps):
    """Jitters the last bit at random (like a racy reduction): accurate, not reproducible."""
    out = output_dtype(x, weight)
    xa = x.astype(accumulation_dtype(out))
    jitter = 1 + mx.array(np.random.randint(0, 2, x.shape) * 2.0**-23, dtype=xa.dtype)
    return _finish(xa * mx.rsqrt(mx.mean(xa * xa, axis=-1, keepdims=True) + eps) * jitter, weight, out)


def no_validation(x, weight, eps):
    """The reference without the fused op's argument checks."""
    return reference(x, weight, eps)
