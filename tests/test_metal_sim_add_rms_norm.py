"""metal-sim: the Metal add_rms_norm kernels run on the CPU simulator (same launch plans as the
Metal host code): h bit for bit against MLX's add, normed against the float64 oracle of that
rounded h and against the CPU fused op, and planted kernel bugs."""

import mlx.core as mx
import numpy as np
import pytest

import mlxr.fused
from mlxr.conformance import metal_sim
from mlxr.conformance.metal_sim import MetalSimError, executed, run_op
from mlxr.conformance.metal_sim._runtime import execute, poisoned
from mlxr.conformance.metal_sim.add_rms_norm import plan
from mlxr.fused._dispatch import METAL_KERNEL_DTYPES
from mlxr.reference import rms_norm as rms_norm_reference
from mlxr.reference._dtypes import output_dtype

from _metal_sim import NAMES, WEIGHT_VIEWS, as64, assert_row_plan, half_agreement, mutant, ran, rand

if not metal_sim.available():
    pytest.skip("metal-sim needs g++ and the kernel sources", allow_module_level=True)

DTYPES = list(METAL_KERNEL_DTYPES["add_rms_norm"])
# normed against the float64 oracle of the rounded h: float32 round-off, or 1.5 ulp of the
# output dtype (the normalised value and the weight product are each rounded).
TOL = {mx.float32: 1e-5, mx.float16: 2e-3, mx.bfloat16: 1.6e-2}


def check(outputs, x, residual, w, eps):
    normed, h = outputs
    dtype = output_dtype(x, residual, w)
    assert normed.dtype == h.dtype == dtype and normed.shape == h.shape == x.shape
    # h is the sum rounded once to the output dtype: exactly MLX's x + residual.
    expected_h = x.astype(dtype) + residual.astype(dtype)
    np.testing.assert_array_equal(np.array(h.view(mx.uint16 if dtype != mx.float32 else mx.uint32)),
                                  np.array(expected_h.view(mx.uint16 if dtype != mx.float32 else mx.uint32)))
    oracle = rms_norm_reference(h.astype(mx.float64), None if w is None else w.astype(mx.float64), eps)
    np.testing.assert_allclose(as64(normed), np.array(oracle), rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("d", [1, 7, 32, 33, 129, 1024, 4096, 4097])
def test_matches_oracle(dtype, d):
    x, r, w = rand((3, d), dtype, d), rand((3, d), dtype, d + 1), rand((d,), dtype, 1)
    variant = "add_rms_norm_looped" if d > 4096 else "add_rms_norm"
    out = ran(f"{variant}_{NAMES[dtype]}", lambda: run_op("add_rms_norm", x, r, w, 1e-5))
    check(out, x, r, w, 1e-5)


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("weight", [True, False], ids=["weight", "no-weight"])
@pytest.mark.parametrize("d,limit", [(33, 1024), (100, 32), (257, 64), (1000, 64)], ids=["single", "looped-1", "looped-2", "looped-4"])
def test_looped_kernel_and_weight(dtype, weight, d, limit):
    # A pipeline limit of 32 / 64 threads sends rows over 128 / 256 elements to the looped
    # kernel: partial chunks and several loop trips at simulator-friendly sizes.
    x, r = rand((2, d), dtype, d), rand((2, d), dtype, d + 3)
    w = rand((d,), dtype, 2) if weight else None
    variant = "add_rms_norm_looped" if d > 4 * limit else "add_rms_norm"
    out = ran(f"{variant}_{NAMES[dtype]}",
              lambda: run_op("add_rms_norm", x, r, w, 1e-6, max_threads_per_group=limit))
    check(out, x, r, w, 1e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("scale", [3e3, 3e-3])
def test_batched_magnitudes(dtype, scale):
    # 3e3: h^2 overflows float16, so squares must accumulate in float32. 3e-3: mean(h^2) ~ eps.
    x, r = rand((2, 3, 300), dtype, 5, scale=scale), rand((2, 3, 300), dtype, 6, scale=scale)
    check(run_op("add_rms_norm", x, r, None, 1e-5), x, r, None, 1e-5)


def test_cancelling_sum_is_rounded_before_the_norm():
    # x + residual cancels to a few ulp of x: the norm must see the rounded h (an unrounded
    # float32 sum of float16 inputs is the same here, so float16 with magnitudes that differ).
    x = rand((4, 64), mx.float16, 7, scale=1e3)
    r = (-x.astype(mx.float32) + rand((4, 64), mx.float32, 8, scale=0.3)).astype(mx.float16)
    check(run_op("add_rms_norm", x, r, None, 1e-5), x, r, None, 1e-5)


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16], ids=NAMES.get)
@pytest.mark.parametrize("limit", [1024, 64])
def test_half_precision_rounds_like_cpu_fused_op(dtype, limit):
    x, r = rand((8, 1024), dtype, 8), rand((8, 1024), dtype, 18)
    w = rand((1024,), dtype, 9, scale=2.0)
    normed, h = run_op("add_rms_norm", x, r, w, 1e-5, max_threads_per_group=limit)
    cpu_normed, cpu_h = mlxr.fused.add_rms_norm(x, r, w, 1e-5, stream=mx.cpu)
    assert half_agreement(h, cpu_h) == (0, 1.0)
    worst, same = half_agreement(normed, cpu_normed)
    assert worst <= 2 and same >= 0.99, (worst, same)


