"""Long rows of nearly equal values against a float64 oracle: the CPU row sums of rms_norm,
add_rms_norm and layer_norm stay within float32 tolerance. Plain float32 lanes drifted here
(262144 elements: 5.5e-5 relative for rms_norm, 2.9e-5 of the output scale for layer_norm),
so each lane's sum is compensated (csrc/cpu/block.h, LaneSums)."""

import mlx.core as mx
import numpy as np
import pytest

import mlxr.fused as fused
import mlxr.reference as reference

N, EPS = 262144, 1e-5
OPS = ["rms_norm", "add_rms_norm", "layer_norm"]


def run(impl, op, x):
    """op of impl (mlxr.fused or mlxr.reference) on x without weights; add_rms_norm adds a zero
    residual and returns its normalised output."""
    fn = getattr(impl, op)
    if op == "layer_norm":
        return fn(x, None, None, EPS)
    if op == "rms_norm":
        return fn(x, None, EPS)
    return fn(x, mx.zeros_like(x), None, EPS)[0]


@pytest.mark.parametrize("op", OPS)
def test_long_row_of_equal_values_keeps_float32_accuracy(op):
    base = np.full((2, N), 1.1, dtype=np.float32)
    base[:, 0] = 3.0
    x, b = mx.array(base), base.astype(np.float64)
    centred = b - b.mean(-1, keepdims=True) if op == "layer_norm" else b
    expected = centred / np.sqrt((centred**2).mean(-1, keepdims=True) + EPS)
    with fused.observe() as seen:
        y = run(fused, op, x)
        mx.eval(y)
    assert seen.kernels == {f"cpu:{op}_float32": 1} and not seen.fallbacks, seen
    # Relative to the output's scale: layer_norm's outputs near the mean are differences.
    np.testing.assert_allclose(np.array(y), expected, rtol=0, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("op", OPS)
def test_rows_holding_inf_nan_or_overflow_match_the_reference(op):
    # The compensated sums must not turn a lane's inf into NaN (inf - inf in the carry): a
    # row with +inf, one with -inf, one whose squares overflow, one with NaN; long enough
    # for many folds after the special value.
    base = np.random.default_rng(4).normal(size=(5, 4096)).astype(np.float32)
    base[0, 100] = np.inf
    base[1, 7] = -np.inf
    base[2, 3000] = 3e30
    base[3, 50] = np.nan
    x = mx.array(base)
    with fused.observe() as seen:
        y = run(fused, op, x)
        mx.eval(y)
    assert seen.kernels == {f"cpu:{op}_float32": 1} and not seen.fallbacks, seen
    y, r = np.array(y), np.array(run(reference, op, x))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(r))
    finite = ~np.isnan(r)
    np.testing.assert_allclose(y[finite], r[finite], rtol=1e-5, atol=1e-6)
