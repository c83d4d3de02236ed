"""The Metal host code type-checks on Linux against a declaration stub of MLX's Metal API
(tests/metal_host_stub; the Linux wheel ships no Metal headers). Nothing here runs Metal."""

import shutil
import subprocess
from pathlib import Path

import mlx.core
import pytest

ROOT = Path(__file__).resolve().parents[1]
MLX_INCLUDE = Path(mlx.core.__file__).parent / "include"
SOURCES = sorted((ROOT / "csrc" / "metal").glob("*.cpp")) + [ROOT / "csrc" / "rms_norm.cpp"]
SOURCES += [ROOT / "csrc" / "quantized_matmul.cpp"]


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_metal_host_code_type_checks(source):
    cmd = ["g++", "-std=c++20", "-fsyntax-only", "-w", "-DMLXR_GPU", "-DMLXR_METAL",
           f"-I{ROOT / 'tests' / 'metal_host_stub'}", f"-I{ROOT / 'csrc'}", f"-I{MLX_INCLUDE}", str(source)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]