@pytest.mark.parametrize(
    "dtypes,out_dtype",
    [((mx.float16, mx.bfloat16, None), mx.float32), ((mx.float16, mx.float16, mx.float32), mx.float32),
     ((mx.bfloat16, mx.bfloat16, mx.bfloat16), mx.bfloat16)],
)
def test_mixed_dtypes_promote(dtypes, out_dtype):
    x, r = rand((4, 40), dtypes[0], 6), rand((4, 40), dtypes[1], 16)
    w = None if dtypes[2] is None else rand((40,), dtypes[2], 7)
    out = run_op("add_rms_norm", x, r, w, 1e-5)
    assert out[0].dtype == out_dtype == mlxr.fused.add_rms_norm(x, r, w, 1e-5, stream=mx.cpu)[0].dtype
    check(out, x, r, w, 1e-5)


def add_rms_norm64(x, r, w, eps=1e-5):
    h = (x + r).astype(np.float32)
    h64 = h.astype(np.float64)
    return h64 / np.sqrt(np.mean(h64**2, -1, keepdims=True) + eps) * w, h


@pytest.mark.parametrize("view", list(WEIGHT_VIEWS))
def test_weight_strides_bound_without_copy(view):
    d = 65
    rng = np.random.default_rng(0)
    x, r = rng.standard_normal((3, d)).astype(np.float32), rng.standard_normal((3, d)).astype(np.float32)
    w = WEIGHT_VIEWS[view](rng.standard_normal(2 * d).astype(np.float32))
    normed, h = metal_sim.add_rms_norm.run(x, r, w, 1e-5, "float32")
    expected_normed, expected_h = add_rms_norm64(x, r, w)
    np.testing.assert_array_equal(h, expected_h)
    np.testing.assert_allclose(normed, expected_normed, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("d,limit", [(33, 1024), (1024, 1024), (1000, 64)], ids=["single-partial", "single", "looped"])
def test_in_place_is_race_free(d, limit):
    # eval_gpu writes normed into a donated x and h into a donated residual: each element must
    # be read before any thread writes it.
    rng = np.random.default_rng(5)
    x, r = rng.standard_normal((3, d)).astype(np.float32), rng.standard_normal((3, d)).astype(np.float32)
    w = rng.standard_normal(d).astype(np.float32)
    expected_normed, expected_h = add_rms_norm64(x, r, w)
    execute(plan(3, d, 1, "float32", True, 1e-5, limit), metal_sim.library("add_rms_norm"), [x, r, w], [x, r])
    np.testing.assert_array_equal(r, expected_h)
    np.testing.assert_allclose(x, expected_normed, rtol=1e-5, atol=1e-5)


def test_transposed_inputs_are_copied_to_rows():
    rng = np.random.default_rng(2)
    x, r = rng.standard_normal((40, 3)).astype(np.float32).T, rng.standard_normal((3, 40)).astype(np.float32)
    normed, h = metal_sim.add_rms_norm.run(x, r, None, 1e-5, "float32")
    expected_normed, expected_h = add_rms_norm64(x, r, 1.0)
    np.testing.assert_array_equal(h, expected_h)
    np.testing.assert_allclose(normed, expected_normed, rtol=1e-5, atol=1e-6)


def test_empty_input_dispatches_nothing():
    before = sum(executed.values())
    normed, h = run_op("add_rms_norm", mx.zeros((0, 8)), mx.zeros((0, 8)), mx.ones((8,)), 1e-5)
    assert normed.shape == h.shape == (0, 8) and sum(executed.values()) == before


# ---------------------------------------------------------------- the launch plan
@pytest.mark.parametrize("d", [1, 31, 128, 129, 4096, 4097, 100000])
@pytest.mark.parametrize("limit", [1024, 64])
def test_plan_shapes(d, limit):
    p = plan(5, d, 1, "float16", True, 1e-5, limit)
    assert_row_plan(p, "add_rms_norm", "float16", d, limit, n_rows=5, n_args=9)
    assert [a.kind for a in p.args] == ["input"] * 3 + ["output"] * 2 + ["bytes"] * 4
    assert [a.array for a in p.args[:5]] == [0, 1, 2, 0, 1]


def test_plan_binds_x_as_weight_placeholder():
    p = plan(1, 8, 0, "float32", False, 1e-5, 1024)
    assert p.args[2].array == 0 and p.args[8].payload == b"\0\0\0\0"


# ---------------------------------------------------------------- planted bugs
def run_with(lib, d, limit=1024, dtype="float32", n_rows=2, residual_scale=0.01):
    storage = np.float16 if dtype == "float16" else np.float32
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((n_rows, d)) * 100).astype(storage)
    r = (rng.standard_normal((n_rows, d)) * residual_scale).astype(storage)
    w = rng.standard_normal(d).astype(storage)
    normed, h = poisoned(x.shape, storage), poisoned(x.shape, storage)
    execute(plan(n_rows, d, 1, dtype, True, 1e-5, limit), lib, [x, r, w], [normed, h])
    return (x, r, w), (normed, h)


