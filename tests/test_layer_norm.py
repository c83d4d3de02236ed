"""The fused layer_norm extension itself: numerics, layouts, transforms, streams and bad input."""

import mlx.core as mx
import numpy as np
import pytest

import mlxr.fused as fused
from mlxr.reference import layer_norm as reference
from _common import LAYOUTS_2D, assert_close_f64, assert_isa_paths_agree, assert_pure, rand

DTYPES = [mx.float32, mx.float16, mx.bfloat16]
# Round-off allowed against the reference (same formula, different summation order). The
# weight multiply and bias add round once more each in half precision: one more ulp there.
ATOL = {mx.float32: 4e-6, mx.float16: 4e-3, mx.bfloat16: 3.2e-2, mx.float64: 1e-13}


def assert_close(actual, expected, dtype, scale=1.0):
    assert_close_f64(actual, expected, ATOL[dtype] * scale, ATOL[dtype] * scale)


def params(d, dtype, which, key=2):
    w = rand((d,), dtype, key) if "w" in which else None
    b = rand((d,), dtype, key + 1) if "b" in which else None
    return w, b


@pytest.mark.parametrize("which", ["wb", "w", "b", ""])
@pytest.mark.parametrize("dtype", DTYPES + [mx.float64])
@pytest.mark.parametrize("d", [1, 7, 15, 16, 17, 33, 4096, 4097])
def test_matches_reference_and_runs_fused(dtype, d, which):
    # A shifted input makes the two-pass variance matter (E[x^2] - mean^2 would lose digits).
    x = rand((3, d), dtype, 1, scale=2.0, shift=3.0)
    w, b = params(d, dtype, which)
    with fused.observe() as seen:
        y = fused.layer_norm(x, w, b, 1e-5)
        mx.eval(y)
    assert seen.ran_kernel("cpu", "layer_norm") and not seen.fallbacks
    assert y.dtype == dtype and y.shape == x.shape
    # Long shifted rows: the mean's round-off (different summation order) grows with sqrt(d).
    assert_close(y, reference(x, w, b, 1e-5), dtype, scale=4 if d >= 4096 else 1)


def test_float64_matches_numpy_oracle():
    x, w, b = rand((4, 300), mx.float64, 3, shift=100.0), rand((300,), mx.float64, 4), rand((300,), mx.float64, 5)
    xn = np.array(x)
    expected = (xn - xn.mean(-1, keepdims=True)) / np.sqrt(xn.var(-1, keepdims=True) + 1e-5) * np.array(w) + np.array(b)
    np.testing.assert_allclose(np.array(fused.layer_norm(x, w, b, 1e-5)), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("which", ["wb", "w", "b", ""])
@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_mx_fast(dtype, which):
    x = rand((5, 4, 96), dtype, 3)
    w, b = params(96, dtype, which, key=4)
    assert_close(fused.layer_norm(x, w, b, 1e-6), mx.fast.layer_norm(x, w, b, 1e-6), dtype)


@pytest.mark.parametrize(
    "x_dtype,w_dtype,b_dtype",
    [
        (mx.float16, mx.float32, None),
        (mx.bfloat16, mx.float16, mx.float16),
        (mx.float16, None, mx.float32),  # no weight: MLX keeps x.dtype and casts the bias
        (mx.float32, mx.float16, mx.bfloat16),
    ],
)
def test_mixed_dtypes_follow_mx_fast(x_dtype, w_dtype, b_dtype):
    x = rand((4, 32), x_dtype)
    w = rand((32,), w_dtype, 1) if w_dtype else None
    b = rand((32,), b_dtype, 2) if b_dtype else None
    expected = mx.fast.layer_norm(x, w, b, 1e-5)
    y = fused.layer_norm(x, w, b, 1e-5)
    assert y.dtype == expected.dtype
    assert_close(y, expected, y.dtype)


@pytest.mark.parametrize("layout", sorted(LAYOUTS_2D))
@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts(layout, dtype):
    x = LAYOUTS_2D[layout](rand((40, 40), dtype, 5))
    w = LAYOUTS_2D["strided"](rand((2, x.shape[-1] * 2), dtype, 6))[0]
    b = rand((x.shape[-1],), dtype, 7)[::-1]
    contiguous = lambda a: mx.array(np.array(a.astype(mx.float32))).astype(dtype)  # noqa: E731
    assert_close(fused.layer_norm(x, w, b, 1e-5), reference(contiguous(x), contiguous(w), contiguous(b), 1e-5), dtype)


def test_broadcast_parameters():
    x = rand((6, 24))
    w, b = mx.broadcast_to(mx.array([2.0]), (24,)), mx.broadcast_to(mx.array([-1.0]), (24,))
    assert_close(fused.layer_norm(x, w, b, 1e-5), reference(x, mx.full((24,), 2.0), mx.full((24,), -1.0), 1e-5), mx.float32)


def test_zero_size_and_special_values():
    assert fused.layer_norm(mx.zeros((0, 8)), None, None, 1e-5).shape == (0, 8)
    assert fused.layer_norm(mx.zeros((3, 0)), None, None, 1e-5).shape == (3, 0)
    # The reference skips the row reductions of an empty x (MLX 0.32.4's CPU reduce of empty
    # arrays built from numpy can loop over an uninitialised plan for minutes).
    empty = mx.array(np.zeros((2, 0)), dtype=mx.bfloat16)
    y = reference(empty, mx.zeros((0,), dtype=mx.float32), mx.zeros((0,), dtype=mx.float32), 1e-5)
    assert y.shape == (2, 0) and y.dtype == mx.float32
    x = mx.array([[0.0, 0.0], [1.0, float("nan")], [float("inf"), 1.0], [5.0, 5.0]])
    y = np.array(fused.layer_norm(x, None, None, 1e-5))
    r = np.array(reference(x, None, None, 1e-5))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(r))
    np.testing.assert_allclose(y[[0, 3]], 0.0)  # constant rows normalise to exactly 0
    # eps = 0 on a constant row: 0 / 0, as in the reference
    assert np.isnan(np.array(fused.layer_norm(mx.ones((1, 4)), None, None, 0.0))).all()


