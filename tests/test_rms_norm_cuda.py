"""The CUDA rms_norm kernels against the float64 oracle: every kernel path, layout and dtype.

Runs only where the extension was built against a CUDA MLX (``_ext.gpu_kernels == "cuda"``).
"""

import mlx.core as mx
import numpy as np
import pytest

import mlxr.fused as fused
from mlxr.reference import rms_norm as reference
from _cuda import DTYPES, REQUIRES_CUDA_KERNELS, ROW_LAYOUTS, as_np
from _cuda import rand_row_scaled as rand

pytestmark = REQUIRES_CUDA_KERNELS

# ||out - oracle|| / ||oracle||: float32 arithmetic, or one/two roundings to the half dtype.
REL_ERR = {mx.float32: 1e-5, mx.float16: 1e-3, mx.bfloat16: 8e-3}
# Elementwise against the same-dtype reference on the CPU (same roundings): two ulps for the
# half dtypes; float32 also sees summation-order differences (sqrt(n) ulps over long rows).
ULPS2 = {mx.float32: 4e-6, mx.float16: 2.0**-9, mx.bfloat16: 2.0**-6}
# Row lengths around every kernel switch: warp/block per row, register-held vs looping rows,
# 16-byte vectors with heads and tails.
ROW_SIZES = [1, 7, 31, 32, 33, 256, 512, 513, 1024, 1500, 2047, 4095, 4096, 4097, 8192, 16385, 40000, 70001]


def oracle(x, w, eps):
    """The reference in float64 on the CPU, on the same logical values."""
    with mx.stream(mx.cpu):
        x64 = mx.array(as_np(x))
        w64 = None if w is None else mx.array(as_np(w))
        return np.array(reference(x64, w64, eps))


def same_dtype_cpu(x, w, eps):
    xc = mx.array(as_np(x)).astype(x.dtype, stream=mx.cpu)
    wc = None if w is None else mx.array(as_np(w)).astype(w.dtype, stream=mx.cpu)
    with mx.stream(mx.cpu):
        return as_np(reference(xc, wc, eps))


def check(y, x, w, eps=1e-5):
    dtype = y.dtype
    got = as_np(y)
    assert not np.isnan(got).any(), "unwritten or NaN outputs"
    ref = oracle(x, w, eps)
    rel = np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30)
    assert rel < REL_ERR[dtype], f"relative error {rel:.3g} vs float64 oracle"
    np.testing.assert_allclose(got, same_dtype_cpu(x, w, eps), rtol=ULPS2[dtype], atol=ULPS2[dtype])


def poison(shape, dtype, w):
    # A NaN-producing call of the same size first: its freed output is what the pool hands
    # out next, so elements the real call fails to write stay NaN.
    y = fused.rms_norm(mx.full(shape, float("nan"), dtype=dtype), w, 1e-5)
    mx.eval(y)
    del y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ROW_SIZES)
def test_matches_oracle_and_runs_fused(dtype, n):
    rows = 5 if n < 20000 else 2
    x, w = rand((rows, n), dtype, 1), rand((1, n), dtype, 2)[0]
    poison(x.shape, dtype, w)
    with fused.observe() as seen:
        y = fused.rms_norm(x, w, 1e-5)
        mx.eval(y)
    assert seen.ran_kernel("gpu", "rms_norm") and not seen.fallbacks, seen
    check(y, x, w)
    check(fused.rms_norm(x, None, 1e-5), x, None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1037, 33), (3, 5, 129), (2049, 1), (300, 4096)])
def test_many_rows(dtype, shape):
    x, w = rand(shape, dtype, 3), rand((1, shape[-1]), dtype, 4)[0]
    check(fused.rms_norm(x, w, 1e-6), x, w, 1e-6)


