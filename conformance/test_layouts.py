"""Template: Every memory layout of every array argument (asserted before use).

Parametrized by the mlxr_conformance plugin over specs × implementations × devices × dtypes;
the check itself is `mlxr.conformance.checks.layouts`."""

import pytest

from mlxr.conformance.checks import execute


@pytest.mark.mlxr_check("layouts")
def test_layouts(case):
    execute(case)
