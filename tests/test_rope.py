"""The fused rope extension itself: numerics, layouts, offsets, transforms, streams and bad input."""

import math

import mlx.core as mx
import numpy as np
import pytest

import mlxr.fused as fused
from mlxr.reference import rope as reference
from _common import assert_isa_paths_agree, assert_pure
from _rope import (
    BASE,
    LAYOUTS,
    as_np,
    assert_close,
    check_compile,
    check_jvp_in_x_is_fused,
    check_large_positions,
    check_layout,
    check_vjp_is_fused_inverse_rotation,
    check_vmap,
    check_zero_size_and_special_values,
    numpy_rope,
    rand,
)

DTYPES = [mx.float32, mx.float16, mx.bfloat16]
# Against mx.fast.rope, whose CPU path rounds cos/sin and every product to half dtypes: an
# absolute bound for inputs of unit scale (its error grows with |x|).
FAST_ATOL = {mx.float32: 2e-6, mx.float16: 4e-3, mx.bfloat16: 3.2e-2}


@pytest.mark.parametrize("dtype", DTYPES + [mx.float64])
@pytest.mark.parametrize("traditional", [False, True])
@pytest.mark.parametrize("d,dims", [(2, 2), (6, 6), (40, 34), (64, 64), (130, 128), (96, 32)])
def test_matches_reference_and_runs_fused(dtype, traditional, d, dims):
    x = rand((2, 3, 37, d), dtype, 1)
    kw = dict(traditional=traditional, base=10000.0, scale=0.75, offset=13)
    with fused.observe() as seen:
        y = fused.rope(x, dims, **kw)
        mx.eval(y)
    assert seen.ran_kernel("cpu", "rope") and not seen.fallbacks
    assert y.dtype == dtype and y.shape == x.shape
    assert_close(y, reference(x, dims, **kw), dtype)
    # Features past dims pass through bit for bit.
    np.testing.assert_array_equal(as_np(y[..., dims:]), as_np(x[..., dims:]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("traditional", [False, True])
@pytest.mark.parametrize("offset", [0, 1000, "batch"])
def test_matches_mx_fast(dtype, traditional, offset):
    x = rand((3, 4, 19, 72), dtype, 2, std=1.0)
    off = mx.array([0, 7, 300]) if offset == "batch" else offset
    kw = dict(traditional=traditional, base=500.0, scale=0.5, offset=off)
    assert_close(fused.rope(x, 64, **kw), mx.fast.rope(x, 64, **kw), dtype, table=FAST_ATOL)


@pytest.mark.parametrize("traditional", [False, True])
def test_float64_matches_independent_oracle(traditional):
    x = rand((2, 3, 50, 20), mx.float64, 3)
    offsets = [5, 123456]
    ref = numpy_rope(x, 16, traditional, 10000.0, 0.5, offsets)
    off = mx.array(offsets)
    for impl in (fused.rope, reference):
        got = impl(x, 16, traditional=traditional, base=10000.0, scale=0.5, offset=off)
        np.testing.assert_allclose(np.array(got), ref, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_positions_against_float64_oracle(dtype):
    check_large_positions(dtype)


@pytest.mark.parametrize(
    "offset",
    [5, -3, mx.array(5), mx.array([5]), mx.array(5, dtype=mx.int64), mx.array([5], dtype=mx.uint8)],
    ids=["int", "negative", "scalar", "size1", "int64", "uint8"],
)
def test_scalar_offsets(offset):
    x = rand((2, 2, 9, 16), key=5)
    value = int(offset.reshape(-1)[0].item()) if isinstance(offset, mx.array) else offset
    expected = numpy_rope(as_np(x), 16, False, 100.0, 1.0, [value, value])
    got = fused.rope(x, 16, traditional=False, base=100.0, scale=1.0, offset=offset)
    np.testing.assert_allclose(as_np(got), expected, atol=2e-5)


@pytest.mark.parametrize("t", [1, 5])
@pytest.mark.parametrize("traditional", [False, True])
def test_per_batch_offsets_every_batch_row(t, traditional):
    # T = 1 with B > 1 is the decode shape: every batch row must get its own offset.
    offsets = [0, 17, 4, 1000]
    x = rand((4, 3, t, 32), key=6)
    got = fused.rope(x, 32, traditional=traditional, base=10000.0, scale=1.0, offset=mx.array(offsets))
    for b, off in enumerate(offsets):
        alone = fused.rope(x[b : b + 1], 32, traditional=traditional, base=10000.0, scale=1.0, offset=off)
        np.testing.assert_array_equal(as_np(got[b : b + 1]), as_np(alone))
    # float32 angles near 1000 round by up to ulp(1000) / 2 = 3e-5 rad, times |x| <= ~12.
    expected = numpy_rope(as_np(x), 32, traditional, 10000.0, 1.0, offsets)
    np.testing.assert_allclose(as_np(got), expected, atol=5e-4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_custom_freqs(dtype):
    x = rand((2, 3, 11, 24), dtype, 7, std=1.0)
    freqs = mx.array(np.geomspace(1.0, 500.0, 8), dtype=mx.float32)
    kw = dict(traditional=False, base=None, scale=1.0, offset=mx.array([2, 9]), freqs=freqs)
    y = fused.rope(x, 16, **kw)
    assert_close(y, reference(x, 16, **kw), dtype)
    assert_close(y, mx.fast.rope(x, 16, **kw), dtype, table=FAST_ATOL)


@pytest.mark.parametrize("shape", [(5, 9, 32), (2, 3, 2, 9, 32), (2, 1, 1, 1, 6, 32)])
def test_other_ranks(shape):
    x = rand(shape, key=8)
    kw = dict(traditional=True, base=10000.0, scale=1.0, offset=mx.arange(shape[0]))
    assert_close(fused.rope(x, 32, **kw), reference(x, 32, **kw), mx.float32)
    assert_close(fused.rope(x, 32, **kw), mx.fast.rope(x, 32, **kw), mx.float32, table=FAST_ATOL)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("traditional", [False, True])
def test_layouts(layout, dtype, traditional):
    check_layout("cpu", LAYOUTS[layout], (2, 6, 10, 68), dtype, traditional)


def test_zero_size_and_special_values():
    check_zero_size_and_special_values()


def test_in_place_on_donated_input_is_correct():
    kw = dict(traditional=True, base=10000.0, scale=1.0, offset=3)
    expected = reference(rand((2, 4, 64, 130), key=10), 128, **kw)
    y = fused.rope(rand((2, 4, 64, 130), key=10) * 1.0, 128, **kw)  # temporary: donatable
    assert_close(y, expected, mx.float32)


@pytest.mark.parametrize("traditional", [False, True])
def test_vjp_is_fused_inverse_rotation(traditional):
    check_vjp_is_fused_inverse_rotation("cpu", traditional)


def test_jvp_in_x_is_fused():
    check_jvp_in_x_is_fused("cpu")


def test_grad_through_freqs_and_jvp_match_reference():
    x, ct = rand((2, 2, 5, 16), key=13), rand((2, 2, 5, 16), key=14)
    freqs = mx.array(np.geomspace(1.0, 50.0, 8), dtype=mx.float32)

    def make(impl):
        return lambda a, f: impl(a, 16, traditional=False, base=None, scale=1.0, offset=2, freqs=f)

    _, g_fused = mx.vjp(make(fused.rope), [x, freqs], [ct])
    _, g_ref = mx.vjp(make(reference), [x, freqs], [ct])
    for a, b in zip(g_fused, g_ref):
        assert_close(a, b, mx.float32, scale=20)
    _, t_fused = mx.jvp(make(fused.rope), [x, freqs], [ct, freqs * 0.01])
    _, t_ref = mx.jvp(make(reference), [x, freqs], [ct, freqs * 0.01])
    assert_close(t_fused[0], t_ref[0], mx.float32, scale=20)


def test_second_order_grad():
    x = rand((2, 2, 6, 16), key=15)

    def loss(f):
        inner = lambda b: (f(b, 16, traditional=True, **BASE) ** 3).sum()  # noqa: E731
        return lambda a: mx.grad(inner)(a).sum()

    assert_close(mx.grad(loss(fused.rope))(x), mx.grad(loss(reference))(x), mx.float32, scale=50)


@pytest.mark.parametrize("in_axes", [(0, None), (1, None), (3, None), (0, 0), (None, 0), (2, 0)])
def test_vmap(in_axes):
    check_vmap("cpu", in_axes)


def test_vmap_with_shared_per_batch_offsets_stays_fused():
    x = rand((2, 3, 4, 5, 8), key=19)  # vmapped over axis 2; per-example batch axis has size 2
    offsets = mx.array([7, 70])

    def f(impl):
        return lambda a: impl(a, 8, traditional=False, base=10000.0, scale=1.0, offset=offsets)

    with fused.observe() as seen:
        got = mx.vmap(f(fused.rope), in_axes=2, out_axes=0)(x)
        mx.eval(got)
    assert seen.ran_kernel("cpu", "rope") and not seen.fallbacks
    assert_close(got, mx.stack([f(reference)(x[:, :, i]) for i in range(4)]), mx.float32)


def test_vmap_batched_per_batch_offsets_and_freqs():
    x = rand((3, 2, 2, 5, 8), key=17)
    offsets = mx.array([[1, 2], [3, 4], [5, 6]])
    freqs = mx.array(np.geomspace(1.0, 9.0, 12).reshape(3, 4), dtype=mx.float32)

    def f(impl):
        return lambda a, off, fr: impl(a, 8, traditional=True, base=None, scale=1.0, offset=off, freqs=fr)

    got = mx.vmap(f(fused.rope))(x, offsets, freqs)
    expected = mx.stack([f(reference)(x[i], offsets[i], freqs[i]) for i in range(3)])
    assert_close(got, expected, mx.float32)


@pytest.mark.parametrize("shapeless", [False, True])
def test_compile(shapeless):
    check_compile("cpu", shapeless)


def test_grad_through_compile():
    x = rand((2, 2, 6, 32), key=18)

    def loss(impl):
        return lambda a: (impl(a, 32, traditional=True, **BASE) * mx.arange(32)).sum()

    assert_close(mx.compile(mx.grad(loss(fused.rope)))(x), mx.grad(loss(reference))(x), mx.float32, scale=10)


def test_streams_and_devices():
    x = rand((2, 2, 5, 16))
    expected = reference(x, 16, traditional=False, **BASE)
    for stream in (mx.new_stream(mx.cpu), mx.cpu, mx.Device(mx.cpu)):
        assert_close(fused.rope(x, 16, traditional=False, **BASE, stream=stream), expected, mx.float32)


def test_inputs_not_mutated_and_deterministic():
    x = rand((2, 3, 8, 40))
    assert_pure(lambda x: fused.rope(x, 40, traditional=True, **BASE), x)


def test_isa_paths_agree():
    # Every ISA level the CPU supports computes the same function.
    assert_isa_paths_agree(
        "import mlx.core as mx, numpy as np, mlxr.fused as f, mlxr._ext as e;"
        "x=mx.random.normal((2,3,9,70),key=mx.random.key(3));"
        "print(e.cpu_isa(), *[np.array(f.rope(x.astype(t),64,traditional=tr,base=1e4,scale=1.0,"
        "offset=mx.array([3,999])).astype(mx.float32)).sum() "
        "for t in (mx.float32,mx.float16,mx.bfloat16) for tr in (False,True)])",
        rtol=1e-4,
    )


def call(a=None, dims=8, **kw):
    args = dict(traditional=False, base=10000.0, scale=1.0, offset=0)
    args.update(kw)
    return lambda: fused.rope(mx.ones((2, 3, 4, 8)) if a is None else a, dims, **args)


BAD = [
    (call(a=mx.ones((4, 8))), r"\[rope\] a must have at least 3 dimension"),
    (call(a=np.ones((2, 3, 4, 8))), r"\[rope\] a must be an mlx.core.array"),
    (call(a=mx.ones((2, 3, 4, 8), dtype=mx.int32)), r"\[rope\] a must have a floating dtype"),
    (call(dims=7), r"\[rope\] dims must be even, got 7"),
    (call(dims=10), r"\[rope\] dims must not exceed the last axis of a \(8\), got 10"),
    (call(dims=0), r"\[rope\] dims must be positive"),
    (call(dims=-2), r"\[rope\] dims must be positive"),
    (call(dims=8.0), r"\[rope\] dims must be an int"),
    (call(traditional=1), r"\[rope\] traditional must be a bool"),
    (call(freqs=mx.ones(4)), r"\[rope\] exactly one of base and freqs"),
    (call(base=None), r"\[rope\] exactly one of base and freqs"),
    (call(base=None, freqs=mx.ones(3)), r"\[rope\] freqs must have shape \(4,\)"),
    (call(base=None, freqs=mx.ones((1, 4))), r"\[rope\] freqs must have shape \(4,\)"),
    (call(base=None, freqs=[1.0] * 4), r"\[rope\] freqs must be an mlx.core.array"),
    (call(base=-1.0), r"\[rope\] base must be finite and > 0"),
    (call(base=math.inf), r"\[rope\] base must be finite"),
    (call(scale="1"), r"\[rope\] scale must be a real number"),
    (call(scale=math.nan), r"\[rope\] scale must be finite"),
    (call(offset=1.5), r"\[rope\] offset must be an int or an integer"),
    (call(offset=True), r"\[rope\] offset must be an int or an integer"),
    (call(offset=2**40), r"\[rope\] offset must fit in int32"),
    (call(offset=mx.array(1.0)), r"\[rope\] offset must have an integer dtype"),
    (call(offset=mx.array(True)), r"\[rope\] offset must have an integer dtype"),
    (call(offset=mx.array([[1, 2]])), r"\[rope\] offset must be a scalar or have one dimension"),
    (call(offset=mx.array([1, 2, 3])), r"\[rope\] offset must be a scalar or have 2 elements"),
    (call(stream="cpu"), r"\[rope\] stream must be"),
]


@pytest.mark.parametrize("bad,pattern", BAD, ids=[p for _, p in BAD])
def test_bad_input_raises_value_error(bad, pattern):
    with pytest.raises(ValueError, match=pattern):
        bad()


MLX_REJECTS = [
    dict(a=mx.ones((4, 8))),
    dict(a=mx.ones((2, 3, 4, 8), dtype=mx.int32)),
    dict(dims=7),
    dict(dims=10),
    dict(dims=0),
    dict(freqs=mx.ones(4)),
    dict(base=None),
    dict(base=None, freqs=mx.ones(3)),
    dict(offset=1.5),
    dict(offset=mx.array(1.0)),
    dict(offset=mx.array([[1, 2]])),
    dict(offset=mx.array([1, 2, 3])),
]


@pytest.mark.parametrize("kw", MLX_REJECTS, ids=[str(sorted(k)) + str(i) for i, k in enumerate(MLX_REJECTS)])
def test_rejects_what_mlx_rejects(kw):
    args = dict(a=mx.ones((2, 3, 4, 8)), dims=8, traditional=False, base=10000.0, scale=1.0, offset=0)
    args.update(kw)
    a, dims = args.pop("a"), args.pop("dims")
    with pytest.raises((ValueError, TypeError)):
        mx.eval(mx.fast.rope(a, dims, **args))
    with pytest.raises(ValueError, match=r"^\[rope\] "):
        fused.rope(a, dims, **args)
