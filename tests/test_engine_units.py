"""Engine internals: layouts are what they claim, arbitration rejects what it must, specs are
discovered and validated."""

import mlx.core as mx
import numpy as np
import pytest

from mlxr.conformance import layouts
from mlxr.conformance.numerics import arbitrate, bitwise_equal, ulp
from mlxr.conformance.spec import NotImplementedTarget, Tolerance, XFail, dtype_case, resolve
from mlxr.conformance.specs import all_specs
from mlxr.conformance.strategies import Sample, ValueRecipe, values

DTYPES = [mx.float32, mx.float16, mx.bfloat16, mx.float64]
CASES = [
    ("contiguous", {}), ("transposed", {}), ("strided", {"axis": 1, "step": 2, "start": 1}),
    ("strided", {"axis": 0, "step": 3, "start": 0}), ("broadcast", {"axis": 0}), ("broadcast", {"axis": 1}),
    ("offset", {"offset": 5}), ("reversed", {"axes": (0, 1)}), ("reversed", {"axes": (1,)}),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name,params", CASES)
def test_layout_is_what_it_claims(dtype, name, params):
    v = np.random.default_rng(0).standard_normal((4, 6))
    built = layouts.build(name, v, dtype, params)
    r = layouts.raw(built.view)
    strides = tuple(s // r.itemsize for s in r.strides)
    expected = {"contiguous": (6, 1), "transposed": (1, 4)}.get(name)
    if expected:
        assert strides == expected
    if name == "strided":
        assert strides[params["axis"]] == params["step"] * (6 if params["axis"] == 0 else 1)
    if name == "broadcast":
        assert strides[params["axis"]] == 0
    if name == "reversed":
        assert all((strides[a] < 0) == (a in params["axes"]) for a in range(2))
    # The candidate sees exactly the logical values the oracle gets.
    np.testing.assert_array_equal(layouts.to_f64(built.view), built.values)


def test_strided_gaps_hold_nan_sentinels():
    built = layouts.build("strided", np.ones((3, 4)), mx.float32, {"axis": 1, "step": 2, "start": 0})
    parent = layouts.to_f64(built.parent)
    assert np.isnan(parent[:, 1::2]).all() and (parent[:, ::2] == 1).all()


def test_a_false_layout_claim_is_caught():
    with pytest.raises(layouts.LayoutError):
        layouts._assert_layout("transposed", layouts.to_mx(np.ones((3, 4)), mx.float32),
                               layouts.to_mx(np.ones((3, 4)), mx.float32), {}, (3, 4))
    with pytest.raises(layouts.LayoutError):
        layouts.build("transposed", np.ones((1, 4)), mx.float32)  # not realisable


def _arb(c, r, o, tol=Tolerance(0.0, 1e-6, 2.0)):
    return arbitrate(mx.array(c, dtype=mx.float32), mx.array(r, dtype=mx.float32), mx.array(o, dtype=mx.float64), tol)


def test_arbitration():
    assert _arb([1.0, 2.0], [1.0, 2.0], [1.0, 2.0]).ok
    # Candidate within factor x the reference's own error.
    assert _arb([1.0 + 2e-7], [1.0 + 1.2e-7], [1.0]).ok
    assert not _arb([1.001], [1.0], [1.0]).ok
    assert "non-finite" in _arb([0.0], [float("nan")], [float("nan")]).message
    assert "non-finite" in _arb([float("inf")], [1.0], [1.0]).message
    # A reference overflowing in an intermediate sum does not condemn a candidate that gets the
    # finite true value; the candidate is then judged against the oracle.
    big = 3.3710176e38
    assert _arb([big], [float("-inf") * -1], [big]).ok
    assert not _arb([big * 0.999], [float("inf")], [big]).ok
    # Where the true value overflows the output dtype, +inf is right whatever the reference says.
    assert _arb([float("inf")], [3.4e38], [3.5e38]).ok
    assert "non-finite" in _arb([float("-inf")], [3.4e38], [3.5e38]).message
    assert "non-finite" in _arb([float("nan")], [float("inf")], [3.3e38]).message
    # A partial sum may overflow only where the magnitude (the sum of |terms|) reaches the max.
    tol = Tolerance(0.0, 1e-6, 2.0)
    for m, ok in ((3.5e38, True), (3.0e38, False)):
        v = arbitrate(mx.array([float("-inf")]), mx.array([-2.7e38]), mx.array([-2.7e38], dtype=mx.float64), tol,
                      magnitude=mx.array([m], dtype=mx.float64))
        assert v.ok == ok, (m, v.message)
    assert "dtype" in arbitrate(mx.array([1.0], dtype=mx.float16), mx.array([1.0]), mx.array([1.0]), Tolerance(0, 0)).message
    assert "shape" in arbitrate(mx.array([1.0, 1.0]), mx.array([1.0]), mx.array([1.0]), Tolerance(0, 0)).message


def test_ulp_and_bitwise():
    assert ulp(np.array([1.0]), "float32")[0] == 2.0**-23
    assert ulp(np.array([1.0]), "bfloat16")[0] == 2.0**-7
    assert ulp(np.array([0.0]), "float16")[0] == 2.0**-24  # subnormal spacing
    a = mx.array([1.0, float("nan")])
    assert bitwise_equal(a, mx.array([1.0, float("nan")])) and not bitwise_equal(a, mx.array([1.0, 2.0]))


def test_specs_are_discovered_and_validated():
    spec = all_specs()["rms_norm"]
    assert spec.probes() == (1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 4095, 4096, 4097)
    assert dtype_case("x=bfloat16,weight=float32", spec) == {"x": "bfloat16", "weight": "float32"}
    with pytest.raises(NotImplementedTarget):
        resolve("mlxr.fused:no_such_op")
    with pytest.raises(ValueError):
        XFail("")


def test_recipes_round_trip_and_plant_specials():
    s = Sample((2, 3), {"x": None}, {"eps": 1e-5}, {"k": 1})
    assert Sample.from_dict(s.to_dict()) == s
    v = values(ValueRecipe(special="nan", count=2, seed=3), (4, 5), "float32")
    assert np.isnan(v).sum() == 2
    z = values(ValueRecipe(special="zero_rows", count=1, seed=3), (4, 5), "float32")
    assert (np.abs(z).sum(axis=1) == 0).sum() == 1


_ORACLE_CALLS = []


def _recording_oracle(x, weight, eps):
    """rms_norm's reference, noting the dtype it was called with."""
    _ORACLE_CALLS.append(x.dtype)
    return resolve("mlxr.reference:rms_norm")(x, weight, eps)


@pytest.mark.parametrize("check,variant,extra", [("forward", None, {}), ("compile", "compile", {}),
                                                 ("vmap", "x", {"batch": 2, "in_axes": {"x": 1}})])
def test_spec_oracle_replaces_the_float64_reference(check, variant, extra):
    """OpSpec.oracle is what the forward checks call for the oracle (default: the reference)."""
    import dataclasses

    from mlxr.conformance import checks
    from mlxr.conformance.case import Case
    from mlxr.conformance.strategies import ArgRecipe

    spec = all_specs()["rms_norm"]
    assert Case(spec, "fused", spec.fused, "cpu", "float32", check, variant).oracle_fn is resolve(spec.reference)
    hooked = dataclasses.replace(spec, oracle=f"{__name__}:_recording_oracle")
    sample = Sample((4, 8), {"x": ArgRecipe("float32", ValueRecipe(seed=1)), "weight": None}, {"eps": 1e-5}, extra)
    _ORACLE_CALLS.clear()
    checks.get(check).run(Case(hooked, "fused", hooked.fused, "cpu", "float32", check, variant), sample)
    assert _ORACLE_CALLS and set(_ORACLE_CALLS) == {mx.float64}


def test_layer_norm_oracle_is_more_accurate_than_float64():
    """The layer_norm spec's extended-precision oracle vs a 40-digit decimal layer norm, on a
    row whose large mean makes the float64 reference's (x - mean) cancel."""
    import decimal

    from mlxr.conformance.specs.layer_norm import oracle

    if np.finfo(np.longdouble).nmant <= 52:
        pytest.skip("long double is float64 here: the oracle is the float64 reference")
    row = np.random.default_rng(0).standard_normal(4097) * 1e3 + 1e6
    with decimal.localcontext(decimal.Context(prec=40)):
        xs = [decimal.Decimal(float(v)) for v in row]
        mean = sum(xs) / len(xs)
        var = sum((v - mean) ** 2 for v in xs) / len(xs)
        exact = np.array([float((v - mean) / (var + decimal.Decimal(1e-5)).sqrt()) for v in xs])
    x = mx.array(row, dtype=mx.float64)
    got = np.array(oracle(x, None, None, 1e-5))
    reference = np.array(resolve("mlxr.reference:layer_norm")(x, None, None, 1e-5))
    assert np.abs(got - exact).max() <= 4e-16 * np.abs(exact).max()  # ~1 ulp: rounded once
    assert np.abs(reference - exact).max() > 10 * np.abs(got - exact).max()


def test_results_record_the_commit_of_an_installed_wheels_checkout(tmp_path):
    # An installed (non-editable) package has no checkout: the commit comes from where pytest ran.
    import pathlib
    import subprocess

    from mlxr.conformance.plugin import _source_commit

    repo = str(pathlib.Path(__file__).resolve().parents[1])
    head = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert _source_commit(str(tmp_path), repo)["commit"] == head
    assert _source_commit(str(tmp_path), repo)["from"] == "invocation directory"
    assert _source_commit(repo, str(tmp_path))["from"] == "package"
    assert _source_commit(str(tmp_path), str(tmp_path)) == {"commit": None, "dirty": None, "from": None}


def test_results_take_a_named_commit_only_without_a_checkout(tmp_path, monkeypatch):
    # A copy of the tree without .git (the lent GPU machine) can be told its commit.
    import pathlib

    from mlxr.conformance.plugin import _source_commit

    monkeypatch.setenv("MLXR_SOURCE_COMMIT", "abc123")
    assert _source_commit(str(tmp_path), str(tmp_path)) == {"commit": "abc123", "dirty": None,
                                                           "from": "MLXR_SOURCE_COMMIT"}
    repo = str(pathlib.Path(__file__).resolve().parents[1])
    assert _source_commit(str(tmp_path), repo)["from"] == "invocation directory"  # a checkout wins
    # The report says the commit was named, not read.
    from mlxr.conformance.cli import report

    named = {"git": _source_commit(str(tmp_path), str(tmp_path))}
    assert report._source(named)["commit"] == "abc123 (named by the runner, tree state unknown)"
