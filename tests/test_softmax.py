"""The fused softmax extension: numerics, axes, layouts, special values, transforms, bad input."""

import mlx.core as mx
import numpy as np
import pytest

import mlxr.fused as fused
from mlxr.reference import softmax as reference
from _common import LAYOUTS_2D, assert_close_f64, assert_close_to_max, assert_isa_rows_agree, assert_pure, f64, rand as normal

DTYPES = [mx.float32, mx.float16, mx.bfloat16]
# Against the float64 oracle: about 4 ulp for float32 (one exp, a rescale, a sum of <= 5e4
# terms), one rounding (+ a little) for the half types.
RTOL = {mx.float32: 1e-5, mx.float16: 1e-3, mx.bfloat16: 8e-3, mx.float64: 1e-12}
ATOL = {mx.float32: 1e-9, mx.float16: 1e-7, mx.bfloat16: 1e-30, mx.float64: 1e-300}


def rand(shape, dtype=mx.float32, key=0, scale=4.0):
    return normal(shape, dtype, key, scale)


def oracle(x, axis=-1):
    """The reference in float64 on a copy of x (any layout), rounded to x's dtype."""
    return reference(mx.array(f64(x), dtype=mx.float64), axis=axis).astype(x.dtype)


def assert_close(actual, expected, dtype, scale=1.0):
    assert_close_f64(actual, expected, RTOL[dtype] * scale, ATOL[dtype] * scale)


def assert_grad_close(actual, expected, dtype, scale=1.0):
    # Softmax gradients cancel (each row sums to 0): errors scale with the largest entry.
    assert_close_to_max(actual, expected, RTOL[dtype] * scale)


@pytest.mark.parametrize("dtype", DTYPES + [mx.float64])
@pytest.mark.parametrize("d", [1, 7, 15, 16, 17, 33, 255, 256, 257, 4096, 4097])
def test_matches_oracle_and_runs_fused(dtype, d):
    x = rand((3, d), dtype, d)
    with fused.observe() as seen:
        y = fused.softmax(x)
        mx.eval(y)
    assert seen.ran_kernel("cpu", "softmax") and not seen.fallbacks
    assert y.dtype == dtype and y.shape == x.shape
    assert_close(y, oracle(x), dtype)


def test_long_rows_and_reference_in_same_dtype():
    # Rows far beyond the chunk size; the float32 reference itself is ~1e-5 off (MLX's exp).
    x = rand((2, 70001), key=1)
    assert_close(fused.softmax(x), oracle(x), mx.float32)
    assert_close(fused.softmax(x), reference(x), mx.float32, scale=20)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_mx_softmax(dtype):
    x = rand((5, 4, 96), dtype, 3)
    y = fused.softmax(x, axis=-1)
    assert_close(y, mx.softmax(x, axis=-1, precise=True), dtype, scale=4)
    np.testing.assert_array_equal(f64(y), f64(fused.softmax(x, axis=-1, precise=True)))
    # MLX's default accumulates half types in half precision: it is the less accurate side.
    assert_close(y, mx.softmax(x, axis=-1), dtype, scale=16)


@pytest.mark.parametrize("axis", [0, 1, -2, 2, (0, 2), [2, 0], (0, 1, 2), None])
def test_axes(axis):
    x = rand((4, 5, 6), key=4)
    with fused.observe() as seen:
        y = fused.softmax(x, axis=axis)
        mx.eval(y)
    assert seen.ran_kernel("cpu", "softmax")
    assert y.shape == x.shape
    assert_close(y, oracle(x, axis), mx.float32)
    assert_close(y, mx.softmax(x, axis=axis, precise=True), mx.float32, scale=4)


def test_zero_dim_and_zero_size():
    assert fused.softmax(mx.array(3.0), axis=None).item() == 1.0
    assert np.isnan(fused.softmax(mx.array(float("inf")), axis=None).item())
    assert fused.softmax(mx.zeros((0, 8))).shape == (0, 8)
    assert fused.softmax(mx.zeros((3, 0))).shape == (3, 0)
    assert fused.softmax(mx.zeros((3, 0)), axis=0).shape == (3, 0)


@pytest.mark.parametrize("layout", sorted(LAYOUTS_2D))
@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts(layout, dtype):
    x = LAYOUTS_2D[layout](rand((40, 300), dtype, 5))
    assert_close(fused.softmax(x), oracle(x), dtype)


