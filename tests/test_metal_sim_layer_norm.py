"""metal-sim: the Metal layer_norm kernels run on the CPU simulator (same launch plans as the
Metal host code) against the float64 oracle and the CPU fused op, and planted kernel bugs."""

import mlx.core as mx
import numpy as np
import pytest

import mlxr.fused
from mlxr.conformance import metal_sim
from mlxr.conformance.metal_sim import MetalSimError, executed, run_op
from mlxr.conformance.metal_sim._runtime import execute, poisoned
from mlxr.conformance.metal_sim.layer_norm import plan
from mlxr.fused._dispatch import METAL_KERNEL_DTYPES
from mlxr.reference import layer_norm as reference

from _metal_sim import NAMES, WEIGHT_VIEWS, as64, assert_row_plan, half_agreement, mutant, ran, rand

if not metal_sim.available():
    pytest.skip("metal-sim needs g++ and the kernel sources", allow_module_level=True)

DTYPES = list(METAL_KERNEL_DTYPES["layer_norm"])
# Against the float64 oracle, relative to the operands of the last two roundings: the
# normalised value, its weight product and the bias sum are each rounded to the output dtype
# (~1 ulp each), so the error scales with |normed * weight| + |out|, not |out| alone (the bias
# may cancel the product). float32: mean/variance round-off.
TOL = {mx.float32: 1e-5, mx.float16: 2e-3, mx.bfloat16: 1.6e-2}
AFFINE = {"none": (False, False), "weight": (True, False), "bias": (False, True), "both": (True, True)}


def check(y, x, w, b, eps, dtype, tol=None):
    tol = TOL[dtype] if tol is None else tol
    to64 = lambda a: None if a is None else a.astype(mx.float64)  # noqa: E731
    oracle = np.array(reference(to64(x), to64(w), to64(b), eps))
    product = np.abs(np.array(reference(to64(x), to64(w), None, eps)))
    assert y.dtype == dtype and y.shape == x.shape
    err = np.abs(as64(y) - oracle)
    bound = tol * (1 + product + np.abs(oracle))
    assert np.all(err <= bound), f"max error {err.max():.3g}, worst ratio {(err / bound).max():.3g}"


def params(d, dtype, affine, key=1):
    has_w, has_b = AFFINE[affine]
    return (rand((d,), dtype, key) if has_w else None, rand((d,), dtype, key + 1) if has_b else None)


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("d", [1, 2, 7, 32, 33, 129, 1024, 4096, 4097])
def test_matches_oracle(dtype, d):
    x = rand((3, d), dtype, d)
    w, b = params(d, dtype, "both")
    variant = "layer_norm_looped" if d > 4096 else "layer_norm"
    y = ran(f"{variant}_{NAMES[dtype]}", lambda: run_op("layer_norm", x, w, b, 1e-5))
    check(y, x, w, b, 1e-5, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("affine", list(AFFINE))
@pytest.mark.parametrize("d,limit", [(33, 1024), (100, 32), (257, 64), (1000, 64)], ids=["single", "looped-1", "looped-2", "looped-4"])
def test_weight_and_bias_present_or_absent(dtype, affine, d, limit):
    # A pipeline limit of 32 / 64 threads sends rows over 128 / 256 elements to the looped
    # kernel: partial chunks and several loop trips at simulator-friendly sizes.
    x = rand((2, d), dtype, d + 7)
    w, b = params(d, dtype, affine, key=3)
    variant = "layer_norm_looped" if d > 4 * limit else "layer_norm"
    y = ran(f"{variant}_{NAMES[dtype]}", lambda: run_op("layer_norm", x, w, b, 1e-6, max_threads_per_group=limit))
    check(y, x, w, b, 1e-6, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=NAMES.get)
@pytest.mark.parametrize("scale", [3e3, 3e-3])
@pytest.mark.parametrize("limit", [1024, 64])
def test_magnitudes(dtype, scale, limit):
    # 3e3: squares overflow float16, so they must accumulate in float32. 3e-3: var ~ eps, so a
    # dropped or misplaced eps shows.
    x = rand((2, 3, 300), dtype, 5, scale=scale)
    check(run_op("layer_norm", x, None, None, 1e-5, max_threads_per_group=limit), x, None, None, 1e-5, dtype)


@pytest.mark.parametrize("limit", [1024, 64])
def test_large_mean_uses_centred_variance(limit):
    # mean 3000, std 1: E[x^2] - mean^2 in float32 loses ~1e-3 of the variance to cancellation
    # (caught by test_planted_one_pass_variance); the two-pass variance keeps the float32
    # rounding of the mean, which at |x| ~ 3e3 is up to ~2.5e-4 of the centred values.
    x = rand((4, 300), mx.float32, 11, shift=3000.0)
    check(run_op("layer_norm", x, None, None, 1e-5, max_threads_per_group=limit), x, None, None, 1e-5, mx.float32,
          tol=5e-4)


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16], ids=NAMES.get)
@pytest.mark.parametrize("limit", [1024, 64])
def test_half_precision_rounds_like_cpu_fused_op(dtype, limit):
    # The oracle tolerance cannot see the rounding order; the CPU fused op (same rule: round
    # the normalised value, then the weight product, then the bias sum) can.
    x = rand((8, 1024), dtype, 8)
    w, b = rand((1024,), dtype, 9, scale=2.0), rand((1024,), dtype, 10)
    y = run_op("layer_norm", x, w, b, 1e-5, max_threads_per_group=limit)
    worst, same = half_agreement(y, mlxr.fused.layer_norm(x, w, b, 1e-5, stream=mx.cpu))
    assert worst <= 2 and same >= 0.99, (worst, same)


