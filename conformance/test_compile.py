"""Template: mx.compile and mx.compile(shapeless=True) vs the oracle.

Parametrized by the mlxr_conformance plugin over specs × implementations × devices × dtypes;
the check itself is `mlxr.conformance.checks.compile`."""

import pytest

from mlxr.conformance.checks import execute


@pytest.mark.mlxr_check("compile")
def test_compile(case):
    execute(case)
