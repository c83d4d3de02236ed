"""Template: Forward values, dtype and shape vs the float64 oracle.

Parametrized by the mlxr_conformance plugin over specs × implementations × devices × dtypes;
the check itself is `mlxr.conformance.checks.forward`."""

import pytest

from mlxr.conformance.checks import execute


@pytest.mark.mlxr_check("forward")
def test_forward(case):
    execute(case)
