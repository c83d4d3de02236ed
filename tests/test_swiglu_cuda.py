"""The CUDA swiglu kernels against the float64 oracle: flat (16-byte or scalar) and strided
paths, broadcasting, layouts, donation, mixed dtypes and special values.

Runs only where the extension was built against a CUDA MLX (``_ext.gpu_kernels == "cuda"``).
"""

import mlx.core as mx
import numpy as np
import pytest

import mlxr.fused as fused
from mlxr.reference import swiglu as reference
from _cuda import DTYPES, NAMES, REQUIRES_CUDA_KERNELS, as_np

pytestmark = REQUIRES_CUDA_KERNELS

# Against the float64 oracle: a few float32 ulp (exp, division, two products) or one rounding
# to the half dtype; the absolute part covers subnormal outputs only.
RTOL = {mx.float32: 4e-6, mx.float16: 1e-3, mx.bfloat16: 8e-3}
ATOL = {mx.float32: 1e-30, mx.float16: 1e-7, mx.bfloat16: 1e-30}


def rand(shape, dtype=mx.float32, key=0, std=4.0):
    a = (std * mx.random.normal(shape, key=mx.random.key(key))).astype(dtype)
    mx.eval(a)
    return a


def oracle(g, u):
    """float64 in numpy: MLX's CPU float64 exp is only about float32-accurate."""
    g, u = as_np(g), as_np(u)
    with np.errstate(over="ignore", invalid="ignore"):
        return g / (1 + np.exp(-g)) * u


def check(y, g, u):
    ref = oracle(g, u)
    np.testing.assert_allclose(as_np(y), ref, rtol=RTOL[y.dtype], atol=ATOL[y.dtype])


def kernels(seen):
    return {k for k in seen.kernels if k.startswith("gpu:swiglu_")}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (7,), (4, 1000), (33, 4096), (3, 5, 129), (1 << 20,)])
def test_matches_oracle_and_runs_fused(dtype, shape):
    g, u = rand(shape, dtype, 1), rand(shape, dtype, 2)
    with fused.observe() as seen:
        y = fused.swiglu(g, u)
        mx.eval(y)
    per_vec = 16 // g.itemsize
    want = "vec" if g.size % per_vec == 0 else "flat"
    assert kernels(seen) == {f"gpu:swiglu_{want}_{NAMES[dtype]}"} and not seen.fallbacks, seen
    assert y.dtype == dtype and y.shape == g.shape
    check(y, g, u)


LAYOUTS = {
    # name: (gate view, up view, kernel) over (24, 40) bases
    "both_transposed": (lambda a: a.T, lambda a: a.T, "vec"),
    "one_transposed": (lambda a: a.T, lambda a: a.T.reshape(-1).reshape(40, 24), "strided"),
    "broadcast_up": (lambda a: a, lambda a: mx.broadcast_to(a[:1], a.shape), "strided"),
    "broadcast_gate_cols": (lambda a: mx.broadcast_to(a[:, :1], a.shape), lambda a: a, "strided"),
    "reversed": (lambda a: a[::-1, ::-1], lambda a: a[::-1, ::-1], "strided"),
    "misaligned": (lambda a: a.reshape(-1)[1:], lambda a: a.reshape(-1)[1:], "flat"),
    "strided": (lambda a: a[:, ::2], lambda a: a[:, 1::2], "strided"),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts(layout, dtype):
    gv, uv, want = LAYOUTS[layout]
    g, u = gv(rand((24, 40), dtype, 3)), uv(rand((24, 40), dtype, 4))
    with fused.observe() as seen:
        y = fused.swiglu(g, u)
        mx.eval(y)
    assert kernels(seen) == {f"gpu:swiglu_{want}_{NAMES[dtype]}"}, seen
    check(y, g, u)


def test_numpy_broadcasting_and_mixed_dtypes():
    g, u = rand((5, 1, 64), mx.float16, 5), rand((3, 64), mx.float32, 6)
    y = fused.swiglu(g, u)
    assert y.shape == (5, 3, 64) and y.dtype == mx.float32
    check(y, mx.broadcast_to(g.astype(mx.float32), y.shape), mx.broadcast_to(u, y.shape))


@pytest.mark.parametrize("donate", ["gate", "up"])
def test_in_place_on_donated_input(donate):
    g, u = rand((33, 4097), mx.bfloat16, 7), rand((33, 4097), mx.bfloat16, 8)
    y = fused.swiglu(g * 1, u) if donate == "gate" else fused.swiglu(g, u * 1)
    check(y, g, u)


def test_special_values():
    inf, nan = float("inf"), float("nan")
    g = mx.array([-200.0, -88.0, 0.0, 88.0, inf, -inf, nan, 1.0])
    u = mx.array([1.0, 2.0, 3.0, 4.0, 1.0, 1.0, 1.0, nan])
    y = np.array(fused.swiglu(g, u))
    with mx.stream(mx.cpu):
        r = np.array(reference(g, u))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(r))
    ok = ~np.isnan(r)
    np.testing.assert_allclose(y[ok], r[ok], rtol=4e-6, atol=1e-30)
    assert fused.swiglu(mx.zeros((0, 8)), mx.zeros((0, 8))).shape == (0, 8)


def test_grads_vmap_compile():
    g, u, ct = rand((4, 300), key=9), rand((4, 300), key=10), rand((4, 300), key=11)
    _, grads = mx.vjp(lambda a, b: fused.swiglu(a, b), [g, u], [ct])
    with mx.stream(mx.cpu):
        _, refs = mx.vjp(lambda a, b: reference(a, b), [g, u], [ct])
    for a, b in zip(grads, refs):
        np.testing.assert_allclose(np.array(a), np.array(b), rtol=1e-5, atol=1e-5)
    y = mx.vmap(lambda a, b: fused.swiglu(a, b), in_axes=(1, 1))(rand((8, 3, 16), key=12), rand((8, 3, 16), key=13))
    check(y, rand((8, 3, 16), key=12).transpose(1, 0, 2), rand((8, 3, 16), key=13).transpose(1, 0, 2))
    f = mx.compile(lambda a, b: fused.swiglu(a, b), shapeless=True)
    for rows in (2, 5):
        a, b = rand((rows, 64), key=rows), rand((rows, 64), key=rows + 10)
        with fused.observe() as seen:
            y = f(a, b)
            mx.eval(y)
        assert kernels(seen)
        check(y, a, b)
