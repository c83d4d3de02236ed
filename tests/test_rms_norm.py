"""The fused rms_norm extension itself: numerics, layouts, transforms, streams and bad input."""

import mlx.core as mx
import numpy as np
import pytest

import mlxr.fused as fused
from mlxr.reference import rms_norm as reference
from _common import LAYOUTS_2D, assert_close_f64, assert_isa_paths_agree, assert_pure, rand

DTYPES = [mx.float32, mx.float16, mx.bfloat16]
# Round-off allowed against the reference (same formula, different summation order).
ATOL = {mx.float32: 2e-6, mx.float16: 2e-3, mx.bfloat16: 1.6e-2, mx.float64: 1e-14}


def assert_close(actual, expected, dtype, scale=1.0):
    assert_close_f64(actual, expected, ATOL[dtype] * scale, ATOL[dtype] * scale)


@pytest.mark.parametrize("dtype", DTYPES + [mx.float64])
@pytest.mark.parametrize("d", [1, 7, 15, 16, 17, 33, 4096, 4097])
def test_matches_reference_and_runs_fused(dtype, d):
    x, w = rand((3, d), dtype, 1), rand((d,), dtype, 2)
    with fused.observe() as seen:
        y = fused.rms_norm(x, w, 1e-5)
        mx.eval(y)
    assert seen.ran_kernel("cpu", "rms_norm") and not seen.fallbacks
    assert y.dtype == dtype and y.shape == x.shape
    assert_close(y, reference(x, w, 1e-5), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_mx_fast(dtype):
    x, w = rand((5, 4, 96), dtype, 3), rand((96,), dtype, 4)
    assert_close(fused.rms_norm(x, w, 1e-6), mx.fast.rms_norm(x, w, 1e-6), dtype)
    assert_close(fused.rms_norm(x, None, 1e-6), mx.fast.rms_norm(x, None, 1e-6), dtype)


def test_mixed_dtypes_promote():
    x, w = rand((4, 32), mx.float16), rand((32,), mx.float32)
    y = fused.rms_norm(x, w, 1e-5)
    assert y.dtype == mx.float32
    assert_close(y, mx.fast.rms_norm(x, w, 1e-5), mx.float32)


@pytest.mark.parametrize("layout", sorted(LAYOUTS_2D))
@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts(layout, dtype):
    base = rand((40, 40), dtype, 5)
    x = LAYOUTS_2D[layout](base)
    w = LAYOUTS_2D["strided"](rand((2, x.shape[-1] * 2), dtype, 6))[0]
    expected = reference(mx.array(np.array(x.astype(mx.float32))).astype(dtype), w, 1e-5)
    assert_close(fused.rms_norm(x, w, 1e-5), expected, dtype)


def test_weight_broadcast_and_reversed():
    x = rand((6, 24))
    w = mx.broadcast_to(mx.array([2.0]), (24,))
    assert_close(fused.rms_norm(x, w, 1e-5), reference(x, mx.full((24,), 2.0), 1e-5), mx.float32)
    wr = rand((24,), key=7)[::-1]
    assert_close(fused.rms_norm(x, wr, 1e-5), reference(x, mx.array(np.array(wr)), 1e-5), mx.float32)


def test_zero_size_and_special_values():
    assert fused.rms_norm(mx.zeros((0, 8)), None, 1e-5).shape == (0, 8)
    assert fused.rms_norm(mx.zeros((3, 0)), None, 1e-5).shape == (3, 0)
    x = mx.array([[0.0, 0.0], [1.0, float("nan")], [float("inf"), 1.0]])
    y = np.array(fused.rms_norm(x, None, 1e-5))
    r = np.array(reference(x, None, 1e-5))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(r))
    np.testing.assert_allclose(y[0], [0.0, 0.0])


def test_in_place_on_donated_input_is_correct():
    expected = reference(rand((64, 128), key=8), None, 1e-5)
    y = fused.rms_norm(rand((64, 128), key=8) * 1.0, None, 1e-5)  # temporary: donatable
    assert_close(y, expected, mx.float32)


def test_grad_vjp_jvp_match_reference():
    x, w = rand((4, 33), key=9), rand((33,), key=10)
    ct = rand((4, 33), key=11)
    _, g_fused = mx.vjp(lambda a, b: fused.rms_norm(a, b, 1e-5), [x, w], [ct])
    _, g_ref = mx.vjp(lambda a, b: reference(a, b, 1e-5), [x, w], [ct])
    for a, b in zip(g_fused, g_ref):
        assert_close(a, b, mx.float32, scale=10)
    _, t_fused = mx.jvp(lambda a, b: fused.rms_norm(a, b, 1e-5), [x, w], [ct, w])
    _, t_ref = mx.jvp(lambda a, b: reference(a, b, 1e-5), [x, w], [ct, w])
    assert_close(t_fused[0], t_ref[0], mx.float32, scale=10)


