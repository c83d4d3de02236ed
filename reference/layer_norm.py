"""LayerNorm reference."""

import mlx.core as mx

from ._dtypes import accumulation_dtype


def layer_norm_dtype(x: mx.array, weight: mx.array | None, bias: mx.array | None) -> mx.Dtype:
    """Output dtype of ``mx.fast.layer_norm``: ``promote(x, weight[, bias])`` when there is a
    weight, else ``x.dtype`` (a bias without a weight is cast to ``x.dtype``, as MLX does)."""
    if weight is None:
        return x.dtype
    return mx.result_type(*(a for a in (x, weight, bias) if a is not None))


def layer_norm(x: mx.array, weight: mx.array | None, bias: mx.array | None, eps: float) -> mx.array:
    """LayerNorm over the last axis:
    ``y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias``, ``var`` the biased variance
    ``mean((x - mean(x))**2)``.

    Dtype rules (those of ``mx.fast.layer_norm``):

    - the output dtype is :func:`layer_norm_dtype` (``promote(x, weight[, bias])``, or
      ``x.dtype`` without a weight);
    - mean, variance, ``eps`` and the normalisation are computed in float32 (float64 when the
      output is float64, which makes this the float64 oracle);
    - the normalised value is rounded to the output dtype, then multiplied by the weight and
      the bias added, each in the output dtype (half-precision outputs round after each step).

    Arguments are not validated here; ``mlxr.fused.layer_norm`` validates.
    """
    out_dtype = layer_norm_dtype(x, weight, bias)
    acc = accumulation_dtype(out_dtype)
    if x.size == 0:
        # No rows to normalise. Skipping the reductions also sidesteps MLX 0.32.4's CPU reduce
        # of some empty arrays, which loops over an uninitialised plan (seconds to minutes).
        y = x.astype(out_dtype)
    else:
        # sum / n, not mx.mean (a multiply by 1/n): the division is exact where the sum is, so a
        # constant row centres to exactly 0, as in the kernel.
        n = mx.array(x.shape[-1], dtype=acc)
        xa = x.astype(acc)
        centred = xa - mx.sum(xa, axis=-1, keepdims=True) / n
        var = mx.sum(mx.square(centred), axis=-1, keepdims=True) / n
        y = (centred * mx.rsqrt(var + mx.array(eps, dtype=acc))).astype(out_dtype)
    if weight is not None:
        y = y * weight.astype(out_dtype)
    if bias is not None:
        y = y + bias.astype(out_dtype)
    return y
