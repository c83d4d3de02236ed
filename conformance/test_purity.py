"""Template: Inputs are never mutated; repeated calls are bitwise identical.

Parametrized by the mlxr_conformance plugin over specs × implementations × devices × dtypes;
the check itself is `mlxr.conformance.checks.purity`."""

import pytest

from mlxr.conformance.checks import execute


@pytest.mark.mlxr_check("purity")
def test_purity(case):
    execute(case)
