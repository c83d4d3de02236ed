"""Fused residual add + RMSNorm bench case: ``h = x + residual; y = rms_norm(h) * weight``.

MLX has no such op: its column is the composite ``mx.fast.rms_norm(x + residual)`` (also
returning ``h``), which is what a model runs without the fusion.
"""

import math

import mlx.core as mx

from . import Bench

EPS = 1e-5


def make_inputs(shape, dtype):
    x = mx.random.normal(shape, key=mx.random.key(0)).astype(dtype)
    residual = mx.random.normal(shape, key=mx.random.key(1)).astype(dtype)
    weight = mx.random.normal(shape[-1:], key=mx.random.key(2)).astype(dtype)
    return x, residual, weight, EPS


def bytes_moved(shape, dtype):
    # x and residual read, normed and new residual written, the weight read once.
    return (4 * math.prod(shape) + shape[-1]) * dtype.size


def mlx_composite(x, residual, weight, eps):
    h = x + residual
    return mx.fast.rms_norm(h, weight, eps), h


BENCH = Bench(
    op="add_rms_norm",
    shapes=[(4096, 4096), (8192, 4096)],
    quick_shapes=[(64, 256), (128, 1024)],
    dtypes=["float32", "float16", "bfloat16"],
    make_inputs=make_inputs,
    bytes_moved=bytes_moved,
    mlx=mlx_composite,
    mlx_name="x + residual; mx.fast.rms_norm",
)
