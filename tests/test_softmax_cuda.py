"""The CUDA softmax kernel against the float64 oracle: every configuration (warp, block,
looped; 16-byte or strided elements), axes, layouts, special values and transforms.

Runs only where the extension was built against a CUDA MLX (``_ext.gpu_kernels == "cuda"``).
"""

import mlx.core as mx
import numpy as np
import pytest

import mlxr.fused as fused
from mlxr.reference import softmax as reference
from _cuda import DTYPES, REQUIRES_CUDA_KERNELS, ROW_LAYOUTS, as_np, rand_row_scaled

pytestmark = REQUIRES_CUDA_KERNELS

# Against the float64 oracle: a few float32 ulp (exp, sum order, division), or one rounding to
# the half dtype; the absolute part only covers outputs in the dtype's subnormal range.
RTOL = {mx.float32: 1e-5, mx.float16: 1e-3, mx.bfloat16: 8e-3}
ATOL = {mx.float32: 1e-9, mx.float16: 1e-7, mx.bfloat16: 1e-30}
# Row lengths around every configuration switch (f32 / half units of 16 bytes).
ROW_SIZES = [1, 7, 32, 33, 128, 256, 1000, 1024, 1025, 2048, 2049, 8192, 32768, 32769, 65536, 65537, 100003]


def rand(shape, dtype=mx.float32, key=0):
    """Normal values with per-row scales from 0.1 to 10 (wide exp ranges, negatives)."""
    return rand_row_scaled(shape, dtype, key, decades=1)


def oracle(x, axis=-1):
    """float64 in numpy: MLX's CPU float64 sum and exp are only about float32-accurate (a 32768
    element row's float64 sum was off by 1.1e-5 relative)."""
    x = as_np(x)
    axis = tuple(range(x.ndim)) if axis is None else tuple(axis) if isinstance(axis, list) else axis
    with np.errstate(invalid="ignore"):
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)


def check(y, x, axis=-1):
    got = as_np(y)
    ref = oracle(x, axis)
    np.testing.assert_allclose(got, ref, rtol=RTOL[x.dtype], atol=ATOL[x.dtype])


def poison(shape, dtype):
    y = fused.softmax(mx.full(shape, float("nan"), dtype=dtype))
    mx.eval(y)
    del y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ROW_SIZES)
def test_matches_oracle_and_runs_fused(dtype, n):
    x = rand((3 if n < 40000 else 2, n), dtype, 1)
    poison(x.shape, dtype)
    with fused.observe() as seen:
        y = fused.softmax(x)
        mx.eval(y)
    assert any(k.startswith("gpu:softmax_") for k in seen.kernels) and not seen.fallbacks, seen
    assert y.dtype == dtype
    check(y, x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1037, 33), (4096, 128), (3, 5, 129), (2049, 1), (64, 4096)])
def test_many_rows(dtype, shape):
    x = rand(shape, dtype, 3)
    check(fused.softmax(x), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1, (1, 2), (0, 2), None])
def test_axes(dtype, axis):
    x = rand((6, 50, 40), dtype, 4)
    with fused.observe() as seen:
        y = fused.softmax(x, axis=axis)
        mx.eval(y)
    assert any(k.startswith("gpu:softmax_") for k in seen.kernels)
    check(y, x, axis=list(axis) if isinstance(axis, tuple) else axis)


LAYOUTS = ROW_LAYOUTS


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts_without_copy(layout, dtype):
    base_shape, view = LAYOUTS[layout]
    x = view(rand(base_shape, dtype, 5))
    check(fused.softmax(x), x)


def test_special_values():
    inf, nan = float("inf"), float("nan")
    x = mx.array([[0.0, 1.0, 2.0, -inf], [1.0, nan, 0.0, 0.0], [inf, 1.0, 0.0, 0.0],
                  [-inf, -inf, -inf, -inf], [1e30, -1e30, 0.0, 1e30]])
    y = np.array(fused.softmax(x))
    with mx.stream(mx.cpu):
        r = np.array(reference(x))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(r))
    assert y[0, 3] == 0.0
    np.testing.assert_allclose(y[~np.isnan(r)], r[~np.isnan(r)], rtol=1e-6, atol=1e-30)
    assert fused.softmax(mx.zeros((0, 8))).shape == (0, 8)


@pytest.mark.parametrize("dtype", DTYPES)
def test_in_place_on_donated_input(dtype):
    x = rand((33, 4097), dtype, 9)
    check(fused.softmax(x * 1), x)  # a temporary: donated and overwritten