@pytest.mark.parametrize(
    "x_dtype,w_dtype,b_dtype,out_dtype",
    [
        (mx.float16, mx.float32, None, mx.float32),
        (mx.bfloat16, mx.float16, mx.float16, mx.float32),
        (mx.float16, None, mx.float32, mx.float16),  # a bias without a weight takes x's dtype
    ],
)
def test_mixed_dtypes_promote(x_dtype, w_dtype, b_dtype, out_dtype):
    x = rand((4, 40), x_dtype, 6)
    w = None if w_dtype is None else rand((40,), w_dtype, 7)
    b = None if b_dtype is None else rand((40,), b_dtype, 8)
    y = run_op("layer_norm", x, w, b, 1e-5)
    assert y.dtype == out_dtype == mlxr.fused.layer_norm(x, w, b, 1e-5, stream=mx.cpu).dtype
    check(y, x, w, b, 1e-5, out_dtype)


@pytest.mark.parametrize("w_view", list(WEIGHT_VIEWS))
@pytest.mark.parametrize("b_view", list(WEIGHT_VIEWS))
def test_weight_and_bias_strides_bound_without_copy(w_view, b_view):
    d = 65
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, d)).astype(np.float32)
    w = WEIGHT_VIEWS[w_view](rng.standard_normal(2 * d).astype(np.float32))
    b = WEIGHT_VIEWS[b_view](rng.standard_normal(2 * d).astype(np.float32))
    assert not w.flags.c_contiguous or w.strides[0] == 0
    y = metal_sim.layer_norm.run(x, w, b, 1e-5, "float32")
    x64 = x.astype(np.float64)
    centred = x64 - x64.mean(-1, keepdims=True)
    expected = centred / np.sqrt((centred**2).mean(-1, keepdims=True) + 1e-5) * w + b
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def layer_norm64(x, w, b, eps=1e-5):
    x64 = x.astype(np.float64)
    centred = x64 - x64.mean(-1, keepdims=True)
    return centred / np.sqrt((centred**2).mean(-1, keepdims=True) + eps) * w + b


@pytest.mark.parametrize("d,limit", [(33, 1024), (1024, 1024), (1000, 64)], ids=["single-partial", "single", "looped"])
def test_in_place_is_race_free(d, limit):
    # eval_gpu writes into a donated x: every element must be read before any thread writes it.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, d)).astype(np.float32)
    w, b = rng.standard_normal(d).astype(np.float32), rng.standard_normal(d).astype(np.float32)
    expected = layer_norm64(x, w, b)
    execute(plan(3, d, 1, 1, "float32", True, True, 1e-5, limit), metal_sim.library("layer_norm"), [x, w, b], [x])
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-5)


def test_transposed_x_is_copied_to_rows():
    x = np.random.default_rng(2).standard_normal((40, 3)).astype(np.float32).T
    y = metal_sim.layer_norm.run(x, None, None, 1e-5, "float32")
    np.testing.assert_allclose(y, layer_norm64(x, 1.0, 0.0), rtol=1e-5, atol=1e-6)


def test_empty_input_dispatches_nothing():
    before = sum(executed.values())
    y = run_op("layer_norm", mx.zeros((0, 8)), mx.ones((8,)), mx.zeros((8,)), 1e-5)
    assert y.shape == (0, 8) and sum(executed.values()) == before


