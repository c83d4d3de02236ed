"""The device entry point: ops run as the fused op would run them on a Metal stream."""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from . import quantized_matmul as _quantized_matmul
from . import rms_norm as _rms_norm

_NAMES = {mx.float32: "float32", mx.float16: "float16", mx.bfloat16: "bfloat16"}


def _to_numpy(a: mx.array) -> np.ndarray:
    return np.array(a.view(mx.uint16)) if a.dtype == mx.bfloat16 else np.array(a)


def _to_mlx(a: np.ndarray, dtype: mx.Dtype) -> mx.array:
    return mx.array(a).view(mx.bfloat16) if dtype == mx.bfloat16 else mx.array(a)


def rms_norm(x: mx.array, weight: mx.array | None, eps: float, *, max_threads_per_group: int = 1024) -> mx.array:
    """``mlxr.fused.rms_norm`` on the simulated Metal device: output dtype
    ``promote(x, weight)``, inputs cast to it, then the Metal kernel (float32 accumulation,
    normalised value rounded to the output dtype before the weight multiply)."""
    dtype = mx.result_type(x, weight) if weight is not None else x.dtype
    if dtype not in _NAMES:
        raise TypeError(f"[rms_norm] no Metal kernel for {dtype}")
    xs = _to_numpy(x.astype(dtype))
    ws = None if weight is None else _to_numpy(weight.astype(dtype))
    out = _rms_norm.run(xs, ws, eps, _NAMES[dtype], max_threads_per_group=max_threads_per_group)
    return _to_mlx(out, dtype)


def quantized_matmul(x: mx.array, w: mx.array, scales: mx.array, biases: mx.array | None = None,
                     transpose: bool = True, group_size: int | None = None, bits: int | None = None,
                     mode: str = "affine") -> mx.array:
    """``mlxr.fused.quantized_matmul`` on the simulated Metal device: ``x @ w_hat.T``
    (transpose) or ``x @ w_hat`` with ``w_hat = scales * q + biases`` per group, output dtype
    ``promote(x, scales)``, x/scales/biases cast to it, float32 accumulation, one rounding.
    Only 2-D ``w`` has a kernel (the fused op runs batched ``w`` as its reference)."""
    if mode != "affine" or biases is None:
        raise ValueError("[quantized_matmul] the Metal kernels take mode='affine' with biases")
    dtype = mx.result_type(x, scales)
    if dtype not in _NAMES or w.ndim != 2:
        raise TypeError(f"[quantized_matmul] no Metal kernel for {dtype} with {w.ndim}-D w")
    group_size, bits = 64 if group_size is None else group_size, 4 if bits is None else bits
    x_np, scales_np, biases_np = (_to_numpy(a.astype(dtype)) for a in (x, scales, biases))
    out = _quantized_matmul.run(x_np, np.array(w), scales_np, biases_np, transpose, group_size, bits, _NAMES[dtype])
    return _to_mlx(out, dtype)


OPS = {
    "rms_norm": rms_norm,
    "quantized_matmul": quantized_matmul,
}


def run_op(op: str, *args, **kwargs) -> mx.array:
    """Runs ``op`` on metal-sim, e.g. ``run_op("rms_norm", x, weight, eps)``; MLX arrays in and out."""
    if op not in OPS:
        raise KeyError(f"metal-sim has no host for {op}; known: {sorted(OPS)}")
    return OPS[op](*args, **kwargs)
