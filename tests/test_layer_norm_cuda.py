"""The CUDA layer_norm kernel against a float64 oracle and the CPU kernel: every row
configuration (warp, block, looped; 16-byte or strided elements), weight/bias combinations,
layouts and donation.

Runs only where the extension was built against a CUDA MLX (``_ext.gpu_kernels == "cuda"``).
"""

import mlx.core as mx
import numpy as np
import pytest

import mlxr.fused as fused
from _cuda import DTYPES, REQUIRES_CUDA_KERNELS, ROW_LAYOUTS, as_np

pytestmark = REQUIRES_CUDA_KERNELS

# ||out - oracle|| / ||oracle||: float32 arithmetic, or up to three roundings to the half dtype.
REL_ERR = {mx.float32: 1e-5, mx.float16: 2e-3, mx.bfloat16: 1.6e-2}
# Elementwise against the CPU kernel (same roundings, other summation order).
ULPS2 = {mx.float32: 4e-6, mx.float16: 2.0**-9, mx.bfloat16: 2.0**-6}
ROW_SIZES = [1, 7, 32, 33, 256, 1000, 1024, 2048, 2049, 8192, 16384, 32768, 32769, 70001]


def rand(shape, dtype=mx.float32, key=0):
    k1, k2, k3 = mx.random.split(mx.random.key(key), 3)
    scale = mx.power(10.0, mx.random.uniform(-2, 2, shape[:-1] + (1,), key=k2))
    shift = mx.random.normal(shape[:-1] + (1,), key=k3) * scale
    a = (mx.random.normal(shape, key=k1) * scale + shift).astype(dtype)
    mx.eval(a)
    return a


def affine(n, dtype, key):
    """A weight or bias of unit scale (outputs near zero keep the elementwise check meaningful)."""
    a = mx.random.normal((n,), key=mx.random.key(key)).astype(dtype)
    mx.eval(a)
    return a


def oracle(x, w, b, eps):
    x = as_np(x)
    c = x - x.mean(-1, keepdims=True)
    y = c / np.sqrt((c * c).mean(-1, keepdims=True) + eps)
    return y * (1 if w is None else as_np(w)) + (0 if b is None else as_np(b))


def check(y, x, w, b, eps=1e-5):
    got = as_np(y)
    assert not np.isnan(got).any(), "unwritten or NaN outputs"
    ref = oracle(x, w, b, eps)
    rel = np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30)
    assert rel < REL_ERR[y.dtype], f"relative error {rel:.3g} vs float64 oracle"
    plain = [mx.array(np.array(a.astype(mx.float32))).astype(a.dtype) if a is not None else None for a in (x, w, b)]
    with mx.stream(mx.cpu):
        cpu = as_np(fused.layer_norm(*plain, eps))
    np.testing.assert_allclose(got, cpu, rtol=ULPS2[y.dtype], atol=ULPS2[y.dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ROW_SIZES)
def test_matches_oracle_and_runs_fused(dtype, n):
    x = rand((3 if n < 40000 else 2, n), dtype, 1)
    w, b = affine(n, dtype, 2), affine(n, dtype, 3)
    with fused.observe() as seen:
        y = fused.layer_norm(x, w, b, 1e-5)
        mx.eval(y)
    assert any(k.startswith("gpu:layer_norm_") for k in seen.kernels) and not seen.fallbacks, seen
    check(y, x, w, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["none", "weight", "bias", "both"])
def test_weight_bias_combinations(dtype, kind):
    x = rand((37, 200), dtype, 4)
    w = affine(200, dtype, 5) if kind in ("weight", "both") else None
    b = affine(200, dtype, 6) if kind in ("bias", "both") else None
    check(fused.layer_norm(x, w, b, 1e-5), x, w, b)


LAYOUTS = {
    **{k: v for k, v in ROW_LAYOUTS.items() if k not in ("broadcast_elems", "eight_dims")},
    "batch_sliced": ((4, 6, 64), lambda a: a[:, 1:5, :]),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts_without_copy(layout, dtype):
    base_shape, view = LAYOUTS[layout]
    x = view(rand(base_shape, dtype, 7))
    w = affine(2 * x.shape[-1], dtype, 8)[::2]  # strided weight too
    b = affine(x.shape[-1], dtype, 9)[::-1]
    check(fused.layer_norm(x, w, b, 1e-5), x, w, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_in_place_on_donated_input(dtype):
    x, w = rand((33, 4097), dtype, 10), affine(4097, dtype, 11)
    check(fused.layer_norm(x * 1, w, None, 1e-5), x, w, None)


def test_constant_rows_and_grads():
    x = mx.array([[3.0] * 64, [0.0] * 64])
    y = np.array(fused.layer_norm(x, None, None, 1e-5))
    np.testing.assert_array_equal(y, np.zeros((2, 64)))
    x, w, b, ct = rand((4, 300), key=12), affine(300, mx.float32, 13), affine(300, mx.float32, 14), rand((4, 300), key=15)
    _, g_gpu = mx.vjp(lambda a, c, d: fused.layer_norm(a, c, d, 1e-5), [x, w, b], [ct])
    with mx.stream(mx.cpu):
        _, g_cpu = mx.vjp(lambda a, c, d: fused.layer_norm(a, c, d, 1e-5), [x, w, b], [ct])
    for a, c in zip(g_gpu, g_cpu):
        np.testing.assert_allclose(np.array(a), np.array(c), rtol=1e-4, atol=1e-4)