# ---------------------------------------------------------------- the launch plan
@pytest.mark.parametrize("d", [1, 31, 128, 129, 4096, 4097, 100000])
@pytest.mark.parametrize("limit", [1024, 64])
def test_plan_shapes(d, limit):
    p = plan(5, d, 1, 1, "bfloat16", True, True, 1e-5, limit)
    assert_row_plan(p, "layer_norm", "bfloat16", d, limit, n_rows=5, n_args=10)
    assert [a.kind for a in p.args] == ["input"] * 3 + ["output"] + ["bytes"] * 6
    assert [a.array for a in p.args[:4]] == [0, 1, 2, 0]


@pytest.mark.parametrize("has_w,has_b,arrays", [(False, False, [0, 0]), (True, False, [1, 0]), (False, True, [0, 1])])
def test_plan_binds_x_as_placeholder(has_w, has_b, arrays):
    p = plan(1, 8, 0, 0, "float32", has_w, has_b, 1e-5, 1024)
    assert [a.array for a in p.args[1:3]] == arrays
    assert (p.args[8].payload, p.args[9].payload) == (bytes([has_w, 0, 0, 0]), bytes([has_b, 0, 0, 0]))


# ---------------------------------------------------------------- planted bugs
def run_with(lib, d, limit=1024, n_rows=2):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((n_rows, d)) + 1.0).astype(np.float32)
    w, b = rng.standard_normal(d).astype(np.float32), rng.standard_normal(d).astype(np.float32)
    out = poisoned(x.shape, np.float32)
    execute(plan(n_rows, d, 1, 1, "float32", True, True, 1e-5, limit), lib, [x, w, b], [out])
    return out, layer_norm64(x, w, b)


def test_planted_shared_reduction_array_is_a_race(tmp_path):
    # Reusing the mean's array for the variance lets a fast simdgroup overwrite a partial sum
    # another simdgroup has yet to read.
    lib = mutant(tmp_path, "layer_norm", "threadgroup_sum(sum_sq, var_sums,", "threadgroup_sum(sum_sq, mean_sums,")
    with pytest.raises(MetalSimError, match="race"):
        run_with(lib, 1024)


def test_planted_padding_in_variance_fails_numerics(tmp_path):
    # Threads past the row end must add 0, not (0 - mean)^2, to the variance.
    lib = mutant(tmp_path, "layer_norm", "values[k] = first + k < axis_size ? values[k] - mean : 0.0f;",
                 "values[k] = values[k] - mean;")
    y, expected = run_with(lib, 33)
    assert not np.allclose(y, expected, rtol=1e-3)


def test_planted_one_pass_variance_fails_numerics(tmp_path):
    lib = mutant(tmp_path, "layer_norm",
        "      float centred = static_cast<float>(x[base + k]) - mean;\n      sum_sq += centred * centred;",
        "      float value = static_cast<float>(x[base + k]);\n      sum_sq += value * value - mean * mean;")
    x = rand((4, 300), mx.float32, 11, shift=3000.0)
    out = poisoned((4, 300), np.float32)
    execute(plan(4, 300, 0, 0, "float32", False, False, 1e-5, 64), lib, [np.array(x)], [out])
    with pytest.raises(AssertionError, match="max error"):
        check(mx.array(out), x, None, None, 1e-5, mx.float32, tol=5e-4)


def test_planted_unrounded_normalised_value_breaks_agreement(tmp_path):
    lib = mutant(tmp_path, "layer_norm", "T y = static_cast<T>(centred * inv_std);",
                 "float y = centred * inv_std;")
    x = rand((8, 1024), mx.float16, 8)
    w, b = rand((1024,), mx.float16, 9, scale=2.0), rand((1024,), mx.float16, 10)
    out = poisoned((8, 1024), np.float16)
    execute(plan(8, 1024, 1, 1, "float16", True, True, 1e-5), lib, [np.array(x), np.array(w), np.array(b)], [out])
    worst, same = half_agreement(mx.array(out), mlxr.fused.layer_norm(x, w, b, 1e-5, stream=mx.cpu))
    assert not (worst <= 2 and same >= 0.99), (worst, same)


def test_planted_bias_stride_ignored_fails(tmp_path):
    lib = mutant(tmp_path, "layer_norm", "b[i * b_stride]", "b[i]")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 40)).astype(np.float32)
    b = rng.standard_normal(80).astype(np.float32)[::-2]
    out = poisoned(x.shape, np.float32)
    with pytest.raises(MetalSimError, match="out-of-bounds read of buffer 'bias'"):
        execute(plan(2, 40, 0, -2, "float32", False, True, 1e-5), lib, [x, b], [out])
