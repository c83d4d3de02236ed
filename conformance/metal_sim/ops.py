"""The device entry point: ops run as the fused op would run them on a Metal stream."""

from __future__ import annotations

import mlx.core as mx
import numpy as np

from ...fused.rope import _offset_array
from ...reference._dtypes import output_dtype
from ...reference.layer_norm import layer_norm_dtype
from ...reference.rope import rope_inv_freqs
from . import add_rms_norm as _add_rms_norm
from . import layer_norm as _layer_norm
from . import quantized_matmul as _quantized_matmul
from . import rms_norm as _rms_norm
from . import rope as _rope
from . import softmax as _softmax
from . import swiglu as _swiglu

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


def rope(a: mx.array, dims: int, *, traditional: bool, base: float | None, scale: float, offset,
         freqs: mx.array | None = None, forward: bool = True, max_threads_per_group: int = 1024) -> mx.array:
    """``mlxr.fused.rope`` on the simulated Metal device: output dtype ``a.dtype``; the float32
    inverse frequencies the fused op computes (``rope_inv_freqs``) and int32 offsets go to the
    Metal kernel (float32 angles and rotation, rounded once). ``forward=False`` is the inverse
    map (the vjp's kernel)."""
    dtype = _kernel_dtype("rope", a.dtype)
    inv_freqs = rope_inv_freqs(dims, base, freqs, mx.float32)
    offsets = _offset_array(offset, a.shape[0]).astype(mx.int32)
    out = _rope.run(_to_numpy(a), np.array(offsets), np.array(inv_freqs), dims, traditional, scale,
                    _NAMES[dtype], forward=forward, max_threads_per_group=max_threads_per_group)
    return _to_mlx(out, dtype)


def softmax(x: mx.array, axis=-1) -> mx.array:
    """``mlxr.fused.softmax`` on the simulated Metal device: output dtype ``x.dtype``; other axes
    transposed to the end (and copied to rows, the op's ``mx::contiguous``), then the Metal kernel
    over the flattened softmax axes (float32 arithmetic, one rounding)."""
    from mlxr.fused.softmax import _axes

    _kernel_dtype("softmax", x.dtype)
    axes = _axes(x, axis)
    perm = [a for a in range(x.ndim) if a not in axes] + list(axes)
    moved = mx.transpose(x, perm) if x.ndim else x.reshape(1)
    y = _to_mlx(_softmax.run(_to_numpy(moved), max(len(axes), 1), _NAMES[x.dtype]), x.dtype)
    return mx.transpose(y, [perm.index(a) for a in range(x.ndim)]) if x.ndim else y.reshape(())


def swiglu(gate: mx.array, up: mx.array) -> mx.array:
    """``mlxr.fused.swiglu`` on the simulated Metal device: output dtype ``promote(gate, up)``;
    both cast, broadcast to one shape and copied to rows (the op's ``mx::contiguous``), then the
    Metal kernel (float32 arithmetic, one rounding)."""
    dtype = _kernel_dtype("swiglu", mx.result_type(gate, up))
    shape = tuple(mx.broadcast_shapes(gate.shape, up.shape))
    g, u = (_to_numpy(mx.broadcast_to(a.astype(dtype), shape)) for a in (gate, up))
    return _to_mlx(_swiglu.run(g, u, _NAMES[dtype]), dtype)


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
    "softmax": softmax,
    "swiglu": swiglu,
    "layer_norm": layer_norm,
    "add_rms_norm": add_rms_norm,
    "rope": rope,
}


def run_op(op: str, *args, **kwargs) -> mx.array:
    """Runs ``op`` on metal-sim, e.g. ``run_op("rms_norm", x, weight, eps)``; MLX arrays in and out."""
    if op not in OPS:
        raise KeyError(f"metal-sim has no host for {op}; known: {sorted(OPS)}")
    return OPS[op](*args, **kwargs)
