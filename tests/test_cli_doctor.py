"""mlxr-conform doctor: passes on this install, and reports a problem with its fix and exit 1."""

import subprocess
import sys
from pathlib import Path

from mlxr.conformance.cli import doctor, main


def test_doctor_passes_here_and_reports_cpu_kernels():
    script = Path(sys.executable).with_name("mlxr-conform")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "mlxr.conformance.cli"]
    proc = subprocess.run([*cmd, "doctor"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "nanobind ABI: mlxr._ext shares mlx.core's domain" in out
    assert "fused rms_norm: cpu [float32,float16,bfloat16,float64]" in out
    assert "rms_norm on cpu: ran rms_norm_float32" in out
    assert "no problems found" in out and "FAIL" not in out


def test_problem_gives_fix_and_nonzero_exit(monkeypatch, capsys):
    monkeypatch.setattr(doctor, "pinned_mlx", lambda: "0.0.1")
    assert main(["doctor", "--no-probe"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "but mlxr-conform pins 0.0.1" in out
    assert "fix: pip install 'mlx[cpu]==0.0.1'" in out and "1 problem(s)" in out


def test_listed_kernel_that_does_not_run_is_a_problem(monkeypatch, capsys):
    from mlxr.fused import _dispatch

    # A table row promising a kernel the build does not have: the probe must catch it.
    monkeypatch.setattr(_dispatch, "CPU_KERNEL_DTYPES", {**_dispatch.CPU_KERNEL_DTYPES, "rms_norm": (
        *_dispatch.CPU_KERNEL_DTYPES["rms_norm"], __import__("mlx.core").core.complex64)})
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "rms_norm on cpu: listed in fused/_dispatch.py but did not run: cpu:rms_norm_complex64" in out


def test_pinned_version_comes_from_package_metadata():
    assert doctor.pinned_mlx() == "0.32.4"


def _probe_says(facts: dict) -> str:
    return f"import json; print(json.dumps({facts!r}))"


def test_extension_built_against_another_mlx(monkeypatch, capsys):
    monkeypatch.setattr(doctor, "_ABI_PROBE", _probe_says(
        {"mlx_keys": [], "import_error": "ImportError: _ext.so: undefined symbol: _ZN3mlx4core5arrayD1Ev"}))
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "mlxr._ext does not load: ImportError" in out
    assert "fix: the extension was built against another MLX: rebuild" in out


def test_nanobind_abi_mismatch(monkeypatch, capsys):
    import mlxr._ext as ext

    mlx_key, ours = "__nb_internals_v22_gcc_mlx__", "__nb_internals_v17_gcc_mlx__"
    monkeypatch.setattr(doctor, "_ABI_PROBE", _probe_says(
        {"mlx_keys": [mlx_key], "ext_file": ext.__file__, "ext_keys": [mlx_key, ours]}))
    assert main(["doctor", "--no-probe"]) == 1
    out = capsys.readouterr().out
    assert f"nanobind ABI mismatch: mlx.core uses ['{mlx_key}'], mlxr._ext created ['{ours}']" in out
    assert "fix: install nanobind==3.1.0" in out