def test_planted_unguarded_h_write_is_out_of_bounds(tmp_path):
    lib = mutant(tmp_path, "add_rms_norm",
        "      h[first + k] = sum;\n      values[k] = static_cast<float>(sum);\n    }",
        "      values[k] = static_cast<float>(sum);\n    }\n    h[first + k] = static_cast<T>(values[k]);")
    with pytest.raises(MetalSimError, match=r"out-of-bounds access of buffer 'h' at element 33 "):
        run_with(lib, 33, n_rows=1)


@pytest.mark.parametrize("limit", [1024, 64])
def test_planted_unrounded_h_in_norm_fails(tmp_path, limit):
    # Normalising the float32 sum instead of the rounded h: x ~ 100 and residual ~ 0.01 in
    # float16, so the residual is mostly rounded away in h but not in the unrounded sum.
    unrounded = "static_cast<float>(x[{0}]) + static_cast<float>(residual[{0}])"
    if limit == 1024:  # the single-pass kernel
        lib = mutant(tmp_path, "add_rms_norm", "values[k] = static_cast<float>(sum);",
                     f"values[k] = {unrounded.format('first + k')};")
    else:
        lib = mutant(tmp_path, "add_rms_norm", "      T stored = h[base + k];\n",
                     f"      float stored = {unrounded.format('base + k')};\n")
    (x, r, w), (normed, h) = run_with(lib, 1000, limit=limit, dtype="float16")
    worst, same = half_agreement(mx.array(normed), mlxr.fused.add_rms_norm(
        mx.array(x), mx.array(r), mx.array(w), 1e-5, stream=mx.cpu)[0])
    assert not (worst <= 2 and same >= 0.99), (worst, same)


def test_planted_looped_norm_of_x_fails(tmp_path):
    # The second pass must read h back, not x.
    lib = mutant(tmp_path, "add_rms_norm", "      T stored = h[base + k];\n", "      T stored = x[base + k];\n")
    (x, r, w), (normed, h) = run_with(lib, 1000, limit=64, residual_scale=100)
    expected, _ = add_rms_norm64(x, r, w)
    assert not np.allclose(normed, expected, rtol=1e-3, atol=1e-3)
