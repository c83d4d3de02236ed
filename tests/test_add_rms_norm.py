"""The fused add_rms_norm extension itself: numerics, layouts, transforms, streams and bad input."""

import mlx.core as mx
import numpy as np
import pytest

import mlxr.fused as fused
from mlxr.reference import add_rms_norm as reference
from _common import LAYOUTS_2D, assert_close_f64, assert_isa_paths_agree, assert_pure, f64, rand

DTYPES = [mx.float32, mx.float16, mx.bfloat16]
# Round-off allowed against the reference (same formula, different summation order).
ATOL = {mx.float32: 2e-6, mx.float16: 2e-3, mx.bfloat16: 1.6e-2, mx.float64: 1e-14}


def assert_close(actual, expected, dtype, scale=1.0):
    assert_close_f64(actual, expected, ATOL[dtype] * scale, ATOL[dtype] * scale)


@pytest.mark.parametrize("with_weight", [True, False])
@pytest.mark.parametrize("dtype", DTYPES + [mx.float64])
@pytest.mark.parametrize("d", [1, 7, 15, 16, 17, 33, 4096, 4097])
def test_matches_reference_and_runs_fused(dtype, d, with_weight):
    x, res = rand((3, d), dtype, 1), rand((3, d), dtype, 2)
    w = rand((d,), dtype, 3) if with_weight else None
    with fused.observe() as seen:
        normed, h = fused.add_rms_norm(x, res, w, 1e-5)
        mx.eval(normed, h)
    assert seen.ran_kernel("cpu", "add_rms_norm") and not seen.fallbacks
    assert normed.dtype == h.dtype == dtype and normed.shape == h.shape == x.shape
    ref_normed, ref_h = reference(x, res, w, 1e-5)
    # h is one rounded add: exactly what MLX's add gives.
    np.testing.assert_array_equal(f64(h), f64(ref_h))
    assert_close(normed, ref_normed, dtype)


