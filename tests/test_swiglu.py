"""The fused swiglu extension: numerics, broadcasting, layouts, special values, transforms, bad input."""

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest

import mlxr.fused as fused
from mlxr.reference import swiglu as reference
from _common import LAYOUTS_2D, assert_close_f64, assert_close_to_max, assert_isa_rows_agree, assert_pure, f64, rand as normal

DTYPES = [mx.float32, mx.float16, mx.bfloat16]
# Against the float64 oracle: a few ulp for float32 (exp, one division, two products), one
# rounding for the half types.
RTOL = {mx.float32: 4e-6, mx.float16: 1e-3, mx.bfloat16: 8e-3, mx.float64: 1e-13}
ATOL = {mx.float32: 1e-30, mx.float16: 1e-7, mx.bfloat16: 1e-30, mx.float64: 1e-300}


def rand(shape, dtype=mx.float32, key=0, scale=3.0):
    return normal(shape, dtype, key, scale)


def oracle(gate, up):
    """The reference in float64 on copies of the inputs, rounded to the promoted dtype."""
    out = mx.result_type(gate, up)
    g, u = (mx.array(f64(a), dtype=mx.float64) for a in (gate, up))
    return reference(g, u).astype(out)


def assert_close(actual, expected, dtype, scale=1.0):
    assert_close_f64(actual, expected, RTOL[dtype] * scale, ATOL[dtype] * scale)


def assert_close_to_scale(actual, expected, dtype, scale=1.0):
    assert_close_to_max(actual, expected, RTOL[dtype] * scale)


@pytest.mark.parametrize("dtype", DTYPES + [mx.float64])
@pytest.mark.parametrize("d", [1, 7, 15, 16, 17, 33, 4096, 4097])
def test_matches_oracle_and_runs_fused(dtype, d):
    g, u = rand((3, d), dtype, d), rand((3, d), dtype, d + 1)
    with fused.observe() as seen:
        y = fused.swiglu(g, u)
        mx.eval(y)
    assert seen.ran_kernel("cpu", "swiglu") and not seen.fallbacks
    assert y.dtype == dtype and y.shape == g.shape
    assert_close(y, oracle(g, u), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_mlx_composites(dtype):
    g, u = rand((5, 4, 96), dtype, 3), rand((5, 4, 96), dtype, 4)
    y = fused.swiglu(g, u)
    # MLX's own ops round after each step in half precision: allow a few of their ulps.
    assert_close_to_scale(y, mx.sigmoid(g) * g * u, dtype, scale=4)
    assert_close_to_scale(y, nn.silu(g) * u, dtype, scale=4)
    assert_close(y, reference(g, u), dtype, scale=2)


def test_wide_range_of_gates():
    # Saturated, tiny and sub-normal-producing sigmoids: -100..100 in fine steps.
    g = mx.linspace(-100, 100, 20011)
    u = rand((20011,), key=5)
    y, r = f64(fused.swiglu(g, u)), f64(oracle(g, u))
    # Below gate ~ -87 the kernel flushes sigmoid < 2^-126 to 0 (the reference goes subnormal).
    np.testing.assert_allclose(y, r, rtol=RTOL[mx.float32], atol=1e-35)


@pytest.mark.parametrize(
    "gate_shape,up_shape",
    [((4, 1, 8), (3, 8)), ((3, 8), (8,)), ((3, 8), ()), ((), (2, 5)), ((1, 5), (4, 1)), ((7,), (7,))],
)
def test_broadcasting_matches_composite(gate_shape, up_shape):
    g, u = rand(gate_shape, key=6), rand(up_shape, key=7)
    with fused.observe() as seen:
        y = fused.swiglu(g, u)
        mx.eval(y)
    assert seen.ran_kernel("cpu", "swiglu")
    assert y.shape == mx.broadcast_shapes(g.shape, u.shape)
    assert_close(y, oracle(g, u), mx.float32)


def test_mixed_dtypes_promote():
    g, u = rand((4, 32), mx.float16, 8), rand((4, 32), mx.float32, 9)
    y = fused.swiglu(g, u)
    assert y.dtype == mx.float32
    assert_close(y, oracle(g, u), mx.float32)
    assert fused.swiglu(rand((4,), mx.bfloat16), rand((4,), mx.float16)).dtype == mx.float32


@pytest.mark.parametrize("layout", sorted(LAYOUTS_2D))
@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts(layout, dtype):
    g = LAYOUTS_2D[layout](rand((40, 40), dtype, 10))
    u = rand(g.shape, dtype, 11)
    assert_close(fused.swiglu(g, u), oracle(g, u), dtype)
    assert_close(fused.swiglu(u, g), oracle(u, g), dtype)
    assert_close(fused.swiglu(g, g), oracle(g, g), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_same_layout_inputs(dtype):
    # Both transposed (or both permuted the same way): one flat pass in memory order.
    g = rand((3, 40, 17), dtype, 32).transpose(2, 0, 1)
    u = rand((3, 40, 17), dtype, 33).transpose(2, 0, 1)
    assert_close(fused.swiglu(g, u), oracle(g, u), dtype)
    donated = fused.swiglu(g * 1, u)  # a donatable temporary in the same layout
    assert_close(donated, oracle(g, u), dtype)


INF, NAN = float("inf"), float("nan")


@pytest.mark.parametrize("dtype", DTYPES + [mx.float64])
def test_special_values(dtype):
    gates = [-INF, INF, NAN, 0.0, -0.0, 1.0, -1.0, 30.0, -30.0, 1e-30, 60000.0, -60000.0]
    ups = [1.0, 1.0, 1.0, INF, 1.0, NAN, -INF, 0.0, 2.0, 1.0, 1.0, 1.0]
    n = len(gates)
    # Repeated so the values land both in full blocks and in the tail.
    g = mx.array(gates * 3, dtype=mx.float64).astype(dtype)
    u = mx.array(ups * 3, dtype=mx.float64).astype(dtype)
    y, r = f64(fused.swiglu(g, u)), f64(oracle(g, u))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(r))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(r))
    np.testing.assert_allclose(y, r, rtol=RTOL[dtype], atol=ATOL[dtype])
    assert np.isnan(y[0]) and y[1] == INF and np.isnan(y[2]) and len(y) == 3 * n