def test_in_place_on_donated_input_is_correct():
    expected = reference(rand((64, 128), key=8), None, None, 1e-5)
    y = fused.layer_norm(rand((64, 128), key=8) * 1.0, None, None, 1e-5)  # temporary: donatable
    assert_close(y, expected, mx.float32)


@pytest.mark.parametrize("which", ["wb", "w", "b", ""])
def test_grad_vjp_jvp_match_reference(which):
    x = rand((4, 33), key=9)
    w, b = params(33, mx.float32, which, key=10)
    args = [a for a in (x, w, b) if a is not None]

    def call(f):
        def g(*a):
            it = iter(a[1:])
            return f(a[0], next(it) if w is not None else None, next(it) if b is not None else None, 1e-5)

        return g

    ct = rand((4, 33), key=11)
    _, g_fused = mx.vjp(call(fused.layer_norm), args, [ct])
    _, g_ref = mx.vjp(call(reference), args, [ct])
    for a, e in zip(g_fused, g_ref):
        assert_close(a, e, mx.float32, scale=10)
    tangents = [rand(a.shape, key=12 + i) for i, a in enumerate(args)]
    _, t_fused = mx.jvp(call(fused.layer_norm), args, tangents)
    _, t_ref = mx.jvp(call(reference), args, tangents)
    assert_close(t_fused[0], t_ref[0], mx.float32, scale=10)


def test_second_order_grad():
    x, w, b = rand((3, 16), key=12), rand((16,), key=13), rand((16,), key=14)

    def loss(f):
        return lambda a: mx.grad(lambda c: (f(c, w, b, 1e-5) ** 3).sum())(a).sum()

    assert_close(mx.grad(loss(fused.layer_norm))(x), mx.grad(loss(reference))(x), mx.float32, scale=50)


@pytest.mark.parametrize(
    "in_axes", [(0, None, None), (1, None, None), (2, None, None), (0, 0, None), (1, None, 0), (2, 0, 0)]
)
def test_vmap(in_axes):
    x = rand((3, 4, 5), key=14)
    d = [n for i, n in enumerate(x.shape) if i != in_axes[0]][-1]
    batch = x.shape[in_axes[0]]
    w = rand((d,), key=15) if in_axes[1] is None else rand((batch, d), key=16)
    b = rand((d,), key=17) if in_axes[2] is None else rand((batch, d), key=18)
    got = mx.vmap(lambda a, c, e: fused.layer_norm(a, c, e, 1e-5), in_axes=in_axes)(x, w, b)
    slices = []
    for i in range(batch):
        wi = w if in_axes[1] is None else w[i]
        bi = b if in_axes[2] is None else b[i]
        slices.append(reference(mx.take(x, i, axis=in_axes[0]), wi, bi, 1e-5))
    assert_close(got, mx.stack(slices), mx.float32)


