"""exp that keeps the float64 references an oracle."""

import math

import mlx.core as mx


def exp(x: mx.array) -> mx.array:
    """``e ** x``. MLX's CPU ``mx.exp`` evaluates float64 through float32 (about 1e-7 relative
    error), so float64 goes through ``mx.power(e, x)`` (about 1e-15); other dtypes use ``mx.exp``.
    """
    if x.dtype == mx.float64:
        return mx.power(mx.array(math.e, dtype=mx.float64), x)
    return mx.exp(x)
