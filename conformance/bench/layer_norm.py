"""LayerNorm bench case: ``y = (x - mean) / sqrt(var + eps) * weight + bias`` over rows of x."""

import math

import mlx.core as mx

from . import Bench

EPS = 1e-5


def make_inputs(shape, dtype):
    x = mx.random.normal(shape, key=mx.random.key(0)).astype(dtype)
    weight = mx.random.normal(shape[-1:], key=mx.random.key(1)).astype(dtype)
    bias = mx.random.normal(shape[-1:], key=mx.random.key(2)).astype(dtype)
    return x, weight, bias, EPS


def bytes_moved(shape, dtype):
    # x read, y written, weight and bias read once.
    return (2 * math.prod(shape) + 2 * shape[-1]) * dtype.size


BENCH = Bench(
    op="layer_norm",
    shapes=[(4096, 4096), (8192, 4096)],
    quick_shapes=[(64, 256), (128, 1024)],
    dtypes=["float32", "float16", "bfloat16"],
    make_inputs=make_inputs,
    bytes_moved=bytes_moved,
    mlx=mx.fast.layer_norm,
    mlx_name="mx.fast.layer_norm",
)
