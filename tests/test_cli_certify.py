"""mlxr-conform certify OP: exits 0 iff certified, with a one-screen verdict and progress."""

import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def _certify(*args, cwd=HERE):
    return subprocess.run([sys.executable, "-m", "mlxr.conformance.cli", "certify", *args],
                          capture_output=True, text=True, timeout=900, cwd=cwd)


def test_fused_swiglu_is_certified(tmp_path):
    results = tmp_path / "r.json"
    proc = _certify("swiglu", "--device", "cpu", "--results", str(results))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "% of the checks done" in proc.stdout  # progress while it runs
    assert "CERTIFIED: swiglu (fused)" in proc.stdout and results.exists()
    assert "cpu  float32" in proc.stdout and "FAILED" not in proc.stdout


def test_a_planted_bug_is_not_certified_and_shows_its_failing_checks():
    # candidates/planted.py (importable from tests/, the working directory): eps outside the sqrt.
    proc = _certify("rms_norm", "--device", "cpu", "--candidate", "candidates.planted:eps_outside_sqrt")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "NOT CERTIFIED: rms_norm (candidates.planted:eps_outside_sqrt)" in proc.stdout
    assert "FAILED cpu/" in proc.stdout and "reproduce: " in proc.stdout


def test_unknown_op_is_a_usage_error():
    proc = _certify("no_such_op")
    assert proc.returncode == 2 and "unknown op 'no_such_op'" in proc.stderr
