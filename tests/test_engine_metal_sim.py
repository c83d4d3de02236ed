"""The metal-sim conformance device: the fused op's Metal kernel, run through its launch plan on
the CPU simulator, certified like a device (results recorded as device "metal-sim", MLX-transform
checks "not applicable", never passed); the report's backend overview; a planted kernel bug
fails certification."""

import pathlib
import shutil

import pytest

from _engine import outcomes, run_suite
from mlxr.conformance import metal_sim
from mlxr.conformance.cli import report
from mlxr.conformance.metal_sim._compile import source_root
from mlxr.conformance.results import CERTIFIED, FAILED, NOT_RUN, groups, verdict

needs_sim = pytest.mark.skipif(not metal_sim.available(), reason="metal-sim needs g++ and the kernel sources")


@needs_sim
def test_metal_sim_device_is_certified_and_reported(tmp_path):
    code, document = run_suite(tmp_path, "--device", "metal-sim", "--op", "swiglu",
                               "-k", "test_forward or test_autodiff or test_errors or test_fused_path")
    assert code == 0
    records = document["results"]
    assert document["devices"] == ["metal-sim"] and "swiglu" in document["kernels"]["metal-sim"]
    assert {(r["device"], r["impl"], r["target"]) for r in records} == {
        ("metal-sim", "fused", "mlxr.conformance.metal_sim.ops:swiglu")}
    got = outcomes(document)
    dtypes = {"float32", "float16", "bfloat16", "gate=bfloat16,up=float32"}
    assert {d for (c, d, _), o in got.items() if c == "forward" and o == "passed"} == dtypes
    assert {o for (c, _, v), o in got.items() if c == "fused_path" and v == "eager"} == {"passed"}
    inapplicable = {c if c != "fused_path" else f"{c}[{v}]" for (c, _, v), o in got.items() if o == "not-applicable"}
    assert inapplicable == {"autodiff", "errors", "fused_path[compile]"}
    assert all(r["reason"].startswith("not applicable on metal-sim") for r in records if r["outcome"] == "not-applicable")
    assert {verdict(v) for v in groups(document).values()} == {CERTIFIED}

    summary = report.summarize(document)
    overview = {r["op"]: r for r in summary["backends"]["rows"]}
    assert overview["swiglu"]["metal-sim (simulated)"] == "certified (4)"
    assert overview["swiglu"]["Metal GPU"] == report.NOT_RUN_HERE
    row = next(r for r in summary["rows"] if r["dtype"] == "float32")
    assert row["checks"] == 2 and "autodiff" in row["not_applicable"]  # forward + fused_path[eager]
    assert "| swiglu | not run here | not run here | certified (4) | not run here |" in report.markdown(summary)


def test_backend_overview_says_no_kernel_and_not_run_here():
    records = [{"nodeid": f"t[{op}-{d}]", "op": op, "impl": "fused", "target": "t", "device": d, "dtype": "float32",
                "check": "forward", "variant": None, "outcome": "passed", "errors": None}
               for op, d in (("rms_norm", "cpu"), ("rms_norm", "metal-sim"), ("rope", "cpu"))]
    document = {"mlx": {"build": "cpu"}, "results": records,
                "kernels": {"cpu": ["rms_norm", "rope"], "cuda": ["rms_norm", "rope"], "metal": ["rms_norm"],
                            "metal-sim": ["rms_norm"]}}
    rows = {r["op"]: r for r in report.summarize(document)["backends"]["rows"]}
    assert rows["rms_norm"] == {"op": "rms_norm", "cpu": "certified (1)", "CUDA GPU": "not run here",
                                "metal-sim (simulated)": "certified (1)", "Metal GPU": "not run here"}
    assert rows["rope"]["metal-sim (simulated)"] == rows["rope"]["Metal GPU"] == report.NO_KERNEL