LAYOUTS = {
    # name: (base shape, view); with the shared ones, the views cover the rows, cols and
    # strided kernels.
    **ROW_LAYOUTS,
    "transposed_wide": ((4096, 96), lambda a: a.T),
    "transposed_3d": ((3, 50, 40), lambda a: a.transpose(0, 2, 1)),
    "transposed_smem": ((2, 64, 48), lambda a: a.transpose(0, 2, 1)),
    "transposed_smem_long": ((2000, 64), lambda a: a.T),
    "batch_sliced": ((4, 6, 64), lambda a: a[:, 1:5, :]),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts_without_copy(layout, dtype):
    base_shape, view = LAYOUTS[layout]
    x = view(rand(base_shape, dtype, 5))
    w = rand((2, 2 * x.shape[-1]), dtype, 6)[0, ::2]  # strided weight too
    check(fused.rms_norm(x, w, 1e-5), x, w)
    check(fused.rms_norm(x, None, 1e-5), x, None)


@pytest.mark.parametrize("weight", ["reversed", "broadcast", "offset"])
def test_weight_layouts(weight):
    x = rand((9, 100), mx.bfloat16, 7)
    base = rand((1, 101), mx.bfloat16, 8)[0]
    w = {"reversed": base[:100][::-1], "broadcast": mx.broadcast_to(base[:1], (100,)), "offset": base[1:]}[weight]
    check(fused.rms_norm(x, w, 1e-5), x, w)


@pytest.mark.parametrize("dtype", DTYPES)
def test_in_place_on_donated_input(dtype):
    x = rand((33, 4097), dtype, 9)
    w = rand((1, 4097), dtype, 10)[0]
    y = fused.rms_norm(x * 1, w, 1e-5)  # x * 1 is a temporary: donated and overwritten
    check(y, x, w)


def test_mixed_dtypes_promote():
    x, w = rand((4, 32), mx.float16, 11), rand((1, 32), mx.float32, 12)[0]
    y = fused.rms_norm(x, w, 1e-5)
    assert y.dtype == mx.float32
    check(y, x.astype(mx.float32), w)


def test_zero_size_and_special_values():
    assert fused.rms_norm(mx.zeros((0, 8)), None, 1e-5).shape == (0, 8)
    assert fused.rms_norm(mx.zeros((3, 0)), None, 1e-5).shape == (3, 0)
    x = mx.array([[0.0, 0.0], [1.0, float("nan")], [float("inf"), 1.0]])
    y = np.array(fused.rms_norm(x, None, 1e-5))
    with mx.stream(mx.cpu):
        r = np.array(reference(x, None, 1e-5))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(r))
    np.testing.assert_allclose(y[0], [0.0, 0.0])


def test_grads_through_fallback():
    x, w, ct = rand((4, 300), key=13), rand((1, 300), key=14)[0], rand((4, 300), key=15)
    _, g_fused = mx.vjp(lambda a, b: fused.rms_norm(a, b, 1e-5), [x, w], [ct])
    _, g_ref = mx.vjp(lambda a, b: reference(a, b, 1e-5), [x, w], [ct])
    for a, b in zip(g_fused, g_ref):
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shapeless", [False, True])
def test_compile(shapeless):
    w = rand((1, 64), key=16)[0]
    f = mx.compile(lambda a: fused.rms_norm(a, w, 1e-5), shapeless=shapeless)
    for rows in (2, 5):
        x = rand((rows, 64), key=rows)
        with fused.observe() as seen:
            y = f(x)
            mx.eval(y)
        assert seen.ran_kernel("gpu", "rms_norm")
        check(y, x, w)


def test_vmap_shared_weight_stays_fused():
    x, w = rand((3, 4, 8), key=17), rand((1, 8), key=18)[0]
    with fused.observe() as seen:
        y = mx.vmap(lambda a: fused.rms_norm(a, w, 1e-5), in_axes=2)(x.transpose(0, 2, 1))
        mx.eval(y)
    assert seen.ran_kernel("gpu", "rms_norm")
    check(y, x.transpose(1, 0, 2), w)


def test_cpu_read_of_output_then_free():
    # A CPU read moves our device buffer into MLX's unified memory; freeing must still work.
    x = rand((16, 256), key=19)
    for _ in range(3):
        y = fused.rms_norm(x, None, 1e-5)
        check(y, x, None)
        z = y + 1
        mx.eval(z)
        del y, z


def test_other_gpu_stream_and_early_drop():
    # A second GPU stream has its own command encoder; an output dropped before its kernel
    # ran must not corrupt the next one that reuses its memory.
    s = mx.new_stream(mx.gpu)
    x, w = rand((64, 1000), mx.bfloat16, 20), rand((1, 1000), mx.bfloat16, 21)[0]
    for _ in range(3):
        dropped = fused.rms_norm(x * 2, w, 1e-5, stream=s)
        mx.async_eval(dropped)
        del dropped
        y = fused.rms_norm(x, w, 1e-5, stream=s)
        check(y, x, w)
