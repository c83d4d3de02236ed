"""Planted-bug candidates (tests/candidates/planted.py) are rejected, each by the check built
to catch it, while a check it should pass does pass (so the rejection is specific)."""

import pytest

from _engine import run_suite

F = "test_forward.py::test_forward"
S = "test_special_values.py::test_special_values"
T = "test_thresholds.py::test_thresholds"
L = "test_layouts.py::test_layouts"
A = "test_autodiff.py::test_autodiff"

# bug -> (node ids that must fail, node ids that must pass), ids relative to conformance/
EXPECTED = {
    "eps_outside_sqrt": ([f"{F}[rms_norm-eps_outside_sqrt-cpu-float32]"], []),
    "half_accumulation": ([f"{F}[rms_norm-half_accumulation-cpu-float16]"],
                          [f"{F}[rms_norm-half_accumulation-cpu-float32]"]),
    "wrong_axis": ([f"{F}[rms_norm-wrong_axis-cpu-float32]"], []),
    "nan_swallowed": ([f"{S}[rms_norm-nan_swallowed-cpu-float32]"], [f"{F}[rms_norm-nan_swallowed-cpu-float32]"]),
    "float32_output": ([f"{F}[rms_norm-float32_output-cpu-float16]"], [f"{F}[rms_norm-float32_output-cpu-float32]"]),
    "wrong_gradient": ([f"{A}[rms_norm-wrong_gradient-cpu-float32-vjp]"], [f"{F}[rms_norm-wrong_gradient-cpu-float32]"]),
    "skips_tail": ([f"{T}[rms_norm-skips_tail-cpu-float32-n=17]", f"{T}[rms_norm-skips_tail-cpu-float32-n=15]"],
                   [f"{T}[rms_norm-skips_tail-cpu-float32-n=16]", f"{T}[rms_norm-skips_tail-cpu-float32-n=32]"]),
    "stride_ignoring": ([f"{L}[rms_norm-stride_ignoring-cpu-float32-x:strided]",
                         f"{L}[rms_norm-stride_ignoring-cpu-float32-x:transposed]",
                         f"{L}[rms_norm-stride_ignoring-cpu-float32-weight:strided]"],
                        [f"{F}[rms_norm-stride_ignoring-cpu-float32]"]),
}
V = "test_vmap.py::test_vmap"
C = "test_compile.py::test_compile"
P = "test_purity.py::test_purity"
E = "test_errors.py::test_errors"
EXPECTED.update({
    "shape_baked_in": ([f"{C}[rms_norm-shape_baked_in-cpu-float32-shapeless]"],
                       [f"{C}[rms_norm-shape_baked_in-cpu-float32-compile]", f"{F}[rms_norm-shape_baked_in-cpu-float32]"]),
    "vmap_ignores_axis": ([f"{V}[rms_norm-vmap_ignores_axis-cpu-float32-x]"], [f"{F}[rms_norm-vmap_ignores_axis-cpu-float32]"]),
    "writes_input": ([f"{P}[rms_norm-writes_input-cpu-float32-no_mutation]"], [f"{F}[rms_norm-writes_input-cpu-float32]"]),
    "nondeterministic": ([f"{P}[rms_norm-nondeterministic-cpu-float32-deterministic]"],
                         [f"{F}[rms_norm-nondeterministic-cpu-float32]"]),
    "no_validation": ([f"{E}[rms_norm-no_validation-cpu-float32-weight_wrong_size]"], []),
})
# What a failure message must say (proves the right property was violated): the strided
# views' NaN sentinels poison a stride-ignoring read; a transposed read is merely wrong.
MESSAGES = {
    f"{F}[rms_norm-float32_output-cpu-float16]": "dtype float32, reference gives float16",
    f"{S}[rms_norm-nan_swallowed-cpu-float32]": "non-finite mismatch",
    f"{A}[rms_norm-wrong_gradient-cpu-float32-vjp]": "vjp wrt x",
    f"{L}[rms_norm-stride_ignoring-cpu-float32-x:strided]": "non-finite mismatch",
    f"{L}[rms_norm-stride_ignoring-cpu-float32-weight:strided]": "non-finite mismatch",
    f"{L}[rms_norm-stride_ignoring-cpu-float32-x:transposed]": "out of tolerance",
    f"{F}[rms_norm-half_accumulation-cpu-float16]": "out of tolerance",
    f"{T}[rms_norm-skips_tail-cpu-float32-n=17]": "out of tolerance",
    f"{P}[rms_norm-writes_input-cpu-float32-no_mutation]": "was modified",
    f"{P}[rms_norm-nondeterministic-cpu-float32-deterministic]": "differs bitwise",
    f"{E}[rms_norm-no_validation-cpu-float32-weight_wrong_size]": "message does not match",
}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    node_ids = [n for fail, ok in EXPECTED.values() for n in fail + ok]
    candidates = [a for bug in EXPECTED for a in ("--candidate", f"rms_norm=candidates.planted:{bug}")]
    code, document = run_suite(tmp_path_factory.mktemp("planted"), *candidates, node_ids=node_ids)
    assert code == 1  # pytest: some tests failed
    return {r["nodeid"].split("conformance/")[-1]: r for r in document["results"]}


@pytest.mark.parametrize("bug", sorted(EXPECTED))
def test_planted_bug_is_rejected_by_its_check(planted, bug):
    must_fail, must_pass = EXPECTED[bug]
    for node in must_fail:
        record = planted[node]
        assert record["outcome"] == "failed", (node, record["outcome"])
        if "test_errors" not in node:  # error cases are fixed inputs, not drawn examples
            assert record["failure"]["repro"] and record["failure"]["example"], node  # shrunk, replayable
        assert MESSAGES.get(node, "") in record["failure"]["message"], (node, record["failure"]["message"])
    for node in must_pass:
        assert planted[node]["outcome"] == "passed", (node, planted[node].get("failure"))
