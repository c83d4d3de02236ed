"""mlxr-conform report: renders results JSON (table, Markdown, JSON, HTML with benchmark plots)."""

import json
import subprocess
import sys

import pytest

from mlxr.conformance.cli import report
from mlxr.conformance.cli.bench import SCHEMA as BENCH_SCHEMA
from mlxr.conformance.results import SCHEMA

REPRO = "python -m mlxr.conformance.repro swiglu-1234"


def _record(op, dtype, check, outcome, variant=None, errors=None, **extra):
    return {"nodeid": f"conformance/test_{check}.py::test_{check}[{op}-fused-cpu-{dtype}-{variant}]", "op": op,
            "impl": "fused", "target": f"mlxr.fused:{op}", "device": "cpu", "dtype": dtype, "check": check,
            "variant": variant, "layout": "any", "outcome": outcome, "reason": extra.pop("reason", None),
            "examples": 3, "errors": errors, "failure": extra.pop("failure", None), "duration_s": 0.1}


def _document():
    return {
        "schema": SCHEMA, "created": "2026-11-26T00:00:00+00:00", "duration_s": 1.5, "command": ["pytest"],
        "machine": {"node": "box", "machine": "x86_64", "cpu_count": 2, "platform": "Linux"},
        "mlx": {"version": "0.32.4", "build": "cpu", "cpu_isa": "avx512"}, "git": {"commit": "abc", "dirty": False},
        "hypothesis": {"profile": "ci"}, "devices": ["cpu"],
        "results": [
            _record("rms_norm", "float32", "forward", "passed", errors={"abs": 1e-7, "rel": 2e-7, "ulp": 1.5}),
            _record("rms_norm", "float32", "autodiff", "passed", "vjp", errors={"abs": 1e-6, "rel": 1e-6, "ulp": 3.0}),
            _record("swiglu", "float16", "forward", "failed", errors={"abs": 0.5, "rel": 0.1, "ulp": 900.0},
                    failure={"message": "1 element(s) out of tolerance\nmore", "repro": REPRO}),
            _record("softmax", "bfloat16", "autodiff", "xfail", "second_order", reason="MLX bf16 vjp"),
            _record("softmax", "bfloat16", "forward", "passed", errors={"abs": 0.0, "rel": 0.0, "ulp": 0.0}),
            _record("rope", "float32", "forward", "not-run", reason="not implemented"),
        ],
    }


def _bench_rows():
    env = {"device": "cpu", "mlx_version": "0.32.4", "machine": "box", "isa": "avx512", "load_avg_1m": 1.0}
    rows = []
    for when, fused_gbps in (("2026-11-25T00:00:00+00:00", 5.0), ("2026-11-26T00:00:00+00:00", 12.0)):
        for impl, gbps in (("fused", fused_gbps), ("copy", 20.0), ("reference", 1.0), ("mlx", 2.0)):
            rows.append({"op": "rms_norm", "case": "64x256", "shape": [64, 256], "dtype": "float32", "impl": impl,
                         "impl_name": impl, "unit": "GB/s", "bytes": 131072, "throughput": gbps,
                         "throughput_q1": gbps * 0.9, "throughput_q3": gbps * 1.1,
                         "pct_of_copy": 100 * gbps / 20.0 if impl == "fused" else None,
                         "speedup_vs_reference": gbps / 1.0, "speedup_vs_mlx": gbps / 2.0,
                         "fused_kernel": "cpu:rms_norm_float32" if impl == "fused" else None, "error": None,
                         "timestamp": when, **env})
    return rows


def _run(*args):
    return subprocess.run([sys.executable, "-m", "mlxr.conformance.cli", "report", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def files(tmp_path):
    results, bench = tmp_path / "conformance.json", tmp_path / "bench.json"
    results.write_text(json.dumps(_document()))
    bench.write_text(json.dumps({"schema": BENCH_SCHEMA, "rows": _bench_rows()}))
    return tmp_path, results, bench


def test_verdicts_per_op_device_dtype():
    rows = {(r["op"], r["dtype"]): r for r in report.summarize(_document())["rows"]}
    assert rows[("rms_norm", "float32")]["verdict"] == "certified"
    assert rows[("swiglu", "float16")]["verdict"] == "failed"
    assert rows[("softmax", "bfloat16")]["verdict"] == "expected failure"
    assert rows[("rope", "float32")]["verdict"] == "not run"
    assert rows[("rms_norm", "float32")]["errors"]["ulp"] == 1.5  # forward only: the vjp's 3 ulp is apart
    assert rows[("rms_norm", "float32")]["grad_errors"]["ulp"] == 3.0


def test_subprocess_writes_markdown_json_and_html(files):
    tmp_path, results, bench = files
    md, page = tmp_path / "CONFORMANCE.md", tmp_path / "html"
    proc = _run("--results", str(results), "--bench", str(bench), "--markdown", str(md), "--html", str(page))
    assert proc.returncode == 0, proc.stderr
    assert "MLX 0.32.4 (cpu build" in proc.stdout and "certified" in proc.stdout
    assert f"reproduce: {REPRO}" in proc.stdout
    text = md.read_text()
    assert "| rms_norm | fused | cpu | float32 | certified | 2/2 |" in text
    assert f"reproduce: `{REPRO}`" in text and "expected failure softmax" in text
    # Only the newest bench run counts: 12 GB/s = 60 % of the 20 GB/s copy.
    assert "| rms_norm | cpu | 64x256 | float32 | 12.0 GB/s | 60 % | 12.00 | 6.00 | cpu:rms_norm_float32 |" in text
    assert "5.0 GB/s" not in text
    index = (page / "index.html").read_text()
    assert "class='failed'" in index and "<h2>Benchmarks</h2>" in index
    assert "<img src='rms_norm_cpu.png'" in index and (page / "rms_norm_cpu.png").stat().st_size > 1000
    as_json = json.loads(_run("--results", str(results), "--bench", str(bench), "--json").stdout)
    assert {r["verdict"] for r in as_json["rows"]} == {"certified", "failed", "expected failure", "not run"}


def test_without_results_it_says_how_to_produce_them(tmp_path):
    proc = _run("--results", str(tmp_path / "none.json"))
    assert proc.returncode == 1
    assert "pytest conformance/ -n auto --results" in proc.stderr and "mlxr-conform certify" in proc.stderr


def test_a_file_of_another_kind_is_refused(files):
    _, results, bench = files
    proc = _run("--results", str(bench))
    assert proc.returncode == 1 and "not a mlxr-conformance/1 results file" in proc.stderr
