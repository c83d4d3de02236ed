"""Affine quantized matmul reference (MLX's ``mode="affine"`` layout)."""

import mlx.core as mx

from ._dtypes import accumulation_dtype, output_dtype


def dequantize(w: mx.array, scales: mx.array, biases: mx.array, group_size: int, bits: int, dtype: mx.Dtype) -> mx.array:
    """``w_hat = scales * q + biases`` per group of ``group_size`` codes along w's last axis.

    ``w`` packs ``32 // bits`` unsigned codes per uint32 word, code ``i`` of a word at bits
    ``[i * bits, (i + 1) * bits)``. The result has w's leading shape and a last axis of
    ``w.shape[-1] * 32 // bits``, computed in ``dtype`` (float64 for the oracle).
    """
    per_word = 32 // bits
    shifts = mx.arange(0, 32, bits, dtype=mx.uint32)
    codes = (mx.expand_dims(w, -1) >> shifts) & mx.array((1 << bits) - 1, dtype=mx.uint32)
    lead = tuple(w.shape[:-1])
    q = codes.reshape(*lead, w.shape[-1] * per_word // group_size, group_size).astype(dtype)
    w_hat = q * mx.expand_dims(scales.astype(dtype), -1) + mx.expand_dims(biases.astype(dtype), -1)
    return w_hat.reshape(*lead, w.shape[-1] * per_word)


def quantized_matmul(
    x: mx.array,
    w: mx.array,
    scales: mx.array,
    biases: mx.array,
    transpose: bool = True,
    group_size: int = 64,
    bits: int = 4,
) -> mx.array:
    """``x @ w_hat.T`` (``transpose=True``) or ``x @ w_hat``, with ``w_hat = dequantize(...)``.

    Dtype rules (those of ``mx.quantized_matmul(mode="affine")``):

    - the output dtype is ``promote(x.dtype, scales.dtype)``;
    - ``w_hat`` is formed and the product accumulated in float32 (float64 when the output is
      float64, which makes this the float64 oracle), then rounded once to the output dtype.

    ``w`` may carry leading batch axes (they broadcast against x's). Arguments are not
    validated here; ``mlxr.fused.quantized_matmul`` validates.
    """
    out_dtype = output_dtype(x, scales)
    acc = accumulation_dtype(out_dtype)
    w_hat = dequantize(w, scales, biases, group_size, bits, acc)
    if transpose:
        w_hat = mx.swapaxes(w_hat, -1, -2)
    xa = x.astype(acc)
    if x.size == 0 or w_hat.size == 0:
        # An empty product is all zeros; MLX-CUDA 0.32.4's matmul of zero rows segfaults (on its
        # CPU stream too), so it is not called.
        lead = mx.broadcast_shapes(tuple(x.shape[:-2]), tuple(w_hat.shape[:-2]))
        rows = () if x.ndim == 1 else (x.shape[-2],)
        return mx.zeros((*lead, *rows, w_hat.shape[-1]), dtype=out_dtype)
    if x.ndim == 1:
        return (mx.expand_dims(xa, 0) @ w_hat).squeeze(-2).astype(out_dtype)
    return (xa @ w_hat).astype(out_dtype)
