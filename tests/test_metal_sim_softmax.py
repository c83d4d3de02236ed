"""metal-sim: the Metal softmax kernels (kernels/softmax.metal) on the CPU simulator, through the
launch plans of the Metal host, against the float64 oracle and the reference's special-value
contract; planted kernel bugs the simulator or the numbers must catch."""

import mlx.core as mx
import numpy as np
import pytest

from _metal_sim import NAMES, as64, mutant, ran, rand
from mlxr.conformance import metal_sim
from mlxr.conformance.metal_sim import MetalSimError, run_op
from mlxr.conformance.metal_sim._runtime import execute, poisoned
from mlxr.conformance.metal_sim.softmax import plan
from mlxr.fused._dispatch import METAL_KERNEL_DTYPES
from mlxr.reference import softmax as reference

if not metal_sim.available():
    pytest.skip("metal-sim needs g++ and the kernel sources", allow_module_level=True)

DTYPES = list(METAL_KERNEL_DTYPES["softmax"])
# Against the float64 oracle: a few float32 ulp of exp and the division, or half an ulp of the
# output dtype plus the float32 error.
TOL = {mx.float32: 2e-6, mx.float16: 1e-3, mx.bfloat16: 8e-3}
INF, NAN = float("inf"), float("nan")


def check(y, x, axis=-1):
    assert y.dtype == x.dtype and y.shape == x.shape
    oracle = np.array(reference(x.astype(mx.float64), axis=axis))
    np.testing.assert_allclose(as64(y), oracle, rtol=TOL[x.dtype], atol=TOL[x.dtype] * 1e-3)


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("d", [1, 7, 33, 128, 4095, 4096, 4097])
def test_matches_oracle(dtype, d):
    x = rand((3, d), dtype, d, scale=4.0)
    variant = "softmax_looped" if d > 4096 else "softmax"
    check(ran(f"{variant}_{NAMES[dtype]}", lambda: run_op("softmax", x)), x)


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("d", [33, 256, 257, 1000])
def test_looped_kernel_at_small_thread_limits(dtype, d):
    # 64 threads send rows over 256 elements to the looped kernel: several chunks per thread,
    # a partial last chunk, and a max that rises from chunk to chunk (sorted input).
    x = mx.sort(rand((2, d), dtype, d, scale=8.0), axis=-1)
    variant = "softmax_looped" if d > 256 else "softmax"
    y = ran(f"{variant}_{NAMES[dtype]}",
            lambda: mx.array(metal_sim.softmax.run(_bits(x), 1, NAMES[dtype], max_threads_per_group=64)))
    check(_from_bits(y, dtype), x)


def _bits(x):
    return np.array(x.view(mx.uint16)) if x.dtype == mx.bfloat16 else np.array(x)


def _from_bits(y, dtype):
    return y.view(mx.bfloat16) if dtype == mx.bfloat16 else y


SPECIAL_ROWS = {
    "masked_prefix": [-INF] * 600 + list(np.linspace(-3, 3, 400)),  # whole threads see only -inf
    "all_minus_inf": [-INF] * 1000,
    "plus_inf": [0.0] * 500 + [INF] + [1.0] * 499,
    "nan": [0.0] * 999 + [NAN],
    "lowest": [-3e38] * 999 + [3e38],
}


@pytest.mark.parametrize("limit", [1024, 64], ids=["single", "looped"])
@pytest.mark.parametrize("row", SPECIAL_ROWS, ids=str)
def test_special_rows_follow_the_reference(row, limit):
    x = np.array([SPECIAL_ROWS[row]], np.float32)
    y = metal_sim.softmax.run(x, 1, "float32", max_threads_per_group=limit)
    expected = np.array(reference(mx.array(x)))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    np.testing.assert_allclose(y, expected, rtol=2e-6, atol=0)


def test_other_axes_and_scalars_like_the_fused_op():
    x = rand((5, 6, 7), mx.float32, 3)
    for axis in (0, 1, (0, 2), None):
        check(run_op("softmax", x, axis=axis), x, axis=axis)
    assert run_op("softmax", mx.array(2.5), axis=None).item() == 1.0


def test_empty_input_dispatches_nothing():
    before = sum(metal_sim.executed.values())
    assert run_op("softmax", mx.zeros((0, 8))).shape == (0, 8)
    assert sum(metal_sim.executed.values()) == before


@pytest.mark.parametrize("d,limit", [(33, 1024), (1000, 1024), (1000, 64)], ids=["partial", "single", "looped"])
def test_in_place_is_race_free(d, limit):
    # eval_gpu writes into a donated x.
    x = np.random.default_rng(5).standard_normal((3, d)).astype(np.float32)
    expected = np.array(reference(mx.array(x)))
    execute(plan(3, d, "float32", limit), metal_sim.library("softmax"), [x], [x])
    np.testing.assert_allclose(x, expected, rtol=2e-6)


@pytest.mark.parametrize("d", [1, 31, 32, 4096, 4097, 100000])
@pytest.mark.parametrize("limit", [1024, 64])
def test_plan_shapes(d, limit):
    p = plan(5, d, "float16", limit)
    assert p.group[0] % 32 == 0 and 32 <= p.group[0] <= limit and p.grid == (5, 1, 1)
    assert p.kernel == ("softmax_float16" if d <= 4 * limit else "softmax_looped_float16")
    assert [(a.kind, a.index) for a in p.args] == [("input", 0), ("output", 1), ("bytes", 2)]


# ---------------------------------------------------------------- planted bugs
def run_with(lib, x, limit):
    out = poisoned(x.shape, np.float32)
    execute(plan(x.shape[0], x.shape[1], "float32", limit), lib, [x], [out])
    return out


def test_planted_missing_rescale_fails_numerics(tmp_path):
    # The online sum not rescaled when a later chunk raises the max.
    lib = mutant(tmp_path, "softmax", "running_sum *= exp(running_max - new_max);", "")
    x = np.sort(np.random.default_rng(1).standard_normal((2, 1000)).astype(np.float32) * 4, axis=-1)
    assert not np.allclose(run_with(lib, x, 64), np.array(reference(mx.array(x))), rtol=1e-3)


def test_planted_minus_inf_start_breaks_masked_rows(tmp_path):
    # Maxima starting at -inf: a thread whose elements are all -inf computes exp(-inf - -inf) =
    # NaN and poisons a row the reference gives finite values.
    lib = mutant(tmp_path, "softmax", "kLowest = -numeric_limits<float>::max();", "kLowest = -INFINITY;")
    x = np.array([SPECIAL_ROWS["masked_prefix"]], np.float32)
    assert np.isnan(run_with(lib, x, 64)).all()


def test_planted_missing_barrier_is_a_race(tmp_path):
    lib = mutant(tmp_path, "softmax", "threadgroup_barrier(mem_flags::mem_threadgroup);", "")
    with pytest.raises(MetalSimError, match="threadgroup memory race|before any thread of the threadgroup wrote it"):
        run_with(lib, np.ones((1, 1024), np.float32), 1024)


def test_planted_unguarded_read_is_out_of_bounds(tmp_path):
    lib = mutant(tmp_path, "softmax", "first + k < axis_size ? static_cast<float>(x[first + k]) : -INFINITY",
                 "static_cast<float>(x[first + k])")
    with pytest.raises(MetalSimError, match=r"out-of-bounds read of buffer 'x' at element 33"):
        run_with(lib, np.ones((1, 33), np.float32), 1024)
