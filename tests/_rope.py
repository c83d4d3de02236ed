"""The rope test bodies that tests/test_rope.py (CPU kernels) and tests/test_rope_cuda.py (CUDA
kernels) share: inputs, the float64 oracle and the checks that do not depend on the device
beyond which kernel must have run (``device`` is "cpu" or "gpu"). The reference runs on the
default device, where the fused op runs (both take their base frequencies from that device's
float32 exp, which differs by an ulp between MLX's CPU and CUDA)."""

import mlx.core as mx
import numpy as np

import mlxr.fused as fused
from mlxr.reference import rope as reference

# Against the reference: same angles bit for bit, sin/cos within ~1 ulp (~2 ulp for CUDA's
# sincosf), one rounding each.
ATOL = {mx.float32: 2e-6, mx.float16: 1e-3, mx.bfloat16: 8e-3, mx.float64: 1e-14}
BASE = dict(base=10000.0, scale=1.0, offset=0)
# (B, H, T, D) views the kernels read in place; each test file may add its own.
LAYOUTS = {
    "bthd_to_bhtd": lambda a: a.transpose(0, 2, 1, 3),
    "strided_features": lambda a: a[..., ::2],
    "reversed": lambda a: a[::-1, :, ::-1, ::-1],
    "sliced": lambda a: a[:, 1:, 2:, 4:],
    "broadcast_heads": lambda a: mx.broadcast_to(a[:, :1], a.shape),
}


def rand(shape, dtype=mx.float32, key=0, std=3.0):
    a = (std * mx.random.normal(shape, key=mx.random.key(key))).astype(dtype)
    mx.eval(a)  # concrete inputs: closures captured by mx.compile must not carry RNG graphs
    return a


def as_np(a):
    """float64 numpy copy of an mx array (or numpy array)."""
    if isinstance(a, np.ndarray):
        return a.astype(np.float64)
    return np.array(a.astype(mx.float32) if a.dtype == mx.bfloat16 else a).astype(np.float64)


def device_reference(x, dims, **kw):
    """The reference on the default device, as float64 numpy."""
    return as_np(reference(x, dims, **kw))


def assert_close(actual, expected, dtype, scale=1.0, table=ATOL):
    assert actual.shape == expected.shape
    tol = table[dtype] * scale
    np.testing.assert_allclose(as_np(actual), as_np(expected), rtol=tol, atol=tol)


def rope_kernels(seen, device):
    """The rope kernels (name: count) that ran on ``device`` inside an observe() block."""
    return {k: v for k, v in seen.kernels.items() if k.startswith(f"{device}:rope_")}


def assert_ran_float32_kernels(seen, device, runs):
    """Exactly ``runs`` float32 rope kernel runs on ``device`` and no fallback."""
    kernels = rope_kernels(seen, device)
    assert sum(kernels.values()) == runs and all(k.endswith("_float32") for k in kernels), seen
    assert not seen.fallbacks, seen


def numpy_rope(x, dims, traditional, base, scale, offsets, freqs=None):
    """Independent float64 oracle (numpy's sin/cos/exp), offsets of shape (B,)."""
    x = np.array(x, dtype=np.float64)
    half = dims // 2
    # MLX's definition, exp(-i log(base) / half), so the float64 comparison is not limited
    # by two ways of rounding inv_freq (theta ~ 6e4 amplifies a 1-ulp difference to 1e-11).
    inv = 1 / np.asarray(freqs, np.float64) if freqs is not None else np.exp(-np.arange(half) * (np.log(base) / half))
    pos = (np.arange(x.shape[-2])[None, :] + np.asarray(offsets)[:, None]) * scale  # (B, T)
    theta = pos.reshape(pos.shape[:1] + (1,) * (x.ndim - 3) + pos.shape[1:] + (1,)) * inv
    c, s = np.cos(theta), np.sin(theta)
    out = x.copy()
    i1, i2 = (slice(0, dims, 2), slice(1, dims, 2)) if traditional else (slice(0, half), slice(half, dims))
    x1, x2 = x[..., i1], x[..., i2]
    out[..., i1], out[..., i2] = x1 * c - x2 * s, x1 * s + x2 * c
    return out


def check_large_positions(dtype):
    # float32 angles of |theta| ~ 1e5 carry ~ulp(1e5) = 8e-3 rad of rounding: the bound
    # scales with the position, as for any float32 RoPE.
    x = rand((1, 2, 8, 64), dtype, 4)
    y = fused.rope(x, 64, traditional=False, base=10000.0, scale=1.0, offset=100000)
    ref = numpy_rope(as_np(x), 64, False, 10000.0, 1.0, [100000])
    bound = {mx.float32: 0.05, mx.float16: 0.08, mx.bfloat16: 0.15}[dtype]
    np.testing.assert_allclose(as_np(y), ref, atol=bound)


