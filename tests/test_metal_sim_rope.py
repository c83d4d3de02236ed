"""metal-sim: the Metal rope kernels run on the CPU simulator (same launch plans as the Metal
host code) against the float64 oracle and the float32 reference (the same float32 angles),
and planted kernel bugs."""

import mlx.core as mx
import numpy as np
import pytest

from mlxr.conformance import metal_sim
from mlxr.conformance.metal_sim import MetalSimError, executed, run_op
from mlxr.conformance.metal_sim._runtime import execute, poisoned
from mlxr.conformance.metal_sim.rope import plan
from mlxr.fused._dispatch import METAL_KERNEL_DTYPES
from mlxr.reference.rope import rope_inv_freqs, rope_rotate

from _metal_sim import NAMES, as64, half_agreement, mutant, ran, rand

if not metal_sim.available():
    pytest.skip("metal-sim needs g++ and the kernel sources", allow_module_level=True)

DTYPES = list(METAL_KERNEL_DTYPES["rope"])
# Against the float64 oracle, per element, relative to |x1| + |x2| of its pair: the rotation's
# float32 round-off and the output rounding (~1 ulp of the output dtype), plus the float32
# angle's error, ~4 ulp of |theta| (inverse frequency, position * scale and theta * inv_freq
# are each rounded, as the reference prescribes).
TOL = {mx.float32: 4e-7, mx.float16: 1e-3, mx.bfloat16: 8e-3}
ANGLE_ULPS = 4 * 2.0**-24


