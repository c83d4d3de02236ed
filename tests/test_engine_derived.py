"""Engine: Derived arguments, shapes that take statics, and the per-spec error magnitude."""

import mlx.core as mx
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mlxr.conformance.case import Case
from mlxr.conformance.numerics import arbitrate
from mlxr.conformance.spec import Array, Derived, OpSpec, Static, Tolerance, dtype_case
from mlxr.conformance.strategies import Sample, samples


def _halves(source, statics):
    """Two derived arrays: |source| in units of ``step`` (uint32 codes) and the unit."""
    codes = mx.round(mx.abs(source) / statics["step"]).astype(mx.uint32)
    return codes, mx.full((source.shape[0],), statics["step"], dtype=source.dtype)


SPEC = OpSpec(
    name="toy",
    reference="mlxr.reference:rms_norm",
    fused="mlxr.fused:rms_norm",
    args=(
        Array("x", shape=lambda main, statics: (*main, 4 * statics["width"])),
        Derived("source", outputs=("codes", "unit"), build=_halves, shape=lambda main, statics: (3, statics["width"])),
        Static("width", values=(2, 5)),
        Static("step", values=(0.5, 0.25)),
    ),
    dtypes={"cpu": ("float16", "x=float32,source=bfloat16")},
    tolerances={}, grad_tolerances={},
)


def test_shapes_take_statics_and_derived_arguments_are_listed():
    assert SPEC.statics_first and SPEC.derived_outputs == ("codes", "unit")
    assert SPEC.arrays[0].shape_for((2, 3), {"width": 5}) == (2, 3, 20)
    assert Array("w", shape=lambda s: s[-1:]).shape_for((2, 3), {"width": 5}) == (3,)  # one-argument shapes
    assert dtype_case("x=float32,source=bfloat16", SPEC) == {"x": "float32", "source": "bfloat16"}
    assert dtype_case("float16", SPEC) == {"x": "float16", "source": "float16"}


@settings(max_examples=10, deadline=None, database=None)
@given(samples(SPEC, "x=float32,source=bfloat16", statics="all"))
def test_derived_arguments_are_built_once_and_exact_in_the_oracle(sample: Sample):
    assert Sample.from_dict(sample.to_dict()) == sample  # the source's recipe replays
    inputs = Case(SPEC, "fused", SPEC.fused, "cpu", "x=float32,source=bfloat16", "forward").materialize(sample)
    width = sample.statics["width"]
    assert inputs.args["x"].shape == (*sample.shape, 4 * width)
    codes, unit = inputs.args["codes"], inputs.args["unit"]
    assert codes.shape == (3, width) and codes.dtype == mx.uint32 and unit.dtype == mx.bfloat16
    # Candidate and reference get the same arrays; the oracle the same values in float64 (codes untouched).
    assert inputs.plain["codes"] is codes and inputs.plain["unit"] is unit
    assert inputs.oracle["codes"] is codes and inputs.oracle["unit"].dtype == mx.float64
    np.testing.assert_array_equal(np.array(inputs.oracle["unit"]), np.array(unit.astype(mx.float32)))
    assert inputs.parents["codes"] is codes  # covered by the no-mutation check


def test_invoke_passes_derived_outputs_in_place():
    seen = SPEC.invoke(lambda *a: a, {"x": 1, "codes": 2, "unit": 3, "width": 4, "step": 5})
    assert seen == (1, 2, 3, 4, 5)  # x, the derived outputs, then the statics


def test_magnitude_widens_the_bound_by_mtol_only():
    candidate, reference, oracle = (mx.array([1.0 + d], dtype=mx.float32) for d in (1e-4, 0.0, 0.0))
    oracle = oracle.astype(mx.float64)
    tight, loose = Tolerance(0.0, 1e-7), Tolerance(0.0, 1e-7, mtol=1e-6)
    assert not arbitrate(candidate, reference, oracle, tight, magnitude=mx.array([1e3])).ok
    assert not arbitrate(candidate, reference, oracle, loose, magnitude=mx.array([10.0])).ok
    assert arbitrate(candidate, reference, oracle, loose, magnitude=mx.array([1e3])).ok
