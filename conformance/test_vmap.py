"""Template: mx.vmap over each argument and axis (batch size 0 too) vs a per-slice loop.

Parametrized by the mlxr_conformance plugin over specs × implementations × devices × dtypes;
the check itself is `mlxr.conformance.checks.vmap`."""

import pytest

from mlxr.conformance.checks import execute


@pytest.mark.mlxr_check("vmap")
def test_vmap(case):
    execute(case)
