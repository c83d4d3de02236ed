"""Setup the tests/test_<op>_cuda.py files share: the skip marker, the dtypes, inputs and
float64 copies of outputs."""

import mlx.core as mx
import numpy as np
import pytest

import mlxr._ext as ext

# Each CUDA test file's pytestmark: it runs only where the extension was built against a CUDA
# MLX (``_ext.gpu_kernels == "cuda"``).
REQUIRES_CUDA_KERNELS = pytest.mark.skipif(ext.gpu_kernels != "cuda", reason="extension built without CUDA kernels")

DTYPES = [mx.float32, mx.float16, mx.bfloat16]
NAMES = {mx.float32: "float32", mx.float16: "float16", mx.bfloat16: "bfloat16"}


# Strided inputs of the row-wise kernels, read in place (name: (base shape, view)): element
# strides, row offsets, broadcasts and a view of more axes than the kernels address directly.
ROW_LAYOUTS = {
    "transposed": ((77, 45), lambda a: a.T),
    "strided": ((40, 80), lambda a: a[:, ::2]),
    "reversed": ((40, 41), lambda a: a[::-1, ::-1]),
    "offset": ((40, 43), lambda a: a[1:, 3:]),
    "sliced_rows": ((64, 4104), lambda a: a[:, 5:4101]),
    "broadcast_rows": ((1, 300), lambda a: mx.broadcast_to(a, (7, 300))),
    "broadcast_elems": ((6, 1), lambda a: mx.broadcast_to(a, (6, 50))),
    "eight_dims": ((2, 1, 3, 2, 2, 3, 2, 40), lambda a: a.transpose(1, 0, 2, 3, 4, 5, 6, 7)[..., ::-1]),
}


def rand_row_scaled(shape, dtype=mx.float32, key=0, decades=2):
    """Normal values with per-row scales 10 ** uniform(-decades, decades): negatives and wide
    ranges, never only uniform[0, 1)."""
    k1, k2 = mx.random.split(mx.random.key(key))
    scale = mx.power(10.0, mx.random.uniform(-decades, decades, shape[:-1] + (1,), key=k2))
    a = (mx.random.normal(shape, key=k1) * scale).astype(dtype)
    mx.eval(a)
    return a


def as_np(a):
    """float64 numpy copy of an mx array (any float dtype)."""
    return np.array(a.astype(mx.float32)).astype(np.float64)
