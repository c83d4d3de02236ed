"""The CUDA rope kernel against the reference and a float64 oracle: both kernel paths, layouts,
offsets, dtypes and transforms.

Runs only where the extension was built against a CUDA MLX (``_ext.gpu_kernels == "cuda"``).
"""

import mlx.core as mx
import numpy as np
import pytest

import mlxr._ext as ext
import mlxr.fused as fused
from mlxr.reference import rope as reference

pytestmark = pytest.mark.skipif(ext.gpu_kernels != "cuda", reason="extension built without CUDA kernels")

DTYPES = [mx.float32, mx.float16, mx.bfloat16]
# Against the same-dtype reference on the CPU: same angles bit for bit, sin/cos within ~2 ulp
# (CUDA's sincosf vs MLX's CPU sin/cos), one rounding to the output dtype.
ATOL = {mx.float32: 2e-6, mx.float16: 1e-3, mx.bfloat16: 8e-3}
BASE = dict(base=10000.0, scale=1.0, offset=0)
NAMES = {mx.float32: "float32", mx.float16: "float16", mx.bfloat16: "bfloat16"}


def rand(shape, dtype=mx.float32, key=0, std=3.0):
    a = (std * mx.random.normal(shape, key=mx.random.key(key))).astype(dtype)
    mx.eval(a)
    return a


def as_np(a):
    return np.array(a.astype(mx.float32)).astype(np.float64)


def cpu_reference(x, dims, **kw):
    with mx.stream(mx.cpu):
        return as_np(reference(x, dims, **kw))


def assert_close(actual, expected, dtype, scale=1.0):
    tol = ATOL[dtype] * scale
    np.testing.assert_allclose(as_np(actual), expected, rtol=tol, atol=tol)


def numpy_rope(x, dims, traditional, base, scale, offsets):
    """Independent float64 oracle (numpy's sin/cos/exp), offsets of shape (B,)."""
    x = np.array(x, dtype=np.float64)
    half = dims // 2
    inv = np.exp(-np.arange(half) * (np.log(base) / half))
    pos = (np.arange(x.shape[-2])[None, :] + np.asarray(offsets)[:, None]) * scale  # (B, T)
    theta = pos.reshape(pos.shape[:1] + (1,) * (x.ndim - 3) + pos.shape[1:] + (1,)) * inv
    c, s = np.cos(theta), np.sin(theta)
    out = x.copy()
    i1, i2 = (slice(0, dims, 2), slice(1, dims, 2)) if traditional else (slice(0, half), slice(half, dims))
    x1, x2 = x[..., i1], x[..., i2]
    out[..., i1], out[..., i2] = x1 * c - x2 * s, x1 * s + x2 * c
    return out


def poison(shape, dtype):
    # A NaN call of the same size first: its freed output is what the pool hands out next,
    # so elements the real call fails to write stay NaN.
    y = fused.rope(mx.full(shape, float("nan"), dtype=dtype), 2, traditional=False, **BASE)
    mx.eval(y)
    del y


def gpu_rope_kernels(seen):
    return {k: v for k, v in seen.kernels.items() if k.startswith("gpu:rope_")}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("traditional", [False, True])
