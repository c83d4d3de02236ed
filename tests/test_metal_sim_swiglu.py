"""metal-sim: the Metal swiglu kernels (kernels/swiglu.metal) on the CPU simulator, through the
launch plans of the Metal host, against the float64 oracle; alignment of the vector kernel and
planted kernel bugs the simulator must catch."""

import mlx.core as mx
import numpy as np
import pytest

from _metal_sim import NAMES, as64, mutant, ran, rand
from mlxr.conformance import metal_sim
from mlxr.conformance.metal_sim import MetalSimError, run_op
from mlxr.conformance.metal_sim._runtime import execute, poisoned
from mlxr.conformance.metal_sim.swiglu import plan
from mlxr.fused._dispatch import METAL_KERNEL_DTYPES
from mlxr.reference import swiglu as reference

if not metal_sim.available():
    pytest.skip("metal-sim needs g++ and the kernel sources", allow_module_level=True)

DTYPES = list(METAL_KERNEL_DTYPES["swiglu"])
# Against the float64 oracle: a few float32 ulp (exp, a division, two products), or half an ulp
# of the output dtype plus that.
TOL = {mx.float32: 2e-6, mx.float16: 1e-3, mx.bfloat16: 8e-3}


def check(y, gate, up):
    oracle = np.array(reference(gate.astype(mx.float64), up.astype(mx.float64)))
    assert y.dtype == mx.result_type(gate, up) and y.shape == oracle.shape
    np.testing.assert_allclose(as64(y), oracle, rtol=TOL[y.dtype], atol=TOL[y.dtype] * 1e-3)


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("shape", [(1,), (3,), (4,), (5,), (7, 33), (1023,), (4, 257)], ids=str)
def test_matches_oracle(dtype, shape):
    gate, up = rand(shape, dtype, 1, scale=4.0), rand(shape, dtype, 2)
    check(ran(f"swiglu_{NAMES[dtype]}", lambda: run_op("swiglu", gate, up)), gate, up)


def test_broadcast_and_mixed_dtypes_like_the_fused_op():
    gate, up = rand((3, 1, 10), mx.bfloat16, 3), rand((4, 10), mx.float32, 4)
    check(run_op("swiglu", gate, up), gate, up)


@pytest.mark.parametrize("offset", [1, 2, 3])
def test_unaligned_views_take_the_unaligned_kernel(offset):
    # A contiguous view into a larger buffer keeps its offset (as MLX's mx::contiguous does).
    buffer = np.random.default_rng(offset).standard_normal(64).astype(np.float16)
    gate, up = buffer[offset : offset + 21], buffer[32 + offset : 32 + offset + 21]
    y = ran("swiglu_unaligned_float16", lambda: metal_sim.swiglu.run(gate, up, "float16"))
    check(mx.array(y), mx.array(gate), mx.array(up))


def test_vector_kernel_on_misaligned_buffers_is_a_fault():
    # The plan's alignment check is what keeps vector loads aligned: without it, the simulator
    # reports the cast.
    buffer = np.zeros(64, np.float32)
    gate, up = buffer[1:22], buffer[33:54]
    with pytest.raises(MetalSimError, match=r"misaligned pointer cast of buffer 'gate'"):
        execute(plan(21, "float32", True), metal_sim.library("swiglu"), [gate, up], [poisoned(21, np.float32)])


def test_in_place_is_race_free():
    gate = np.random.default_rng(6).standard_normal(1001).astype(np.float32)
    up = np.random.default_rng(7).standard_normal(1001).astype(np.float32)
    expected = np.array(reference(mx.array(gate), mx.array(up)))
    execute(plan(1001, "float32", True), metal_sim.library("swiglu"), [gate, up], [gate])
    np.testing.assert_allclose(gate, expected, rtol=2e-6)


@pytest.mark.parametrize("size", [1, 4, 1024, 1025, 100000])
@pytest.mark.parametrize("limit", [1024, 64])
def test_plan_shapes(size, limit):
    p = plan(size, "bfloat16", size % 2 == 0, limit)
    threads = p.grid[0] * p.group[0]
    assert p.group[0] == min(256, limit) and threads >= -(-size // 4) > threads - p.group[0]
    assert p.kernel == ("swiglu_bfloat16" if size % 2 == 0 else "swiglu_unaligned_bfloat16")
    assert [(a.kind, a.index) for a in p.args] == [("input", 0), ("input", 1), ("output", 2), ("bytes", 3)]


# ---------------------------------------------------------------- planted bugs
def run_with(lib, size, aligned=True):
    gate, up = np.ones(size, np.float32), np.ones(size, np.float32)
    out = poisoned(size, np.float32)
    execute(plan(size, "float32", aligned), lib, [gate, up], [out])
    return out


def test_planted_unguarded_vector_tail_is_out_of_bounds(tmp_path):
    lib = mutant(tmp_path, "swiglu", "kVector && first + kWork <= size", "kVector && first < size")
    with pytest.raises(MetalSimError, match=r"out-of-bounds read of buffer 'gate' at element 1 \(buffer holds 1\)"):
        run_with(lib, 6)  # the second thread's vector reaches elements 4..7 of 6


def test_planted_dropped_tail_leaves_outputs_unwritten(tmp_path):
    lib = mutant(tmp_path, "swiglu", "i < first + kWork && i < size", "i < size - size % kWork")
    out = run_with(lib, 7)
    assert np.isnan(out[4:]).all() and not np.isnan(out[:4]).any()
