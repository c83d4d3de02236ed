"""Softmax reference."""

import mlx.core as mx

from ._dtypes import accumulation_dtype
from ._exp import exp


def softmax(x: mx.array, axis=-1) -> mx.array:
    """Softmax over ``axis``: ``y = exp(x - max(x)) / sum(exp(x - max(x)))``.

    ``axis`` is an int, a sequence of ints, or None (every axis), as in ``mx.softmax``.

    Dtype rules: the output dtype is ``x.dtype``; the max, exp, sum and division are computed
    in float32 (float64 for float64 input, which makes this the float64 oracle) and rounded
    once. This is ``mx.softmax(..., precise=True)``; MLX's default ``precise=False``
    accumulates half inputs in half precision, which is never more accurate.

    Special values follow from the formula and are part of the contract: a slice that
    contains NaN or +inf, or whose elements are all -inf (a fully masked row), is NaN
    everywhere; -inf elements of any other slice give exactly 0. An empty x is returned as is.

    Arguments are not validated here; ``mlxr.fused.softmax`` validates.
    """
    if x.size == 0:  # nothing to normalise (and mx.max refuses empty reductions)
        return x
    xa = x.astype(accumulation_dtype(x.dtype))
    e = exp(xa - mx.max(xa, axis=axis, keepdims=True))
    return (e / mx.sum(e, axis=axis, keepdims=True)).astype(x.dtype)