INF, NAN = float("inf"), float("nan")
SPECIAL_ROWS = [
    [-INF, -INF, -INF],  # fully masked: NaN, as the reference's max/exp/sum gives
    [1.0, NAN, 2.0],
    [1.0, INF, 2.0],
    [INF, INF, INF],
    [-INF, 0.0, 1.0],  # masked elements give exactly 0
    [-3.4e38, -3.4e38, -INF],
    [1e4, 0.0, -1e4],  # one-hot without overflow
    [-1e30, -1e30, -1e30],
]


@pytest.mark.parametrize("dtype", DTYPES + [mx.float64])
@pytest.mark.parametrize("rows", [1, 7, 16, 17, 33])
@pytest.mark.parametrize("n", [1, 15, 16, 17, 300])
def test_non_last_axis_of_dense_arrays(dtype, rows, n):
    # axis 0 of a (n, rows) array: 16 neighbouring rows per pass, partial groups included.
    x = rand((n, rows), dtype, rows * n)
    y = fused.softmax(x, axis=0)
    assert_close(y, oracle(x, 0), dtype)
    # The last axis of a dense permuted view whose rows are not neighbours: gathered rows
    # written back into x's layout.
    base = rand((3, rows, n), dtype, rows + n)
    view = base.transpose(2, 0, 1)
    assert_close(fused.softmax(view), oracle(view), dtype)


@pytest.mark.parametrize("axis", [0, -1])
def test_long_axis_of_equal_terms_keeps_float32_accuracy(axis):
    # 262143 equal terms and one other: plain float32 running sums drifted 1.5e-3 relative
    # along axis 0 (as mx.softmax's do); each lane's sum is compensated chunk by chunk.
    base = np.full((262144, 16), -1.0, dtype=np.float32)
    base[0] = 0.0
    e = np.exp(base.astype(np.float64))
    expected = e / e.sum(axis=0, keepdims=True)
    x = mx.array(base if axis == 0 else np.ascontiguousarray(base.T))
    with fused.observe() as seen:
        y = fused.softmax(x, axis=axis)
        mx.eval(y)
    assert seen.kernels == {"cpu:softmax_float32": 1} and not seen.fallbacks, seen
    got = f64(y) if axis == 0 else f64(y).T
    np.testing.assert_allclose(got, expected, rtol=RTOL[mx.float32], atol=0)


def test_non_last_axis_special_values_and_donation():
    x_np = np.full((300, 20), -np.inf)
    x_np[:3, :8] = np.array(SPECIAL_ROWS).T
    x_np[-3:, 8:16] = np.array(SPECIAL_ROWS).T
    x_np[5, 16:] = 1.0
    x = mx.array(x_np).astype(mx.float32)
    y, r = f64(fused.softmax(x, axis=0)), f64(oracle(x, 0))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(r))
    np.testing.assert_allclose(y, r, rtol=RTOL[mx.float32], atol=ATOL[mx.float32])
    expected = oracle(rand((64, 48), key=22), 0)
    assert_close(fused.softmax(rand((64, 48), key=22).T * 1.0, axis=1).T, expected, mx.float32)




@pytest.mark.parametrize("dtype", DTYPES + [mx.float64])
@pytest.mark.parametrize("d", [3, 300])  # inside one block, and spread over chunks and tails
def test_special_values(dtype, d):
    rows = np.array(SPECIAL_ROWS)
    # Pad with -inf (masked) so the special lanes land in the body and in the tail.
    x_np = np.full((len(rows), d), -np.inf)
    x_np[:, :3] = rows
    x_np[:, -3:] = rows
    x = mx.array(x_np).astype(dtype)
    if dtype == mx.float16:
        x = mx.where(mx.isinf(x) | mx.isnan(x), x, mx.clip(x, -6e4, 6e4))
    y, r = f64(fused.softmax(x)), f64(oracle(x))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(r))
    np.testing.assert_array_equal(y == 0, r == 0)
    np.testing.assert_allclose(y, r, rtol=RTOL[dtype], atol=ATOL[dtype])
    assert np.isnan(y[0]).all() and (y[4, 3:-3] == 0).all()


