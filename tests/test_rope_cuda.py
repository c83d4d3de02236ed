"""The CUDA rope kernel against the reference and a float64 oracle: both kernel paths, layouts,
offsets, dtypes and transforms.

Runs only where the extension was built against a CUDA MLX (``_ext.gpu_kernels == "cuda"``).
"""

import itertools

import mlx.core as mx
import numpy as np
import pytest

import mlxr.fused as fused
from _cuda import DTYPES, NAMES, REQUIRES_CUDA_KERNELS
from _rope import BASE, as_np, assert_close, check_compile, check_jvp_in_x_is_fused, check_large_positions
from _rope import LAYOUTS as ROPE_LAYOUTS
from _rope import check_layout, check_vjp_is_fused_inverse_rotation, check_vmap, check_zero_size_and_special_values
from _rope import device_reference, numpy_rope, rand, rope_kernels

pytestmark = REQUIRES_CUDA_KERNELS

# The CPU test's layouts and those where CUDA's 16-byte vector path must fall back to scalars.
LAYOUTS = {
    **ROPE_LAYOUTS,
    "misaligned_rows": lambda a: a[..., 1:65],
    "broadcast_features": lambda a: mx.broadcast_to(a[..., :1], a.shape),
}


def poison(shape, dtype):
    # A NaN call of the same size first: its freed output is what the pool hands out next,
    # so elements the real call fails to write stay NaN.
    y = fused.rope(mx.full(shape, float("nan"), dtype=dtype), 2, traditional=False, **BASE)
    mx.eval(y)
    del y


def gpu_rope_kernels(seen):
    return rope_kernels(seen, "gpu")