def test_in_place_on_donated_input_is_correct():
    expected = oracle(rand((64, 128), key=12), rand((64, 128), key=13))
    y = fused.swiglu(rand((64, 128), key=12) * 1.0, rand((64, 128), key=13) * 1.0)
    assert_close(y, expected, mx.float32)


def test_grad_vjp_jvp_match_reference():
    g, u, ct = rand((4, 33), key=14), rand((4, 33), key=15), rand((4, 33), key=16)
    _, grads = mx.vjp(fused.swiglu, [g, u], [ct])
    _, grads_ref = mx.vjp(reference, [g, u], [ct])
    for a, b in zip(grads, grads_ref):
        assert_close_to_scale(a, b, mx.float32, scale=4)
    tg, tu = rand((4, 33), key=17), rand((4, 33), key=18)
    _, t = mx.jvp(fused.swiglu, [g, u], [tg, tu])
    _, t_ref = mx.jvp(reference, [g, u], [tg, tu])
    assert_close_to_scale(t[0], t_ref[0], mx.float32, scale=4)
    # One argument at a time (argnums of length 1) and through broadcasting.
    w = rand((33,), key=19)
    gw = mx.grad(lambda b: (fused.swiglu(g, b) * ct).sum())(w)
    assert_close_to_scale(gw, mx.grad(lambda b: (reference(g, b) * ct).sum())(w), mx.float32, scale=4)


def test_half_grads_keep_input_dtypes():
    g, u = rand((4, 16), mx.bfloat16, 20), rand((4, 16), mx.float32, 21)
    dg, du = mx.grad(lambda a, b: fused.swiglu(a, b).sum(), argnums=(0, 1))(g, u)
    assert dg.dtype == mx.bfloat16 and du.dtype == mx.float32
    rg, ru = mx.grad(lambda a, b: reference(a, b).sum(), argnums=(0, 1))(g, u)
    assert_close_to_scale(dg, rg, mx.bfloat16)
    assert_close_to_scale(du, ru, mx.float32, scale=4)


def test_second_order_grad():
    g, u = rand((3, 16), key=22), rand((3, 16), key=23)

    def loss(f):
        return lambda a: mx.grad(lambda b: (f(b, u) ** 2).sum())(a).sum()

    assert_close_to_scale(mx.grad(loss(fused.swiglu))(g), mx.grad(loss(reference))(g), mx.float32, scale=10)


