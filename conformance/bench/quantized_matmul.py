"""Quantized matmul bench case: ``x @ dequantize(w).T`` with MLX's affine 4-bit format, group 64.

Shapes are (M, K, N): decode (M = 1) and prefill (M = 512) at LLM sizes. Throughput is GFLOP/s;
the copy limit counts the bytes a perfect kernel moves (packed weights, scales, biases, x, out).
"""

import mlx.core as mx

from . import Bench

BITS, GROUP = 4, 64


def make_inputs(shape, dtype):
    m, k, n = shape
    x = mx.random.normal((m, k), key=mx.random.key(0)).astype(dtype)
    w = mx.random.normal((n, k), key=mx.random.key(1)).astype(dtype) * 0.02
    wq, scales, biases = mx.quantize(w, group_size=GROUP, bits=BITS)
    return x, wq, scales, biases


def bytes_moved(shape, dtype):
    m, k, n = shape
    weights = n * k * BITS // 8 + 2 * (n * k // GROUP) * dtype.size
    return weights + (m * k + m * n) * dtype.size


def flops(shape, dtype):
    m, k, n = shape
    return 2 * m * k * n


BENCH = Bench(
    op="quantized_matmul",
    shapes=[(1, 4096, 4096), (1, 4096, 11008), (512, 4096, 4096)],
    quick_shapes=[(1, 256, 256), (8, 256, 512)],
    dtypes=["float32", "float16", "bfloat16"],
    make_inputs=make_inputs,
    bytes_moved=bytes_moved,
    flops=flops,
    mlx=mx.quantized_matmul,
    mlx_name="mx.quantized_matmul",
)