def test_masked_attention_pattern():
    # Causal mask: row i sees columns <= i; masked lanes are exactly 0, rows sum to 1.
    n = 37
    scores = rand((n, n), key=6)
    mask = mx.triu(mx.full((n, n), -INF), k=1)
    y = fused.softmax(scores + mask)
    assert_close(y, oracle(scores + mask), mx.float32)
    assert (f64(y)[np.triu_indices(n, 1)] == 0).all()
    np.testing.assert_allclose(f64(y).sum(-1), 1.0, rtol=1e-6)


def test_in_place_on_donated_input_is_correct():
    expected = oracle(rand((64, 128), key=8))
    y = fused.softmax(rand((64, 128), key=8) * 1.0)  # temporary: donatable
    assert_close(y, expected, mx.float32)


def test_grad_vjp_jvp_match_reference():
    x, ct = rand((4, 33), key=9), rand((4, 33), key=10)
    _, g_fused = mx.vjp(fused.softmax, [x], [ct])
    _, g_ref = mx.vjp(reference, [x], [ct])
    assert_grad_close(g_fused[0], g_ref[0], mx.float32, scale=10)
    _, t_fused = mx.jvp(fused.softmax, [x], [ct])
    _, t_ref = mx.jvp(reference, [x], [ct])
    assert_grad_close(t_fused[0], t_ref[0], mx.float32, scale=10)
    gx = mx.grad(lambda a: (fused.softmax(a, axis=0) * ct).sum())(x)
    assert_grad_close(gx, mx.grad(lambda a: (reference(a, axis=0) * ct).sum())(x), mx.float32, scale=10)


def test_half_grad_is_float32_math_rounded_once():
    x, ct = rand((4, 40), mx.bfloat16, 11), rand((4, 40), mx.bfloat16, 12)
    g = mx.vjp(fused.softmax, [x], [ct])[1][0]
    assert g.dtype == mx.bfloat16
    assert_grad_close(g, mx.vjp(reference, [x], [ct])[1][0], mx.bfloat16, scale=4)


def test_second_order_grad():
    # v keeps the outer sum from cancelling to 0 (softmax gradients sum to 0 over each row).
    x, w, v = rand((3, 16), key=13, scale=1), rand((3, 16), key=14), rand((3, 16), key=21)

    def loss(f):
        return lambda a: (mx.grad(lambda b: (f(b) ** 2 * w).sum())(a) * v).sum()

    assert_grad_close(mx.grad(loss(fused.softmax))(x), mx.grad(loss(reference))(x), mx.float32, scale=50)


@pytest.mark.parametrize("in_axis", [0, 1, 2])
def test_vmap_stays_fused(in_axis):
    x = rand((3, 4, 5), key=15)
    with fused.observe() as seen:
        got = mx.vmap(fused.softmax, in_axes=in_axis)(x)
        mx.eval(got)
    assert seen.ran_kernel("cpu", "softmax") and not seen.fallbacks
    expected = mx.stack([reference(mx.take(x, i, axis=in_axis)) for i in range(x.shape[in_axis])])
    assert_close(got, expected, mx.float32, scale=4)


def test_vmap_of_grad():
    x = rand((3, 4, 6), key=16)
    g = mx.vmap(mx.grad(lambda a: (fused.softmax(a) ** 2).sum()))(x)
    assert_grad_close(g, mx.vmap(mx.grad(lambda a: (reference(a) ** 2).sum()))(x), mx.float32, scale=10)


@pytest.mark.parametrize("shapeless", [False, True])
def test_compile(shapeless):
    f = mx.compile(lambda a: fused.softmax(a) * 2.0, shapeless=shapeless)
    for shape in ((2, 32), (5, 32), (5, 17)):
        x = rand(shape, key=shape[0] * shape[1])
        assert_close(f(x), oracle(x) * 2.0, mx.float32)


@pytest.mark.parametrize("axis", [0, 1, (0, 2), (0, 1), (1, 2), None])
def test_compile_shapeless_other_axes(axis):
    f = mx.compile(lambda a: fused.softmax(a, axis=axis), shapeless=True)
    for shape in ((3, 4, 5), (2, 6, 5), (3, 4, 7)):
        x = rand(shape, key=sum(shape))
        assert_close(f(x), oracle(x, axis), mx.float32)


