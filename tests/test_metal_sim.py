"""metal-sim: the Metal rms_norm kernels run on the CPU simulator (same launch plans as the
Metal host code) against the float64 oracle, and planted kernel bugs the simulator must catch."""

from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from _metal_sim import NAMES, WEIGHT_VIEWS, as64, assert_row_plan, half_agreement, ran, rand
from _metal_sim import mutant as planted
from mlxr.conformance import metal_sim
from mlxr.conformance.metal_sim import MetalSimError, _rms_norm_plan, executed, run_op
from mlxr.conformance.metal_sim._runtime import Library, execute, poisoned
from mlxr.fused._dispatch import METAL_KERNEL_DTYPES
from mlxr.reference import rms_norm as reference

if not metal_sim.available():
    pytest.skip("metal-sim needs g++ and the kernel sources", allow_module_level=True)

DTYPES = list(METAL_KERNEL_DTYPES["rms_norm"])
# Against the float64 oracle: float32 round-off, or 1.5 ulp of the output dtype (the normalised
# value and the weight product are each rounded, as the reference prescribes).
TOL = {mx.float32: 1e-5, mx.float16: 2e-3, mx.bfloat16: 1.6e-2}


def check(y, x, w, eps, dtype):
    oracle = reference(x.astype(mx.float64), None if w is None else w.astype(mx.float64), eps)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_allclose(as64(y), np.array(oracle), rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("d", [1, 7, 31, 32, 33, 128, 129, 1024, 4096, 4097])
def test_matches_oracle(dtype, d):
    x, w = rand((3, d), dtype, d), rand((d,), dtype, 1)
    variant = "rms_norm_looped" if d > 4096 else "rms_norm"
    y = ran(f"{variant}_{NAMES[dtype]}", lambda: run_op("rms_norm", x, w, 1e-5))
    check(y, x, w, 1e-5, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("d", [1, 33, 255, 256, 257, 1000])
def test_looped_kernel_at_small_thread_limits(dtype, d):
    # A pipeline limit of 64 threads sends rows over 256 elements to the looped kernel, so it
    # is exercised with partial chunks and several loop trips at simulator-friendly sizes.
    x, w = rand((2, d), dtype, d), rand((d,), dtype, 2)
    variant = "rms_norm_looped" if d > 256 else "rms_norm"
    y = ran(f"{variant}_{NAMES[dtype]}", lambda: run_op("rms_norm", x, w, 1e-6, max_threads_per_group=64))
    check(y, x, w, 1e-6, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("scale", [3e3, 3e-3])
def test_no_weight_batched_magnitudes(dtype, scale):
    # 3e3: x^2 overflows float16, so squares must accumulate in float32. 3e-3: mean(x^2) ~ eps,
    # so a dropped or misplaced eps shows.
    x = rand((2, 3, 300), dtype, 5, scale=scale)
    check(run_op("rms_norm", x, None, 1e-5), x, None, 1e-5, dtype)


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16], ids=NAMES.get)
def test_half_precision_rounds_like_mlx(dtype):
    # The oracle tolerance cannot see the rounding order; MLX's own kernel (same rule: round
    # the normalised value, then multiply by the weight in the output dtype) can.
    x, w = rand((8, 1024), dtype, 8), rand((1024,), dtype, 9, scale=2.0)
    worst, same = half_agreement(run_op("rms_norm", x, w, 1e-5), mx.fast.rms_norm(x, w, 1e-5, stream=mx.cpu))
    assert worst <= 2 and same >= 0.99, (worst, same)


def test_mixed_dtypes_promote():
    x, w = rand((4, 40), mx.float16, 6), rand((40,), mx.float32, 7)
    y = run_op("rms_norm", x, w, 1e-5)
    assert y.dtype == mx.float32
    check(y, x, w, 1e-5, mx.float32)


@pytest.mark.parametrize("view", list(WEIGHT_VIEWS))
def test_weight_strides_bound_without_copy(view):
    d = 65
    x = np.random.default_rng(0).standard_normal((3, d)).astype(np.float32)
    w = WEIGHT_VIEWS[view](np.random.default_rng(1).standard_normal(2 * d).astype(np.float32))
    assert not w.flags.c_contiguous or w.strides[0] == 0
    y = metal_sim.rms_norm.run(x, w, 1e-5, "float32")
    expected = x / np.sqrt(np.mean(x.astype(np.float64) ** 2, -1, keepdims=True) + 1e-5) * w
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("d,limit", [(33, 1024), (1024, 1024), (1000, 64)], ids=["single-partial", "single", "looped"])
def test_in_place_is_race_free(d, limit):
    # eval_gpu writes into a donated x: every element must be read before any thread writes it.
    x = np.random.default_rng(5).standard_normal((3, d)).astype(np.float32)
    w = np.random.default_rng(6).standard_normal(d).astype(np.float32)
    expected = x / np.sqrt(np.mean(x.astype(np.float64) ** 2, -1, keepdims=True) + 1e-5) * w
    execute(_rms_norm_plan(3, d, 1, "float32", True, 1e-5, limit), metal_sim.library("rms_norm"), [x, w], [x])
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)