def test_grads_vmap_compile():
    x, ct = rand((4, 300), key=13), rand((4, 300), key=14)
    _, (g,) = mx.vjp(lambda a: fused.softmax(a), [x], [ct])
    with mx.stream(mx.cpu):
        _, (g_ref,) = mx.vjp(lambda a: reference(a), [x], [ct])
    np.testing.assert_allclose(np.array(g), np.array(g_ref), rtol=1e-4, atol=1e-6)
    y = mx.vmap(lambda a: fused.softmax(a), in_axes=1)(rand((8, 3, 16), key=15))
    check(y, rand((8, 3, 16), key=15).transpose(1, 0, 2))
    f = mx.compile(lambda a: fused.softmax(a), shapeless=True)
    for rows in (2, 5):
        x = rand((rows, 64), key=rows)
        with fused.observe() as seen:
            y = f(x)
            mx.eval(y)
        assert any(k.startswith("gpu:softmax_") for k in seen.kernels)
        check(y, x)


# Rows too long for registers (looped: online max and sum, then a second read): few long rows
# (a vocabulary), a strided (scalar) view, many rows.
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, view, kernel", [
    ((64, 128256), None, "looped_"),
    ((3, 50001 * 8), None, "looped_"),
    ((5, 2 * 40000), lambda a: a[:, ::2], "looped_strided_"),
    ((300, 40000), None, "looped_"),
])
def test_long_rows(dtype, shape, view, kernel):
    x = rand(shape, dtype, 17)
    x = view(x) if view else x
    with fused.observe() as seen:
        y = fused.softmax(x)
        mx.eval(y)
    assert f"gpu:softmax_{kernel}{str(dtype).split('.')[-1]}" in seen.kernels, seen
    check(y, x)


# Rows adjacent in memory, their elements strided (a non-last axis, reaching the kernel as a
# transposed view): the columns kernel where its tiles (32 lanes' rows) are at least as many
# as the SMs, each lane loading 1-4 rows at once, as many as the rows' alignment allows:
# 8-byte loads, 4-byte where the rows or the start allow no more, one element for odd row
# counts or a start off by one; the variant names the rows a lane loads. Also: rows past a
# multiple of a tile, elements past a multiple of a pass-2 tile (128), a reversed element
# axis, two and three row axes. Every case has at least 264 tiles (GPUs of up to 264 SMs).
# name: (shape, axis, view, variant for float32, for 16-bit)
COLUMN_CASES = {
    "axis0": ((20, 40000), 0, None, "2", "4"),
    "axis0_odd_rows": ((9, 40001), 0, None, "1", "1"),
    "axis0_even_rows": ((9, 40002), 0, None, "2", "2"),
    "offset_view": ((21, 40004), 0, lambda a: a[1:, 2:], "2", "2"),
    "offset_by_one": ((20, 40004), 0, lambda a: a[:, 1:40001], "1", "1"),
    "reversed": ((20, 40000), 0, lambda a: a[::-1], "2", "4"),
    "middle_axis": ((8, 300, 4608), 1, None, "2", "4"),
    "three_row_axes": ((4, 3, 40, 6000), 2, lambda a: a[:, :2], "2", "4"),
    "many_tiles": ((600, 5, 64), 1, None, "2", "4"),
    "many_tiles_even": ((600, 5, 66), 1, None, "2", "2"),
    "many_tiles_odd": ((600, 5, 33), 1, None, "1", "1"),
    "many_tiles_start_off_by_two": ((600, 5, 72), 1, lambda a: a[:, :, 2:66], "2", "2"),
    "many_tiles_start_off_by_one": ((600, 5, 72), 1, lambda a: a[:, :, 1:65], "1", "1"),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", sorted(COLUMN_CASES))
def test_adjacent_rows_run_the_columns_kernel(dtype, case):
    shape, axis, view, variant32, variant16 = COLUMN_CASES[case]
    x = rand(shape, dtype, 21)
    x = view(x) if view else x
    poison(x.shape, dtype)  # elements the kernel fails to write stay NaN
    with fused.observe() as seen:
        y = fused.softmax(x, axis=axis)
        mx.eval(y)
    variant = variant32 if dtype == mx.float32 else variant16
    assert f"gpu:softmax_cols{variant}_{str(dtype).split('.')[-1]}" in seen.kernels and not seen.fallbacks, seen
    check(y, x, axis)


# Fewer tiles than SMs: the row kernels, which fill the GPU alone (a single call over axis 0 of
# 4096x4096 took half the columns kernel's time).
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, axis, view", [
    ((300, 70), 0, None),
    ((4096, 512), 0, None),
    ((257, 33), 0, lambda a: a[::-1]),
    ((3, 100, 48), 1, None),
])
def test_few_adjacent_rows_run_a_row_kernel(dtype, shape, axis, view):
    x = rand(shape, dtype, 22)
    x = view(x) if view else x
    poison(x.shape, dtype)
    with fused.observe() as seen:
        y = fused.softmax(x, axis=axis)
        mx.eval(y)
    gpu = [k for k in seen.kernels if k.startswith("gpu:softmax_")]
    assert gpu and not any(k.startswith("gpu:softmax_cols") for k in gpu) and not seen.fallbacks, seen
    check(y, x, axis)


