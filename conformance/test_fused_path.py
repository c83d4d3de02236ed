"""Template: The kit's fused kernel (not a fallback) actually ran (mlxr.fused.observe()).

Parametrized by the mlxr_conformance plugin over specs × implementations × devices × dtypes;
the check itself is `mlxr.conformance.checks.fused_path`."""

import pytest

from mlxr.conformance.checks import execute


@pytest.mark.mlxr_check("fused_path")
def test_fused_path(case):
    execute(case)
