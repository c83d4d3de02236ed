"""Fused affine quantized matmul, a drop-in for ``mx.quantized_matmul(mode="affine")``."""

from __future__ import annotations

import mlx.core as mx

from .. import _ext
from ..reference import quantized_matmul as reference
from ._dispatch import has_kernel, note_fallback, resolve_stream
from ._validate import require_array, require_floating, require_ndim_at_least

OP = "quantized_matmul"
GROUP_SIZES = (32, 64, 128)
BITS = (4, 8)


def _require_choice(name: str, value, choices) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in choices:
        raise ValueError(f"[{OP}] {name} must be one of {choices}, got {value!r}")
    return value


def quantized_matmul(
    x: mx.array,
    w: mx.array,
    scales: mx.array,
    biases: mx.array | None = None,
    transpose: bool = True,
    group_size: int | None = None,
    bits: int | None = None,
    mode: str = "affine",
    *,
    stream=None,
) -> mx.array:
    """``x @ w_hat.T`` (``transpose=True``) or ``x @ w_hat`` with affine-quantized ``w``.

    ``w`` is ``mx.quantize`` output: uint32 words packing ``32 // bits`` codes ``q`` each (code
    ``i`` at bits ``i*bits``), and ``w_hat = scales * q + biases`` per group of ``group_size``
    codes along w's last axis. ``bits`` is 4 or 8 (default 4), ``group_size`` 32, 64 or 128
    (default 64), ``mode`` must be ``"affine"`` and ``biases`` is required. The output dtype is
    ``promote(x.dtype, scales.dtype)``; ``w_hat`` and the accumulation are float32 (float64
    for float64 outputs) and the result is rounded once. ``x`` may have any leading shape.

    Runs the fused kernel (CPU, or GPU where one is compiled: ``_dispatch.GPU_KERNEL_DTYPES``)
    for float32/float16/bfloat16 outputs and 2-D ``w``; otherwise (float64, batched ``w``, a
    GPU without one) the reference ``mlxr.reference.quantized_matmul``, which
    ``mlxr.fused.observe()`` records as a fallback. Gradients exist for x, scales and biases;
    differentiating with respect to ``w`` raises ValueError.
    """
    require_array(OP, "x", x)
    require_array(OP, "w", w)
    require_array(OP, "scales", scales)
    if mode != "affine":
        raise ValueError(f"[{OP}] only mode='affine' is supported, got mode={mode!r}")
    if biases is None:
        raise ValueError(f"[{OP}] biases are required for affine quantization")
    require_array(OP, "biases", biases)
    group_size = _require_choice("group_size", 64 if group_size is None else group_size, GROUP_SIZES)
    bits = _require_choice("bits", 4 if bits is None else bits, BITS)
    if w.dtype != mx.uint32:
        raise ValueError(f"[{OP}] w must be uint32 (packed codes), got {w.dtype}")
    require_ndim_at_least(OP, "w", w, 2)
    require_ndim_at_least(OP, "x", x, 1)
    require_floating(OP, "scales", scales.dtype)
    require_floating(OP, "biases", biases.dtype)
    if tuple(biases.shape) != tuple(scales.shape):
        raise ValueError(f"[{OP}] scales and biases must have the same shape, got {tuple(scales.shape)} and {tuple(biases.shape)}")
    packed = w.shape[-1] * 32 // bits
    if packed % group_size:
        raise ValueError(f"[{OP}] the quantized axis of w ({packed} codes) must be a multiple of group_size={group_size}")
    expected = (*w.shape[:-1], packed // group_size)
    if tuple(scales.shape) != expected:
        raise ValueError(
            f"[{OP}] scales must have shape {expected} for w of shape {tuple(w.shape)} with "
            f"group_size={group_size} and bits={bits}, got {tuple(scales.shape)}"
        )
    inner = packed if transpose else w.shape[-2]
    if x.shape[-1] != inner:
        raise ValueError(
            f"[{OP}] x's last axis must be {inner} (w of shape {tuple(w.shape)}, bits={bits}, "
            f"transpose={transpose}), got x of shape {tuple(x.shape)}"
        )
    if w.ndim > 2 and x.ndim > 1:
        try:
            mx.broadcast_shapes(tuple(x.shape[:-2]), tuple(w.shape[:-2]))
        except ValueError:
            raise ValueError(f"[{OP}] the batch shapes of x {tuple(x.shape[:-2])} and w {tuple(w.shape[:-2])} "
                             "must broadcast") from None
    out_dtype = mx.result_type(x, scales)
    require_floating(OP, "the output", out_dtype)
    s = resolve_stream(OP, stream)

    if w.ndim != 2 or not has_kernel(OP, s.device, out_dtype):
        note_fallback(OP, s.device)
        with mx.stream(s):
            return reference(x, w, scales, biases, transpose, group_size, bits)

    x = x.astype(out_dtype, stream=s)
    scales = scales.astype(out_dtype, stream=s)
    biases = biases.astype(out_dtype, stream=s)
    return _ext.quantized_matmul(x, w, scales, biases, bool(transpose), group_size, bits, reference, s)
