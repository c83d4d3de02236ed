"""RMSNorm bench case: ``y = x / sqrt(mean(x**2, -1) + eps) * weight`` over rows of x.

Sizes from the issue: (4096, 4096) and (8192, 4096) in float32, float16 and bfloat16.
"""

import math

import mlx.core as mx

from . import Bench

EPS = 1e-5


def make_inputs(shape, dtype):
    x = mx.random.normal(shape, key=mx.random.key(0)).astype(dtype)
    weight = mx.random.normal(shape[-1:], key=mx.random.key(1)).astype(dtype)
    return x, weight, EPS


def bytes_moved(shape, dtype):
    # x read, y written, the weight read once.
    return (2 * math.prod(shape) + shape[-1]) * dtype.size


BENCH = Bench(
    op="rms_norm",
    shapes=[(4096, 4096), (8192, 4096)],
    quick_shapes=[(64, 256), (128, 1024)],
    dtypes=["float32", "float16", "bfloat16"],
    make_inputs=make_inputs,
    bytes_moved=bytes_moved,
    mlx=mx.fast.rms_norm,
    mlx_name="mx.fast.rms_norm",
)
