"""Softmax bench case over the last axis."""

import math

import mlx.core as mx

from . import Bench


def make_inputs(shape, dtype):
    return (mx.random.normal(shape, key=mx.random.key(0)).astype(dtype),)


def bytes_moved(shape, dtype):
    return 2 * math.prod(shape) * dtype.size


BENCH = Bench(
    op="softmax",
    shapes=[(4096, 4096), (8192, 4096)],
    quick_shapes=[(64, 256), (128, 1024)],
    dtypes=["float32", "float16", "bfloat16"],
    make_inputs=make_inputs,
    bytes_moved=bytes_moved,
    mlx=lambda x: mx.softmax(x, axis=-1),
    mlx_name="mx.softmax",
)