def pair_magnitude(x: np.ndarray, dims: int, traditional: bool) -> np.ndarray:
    """|x1| + |x2| of each rotated element's pair, |x| for the pass-through features."""
    mag = np.abs(x)
    first, second = (np.s_[..., 0:dims:2], np.s_[..., 1:dims:2]) if traditional else (
        np.s_[..., : dims // 2], np.s_[..., dims // 2 : dims])
    pair = np.abs(x[first]) + np.abs(x[second])
    mag[first], mag[second] = pair, pair
    return mag


def oracle_and_bound(a, dims, traditional, base, scale, offset, freqs, forward):
    offsets = offset if isinstance(offset, mx.array) else mx.array(offset, dtype=mx.int32)
    inv64 = rope_inv_freqs(dims, base, freqs, mx.float64)
    oracle = np.array(rope_rotate(a.astype(mx.float64), offsets, inv64, dims, traditional, scale, forward))
    # |theta| of each row's fastest pair: |(t + offset) * scale| * max |inv_freq|.
    positions = np.arange(a.shape[-2], dtype=np.float64) + np.array(offsets, np.float64).reshape(
        (-1,) + (1,) * (a.ndim - 2))
    theta = np.abs(positions * scale)[..., None] * np.abs(np.array(inv64)).max()
    bound = (TOL[a.dtype] + ANGLE_ULPS * theta) * pair_magnitude(as64(a), dims, traditional)
    return oracle, bound


def check(y, a, dims, *, traditional, base=10000.0, scale=1.0, offset=0, freqs=None, forward=True):
    assert y.dtype == a.dtype and y.shape == a.shape
    oracle, bound = oracle_and_bound(a, dims, traditional, base, scale, offset, freqs, forward)
    err = np.abs(as64(y) - oracle)
    assert np.all(err <= bound), f"max error {err.max():.3g}, worst ratio {(err / np.maximum(bound, 1e-300)).max():.3g}"
    # Features past dims are copied bit for bit.
    np.testing.assert_array_equal(np.array(y[..., dims:].view(mx.uint16 if a.dtype != mx.float32 else mx.uint32)),
                                  np.array(a[..., dims:].view(mx.uint16 if a.dtype != mx.float32 else mx.uint32)))


def rope_sim(a, dims, **kw):
    return run_op("rope", a, dims, **{"base": 10000.0, "scale": 1.0, "offset": 0, **kw})


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("traditional", [False, True], ids=["halves", "traditional"])
@pytest.mark.parametrize("d,dims", [(2, 2), (8, 8), (64, 64), (80, 64), (6, 2), (130, 96)])
def test_matches_oracle(dtype, traditional, d, dims):
    a = rand((2, 3, 5, d), dtype, d + dims)
    y = ran(f"rope_{NAMES[dtype]}", lambda: rope_sim(a, dims, traditional=traditional, offset=7))
    check(y, a, dims, traditional=traditional, offset=7)


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("traditional", [False, True], ids=["halves", "traditional"])
@pytest.mark.parametrize("n_t", [1, 4])
def test_per_batch_offsets(dtype, traditional, n_t):
    # T = 1 with B > 1 is a decode step: each batch row at its own position. 10 heads: one
    # full chunk of 8 rows per threadgroup and a partial one.
    a = rand((3, 10, n_t, 32), dtype, n_t)
    offset = mx.array([0, 1000, 5], dtype=mx.int32)
    y = rope_sim(a, 32, traditional=traditional, offset=offset, scale=0.5)
    check(y, a, 32, traditional=traditional, offset=offset, scale=0.5)


@pytest.mark.parametrize("shape", [(3, 6, 16), (2, 2, 3, 4, 16), (1, 1, 1, 16)], ids=["3d", "5d", "single-row"])
@pytest.mark.parametrize("per_batch", [False, True])
def test_ranks(shape, per_batch):
    a = rand(shape, mx.float32, len(shape))
    offset = mx.arange(shape[0], dtype=mx.int32) * 3 + 1 if per_batch else 2
    y = rope_sim(a, 12, traditional=False, offset=offset)
    check(y, a, 12, traditional=False, offset=offset)


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("traditional", [False, True], ids=["halves", "traditional"])
def test_custom_freqs_and_scale(dtype, traditional):
    a = rand((2, 4, 6, 40), dtype, 3)
    freqs = 1 + mx.abs(rand((16,), mx.float32, 4, scale=30.0))
    y = rope_sim(a, 32, traditional=traditional, base=None, freqs=freqs, scale=0.25, offset=11)
    check(y, a, 32, traditional=traditional, base=None, freqs=freqs, scale=0.25, offset=11)


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("traditional", [False, True], ids=["halves", "traditional"])
@pytest.mark.parametrize("d,dims,limit", [(200, 128, 64), (200, 200, 32), (70, 64, 32)], ids=["tail", "all", "short-tail"])
def test_looped_kernel_at_small_thread_limits(dtype, traditional, d, dims, limit):
    # Rows of more units (pairs + copied features) than the pipeline limit take the looped
    # kernel: several trips, the last one partial.
    a = rand((2, 3, 3, d), dtype, d)
    assert dims // 2 + d - dims > limit
    y = ran(f"rope_looped_{NAMES[dtype]}",
            lambda: rope_sim(a, dims, traditional=traditional, offset=3, max_threads_per_group=limit))
    check(y, a, dims, traditional=traditional, offset=3)


@pytest.mark.parametrize("traditional", [False, True], ids=["halves", "traditional"])
def test_inverse_rotation(traditional):
    a = rand((2, 3, 5, 48), mx.float32, 9)
    y = rope_sim(a, 32, traditional=traditional, offset=4, forward=False)
    check(y, a, 32, traditional=traditional, offset=4, forward=False)
    back = rope_sim(rope_sim(a, 32, traditional=traditional, offset=4), 32, traditional=traditional,
                    offset=4, forward=False)
    np.testing.assert_allclose(np.array(back), np.array(a), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("traditional", [False, True], ids=["halves", "traditional"])
def test_same_angles_as_the_reference(dtype, traditional):
    # The reference in the input dtype computes the same float32 angles (offset 50000: |theta|
    # up to 5e4, where a differently rounded angle moves outputs by ~1e-3 relative).
    from mlxr.reference import rope as reference

    a = rand((2, 2, 8, 64), dtype, 12)
    kw = dict(traditional=traditional, base=10000.0, scale=1.0, offset=50000)
    y, expected = rope_sim(a, 64, **kw), reference(a, 64, **kw)
    if dtype == mx.float32:
        bound = 4 * 2.0**-24 * pair_magnitude(as64(a), 64, traditional)
        assert np.all(np.abs(as64(y) - as64(expected)) <= bound)
    else:
        worst, same = half_agreement(y, expected)
        assert worst <= 1 and same >= 0.99, (worst, same)


VIEWS = {
    "strided": lambda v, n: v[: 2 * n : 2],
    "reversed": lambda v, n: v[n - 1 :: -1][:n] if v.size >= n else v,
    "broadcast": lambda v, n: np.broadcast_to(v[:1], (n,)),
}


@pytest.mark.parametrize("offset_view", list(VIEWS))
@pytest.mark.parametrize("inv_view", list(VIEWS))
def test_offsets_and_freqs_bound_without_copy(offset_view, inv_view):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 4, 20)).astype(np.float32)
    offsets = VIEWS[offset_view](np.array([5, 0, 300, 7, 9, 11], np.int32), 3)
    inv = VIEWS[inv_view](np.exp(-np.arange(16) / 3.0).astype(np.float32), 8)
    assert offsets.shape == (3,) and inv.shape == (8,)
    y = metal_sim.rope.run(x, offsets, inv, 16, False, 1.0, "float32")
    expected = np.array(rope_rotate(mx.array(x.astype(np.float64)), mx.array(np.ascontiguousarray(offsets)),
                                    mx.array(inv.astype(np.float64)), 16, False, 1.0, True))
    np.testing.assert_allclose(y, expected, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("traditional", [False, True], ids=["halves", "traditional"])
@pytest.mark.parametrize("limit", [1024, 32])
def test_in_place_is_race_free(traditional, limit):
    # eval_gpu rotates a donated x in place: each element is read before it is written.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 10, 3, 80)).astype(np.float32)
    offsets, inv = np.array([3, 8], np.int32), np.exp(-np.arange(32) / 5.0).astype(np.float32)
    expected = np.array(rope_rotate(mx.array(x.astype(np.float64)), mx.array(offsets), mx.array(inv.astype(np.float64)),
                                    64, traditional, 1.0, True))
    p = plan(2, 3, 10, 80, 64, 1, 1, "float32", traditional, True, 1.0, limit)
    execute(p, metal_sim.library("rope"), [x, offsets, inv], [x])
    np.testing.assert_allclose(x, expected, rtol=2e-5, atol=2e-5)


def test_transposed_x_is_copied_to_rows():
    x = np.random.default_rng(2).standard_normal((2, 16, 5, 3)).astype(np.float32).transpose(0, 3, 2, 1)
    offsets, inv = np.array([1], np.int32), np.exp(-np.arange(8) / 2.0).astype(np.float32)
    y = metal_sim.rope.run(x, offsets, inv, 16, True, 1.0, "float32")
    expected = np.array(rope_rotate(mx.array(x.astype(np.float64)), mx.array(offsets), mx.array(inv.astype(np.float64)),
                                    16, True, 1.0, True))
    np.testing.assert_allclose(y, expected, rtol=2e-5, atol=2e-5)


def test_empty_input_dispatches_nothing():
    before = sum(executed.values())
    y = rope_sim(mx.zeros((2, 0, 8)), 8, traditional=False)
    assert y.shape == (2, 0, 8) and sum(executed.values()) == before


# ---------------------------------------------------------------- the launch plan
@pytest.mark.parametrize("d,dims", [(2, 2), (64, 64), (128, 64), (2048, 2048), (2050, 2048), (4096, 128)])
@pytest.mark.parametrize("limit", [1024, 64])
def test_plan_shapes(d, dims, limit):
    p = plan(3, 7, 20, d, dims, 1, 1, "float16", False, True, 1.0, limit)
    units = dims // 2 + d - dims
    threads = p.group[0]
    assert threads % 32 == 0 and 32 <= threads <= limit
    if units <= limit:
        assert p.kernel == "rope_float16" and threads >= units
    else:
        assert p.kernel == "rope_looped_float16" and threads == limit
    assert p.grid == (21, 3, 1)  # 20 rows per position in chunks of 8
    assert [a.index for a in p.args] == list(range(14))
    assert [a.kind for a in p.args] == ["input"] * 3 + ["output"] + ["bytes"] * 10


@pytest.mark.parametrize("n_m,rows_per_group,chunks", [(1, 1, 1), (8, 8, 1), (9, 8, 2), (2_000_000, 31, 64517)])
def test_plan_row_chunks(n_m, rows_per_group, chunks):
    p = plan(1, 1, n_m, 64, 64, 0, 1, "float32", True, False, 1.0)
    assert p.grid[1] == chunks <= 65535
    assert int.from_bytes(p.args[8].payload, "little") == rows_per_group


# ---------------------------------------------------------------- planted bugs
def run_with(lib, shape=(2, 10, 3, 40), dims=32, traditional=False, forward=True, limit=1024):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(np.float32)
    offsets, inv = np.array([2, 9], np.int32), np.exp(-np.arange(dims // 2) / 4.0).astype(np.float32)
    out = poisoned(shape, np.float32)
    p = plan(2, shape[-2], shape[1], shape[-1], dims, 1, 1, "float32", traditional, forward, 1.0, limit)
    execute(p, lib, [x, offsets, inv], [out])
    expected = np.array(rope_rotate(mx.array(x.astype(np.float64)), mx.array(offsets), mx.array(inv.astype(np.float64)),
                                    dims, traditional, 1.0, forward))
    return out, expected


def test_planted_unguarded_unit_is_out_of_bounds(tmp_path):
    lib = mutant(tmp_path, "rope", "  if (lid < units) {\n", "  {\n")
    # 16 pairs + 8 copied features: threads 24..31 run into the next row, another
    # threadgroup's.
    with pytest.raises(MetalSimError, match="device memory race: .* writes out"):
        run_with(lib)


def test_planted_unclamped_row_chunk_is_caught(tmp_path):
    # 10 heads in chunks of 8: the second chunk must stop at 2 rows, not rotate 8 (the next
    # group's rows, which another threadgroup owns, or past the end).
    lib = mutant(tmp_path, "rope", "uint n_rows = min(rows_per_group, n_m - m_begin);", "uint n_rows = rows_per_group;")
    with pytest.raises(MetalSimError, match="device memory race: .* writes out"):
        run_with(lib)


def test_planted_missing_tail_copy_leaves_poison(tmp_path):
    lib = mutant(tmp_path, "rope", "      rows.copy(first_row + static_cast<size_t>(m) * n_t, rows.dims + (u - half_dims));\n",
                 "")
    out, expected = run_with(lib)
    assert np.isnan(out[..., 32:]).all() and np.allclose(out[..., :32], expected[..., :32], rtol=1e-5, atol=1e-5)


def test_planted_traditional_as_halves_fails(tmp_path):
    lib = mutant(tmp_path, "rope", "size_t i2 = i1 + (traditional != 0 ? 1 : half_dims);", "size_t i2 = i1 + half_dims;")
    with pytest.raises(MetalSimError, match="device memory race: .* writes out"):
        # Traditional pair i starts at 2i: pair 2i + half_dims collides with another thread's.
        run_with(lib, traditional=True)


def test_planted_ignored_direction_fails(tmp_path):
    lib = mutant(tmp_path, "rope", "s = forward != 0 ? s : -s;", "")
    out, expected = run_with(lib, forward=False)
    assert not np.allclose(out, expected, rtol=1e-3, atol=1e-3)


def test_planted_ignored_offset_stride_is_out_of_bounds(tmp_path):
    lib = mutant(tmp_path, "rope", "offsets[g * offset_stride]", "offsets[g]")
    x = np.zeros((3, 1, 2, 8), np.float32)
    offsets = np.array([1, 2, 3], np.int32)[::-1]
    out = poisoned(x.shape, np.float32)
    with pytest.raises(MetalSimError, match="out-of-bounds read of buffer 'offset'"):
        execute(plan(3, 2, 1, 8, 8, -1, 1, "float32", False, True, 1.0), lib,
                [x, offsets, np.ones(4, np.float32)], [out])
