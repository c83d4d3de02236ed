"""RoPE bench case on (B, H, T, D) activations, traditional=False, dims = D (Llama layout)."""

import math

import mlx.core as mx

from . import Bench

DIMS = 128


def make_inputs(shape, dtype):
    x = mx.random.normal(shape, key=mx.random.key(0)).astype(dtype)
    return (x,)


def bytes_moved(shape, dtype):
    return 2 * math.prod(shape) * dtype.size


def _call(rope):
    return lambda x: rope(x, DIMS, traditional=False, base=10000.0, scale=1.0, offset=0)


def _fused(x):
    from mlxr.fused import rope

    return _call(rope)(x)


def _reference(x):
    from mlxr.reference import rope

    return _call(rope)(x)


BENCH = Bench(
    op="rope",
    shapes=[(1, 32, 2048, 128), (1, 32, 4096, 128)],
    quick_shapes=[(1, 4, 16, 128), (2, 4, 64, 128)],
    dtypes=["float32", "float16", "bfloat16"],
    make_inputs=make_inputs,
    bytes_moved=bytes_moved,
    mlx=_call(mx.fast.rope),
    mlx_name="mx.fast.rope",
    fused=_fused,
    reference=_reference,
)