@pytest.mark.parametrize("in_axes", [(0, 0), (1, 0), (2, 1), (0, None), (None, 1)])
def test_vmap_stays_fused(in_axes):
    # Three samples of shape (4, 5); each input carries its batch axis where in_axes says.
    def batched(ax, key):
        a = rand((3, 4, 5), key=key)
        return a[0] if ax is None else mx.moveaxis(a, 0, ax)

    g, u = batched(in_axes[0], 24), batched(in_axes[1], 25)
    with fused.observe() as seen:
        got = mx.vmap(fused.swiglu, in_axes=in_axes)(g, u)
        mx.eval(got)
    assert seen.ran_kernel("cpu", "swiglu") and not seen.fallbacks
    assert_close(got, mx.vmap(reference, in_axes=in_axes)(g, u), mx.float32, scale=2)


@pytest.mark.parametrize("shapeless", [False, True])
def test_compile(shapeless):
    f = mx.compile(lambda a, b: fused.swiglu(a, b) * 2.0, shapeless=shapeless)
    for shape in ((2, 32), (5, 32), (5, 17)):
        g, u = rand(shape, key=shape[0] * shape[1]), rand(shape, key=shape[1])
        assert_close(f(g, u), oracle(g, u) * 2.0, mx.float32)


def test_grad_through_compile():
    g, u = rand((4, 32), key=26), rand((4, 32), key=27)
    dg = mx.compile(mx.grad(lambda a: fused.swiglu(a, u).sum()))(g)
    assert_close_to_scale(dg, mx.grad(lambda a: reference(a, u).sum())(g), mx.float32, scale=4)


def test_streams_and_devices():
    g, u = rand((4, 16), key=28), rand((4, 16), key=29)
    expected = oracle(g, u)
    s = mx.new_stream(mx.cpu)
    for stream in (s, mx.cpu, mx.Device(mx.cpu)):
        assert_close(fused.swiglu(g, u, stream=stream), expected, mx.float32)


def test_inputs_not_mutated_and_deterministic():
    g, u = rand((8, 40), key=30), rand((8, 40), key=31)
    assert_pure(fused.swiglu, g, u)


def test_isa_paths_agree():
    # Every ISA level the CPU supports computes the same function (subprocesses: the level
    # is fixed at first use).
    code = (
        "import mlx.core as mx, numpy as np, mlxr.fused as f, mlxr._ext as e;"
        "g=3*mx.random.normal((5,77),key=mx.random.key(3));u=mx.random.normal((5,77),key=mx.random.key(4));"
        "print(e.cpu_isa(), *[np.array(f.swiglu(g.astype(t),u.astype(t)).astype(mx.float32))[:, ::7].ravel().tolist() "
        "for t in (mx.float32,mx.float16,mx.bfloat16)])"
    )
    assert_isa_rows_agree(code, rtol=8e-3, atol=1e-6)


BAD = [
    (lambda: fused.swiglu(mx.ones((2, 4)), mx.ones((3, 4))), r"\[swiglu\] gate and up must have broadcastable shapes, got \(2, 4\) and \(3, 4\)"),
    (lambda: fused.swiglu(mx.ones((2, 4), dtype=mx.int32), mx.ones((2, 4), dtype=mx.int32)), r"\[swiglu\] the output must have a floating dtype"),
    (lambda: fused.swiglu(mx.ones((2, 4), dtype=mx.bool_), mx.ones((2, 4), dtype=mx.uint8)), r"\[swiglu\] the output must have a floating dtype"),
    (lambda: fused.swiglu(np.ones((2, 4)), mx.ones((2, 4))), r"\[swiglu\] gate must be an mlx.core.array"),
    (lambda: fused.swiglu(mx.ones((2, 4)), 1.0), r"\[swiglu\] up must be an mlx.core.array"),
    (lambda: fused.swiglu(mx.ones((2, 4)), mx.ones((2, 4)), stream="cpu"), r"\[swiglu\] stream must be"),
]


@pytest.mark.parametrize("call,pattern", BAD, ids=[p for _, p in BAD])
def test_bad_input_raises_value_error(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()