def kernel_kind(d, dims, traditional, itemsize):
    """The kernel a row of d features, dims rotated, takes: 16-byte units where rows and the
    rotated span are whole vectors; traditional rows in two vectors dims/2 apart where dims/2
    is whole vectors (vec_split), else one."""
    per_vec = 16 // itemsize
    if d % per_vec or (dims if traditional else dims // 2) % per_vec:
        return "scalar"
    return "vec_split" if traditional and (dims // 2) % per_vec == 0 else "vec"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("traditional", [False, True])
@pytest.mark.parametrize(
    "d,dims",
    # (136, 72) and (48, 20): traditional rows whose dims/2 is not whole vectors (one vector a
    # unit) in bfloat16 and float32
    [(2, 2), (6, 6), (40, 34), (64, 64), (130, 128), (96, 32), (128, 128), (136, 64), (136, 72), (48, 20),
     (256, 192), (1040, 1024)],
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
    kind = kernel_kind(d, dims, traditional, x.itemsize)
    # Small launches (fewer blocks than SMs) or not: test_small_and_wide_launches tells them apart.
    assert gpu_rope_kernels(seen) in ({f"gpu:rope_{kind}_small_{NAMES[dtype]}": 1}, {f"gpu:rope_{kind}_{NAMES[dtype]}": 1}), seen
    assert not seen.fallbacks
    assert y.dtype == dtype and y.shape == x.shape
    assert_close(y, device_reference(x, dims, **kw), dtype)
    # Features past dims pass through bit for bit.
    np.testing.assert_array_equal(as_np(y[..., dims:]), as_np(x[..., dims:]))


# Launches of fewer blocks than SMs (decode) take the small variant: threadIdx.z over the
# heads, one batch of rows a thread, the rows loaded before the offset. Decode with one
# offset (64 rows of one position), with per-sequence offsets, and a prefill-sized launch
# (the decode cases stay small on GPUs of more than 64 SMs).
# name: (shape, offset, small launch)
LAUNCHES = {
    "decode": ((2, 32, 1, 136), 1000, True),
    "decode_per_sequence": ((2, 32, 1, 136), mx.array([7, 900]), True),
    "prefill": ((1, 8, 4096, 136), 5, False),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("traditional", [False, True])
# dims 72: traditional 16-bit rows in one vector a unit (adjacent), float32 in two; dims 68:
# traditional float32 rows in one vector a unit, 16-bit rows scalar.
@pytest.mark.parametrize("dims", [136, 64, 62, 72, 68])
@pytest.mark.parametrize("launch", sorted(LAUNCHES))
def test_small_and_wide_launches(dtype, traditional, dims, launch):
    shape, off, small = LAUNCHES[launch]
    x = rand(shape, dtype, 3)
    kw = dict(traditional=traditional, base=10000.0, scale=1.0, offset=off)
    poison(x.shape, dtype)
    with fused.observe() as seen:
        y = fused.rope(x, dims, **kw)
        mx.eval(y)
    name = f"gpu:rope_{kernel_kind(shape[-1], dims, traditional, x.itemsize)}_{'small_' if small else ''}{NAMES[dtype]}"
    assert gpu_rope_kernels(seen) == {name: 1}, seen
    assert_close(y, device_reference(x, dims, **kw), dtype)
    np.testing.assert_array_equal(as_np(y[..., dims:]), as_np(x[..., dims:]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("traditional", [False, True])
@pytest.mark.parametrize("d", [128, 132, 136])
def test_whole_rows_wide(dtype, traditional, d):
    # dims == D on a wide launch: kernels without pass-through code (132: float32 traditional
    # rows in one vector a unit, 16-bit rows scalar; 136: 16-bit traditional in one vector).
    x = rand((1, 8, 4096, d), dtype, 5)
    kw = dict(traditional=traditional, base=10000.0, scale=1.0, offset=9)
    poison(x.shape, dtype)
    with fused.observe() as seen:
        y = fused.rope(x, d, **kw)
        mx.eval(y)
    assert gpu_rope_kernels(seen) == {f"gpu:rope_{kernel_kind(d, d, traditional, x.itemsize)}_{NAMES[dtype]}": 1}, seen
    assert_close(y, device_reference(x, d, **kw), dtype)


def _waited(v):
    o = mx.array(v - 7, dtype=mx.int32) + 7
    o.item()  # waits: status available, in MLX's unified scalar pool
    return o


def _view(v):
    return (mx.arange(4, dtype=mx.int32) * 300 + (v - 600))[2]  # of a 16-byte GPU result: device memory


def _view_waited(v):
    o = _view(v)
    mx.eval(o)
    mx.eval(o)  # waits without reading: status available, the buffer still on the device
    return o


# One offset reaches the kernel by value when its array is available at encoding time and in
# unified memory (a constant: an int's array, mx.array(...); a result something waited on),
# else as the array (computed in the same graph; evaluated but not waited on; a one-element
# view of a larger GPU result, whose buffer the host must not touch: reading it would move
# it). Every call takes a value no earlier call took, so a kernel that read the wrong offset,
# or a stale one, fails.
OFFSET_FORMS = {
    "int": lambda v: v,
    "constant": lambda v: mx.array(v, dtype=mx.int32),
    "lazy": lambda v: mx.array(v - 400, dtype=mx.int32) + 400,
    "evaluated": lambda v: mx.eval(o := mx.array(v - 400, dtype=mx.int32) + 400) or o,
    "waited": _waited,
    "view": _view,
    "view_waited": _view_waited,
}
_offset_values = itertools.count(1000, 7)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", sorted(OFFSET_FORMS))
@pytest.mark.parametrize("launch", ["decode", "prefill"])
def test_offset_forms(dtype, form, launch):
    shape = LAUNCHES[launch][0]
    x = rand(shape, dtype, 4)
    value = next(_offset_values)
    poison(x.shape, dtype)
    off = OFFSET_FORMS[form](value)
    with fused.observe() as seen:
        y = fused.rope(x, 128, traditional=False, base=10000.0, scale=1.0, offset=off)
        mx.eval(y)
    assert sum(gpu_rope_kernels(seen).values()) == 1 and not seen.fallbacks, seen
    assert_close(y, device_reference(x, 128, traditional=False, base=10000.0, scale=1.0, offset=value), dtype)


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
    assert_close(y, device_reference(x, shape[-1], **kw), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_float64_oracle_large_positions(dtype):
    check_large_positions(dtype)
    # Small positions: close to the oracle at the dtype's own resolution.
    x = rand((1, 2, 8, 64), dtype, 4)
    y = fused.rope(x, 64, traditional=True, base=10000.0, scale=0.5, offset=3)
    ref = numpy_rope(as_np(x), 64, True, 10000.0, 0.5, [3])
    np.testing.assert_allclose(as_np(y), ref, atol={mx.float32: 2e-5, mx.float16: 2e-2, mx.bfloat16: 0.15}[dtype])


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("traditional", [False, True])
@pytest.mark.parametrize("positions", [10, 300])  # a small launch, a wide one
def test_layouts_without_copy(layout, dtype, traditional, positions):
    check_layout("gpu", LAYOUTS[layout], (2, 6, positions, 136), dtype, traditional)


@pytest.mark.parametrize("shape", [(5, 9, 32), (2, 3, 2, 9, 32), (2, 1, 1, 1, 6, 32), (2, 2, 2, 2, 2, 2, 3, 32)])
def test_other_ranks(shape):
    x = rand(shape, key=8)
    kw = dict(traditional=True, base=10000.0, scale=1.0, offset=mx.arange(shape[0]))
    assert_close(fused.rope(x, 32, **kw), device_reference(x, 32, **kw), mx.float32)


def test_custom_and_strided_freqs():
    x = rand((2, 3, 11, 24), mx.float16, 7, std=1.0)
    freqs = mx.array(np.geomspace(1.0, 500.0, 16), dtype=mx.float32)[::2]
    kw = dict(traditional=False, base=None, scale=1.0, offset=mx.array([2, 9]), freqs=freqs)
    assert_close(fused.rope(x, 16, **kw), device_reference(x, 16, **kw), mx.float16)


def test_zero_size_and_special_values():
    check_zero_size_and_special_values()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("traditional", [False, True])
@pytest.mark.parametrize("shape", [(2, 4, 64, 136), (1, 8, 4096, 136)])  # a small launch, a wide one
def test_in_place_on_donated_input(dtype, traditional, shape):
    # In place, the pass-through features are not copied: they must be left as they were.
    kw = dict(traditional=traditional, base=10000.0, scale=1.0, offset=3)
    x = rand(shape, dtype, 10)
    expected = device_reference(x, 128, **kw)
    y = fused.rope(x * 1, 128, **kw)  # a temporary: donated and overwritten
    assert_close(y, expected, dtype)
    np.testing.assert_array_equal(as_np(y[..., 128:]), as_np(x[..., 128:]))


@pytest.mark.parametrize("traditional", [False, True])
def test_vjp_is_fused_inverse_rotation(traditional):
    check_vjp_is_fused_inverse_rotation("gpu", traditional)


def test_jvp_in_x_is_fused():
    check_jvp_in_x_is_fused("gpu")


@pytest.mark.parametrize("in_axes", [(0, None), (3, None), (0, 0), (None, 0)])
def test_vmap(in_axes):
    check_vmap("gpu", in_axes)


@pytest.mark.parametrize("shapeless", [False, True])
def test_compile(shapeless):
    check_compile("gpu", shapeless)


def test_other_gpu_stream_and_early_drop():
    s = mx.new_stream(mx.gpu)
    x = rand((2, 8, 64, 128), mx.bfloat16, 20)
    kw = dict(traditional=False, base=10000.0, scale=1.0, offset=7)
    expected = device_reference(x, 128, **kw)
    for _ in range(3):
        dropped = fused.rope(x * 2, 128, **kw, stream=s)
        mx.async_eval(dropped)
        del dropped
        assert_close(fused.rope(x, 128, **kw, stream=s), expected, mx.bfloat16)