@pytest.mark.parametrize("dtype", DTYPES + [mx.float64])
def test_normed_is_fused_rms_norm_of_h_bitwise(dtype):
    # Same lane order and rounding as the rms_norm kernel: identical bits, not just close.
    x, res, w = rand((4, 100), dtype, 4), rand((4, 100), dtype, 5), rand((100,), dtype, 6)
    normed, h = fused.add_rms_norm(x, res, w, 1e-5)
    np.testing.assert_array_equal(f64(normed), f64(fused.rms_norm(x + res, w, 1e-5)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_mx_fast(dtype):
    x, res, w = rand((5, 4, 96), dtype, 3), rand((5, 4, 96), dtype, 4), rand((96,), dtype, 5)
    for weight in (w, None):
        normed, h = fused.add_rms_norm(x, res, weight, 1e-6)
        np.testing.assert_array_equal(f64(h), f64(x + res))
        assert_close(normed, mx.fast.rms_norm(x + res, weight, 1e-6), dtype)


def test_mixed_dtypes_promote():
    x, res, w = rand((4, 32), mx.float16), rand((4, 32), mx.bfloat16, 1), rand((32,), mx.float16, 2)
    normed, h = fused.add_rms_norm(x, res, w, 1e-5)
    assert normed.dtype == h.dtype == mx.float32
    np.testing.assert_array_equal(np.array(h), np.array(x.astype(mx.float32) + res.astype(mx.float32)))
    assert_close(normed, mx.fast.rms_norm(x + res, w, 1e-5), mx.float32)
    normed, h = fused.add_rms_norm(x, x, w, 1e-5)
    assert normed.dtype == mx.float16


@pytest.mark.parametrize("residual_layout", ["contiguous", "transposed", "strided"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS_2D))
@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts(layout, residual_layout, dtype):
    x = LAYOUTS_2D[layout](rand((40, 40), dtype, 5))
    base = rand((80, 80), dtype, 6)
    res = {"contiguous": base * 1, "transposed": base.T, "strided": base[:, ::2]}[residual_layout]
    res = res[: x.shape[0], : x.shape[1]]
    w = LAYOUTS_2D["strided"](rand((2, x.shape[-1] * 2), dtype, 7))[0]
    contiguous = lambda a: mx.array(np.array(a.astype(mx.float32))).astype(dtype)  # noqa: E731
    normed, h = fused.add_rms_norm(x, res, w, 1e-5)
    ref_normed, ref_h = reference(contiguous(x), contiguous(res), contiguous(w), 1e-5)
    np.testing.assert_array_equal(f64(h), f64(ref_h))
    assert_close(normed, ref_normed, dtype)


def test_zero_size_and_special_values():
    for shape in ((0, 8), (3, 0)):
        normed, h = fused.add_rms_norm(mx.zeros(shape), mx.zeros(shape), None, 1e-5)
        assert normed.shape == h.shape == shape
    x = mx.array([[0.0, 0.0], [1.0, float("nan")], [float("inf"), 1.0], [3e38, 3e38]])
    normed, h = fused.add_rms_norm(x, x, None, 1e-5)
    ref_normed, ref_h = reference(x, x, None, 1e-5)
    np.testing.assert_array_equal(np.array(h), np.array(ref_h))  # overflow to inf included
    np.testing.assert_array_equal(np.isnan(np.array(normed)), np.isnan(np.array(ref_normed)))
    np.testing.assert_allclose(np.array(normed)[0], [0.0, 0.0])


def test_donated_inputs_are_correct():
    # Both temporaries are donatable: normed may reuse x's buffer and h the residual's.
    x, res = rand((64, 128), key=8), rand((64, 128), key=9)
    ref_normed, ref_h = reference(x, res, None, 1e-5)
    normed, h = fused.add_rms_norm(x * 1.0, res * 1.0, None, 1e-5)
    np.testing.assert_array_equal(np.array(h), np.array(ref_h))
    assert_close(normed, ref_normed, mx.float32)


def test_decoder_loop_carries_the_residual():
    # h of one block is the residual of the next, as in a pre-norm transformer.
    w = rand((64,), key=10)
    res, res_ref = rand((8, 64), key=11), rand((8, 64), key=11)
    for step in range(3):
        update = rand((8, 64), key=20 + step)
        normed, res = fused.add_rms_norm(update, res, w, 1e-5)
        ref_normed, res_ref = reference(update, res_ref, w, 1e-5)
        mx.eval(normed, res, ref_normed, res_ref)
        np.testing.assert_array_equal(np.array(res), np.array(res_ref))
        assert_close(normed, ref_normed, mx.float32)


@pytest.mark.parametrize("with_weight", [True, False])
def test_grad_vjp_jvp_match_reference(with_weight):
    x, res = rand((4, 33), key=9), rand((4, 33), key=10)
    args = [x, res] + ([rand((33,), key=11)] if with_weight else [])

    def call(f):
        return lambda *a: f(a[0], a[1], a[2] if with_weight else None, 1e-5)

    cts = [rand((4, 33), key=12), rand((4, 33), key=13)]
    for cotangents in (cts, [cts[0], mx.zeros_like(cts[1])], [mx.zeros_like(cts[0]), cts[1]]):
        _, g_fused = mx.vjp(call(fused.add_rms_norm), args, cotangents)
        _, g_ref = mx.vjp(call(reference), args, cotangents)
        for a, e in zip(g_fused, g_ref):
            assert_close(a, e, mx.float32, scale=10)
    tangents = [rand(a.shape, key=14 + i) for i, a in enumerate(args)]
    _, t_fused = mx.jvp(call(fused.add_rms_norm), args, tangents)
    _, t_ref = mx.jvp(call(reference), args, tangents)
    for a, e in zip(t_fused, t_ref):
        assert_close(a, e, mx.float32, scale=10)


def test_grad_of_one_output_only():
    x, res, w = rand((3, 16), key=12), rand((3, 16), key=13), rand((16,), key=14)
    for pick in (0, 1):
        g = mx.grad(lambda a: (fused.add_rms_norm(a, res, w, 1e-5)[pick] ** 2).sum())(x)
        g_ref = mx.grad(lambda a: (reference(a, res, w, 1e-5)[pick] ** 2).sum())(x)
        assert_close(g, g_ref, mx.float32, scale=10)


def test_second_order_grad():
    x, res, w = rand((3, 16), key=12), rand((3, 16), key=13), rand((16,), key=14)

    def loss(f):
        return lambda a: mx.grad(lambda b: (f(b, res, w, 1e-5)[0] ** 3).sum())(a).sum()

    assert_close(mx.grad(loss(fused.add_rms_norm))(x), mx.grad(loss(reference))(x), mx.float32, scale=50)


@pytest.mark.parametrize(
    "in_axes", [(0, 0, None), (1, 1, None), (2, 0, None), (0, None, None), (None, 1, None), (0, 0, 0)]
)
def test_vmap(in_axes):
    x, res = rand((3, 4, 5), key=14), rand((3, 4, 5), key=15)
    if in_axes[0] is not None and in_axes[1] is not None:
        res = mx.moveaxis(res, in_axes[0], in_axes[1])  # same batch size on both axes
    axis = in_axes[0] if in_axes[0] is not None else in_axes[1]
    batch = (x if in_axes[0] is not None else res).shape[axis]
    xs = x if in_axes[0] is not None else mx.take(x, 0, axis=axis)
    rs = res if in_axes[1] is not None else mx.take(res, 0, axis=axis)
    slice_of = lambda a, ax, i: a if ax is None else mx.take(a, i, axis=ax)  # noqa: E731
    d = slice_of(xs, in_axes[0], 0).shape[-1]
    w = rand((d,), key=16) if in_axes[2] is None else rand((batch, d), key=17)
    got_normed, got_h = mx.vmap(lambda a, b, c: fused.add_rms_norm(a, b, c, 1e-5), in_axes=in_axes)(xs, rs, w)
    normed, hs = [], []
    for i in range(batch):
        n_i, h_i = reference(slice_of(xs, in_axes[0], i), slice_of(rs, in_axes[1], i), slice_of(w, in_axes[2], i), 1e-5)
        normed.append(n_i)
        hs.append(h_i)
    assert_close(got_normed, mx.stack(normed), mx.float32)
    np.testing.assert_array_equal(np.array(got_h), np.array(mx.stack(hs)))


def test_vmap_with_shared_weight_stays_fused():
    x, res, w = rand((3, 4, 8), key=17), rand((3, 8, 4), key=18), rand((8,), key=19)
    with fused.observe() as seen:
        mx.eval(mx.vmap(lambda a, b: fused.add_rms_norm(a, b, w, 1e-5), in_axes=(2, 0))(x.transpose(0, 2, 1), res.transpose(2, 0, 1)))
    assert seen.ran_kernel("cpu", "add_rms_norm") and not seen.fallbacks


@pytest.mark.parametrize("shapeless", [False, True])
def test_compile(shapeless):
    w = rand((32,), key=19)
    f = mx.compile(lambda a, b: fused.add_rms_norm(a, b, w, 1e-5), shapeless=shapeless)
    for rows in (2, 5):
        x, res = rand((rows, 32), key=rows), rand((rows, 32), key=rows + 10)
        normed, h = f(x, res)
        ref_normed, ref_h = reference(x, res, w, 1e-5)
        assert_close(normed, ref_normed, mx.float32)
        np.testing.assert_array_equal(np.array(h), np.array(ref_h))


def test_grad_through_compile():
    w, res = rand((32,), key=20), rand((4, 32), key=21)
    x = rand((4, 32), key=22)
    loss = lambda f: lambda a: (f(a, res, w, 1e-5)[0] ** 2).sum() + f(a, res, w, 1e-5)[1].sum()  # noqa: E731
    g = mx.compile(mx.grad(loss(fused.add_rms_norm)))(x)
    assert_close(g, mx.grad(loss(reference))(x), mx.float32, scale=10)


def test_streams_and_devices():
    x, res, w = rand((4, 16)), rand((4, 16), key=1), rand((16,), key=2)
    expected = reference(x, res, w, 1e-5)
    s = mx.new_stream(mx.cpu)
    for stream in (s, mx.cpu, mx.Device(mx.cpu)):
        normed, h = fused.add_rms_norm(x, res, w, 1e-5, stream=stream)
        assert_close(normed, expected[0], mx.float32)
        np.testing.assert_array_equal(np.array(h), np.array(expected[1]))


def test_inputs_not_mutated_and_deterministic():
    x, res, w = rand((8, 40)), rand((8, 40), key=1), rand((40,), key=2)
    assert_pure(lambda x, r, w: fused.add_rms_norm(x, r, w, 1e-5), x, res, w)


def test_isa_paths_agree():
    # Every ISA level the CPU supports computes the same function.
    assert_isa_paths_agree(
        "import mlx.core as mx, numpy as np, mlxr.fused as f, mlxr._ext as e;"
        "x=mx.random.normal((5,77),key=mx.random.key(3));r=mx.random.normal((5,77),key=mx.random.key(4));"
        "print(e.cpu_isa(), *[float(np.array(o.astype(mx.float32)).sum()) for t in (mx.float32,mx.float16,mx.bfloat16) "
        "for o in f.add_rms_norm(x.astype(t),r.astype(t),None,1e-5)])",
        rtol=1e-5,
    )


BAD = [
    (lambda: fused.add_rms_norm(mx.array(1.0), mx.array(1.0), None, 1e-5), r"\[add_rms_norm\] x must have at least 1"),
    (lambda: fused.add_rms_norm(mx.ones((2, 4)), mx.ones((4,)), None, 1e-5), r"\[add_rms_norm\] residual must have shape \(2, 4\)"),
    (lambda: fused.add_rms_norm(mx.ones((2, 4)), np.ones((2, 4)), None, 1e-5), r"\[add_rms_norm\] residual must be an mlx"),
    (lambda: fused.add_rms_norm(mx.ones((2, 4)), mx.ones((2, 4)), mx.ones((3,)), 1e-5), r"\[add_rms_norm\] weight must have shape \(4,\)"),
    (lambda: fused.add_rms_norm(mx.ones((2, 4), dtype=mx.int32), mx.ones((2, 4), dtype=mx.int32), None, 1e-5), r"\[add_rms_norm\] the output must have a floating"),
    (lambda: fused.add_rms_norm(mx.ones((2, 4)), mx.ones((2, 4)), None, -1.0), r"\[add_rms_norm\] eps must be finite and >= 0"),
    (lambda: fused.add_rms_norm(mx.ones((2, 4)), mx.ones((2, 4)), None, True), r"\[add_rms_norm\] eps must be a real number"),
    (lambda: fused.add_rms_norm(mx.ones((2, 4)), mx.ones((2, 4)), None, 1e-5, stream=0), r"\[add_rms_norm\] stream must be"),
]


@pytest.mark.parametrize("call,pattern", BAD, ids=[p for _, p in BAD])
def test_bad_input_raises_value_error(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()