def test_vmap_with_shared_parameters_stays_fused():
    x, w, b = rand((3, 4, 8), key=17), rand((8,), key=18), rand((8,), key=19)
    with fused.observe() as seen:
        mx.eval(mx.vmap(lambda a: fused.layer_norm(a, w, b, 1e-5), in_axes=2)(x.transpose(0, 2, 1)))
    assert seen.ran_kernel("cpu", "layer_norm") and not seen.fallbacks


@pytest.mark.parametrize("shapeless", [False, True])
def test_compile(shapeless):
    w, b = rand((32,), key=19), rand((32,), key=20)
    f = mx.compile(lambda a: fused.layer_norm(a, w, b, 1e-5), shapeless=shapeless)
    for rows in (2, 5):
        x = rand((rows, 32), key=rows)
        assert_close(f(x), reference(x, w, b, 1e-5), mx.float32)


def test_grad_through_compile():
    w, b = rand((32,), key=20), rand((32,), key=21)
    x = rand((4, 32), key=22)
    g = mx.compile(mx.grad(lambda a: (fused.layer_norm(a, w, b, 1e-5) ** 2).sum()))(x)
    assert_close(g, mx.grad(lambda a: (reference(a, w, b, 1e-5) ** 2).sum())(x), mx.float32, scale=10)


def test_streams_and_devices():
    x, w, b = rand((4, 16)), rand((16,)), rand((16,), key=1)
    expected = reference(x, w, b, 1e-5)
    s = mx.new_stream(mx.cpu)
    for stream in (s, mx.cpu, mx.Device(mx.cpu)):
        assert_close(fused.layer_norm(x, w, b, 1e-5, stream=stream), expected, mx.float32)


def test_inputs_not_mutated_and_deterministic():
    x, w, b = rand((8, 40)), rand((40,)), rand((40,), key=1)
    assert_pure(lambda x, w, b: fused.layer_norm(x, w, b, 1e-5), x, w, b)


def test_isa_paths_agree():
    # Every ISA level the CPU supports computes the same function.
    assert_isa_paths_agree(
        "import mlx.core as mx, numpy as np, mlxr.fused as f, mlxr._ext as e;"
        "x=mx.random.normal((5,77),key=mx.random.key(3))+2;w=mx.random.normal((77,),key=mx.random.key(4));"
        "print(e.cpu_isa(), *[np.array(f.layer_norm(x.astype(t),w.astype(t),w.astype(t),1e-5).astype(mx.float32)).sum() "
        "for t in (mx.float32,mx.float16,mx.bfloat16)])",
        rtol=1e-5,
    )


BAD = [
    (lambda: fused.layer_norm(mx.array(1.0), None, None, 1e-5), r"\[layer_norm\] x must have at least 1"),
    (lambda: fused.layer_norm(mx.ones((2, 4)), mx.ones((3,)), None, 1e-5), r"\[layer_norm\] weight must have shape \(4,\)"),
    (lambda: fused.layer_norm(mx.ones((2, 4)), None, mx.ones((1, 4)), 1e-5), r"\[layer_norm\] bias must have shape \(4,\)"),
    (lambda: fused.layer_norm(mx.ones((2, 4)), None, np.ones(4), 1e-5), r"\[layer_norm\] bias must be an mlx.core.array"),
    (lambda: fused.layer_norm(mx.ones((2, 4), dtype=mx.int32), None, None, 1e-5), r"\[layer_norm\] the output must have a floating dtype"),
    (lambda: fused.layer_norm(mx.ones((2, 4), dtype=mx.int32), mx.ones((4,), dtype=mx.int8), None, 1e-5), r"\[layer_norm\] the output must have a floating"),
    (lambda: fused.layer_norm(mx.ones((2, 4)), None, None, -1e-5), r"\[layer_norm\] eps must be finite and >= 0"),
    (lambda: fused.layer_norm(mx.ones((2, 4)), None, None, float("inf")), r"\[layer_norm\] eps must be finite"),
    (lambda: fused.layer_norm(np.ones((2, 4)), None, None, 1e-5), r"\[layer_norm\] x must be an mlx.core.array"),
    (lambda: fused.layer_norm(mx.ones((2, 4)), None, None, None), r"\[layer_norm\] eps must be a real number"),
    (lambda: fused.layer_norm(mx.ones((2, 4)), None, None, 1e-5, stream="cpu"), r"\[layer_norm\] stream must be"),
]


@pytest.mark.parametrize("call,pattern", BAD, ids=[p for _, p in BAD])
def test_bad_input_raises_value_error(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()
