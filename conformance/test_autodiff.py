"""Template: mx.grad / mx.vjp / mx.jvp, the inner-product identity, second order, finite differences.

Parametrized by the mlxr_conformance plugin over specs × implementations × devices × dtypes;
the check itself is `mlxr.conformance.checks.autodiff`."""

import pytest

from mlxr.conformance.checks import execute


@pytest.mark.mlxr_check("autodiff")
def test_autodiff(case):
    execute(case)