def test_long_axis_of_equal_terms():
    # 32767 equal terms and one other a row, over axis 0 (the row kernels: 64 rows are too few
    # tiles for the columns kernel, whose threads add an eighth of a row each, compensated).
    base = np.full((32768, 64), -1.0, dtype=np.float32)
    base[0] = 0.0
    x = mx.array(base)
    check(fused.softmax(x, axis=0), x, 0)


def test_columns_kernel_long_axis_of_equal_terms():
    # Each of the columns kernel's 8 warps adds the rows i = warp (mod 8) in sequence: with rows
    # 0-7 at 0 (one a warp: each warp's max is 0) and the rest -1, 2047 terms of e^-1 a thread,
    # which drift ~1e-5 relative in a plain float32 sum (compensated: ~1e-7). 264 tiles (16896
    # columns) so that the columns kernel runs. y[i < 8] = 1 / s, y[i >= 8] = e^-1 / s.
    n, cols, warps = 16384, 16896, 8
    x = mx.concatenate([mx.zeros((warps, cols)), mx.full((n - warps, cols), -1.0)])
    with fused.observe() as seen:
        y = fused.softmax(x, axis=0)
        mx.eval(y)
    assert "gpu:softmax_cols2_float32" in seen.kernels and not seen.fallbacks, seen
    s = warps + (n - warps) * np.exp(-1.0)
    first = np.abs(np.array(y[:warps], dtype=np.float64) * s - 1.0).max()
    rest = mx.max(mx.abs(y[warps:] * float(s / np.exp(-1.0)) - 1.0)).item()  # float32 scale, ~1 ulp
    assert first < 2e-6 and rest < 2e-6, (first, rest)


def test_columns_kernel_special_values():
    # Each of the first columns one row of the softmax: a -inf, a NaN, a +inf, all -inf, huge
    # values, a -inf run before the finite ones (met before and after the running max is
    # found); 16896 columns make 264 tiles.
    inf, nan = float("inf"), float("nan")
    n = 300
    base = np.random.default_rng(5).normal(size=(n, 16896)).astype(np.float32)
    base[7, 0] = -inf
    base[250, 1] = nan
    base[3, 2] = inf
    base[:, 3] = -inf
    base[::2, 4] = 1e30
    base[: n // 2, 5] = -inf
    x = mx.array(base)
    with fused.observe() as seen:
        y = np.array(fused.softmax(x, axis=0))
    assert "gpu:softmax_cols2_float32" in seen.kernels, seen
    with mx.stream(mx.cpu):
        r = np.array(reference(x, axis=0))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(r))
    assert y[7, 0] == 0.0 and np.isnan(y[:, 1:4]).all() and (y[: n // 2, 5] == 0).all()
    np.testing.assert_allclose(y[~np.isnan(r)], r[~np.isnan(r)], rtol=RTOL[mx.float32], atol=1e-30)


def test_long_rows_special_values():
    # NaN, +inf and all -inf met late or early in the online pass (after the max is found).
    n = 70000
    base = np.random.default_rng(3).normal(size=(5, n)).astype(np.float32)
    base[0, n - 3] = np.nan
    base[1, 10] = np.inf
    base[2, :] = -np.inf
    base[3, : n // 2] = -np.inf  # whole units of -inf before finite ones
    x = mx.array(base)
    with fused.observe() as seen:
        y = np.array(fused.softmax(x))
    assert any(k.startswith("gpu:softmax_looped_") for k in seen.kernels), seen
    with mx.stream(mx.cpu):
        r = np.array(reference(x))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(r))
    assert np.isnan(y[:3]).all() and (y[3, : n // 2] == 0).all()
    np.testing.assert_allclose(y[3:], r[3:], rtol=RTOL[mx.float32], atol=ATOL[mx.float32])