def test_second_order_grad():
    x, w = rand((3, 16), key=12), rand((16,), key=13)

    def loss(f):
        return lambda a: mx.grad(lambda b: (f(b, w, 1e-5) ** 3).sum())(a).sum()

    assert_close(mx.grad(loss(fused.rms_norm))(x), mx.grad(loss(reference))(x), mx.float32, scale=50)


@pytest.mark.parametrize("in_axes", [(0, None), (1, None), (2, None), (0, 0), (1, 0)])
def test_vmap(in_axes):
    x = rand((3, 4, 5), key=14)
    d = [n for i, n in enumerate(x.shape) if i != in_axes[0]][-1]
    w = rand((d,), key=15) if in_axes[1] is None else rand((x.shape[in_axes[0]], d), key=16)
    got = mx.vmap(lambda a, b: fused.rms_norm(a, b, 1e-5), in_axes=in_axes)(x, w)
    slices = []
    for i in range(x.shape[in_axes[0]]):
        xi = mx.take(x, i, axis=in_axes[0])
        wi = w if in_axes[1] is None else w[i]
        slices.append(reference(xi, wi, 1e-5))
    assert_close(got, mx.stack(slices), mx.float32)


def test_vmap_with_shared_weight_stays_fused():
    x, w = rand((3, 4, 8), key=17), rand((8,), key=18)
    with fused.observe() as seen:
        mx.eval(mx.vmap(lambda a: fused.rms_norm(a, w, 1e-5), in_axes=2)(x.transpose(0, 2, 1)))
    assert seen.ran_kernel("cpu", "rms_norm")


@pytest.mark.parametrize("shapeless", [False, True])
def test_compile(shapeless):
    w = rand((32,), key=19)
    f = mx.compile(lambda a: fused.rms_norm(a, w, 1e-5), shapeless=shapeless)
    for rows in (2, 5):
        x = rand((rows, 32), key=rows)
        assert_close(f(x), reference(x, w, 1e-5), mx.float32)


def test_grad_through_compile():
    w = rand((32,), key=20)
    x = rand((4, 32), key=21)
    g = mx.compile(mx.grad(lambda a: fused.rms_norm(a, w, 1e-5).sum()))(x)
    assert_close(g, mx.grad(lambda a: reference(a, w, 1e-5).sum())(x), mx.float32, scale=10)


def test_streams_and_devices():
    x, w = rand((4, 16)), rand((16,))
    expected = reference(x, w, 1e-5)
    s = mx.new_stream(mx.cpu)
    for stream in (s, mx.cpu, mx.Device(mx.cpu)):
        assert_close(fused.rms_norm(x, w, 1e-5, stream=stream), expected, mx.float32)


def test_inputs_not_mutated_and_deterministic():
    x, w = rand((8, 40)), rand((40,))
    assert_pure(lambda x, w: fused.rms_norm(x, w, 1e-5), x, w)


def test_isa_paths_agree():
    # Every ISA level the CPU supports computes the same function.
    assert_isa_paths_agree(
        "import mlx.core as mx, numpy as np, mlxr.fused as f, mlxr._ext as e;"
        "x=mx.random.normal((5,77),key=mx.random.key(3));"
        "print(e.cpu_isa(), *[np.array(f.rms_norm(x.astype(t),None,1e-5).astype(mx.float32)).sum() "
        "for t in (mx.float32,mx.float16,mx.bfloat16)])",
        rtol=1e-5,
    )


BAD = [
    (lambda: fused.rms_norm(mx.array(1.0), None, 1e-5), r"\[rms_norm\] x must have at least 1"),
    (lambda: fused.rms_norm(mx.ones((2, 4)), mx.ones((3,)), 1e-5), r"\[rms_norm\] weight must have shape \(4,\)"),
    (lambda: fused.rms_norm(mx.ones((2, 4)), mx.ones((1, 4)), 1e-5), r"\[rms_norm\] weight must have shape"),
    (lambda: fused.rms_norm(mx.ones((2, 4), dtype=mx.int32), None, 1e-5), r"\[rms_norm\] the output must have a floating dtype"),
    (lambda: fused.rms_norm(mx.ones((2, 4)), None, -1e-5), r"\[rms_norm\] eps must be finite and >= 0"),
    (lambda: fused.rms_norm(mx.ones((2, 4)), None, float("nan")), r"\[rms_norm\] eps must be finite"),
    (lambda: fused.rms_norm(np.ones((2, 4)), None, 1e-5), r"\[rms_norm\] x must be an mlx.core.array"),
    (lambda: fused.rms_norm(mx.ones((2, 4)), None, "1e-5"), r"\[rms_norm\] eps must be a real number"),
    (lambda: fused.rms_norm(mx.ones((2, 4)), None, 1e-5, stream="cpu"), r"\[rms_norm\] stream must be"),
]


@pytest.mark.parametrize("call,pattern", BAD, ids=[p for _, p in BAD])
def test_bad_input_raises_value_error(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()