def test_transposed_x_is_copied_to_rows():
    x = np.random.default_rng(2).standard_normal((40, 3)).astype(np.float32).T
    y = metal_sim.rms_norm.run(x, None, 1e-5, "float32")
    np.testing.assert_allclose(y, x / np.sqrt(np.mean(x**2, -1, keepdims=True) + 1e-5), rtol=1e-5)


def test_empty_input_dispatches_nothing():
    before = sum(executed.values())
    y = run_op("rms_norm", mx.zeros((0, 8)), mx.ones((8,)), 1e-5)
    assert y.shape == (0, 8) and sum(executed.values()) == before


# ---------------------------------------------------------------- the launch plan
@pytest.mark.parametrize("d", [1, 31, 32, 128, 129, 4096, 4097, 100000])
@pytest.mark.parametrize("limit", [1024, 64])
def test_plan_shapes(d, limit):
    p = _rms_norm_plan(5, d, 1, "float16", True, 1e-5, limit)
    assert_row_plan(p, "rms_norm", "float16", d, limit, n_rows=5, n_args=7)
    assert [a.kind for a in p.args] == ["input", "input", "output"] + ["bytes"] * 4


def test_plan_binds_x_as_weight_placeholder():
    p = _rms_norm_plan(1, 8, 0, "float32", False, 1e-5, 1024)
    assert p.args[1].array == 0 and p.args[6].payload == b"\0\0\0\0"


# ---------------------------------------------------------------- simulator semantics
@pytest.fixture(scope="module")
def selftest():
    return Library(Path(__file__).parent / "metal_sim_kernels" / "collectives.metal")


def test_simd_collectives(selftest):
    n = 40  # a full simdgroup and a partial one of 8 lanes
    x = np.random.default_rng(3).standard_normal(n).astype(np.float32)
    out = poisoned((n, 6), np.float32)
    selftest.dispatch("collectives", (1, 1, 1), (n, 1, 1), {0: (x, "in"), 1: (out, "out")})
    for first, width in [(0, 32), (32, 8)]:
        g = x[first : first + width]
        lanes = np.arange(width)
        np.testing.assert_allclose(out[first : first + width, 0], g.sum(), rtol=1e-6)
        np.testing.assert_array_equal(out[first : first + width, 1], g.max())
        down = np.where(lanes + 1 < 32, g[np.minimum(lanes + 1, width - 1)], g)
        np.testing.assert_array_equal(out[first : first + width - 1, 2], down[:-1])
        xor = lanes ^ 3
        ok = xor < width
        np.testing.assert_array_equal(out[first : first + width, 3][ok], g[xor[ok]])
        np.testing.assert_array_equal(out[first : first + width, 4], g[5])
        half = g[:16]
        np.testing.assert_allclose(out[first : first + min(16, width), 5], half.sum(), rtol=1e-6)
        np.testing.assert_array_equal(out[first + 16 : first + width, 5], -1.0)


