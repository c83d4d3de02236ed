"""The device entry point: ops run as the fused op would run them on a Metal stream."""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from ...reference._dtypes import output_dtype
from ...reference.layer_norm import layer_norm_dtype
from . import add_rms_norm as _add_rms_norm
from . import layer_norm as _layer_norm
from . import rms_norm as _rms_norm

_NAMES = {mx.float32: "float32", mx.float16: "float16", mx.bfloat16: "bfloat16"}


def _to_numpy(a: mx.array) -> np.ndarray:
    return np.array(a.view(mx.uint16)) if a.dtype == mx.bfloat16 else np.array(a)


def _to_mlx(a: np.ndarray, dtype: mx.Dtype) -> mx.array:
    return mx.array(a).view(mx.bfloat16) if dtype == mx.bfloat16 else mx.array(a)


def _kernel_dtype(op: str, dtype: mx.Dtype) -> mx.Dtype:
    if dtype not in _NAMES:
        raise TypeError(f"[{op}] no Metal kernel for {dtype}")
    return dtype


def _cast(dtype: mx.Dtype, *arrays: mx.array | None) -> list[np.ndarray | None]:
    """The arrays cast to ``dtype`` as numpy buffers (None stays None), as the op casts them."""
    return [None if a is None else _to_numpy(a.astype(dtype)) for a in arrays]


def rms_norm(x: mx.array, weight: mx.array | None, eps: float, *, max_threads_per_group: int = 1024) -> mx.array:
    """``mlxr.fused.rms_norm`` on the simulated Metal device: output dtype
    ``promote(x, weight)``, inputs cast to it, then the Metal kernel (float32 accumulation,
    normalised value rounded to the output dtype before the weight multiply)."""
    dtype = _kernel_dtype("rms_norm", mx.result_type(x, weight) if weight is not None else x.dtype)
    xs, ws = _cast(dtype, x, weight)
    out = _rms_norm.run(xs, ws, eps, _NAMES[dtype], max_threads_per_group=max_threads_per_group)
    return _to_mlx(out, dtype)


def layer_norm(x: mx.array, weight: mx.array | None, bias: mx.array | None, eps: float, *,
               max_threads_per_group: int = 1024) -> mx.array:
    """``mlxr.fused.layer_norm`` on the simulated Metal device: output dtype
    ``layer_norm_dtype(x, weight, bias)``, inputs cast to it, then the Metal kernel (float32
    mean and variance; normalised value, weight product and bias sum each rounded to it)."""
    dtype = _kernel_dtype("layer_norm", layer_norm_dtype(x, weight, bias))
    xs, ws, bs = _cast(dtype, x, weight, bias)
    out = _layer_norm.run(xs, ws, bs, eps, _NAMES[dtype], max_threads_per_group=max_threads_per_group)
    return _to_mlx(out, dtype)


def add_rms_norm(x: mx.array, residual: mx.array, weight: mx.array | None, eps: float, *,
                 max_threads_per_group: int = 1024) -> tuple[mx.array, mx.array]:
    """``mlxr.fused.add_rms_norm`` on the simulated Metal device: ``(normed, h)`` in
    ``promote(x, residual[, weight])``, inputs cast to it, then the Metal kernel (h the rounded
    sum, normed the rms_norm kernel's arithmetic on that h)."""
    dtype = _kernel_dtype("add_rms_norm", output_dtype(x, residual, weight))
    xs, rs, ws = _cast(dtype, x, residual, weight)
    normed, h = _add_rms_norm.run(xs, rs, ws, eps, _NAMES[dtype], max_threads_per_group=max_threads_per_group)
    return _to_mlx(normed, dtype), _to_mlx(h, dtype)


OPS = {"rms_norm": rms_norm, "layer_norm": layer_norm, "add_rms_norm": add_rms_norm}


def run_op(op: str, *args, **kwargs) -> mx.array:
    """Runs ``op`` on metal-sim, e.g. ``run_op("rms_norm", x, weight, eps)``; MLX arrays in and out."""
    if op not in OPS:
        raise KeyError(f"metal-sim has no host for {op}; known: {sorted(OPS)}")
    return OPS[op](*args, **kwargs)