def check_layout(device, view, shape, dtype, traditional):
    """A strided view runs fused, equal bit for bit to the contiguous call (same kernel
    arithmetic whatever the layout) and close to the reference."""
    x = view(rand(shape, dtype, 9))
    contiguous = mx.array(np.array(x.astype(mx.float32))).astype(dtype)
    kw = dict(traditional=traditional, base=10000.0, scale=1.0, offset=mx.array([3, 40]))
    with fused.observe() as seen:
        y = fused.rope(x, 32, **kw)
        mx.eval(y)
    assert rope_kernels(seen, device) and not seen.fallbacks, seen
    np.testing.assert_array_equal(as_np(y), as_np(fused.rope(contiguous, 32, **kw)))
    assert_close(y, device_reference(contiguous, 32, **kw), dtype)


def check_zero_size_and_special_values():
    for shape in [(0, 2, 3, 8), (2, 2, 0, 8)]:
        assert fused.rope(mx.zeros(shape), 8, traditional=False, **BASE).shape == shape
    x = mx.array([[[[1.0, float("nan"), 2.0, 3.0], [float("inf"), 1.0, 0.0, 0.0]]]])
    y, r = fused.rope(x, 4, traditional=False, **BASE), device_reference(x, 4, traditional=False, **BASE)
    np.testing.assert_array_equal(np.isnan(as_np(y)), np.isnan(r))
    # A zero frequency means an infinite inverse frequency: NaN angles, as in the reference.
    freqs = mx.array([0.0, 1.0])
    kw = dict(traditional=False, base=None, scale=1.0, offset=1, freqs=freqs)
    y, r = fused.rope(mx.ones((1, 1, 2, 4)), 4, **kw), device_reference(mx.ones((1, 1, 2, 4)), 4, **kw)
    np.testing.assert_array_equal(np.isnan(as_np(y)), np.isnan(r))


def check_vjp_is_fused_inverse_rotation(device, traditional):
    x, ct = rand((2, 3, 7, 40), key=11), rand((2, 3, 7, 40), key=12)
    kw = dict(traditional=traditional, base=10000.0, scale=1.0, offset=mx.array([1, 50]))
    with fused.observe() as seen:
        _, (g_fused,) = mx.vjp(lambda a: fused.rope(a, 32, **kw), [x], [ct])
        mx.eval(g_fused)
    # Only the gradient is evaluated: one kernel run means the inverse ran fused (the
    # fallback would run none).
    assert_ran_float32_kernels(seen, device, 1)
    with mx.stream(mx.cpu):
        _, (g_ref,) = mx.vjp(lambda a: reference(a, 32, **kw), [x], [ct])
    assert_close(g_fused, g_ref, mx.float32, scale=5)
    # The inverse undoes the forward map.
    back = mx.vjp(lambda a: fused.rope(a, 32, **kw), [x], [fused.rope(x, 32, **kw)])[1][0]
    assert_close(back, x, mx.float32, scale=5)


def check_jvp_in_x_is_fused(device):
    x, t = rand((2, 3, 7, 40), key=20), rand((2, 3, 7, 40), key=21)
    kw = dict(traditional=False, base=10000.0, scale=1.0, offset=4)
    with fused.observe() as seen:
        out, (tangent,) = mx.jvp(lambda a: fused.rope(a, 32, **kw), [x], [t])
        mx.eval(out, tangent)
    assert_ran_float32_kernels(seen, device, 2)  # output + tangent
    assert_close(tangent, device_reference(t, 32, **kw), mx.float32)


def check_vmap(device, in_axes):
    x = rand((3, 2, 4, 5, 8), key=16)
    x = x[0] if in_axes[0] is None else mx.moveaxis(x, 0, in_axes[0])
    offsets = mx.array([1, 20, 300])

    def f(a, off):
        return fused.rope(a, 8, traditional=False, base=10000.0, scale=1.0, offset=off)

    with fused.observe() as seen:
        got = mx.vmap(f, in_axes=in_axes)(x, offsets if in_axes[1] is not None else mx.array(4))
        mx.eval(got)
    assert rope_kernels(seen, device), seen  # these cases stay fused
    slices = []
    for i in range(3):
        xi = x if in_axes[0] is None else mx.take(x, i, axis=in_axes[0])
        off = offsets[i] if in_axes[1] is not None else mx.array(4)
        slices.append(device_reference(xi, 8, traditional=False, base=10000.0, scale=1.0, offset=off))
    assert_close(got, np.stack(slices), mx.float32)


def check_compile(device, shapeless):
    f = mx.compile(
        lambda a, off: fused.rope(a, 32, traditional=False, base=10000.0, scale=1.0, offset=off),
        shapeless=shapeless,
    )
    for t, off in ((3, 0), (9, 100)):
        x = rand((2, 2, t, 40), key=t)
        with fused.observe() as seen:
            y = f(x, mx.array(off))
            mx.eval(y)
        assert rope_kernels(seen, device), seen
        assert_close(y, device_reference(x, 32, traditional=False, base=10000.0, scale=1.0, offset=off), mx.float32)
