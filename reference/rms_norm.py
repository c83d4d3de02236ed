"""RMSNorm reference."""

import mlx.core as mx

from ._dtypes import accumulation_dtype, output_dtype


def rms_norm(x: mx.array, weight: mx.array | None, eps: float) -> mx.array:
    """RMSNorm over the last axis: ``y = x / sqrt(mean(x**2, -1) + eps) * weight``.

    Dtype rules (those of ``mx.fast.rms_norm``):

    - the output dtype is ``promote(x.dtype, weight.dtype)`` (``x.dtype`` without weight);
    - ``x`` is upcast and the mean of squares, ``eps`` and the normalisation are computed in
      float32 (float64 when the output is float64, which makes this the float64 oracle);
    - the normalised value is rounded to the output dtype, *then* multiplied by the weight
      in the output dtype (so half-precision outputs round twice, as MLX's kernels do).

    Arguments are not validated here; ``mlxr.fused.rms_norm`` validates.
    """
    out_dtype = output_dtype(x, weight)
    acc = accumulation_dtype(out_dtype)
    xa = x.astype(acc)
    if x.size == 0:
        # No rows: skipping the reduction sidesteps MLX 0.32.4's CPU reduce of some empty arrays,
        # which loops over an uninitialised plan (seconds to minutes; see reference/layer_norm.py).
        y = xa.astype(out_dtype)
    else:
        mean_sq = mx.mean(mx.square(xa), axis=-1, keepdims=True)
        y = (xa * mx.rsqrt(mean_sq + mx.array(eps, dtype=acc))).astype(out_dtype)
    if weight is not None:
        y = y * weight.astype(out_dtype)
    return y
