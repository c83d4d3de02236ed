"""SwiGLU bench case: ``silu(gate) * up`` at Llama MLP widths.

MLX has no fused op: its column is the composite ``mx.sigmoid(g) * g * u``.
"""

import math

import mlx.core as mx

from . import Bench


def make_inputs(shape, dtype):
    gate = mx.random.normal(shape, key=mx.random.key(0)).astype(dtype)
    up = mx.random.normal(shape, key=mx.random.key(1)).astype(dtype)
    return gate, up


def bytes_moved(shape, dtype):
    # gate and up read, the product written.
    return 3 * math.prod(shape) * dtype.size


BENCH = Bench(
    op="swiglu",
    shapes=[(4096, 11008), (8192, 11008)],
    quick_shapes=[(64, 256), (128, 1024)],
    dtypes=["float32", "float16", "bfloat16"],
    make_inputs=make_inputs,
    bytes_moved=bytes_moved,
    mlx=lambda g, u: mx.sigmoid(g) * g * u,
    mlx_name="sigmoid(g) * g * u",
)