def test_not_applicable_checks_are_neither_passed_nor_owed():
    na = {"outcome": "not-applicable"}
    assert verdict([{"outcome": "passed"}, na]) == CERTIFIED
    assert verdict([na, na]) == NOT_RUN
    assert verdict([{"outcome": "failed"}, na]) == FAILED


@needs_sim
def test_planted_metal_kernel_bug_fails_certification(tmp_path, monkeypatch):
    # A source tree whose rms_norm kernel adds only the first simdgroup's partial sum (in the
    # shared reduction it includes): race-free, so only the numbers can show it (rows over 128
    # elements).
    root = tmp_path / "src"
    shutil.copytree(source_root() / "kernels", root / "kernels")
    shutil.copytree(source_root() / "csrc" / "metal" / "launch", root / "csrc" / "metal" / "launch")
    kernel = root / "kernels" / "reduce.h"
    source = kernel.read_text()
    anchor = "simd_lane < n_simd_groups ? simd_sums[simd_lane]"
    assert anchor in source
    kernel.write_text(source.replace(anchor, "simd_lane < 1 ? simd_sums[simd_lane]"))
    monkeypatch.setenv("MLXR_SOURCE_ROOT", str(root))
    code, document = run_suite(tmp_path, "--device", "metal-sim", "--op", "rms_norm",
                               "-k", "metal-sim-float32 and test_thresholds")
    assert code == 1
    failed = {v for (c, _, v), o in outcomes(document).items() if o == "failed"}
    assert {"n=4095", "n=4096", "n=4097"} <= failed and "n=1" not in failed
    assert {verdict(v) for v in groups(document).values()} == {FAILED}


def test_report_merges_runs_of_several_machines():
    from mlxr.conformance.results import merge

    def run(build, device, kernels=None):
        record = {"nodeid": f"t[rms_norm-{device}]", "op": "rms_norm", "impl": "fused", "target": "t",
                  "device": device, "dtype": "float32", "check": "forward", "variant": None, "outcome": "passed",
                  "errors": None}
        return {"mlx": {"build": build}, "devices": [device], "kernels": kernels, "results": [record]}

    linux = run("cpu", "metal-sim", {"metal": ["rms_norm"], "metal-sim": ["rms_norm"]})
    document = merge(linux, run("cuda", "gpu"), run("metal", "gpu"))
    assert document["devices"] == ["metal-sim", "gpu"] and document["kernels"] == linux["kernels"]
    row = report.summarize(document)["backends"]["rows"][0]
    assert row["CUDA GPU"] == row["Metal GPU"] == row["metal-sim (simulated)"] == "certified (1)"


def test_every_metal_kernel_is_certified_on_metal_sim():
    # One op = one stem: a Metal kernel has its launch plan, host and metal-sim host, so the
    # metal-sim device certifies every op of METAL_KERNEL_DTYPES.
    from mlxr.conformance.devices import metal_sim_ops
    from mlxr.fused._dispatch import METAL_KERNEL_DTYPES

    root = pathlib.Path(__file__).resolve().parents[1]  # the source tree: an installed wheel has no host .cpp
    pieces = {op: [p for p in (f"kernels/{op}.metal", f"csrc/metal/launch/{op}.h", f"csrc/metal/{op}.cpp")
                   if not (root / p).is_file()] for op in METAL_KERNEL_DTYPES}
    assert not any(pieces.values()), pieces
    assert set(METAL_KERNEL_DTYPES) == set(metal_sim_ops())


def test_crashed_metal_sim_test_is_recorded_with_its_device():
    from mlxr.conformance.plugin import _identity_from_nodeid

    class Config:
        def getoption(self, name):
            return []

    nodeid = "conformance/test_layouts.py::test_layouts[softmax-fused-metal-sim-float16-x:offset]"
    identity = _identity_from_nodeid(Config(), nodeid)
    assert (identity["device"], identity["dtype"], identity["variant"]) == ("metal-sim", "float16", "x:offset")
    assert (identity["impl"], identity["target"]) == ("fused", "mlxr.conformance.metal_sim.ops:softmax")