@pytest.mark.parametrize("axis", [(0, 2), (1, 2), None])
def test_several_axes_grads_and_vmap(axis):
    x, ct = rand((3, 4, 5), key=23, scale=1), rand((3, 4, 5), key=24)
    g = mx.vjp(lambda a: fused.softmax(a, axis=axis), [x], [ct])[1][0]
    assert_grad_close(g, mx.vjp(lambda a: reference(a, axis=axis), [x], [ct])[1][0], mx.float32, scale=10)
    t = mx.jvp(lambda a: fused.softmax(a, axis=axis), [x], [ct])[1][0]
    assert_grad_close(t, mx.jvp(lambda a: reference(a, axis=axis), [x], [ct])[1][0], mx.float32, scale=10)
    x4 = rand((3, 2, 4, 5), key=25)  # vmapped over axis 1: 3-d samples
    with fused.observe() as seen:
        got = mx.vmap(lambda a: fused.softmax(a, axis=axis), in_axes=1)(x4)
        mx.eval(got)
    assert seen.ran_kernel("cpu", "softmax") and not seen.fallbacks
    expected = mx.vmap(lambda a: reference(a, axis=axis), in_axes=1)(x4)
    assert_close(got, expected, mx.float32, scale=4)


def test_grad_through_compile():
    x, w = rand((4, 32), key=17), rand((4, 32), key=18)
    g = mx.compile(mx.grad(lambda a: (fused.softmax(a) * w).sum()))(x)
    assert_grad_close(g, mx.grad(lambda a: (reference(a) * w).sum())(x), mx.float32, scale=10)


def test_streams_and_devices():
    x = rand((4, 16), key=19)
    expected = oracle(x)
    s = mx.new_stream(mx.cpu)
    for stream in (s, mx.cpu, mx.Device(mx.cpu)):
        assert_close(fused.softmax(x, stream=stream), expected, mx.float32)


def test_inputs_not_mutated_and_deterministic():
    x = rand((8, 300), key=20)
    assert_pure(fused.softmax, x)


def test_isa_paths_agree():
    # Every ISA level the CPU supports computes the same function (the level is fixed at
    # first use, hence subprocesses).
    code = (
        "import mlx.core as mx, numpy as np, mlxr.fused as f, mlxr._ext as e;"
        "x=4*mx.random.normal((5,777),key=mx.random.key(3));"
        "print(e.cpu_isa(), *[np.array(f.softmax(x.astype(t)).astype(mx.float32))[:, ::97].ravel().tolist() "
        "for t in (mx.float32,mx.float16,mx.bfloat16)])"
    )
    assert_isa_rows_agree(code, rtol=8e-3, atol=1e-7)


BAD = [
    (lambda: fused.softmax(mx.ones((2, 4), dtype=mx.int32)), r"\[softmax\] x must have a floating dtype"),
    (lambda: fused.softmax(np.ones((2, 4))), r"\[softmax\] x must be an mlx.core.array"),
    (lambda: fused.softmax(mx.ones((2, 4)), axis=2), r"\[softmax\] axis 2 is out of range"),
    (lambda: fused.softmax(mx.ones((2, 4)), axis=-3), r"\[softmax\] axis -3 is out of range"),
    (lambda: fused.softmax(mx.array(1.0)), r"\[softmax\] axis -1 is out of range"),
    (lambda: fused.softmax(mx.ones((2, 4)), axis=(0, 0)), r"\[softmax\] axis contains a repeated"),
    (lambda: fused.softmax(mx.ones((2, 4)), axis=(0, -2)), r"\[softmax\] axis contains a repeated"),
    (lambda: fused.softmax(mx.ones((2, 4)), axis=()), r"\[softmax\] axis must name at least one"),
    (lambda: fused.softmax(mx.ones((2, 4)), axis=1.0), r"\[softmax\] axis must be None, an int"),
    (lambda: fused.softmax(mx.ones((2, 4)), axis=True), r"\[softmax\] axis must be None, an int"),
    (lambda: fused.softmax(mx.ones((2, 4)), precise=1), r"\[softmax\] precise must be a bool"),
    (lambda: fused.softmax(mx.ones((2, 4)), stream="cpu"), r"\[softmax\] stream must be"),
]


@pytest.mark.parametrize("call,pattern", BAD, ids=[p for _, p in BAD])
def test_bad_input_raises_value_error(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()