def test_library_subset(selftest):
    n = 32
    x = np.random.default_rng(7).standard_normal(n).astype(np.float32)
    out = poisoned((n, 8), np.float32)
    selftest.dispatch("library_subset", (1, 1, 1), (n, 1, 1), {0: (x, "in"), 1: (out, "out")})
    a = np.stack([x, 2 * x, np.full(n, 3.0), np.full(n, 4.0)], 1).astype(np.float32)
    b = a * 2 + 1
    np.testing.assert_allclose(out[:, 0], np.cumsum(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[:, 1], np.cumsum(x) - x, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[:, 2], 1.0)
    np.testing.assert_array_equal(out[:, 3], float((x > 1.5).any()))
    np.testing.assert_allclose(out[:, 4], (a * b).sum(1), rtol=1e-6)
    np.testing.assert_allclose(out[:, 5], np.exp(x.astype(np.float16)).astype(np.float16), rtol=1e-3)
    np.testing.assert_array_equal(out[:, 6], (x.view(np.uint32) >> 23).astype(np.float32))
    np.testing.assert_array_equal(out[:, 7], np.maximum(b[:, 1], b[:, 2]))


def test_threadgroup_memory_and_barrier(selftest):
    x = np.arange(128, dtype=np.float32)
    out = poisoned(128, np.float32)
    selftest.dispatch("reverse_group", (2, 1, 1), (64, 1, 1), {0: (x, "in"), 1: (out, "out")})
    np.testing.assert_array_equal(out, np.concatenate([x[63::-1], x[:63:-1]]))


def test_unsynchronised_exchange_is_a_race(selftest):
    out = poisoned(2, np.float32)
    with pytest.raises(MetalSimError, match=r"threadgroup memory race: thread 0 reads shared\[1\] written by thread 1"):
        selftest.dispatch("unsynchronised", (1, 1, 1), (2, 1, 1), {0: (out, "out")})


def test_device_memory_races(selftest):
    x = np.arange(64, dtype=np.float32)
    out = poisoned(64, np.float32)
    selftest.dispatch("shift_left", (2, 1, 1), (32, 1, 1), {0: (x, "in"), 1: (out, "out")})
    np.testing.assert_array_equal(out, np.append(x[1:], 0))
    # In place (what a donated input does): thread 1 writes the element thread 0 read, with no
    # barrier between (and across threadgroups there is never an order).
    with pytest.raises(MetalSimError, match=r"thread 1 of threadgroup #0 writes out\[1\] accessed by thread 0 of"):
        selftest.dispatch("shift_left", (2, 1, 1), (32, 1, 1), {0: (x, "in"), 1: (x, "out")})
    with pytest.raises(MetalSimError, match=r"thread 0 of threadgroup #1 writes out\[0\] accessed by thread 0 of threadgroup #0"):
        selftest.dispatch("overlapping_writes", (2, 1, 1), (32, 1, 1), {0: (out, "out")})


def test_oversized_threadgroup_is_refused(selftest):
    x = np.zeros(2048, np.float32)
    with pytest.raises(MetalSimError, match="threadgroup of 2048 threads"):
        selftest.dispatch("reverse_group", (1, 1, 1), (2048, 1, 1), {0: (x, "in"), 1: (x, "out")})


# ---------------------------------------------------------------- planted bugs


def mutant(tmp_path, old, new):
    """kernels/rms_norm.metal with one planted bug."""
    return planted(tmp_path, "rms_norm", old, new)


def run_with(lib, d, n_rows=1, limit=1024, dtype="float32"):
    x = np.random.default_rng(4).standard_normal((n_rows, d)).astype(np.float32)
    w = np.ones(d, np.float32)
    out = poisoned(x.shape, np.float32)
    execute(_rms_norm_plan(n_rows, d, 1, dtype, True, 1e-5, limit), lib, [x, w], [out])
    return out


def test_planted_missing_barrier_is_a_race(tmp_path):
    lib = mutant(tmp_path, "threadgroup_barrier(mem_flags::mem_threadgroup);", "")
    # 256 threads, 8 simdgroups: a reader either meets another thread's unordered write or
    # finds the element not yet written; both are reported.
    with pytest.raises(MetalSimError, match="threadgroup memory race|before any thread of the threadgroup wrote it"):
        run_with(lib, 1024)


def test_planted_unguarded_read_is_out_of_bounds(tmp_path):
    lib = mutant(
        tmp_path,
        "values[k] = first + k < axis_size ? static_cast<float>(x[first + k]) : 0.0f;",
        "values[k] = static_cast<float>(x[first + k]);",
    )
    # 33 elements: a threadgroup of 32 threads reads 128, past the end of the last row.
    with pytest.raises(MetalSimError, match=r"out-of-bounds read of buffer 'x' at element 33 \(buffer holds 33\)"):
        run_with(lib, 33)


def test_planted_early_return_before_barrier(tmp_path):
    lib = mutant(
        tmp_path,
        "  uint first = lid * kReads;\n",
        "  uint first = lid * kReads;\n  if (first >= axis_size) {\n    return;\n  }\n",
    )
    with pytest.raises(MetalSimError, match="threadgroup_barrier reached by"):
        run_with(lib, 33 + 32 * 4)  # 2 simdgroups; the last 31 threads have no elements


def test_planted_unguarded_threadgroup_read(tmp_path):
    lib = mutant(tmp_path, "simd_lane < n_simd_groups ? simd_sums[simd_lane] : 0.0f", "simd_sums[simd_lane]")
    with pytest.raises(MetalSimError, match=r"reads simd_sums\[8\] before any thread of the threadgroup wrote it"):
        run_with(lib, 1024)  # 8 simdgroups wrote simd_sums[0..7]; lanes 8..31 read garbage


def test_planted_bytes_type_mismatch(tmp_path):
    lib = mutant(tmp_path, "constant uint& axis_size [[buffer(4)]]", "constant int64_t& axis_size [[buffer(4)]]")
    with pytest.raises(MetalSimError, match=r"buffer\(4\) 'axis_size': 4 bytes bound, the kernel reads 8"):
        run_with(lib, 16)


def test_planted_wrong_reduction_fails_numerics(tmp_path):
    # Reading only the first simdgroup's partial sum is race-free but wrong: numerics catch it.
    lib = mutant(tmp_path, "simd_lane < n_simd_groups ? simd_sums[simd_lane]", "simd_lane < 1 ? simd_sums[simd_lane]")
    x = np.random.default_rng(4).standard_normal((1, 1024)).astype(np.float32)
    y = run_with(lib, 1024)
    expected = x / np.sqrt(np.mean(x.astype(np.float64) ** 2) + 1e-5)
    assert not np.allclose(y, expected, rtol=1e-3)


def test_planted_single_rounding_breaks_agreement(tmp_path):
    lib = mutant(
        tmp_path,
        "return static_cast<T>(static_cast<float>(normed) * static_cast<float>(w[i * w_stride]));",
        "return static_cast<T>(value * inv_rms * static_cast<float>(w[i * w_stride]));",
    )
    x, w = rand((8, 1024), mx.float16, 8), rand((1024,), mx.float16, 9, scale=2.0)
    out = poisoned((8, 1024), np.float16)
    execute(_rms_norm_plan(8, 1024, 1, "float16", True, 1e-5), lib, [np.array(x), np.array(w)], [out])
    worst, same = half_agreement(mx.array(out), mx.fast.rms_norm(x, w, 1e-5, stream=mx.cpu))
    assert not (worst <= 2 and same >= 0.99), (worst, same)


def test_planted_missing_eps_fails_numerics(tmp_path):
    lib = mutant(tmp_path, "sum_sq / axis_size + eps)", "sum_sq / axis_size)")
    x = rand((6, 300), mx.float32, 5, scale=3e-3)
    out = poisoned((6, 300), np.float32)
    execute(_rms_norm_plan(6, 300, 0, "float32", False, 1e-5), lib, [np.array(x)], [out])
    with pytest.raises(AssertionError, match="Mismatched elements"):
        check(mx.array(out), x, None, 1e-5, mx.float32)
