"""Template: Declared bad inputs raise the declared exception and message.

Parametrized by the mlxr_conformance plugin over specs × implementations × devices × dtypes;
the check itself is `mlxr.conformance.checks.errors`."""

import pytest

from mlxr.conformance.checks import execute


@pytest.mark.mlxr_check("errors")
def test_errors(case):
    execute(case)