@pytest.mark.parametrize(
    "d,dims", [(2, 2), (6, 6), (40, 34), (64, 64), (130, 128), (96, 32), (128, 128), (136, 64), (256, 192), (1040, 1024)]
)
@pytest.mark.parametrize("offset", [13, "batch"])
def test_matches_reference_and_runs_fused(dtype, traditional, d, dims, offset):
    x = rand((2, 3, 37, d), dtype, 1)
    off = mx.array([13, 300]) if offset == "batch" else offset
    kw = dict(traditional=traditional, base=10000.0, scale=0.75, offset=off)
    poison(x.shape, dtype)
    with fused.observe() as seen:
        y = fused.rope(x, dims, **kw)
        mx.eval(y)
    # 16-byte units where rows, the rotated span and the pass-through part are whole vectors.
    per_vec = 16 // x.itemsize
    vec = d % per_vec == 0 and (dims if traditional else dims // 2) % per_vec == 0
    assert gpu_rope_kernels(seen) == {f"gpu:rope_{'vec' if vec else 'scalar'}_{NAMES[dtype]}": 1}, seen
    assert not seen.fallbacks
    assert y.dtype == dtype and y.shape == x.shape
    assert_close(y, cpu_reference(x, dims, **kw), dtype)
    # Features past dims pass through bit for bit.
    np.testing.assert_array_equal(as_np(y[..., dims:]), as_np(x[..., dims:]))


@pytest.mark.parametrize("traditional", [False, True])
@pytest.mark.parametrize("shape", [(1, 32, 2048, 128), (4, 32, 1, 128), (3, 5, 700, 64), (1, 1, 5000, 64)])
def test_many_rows_share_angles(traditional, shape):
    # Long (group, position) grids and many heads: blocks take several heads each and the
    # grid covers every (group, position) exactly once.
    dtype = mx.bfloat16
    x = rand(shape, dtype, 2)
    off = mx.array([5, 77, 1000, 3][: shape[0]]) if shape[0] > 1 else 11
    kw = dict(traditional=traditional, base=10000.0, scale=1.0, offset=off)
    poison(x.shape, dtype)
    y = fused.rope(x, shape[-1], **kw)
    assert_close(y, cpu_reference(x, shape[-1], **kw), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_float64_oracle_large_positions(dtype):
    # float32 angles of |theta| ~ 1e5 carry ~ulp(1e5) = 8e-3 rad of rounding (tests/test_rope.py).
    x = rand((1, 2, 8, 64), dtype, 4)
    y = fused.rope(x, 64, traditional=False, base=10000.0, scale=1.0, offset=100000)
    ref = numpy_rope(as_np(x), 64, False, 10000.0, 1.0, [100000])
    bound = {mx.float32: 0.05, mx.float16: 0.08, mx.bfloat16: 0.15}[dtype]
    np.testing.assert_allclose(as_np(y), ref, atol=bound)
    # Small positions: close to the oracle at the dtype's own resolution.
    y = fused.rope(x, 64, traditional=True, base=10000.0, scale=0.5, offset=3)
    ref = numpy_rope(as_np(x), 64, True, 10000.0, 0.5, [3])
    np.testing.assert_allclose(as_np(y), ref, atol={mx.float32: 2e-5, mx.float16: 2e-2, mx.bfloat16: 0.15}[dtype])


LAYOUTS = {
    "bthd_to_bhtd": lambda a: a.transpose(0, 2, 1, 3),
    "strided_features": lambda a: a[..., ::2],
    "reversed": lambda a: a[::-1, :, ::-1, ::-1],
    "sliced": lambda a: a[:, 1:, 2:, 4:],
    "misaligned_rows": lambda a: a[..., 1:65],
    "broadcast_heads": lambda a: mx.broadcast_to(a[:, :1], a.shape),
    "broadcast_features": lambda a: mx.broadcast_to(a[..., :1], a.shape),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("traditional", [False, True])
def test_layouts_without_copy(layout, dtype, traditional):
    x = LAYOUTS[layout](rand((2, 6, 10, 136), dtype, 9))
    contiguous = mx.array(np.array(x.astype(mx.float32))).astype(dtype)
    kw = dict(traditional=traditional, base=10000.0, scale=1.0, offset=mx.array([3, 40]))
    with fused.observe() as seen:
        y = fused.rope(x, 32, **kw)
        mx.eval(y)
    assert gpu_rope_kernels(seen) and not seen.fallbacks
    # Same kernel arithmetic whatever the layout: equal to the contiguous call bit for bit.
    np.testing.assert_array_equal(as_np(y), as_np(fused.rope(contiguous, 32, **kw)))
    assert_close(y, cpu_reference(contiguous, 32, **kw), dtype)


@pytest.mark.parametrize("shape", [(5, 9, 32), (2, 3, 2, 9, 32), (2, 1, 1, 1, 6, 32), (2, 2, 2, 2, 2, 2, 3, 32)])
def test_other_ranks(shape):
    x = rand(shape, key=8)
    kw = dict(traditional=True, base=10000.0, scale=1.0, offset=mx.arange(shape[0]))
    assert_close(fused.rope(x, 32, **kw), cpu_reference(x, 32, **kw), mx.float32)


def test_custom_and_strided_freqs():
    x = rand((2, 3, 11, 24), mx.float16, 7, std=1.0)
    freqs = mx.array(np.geomspace(1.0, 500.0, 16), dtype=mx.float32)[::2]
    kw = dict(traditional=False, base=None, scale=1.0, offset=mx.array([2, 9]), freqs=freqs)
    assert_close(fused.rope(x, 16, **kw), cpu_reference(x, 16, **kw), mx.float16)


def test_zero_size_and_special_values():
    for shape in [(0, 2, 3, 8), (2, 2, 0, 8)]:
        assert fused.rope(mx.zeros(shape), 8, traditional=False, **BASE).shape == shape
    x = mx.array([[[[1.0, float("nan"), 2.0, 3.0], [float("inf"), 1.0, 0.0, 0.0]]]])
    y, r = fused.rope(x, 4, traditional=False, **BASE), cpu_reference(x, 4, traditional=False, **BASE)
    np.testing.assert_array_equal(np.isnan(as_np(y)), np.isnan(r))
    freqs = mx.array([0.0, 1.0])  # an infinite inverse frequency: NaN angles, as in the reference
    kw = dict(traditional=False, base=None, scale=1.0, offset=1, freqs=freqs)
    y, r = fused.rope(mx.ones((1, 1, 2, 4)), 4, **kw), cpu_reference(mx.ones((1, 1, 2, 4)), 4, **kw)
    np.testing.assert_array_equal(np.isnan(as_np(y)), np.isnan(r))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("traditional", [False, True])
def test_in_place_on_donated_input(dtype, traditional):
    kw = dict(traditional=traditional, base=10000.0, scale=1.0, offset=3)
    x = rand((2, 4, 64, 136), dtype, 10)
    expected = cpu_reference(x, 128, **kw)
    y = fused.rope(x * 1, 128, **kw)  # a temporary: donated and overwritten
    assert_close(y, expected, dtype)


@pytest.mark.parametrize("traditional", [False, True])
def test_vjp_is_fused_inverse_rotation(traditional):
    x, ct = rand((2, 3, 7, 40), key=11), rand((2, 3, 7, 40), key=12)
    kw = dict(traditional=traditional, base=10000.0, scale=1.0, offset=mx.array([1, 50]))
    with fused.observe() as seen:
        _, (g_fused,) = mx.vjp(lambda a: fused.rope(a, 32, **kw), [x], [ct])
        mx.eval(g_fused)
    assert sum(gpu_rope_kernels(seen).values()) == 1 and not seen.fallbacks
    with mx.stream(mx.cpu):
        _, (g_ref,) = mx.vjp(lambda a: reference(a, 32, **kw), [x], [ct])
    assert_close(g_fused, as_np(g_ref), mx.float32, scale=5)
    back = mx.vjp(lambda a: fused.rope(a, 32, **kw), [x], [fused.rope(x, 32, **kw)])[1][0]
    assert_close(back, as_np(x), mx.float32, scale=5)


def test_jvp_in_x_is_fused():
    x, t = rand((2, 3, 7, 40), key=20), rand((2, 3, 7, 40), key=21)
    kw = dict(traditional=False, base=10000.0, scale=1.0, offset=4)
    with fused.observe() as seen:
        out, (tangent,) = mx.jvp(lambda a: fused.rope(a, 32, **kw), [x], [t])
        mx.eval(out, tangent)
    assert sum(gpu_rope_kernels(seen).values()) == 2 and not seen.fallbacks
    assert_close(tangent, cpu_reference(t, 32, **kw), mx.float32)


@pytest.mark.parametrize("in_axes", [(0, None), (3, None), (0, 0), (None, 0)])
def test_vmap(in_axes):
    x = rand((3, 2, 4, 5, 8), key=16)
    x = x[0] if in_axes[0] is None else mx.moveaxis(x, 0, in_axes[0])
    offsets = mx.array([1, 20, 300])

    def f(a, off):
        return fused.rope(a, 8, traditional=False, base=10000.0, scale=1.0, offset=off)

    with fused.observe() as seen:
        got = mx.vmap(f, in_axes=in_axes)(x, offsets if in_axes[1] is not None else mx.array(4))
        mx.eval(got)
    assert gpu_rope_kernels(seen)
    slices = []
    for i in range(3):
        xi = x if in_axes[0] is None else mx.take(x, i, axis=in_axes[0])
        off = offsets[i] if in_axes[1] is not None else mx.array(4)
        slices.append(cpu_reference(xi, 8, traditional=False, base=10000.0, scale=1.0, offset=off))
    assert_close(got, np.stack(slices), mx.float32)


@pytest.mark.parametrize("shapeless", [False, True])
def test_compile(shapeless):
    f = mx.compile(
        lambda a, off: fused.rope(a, 32, traditional=False, base=10000.0, scale=1.0, offset=off),
        shapeless=shapeless,
    )
    for t, off in ((3, 0), (9, 100)):
        x = rand((2, 2, t, 40), key=t)
        with fused.observe() as seen:
            y = f(x, mx.array(off))
            mx.eval(y)
        assert gpu_rope_kernels(seen)
        assert_close(y, cpu_reference(x, 32, traditional=False, base=10000.0, scale=1.0, offset=off), mx.float32)


def test_other_gpu_stream_and_early_drop():
    s = mx.new_stream(mx.gpu)
    x = rand((2, 8, 64, 128), mx.bfloat16, 20)
    kw = dict(traditional=False, base=10000.0, scale=1.0, offset=7)
    expected = cpu_reference(x, 128, **kw)
    for _ in range(3):
        dropped = fused.rope(x * 2, 128, **kw, stream=s)
        mx.async_eval(dropped)
        del dropped
        assert_close(fused.rope(x, 128, **kw, stream=s), expected, mx.bfloat16)
