"""Template: Kernel dispatch thresholds of the last axis, each probed at ±1.

Parametrized by the mlxr_conformance plugin over specs × implementations × devices × dtypes;
the check itself is `mlxr.conformance.checks.thresholds`."""

import pytest

from mlxr.conformance.checks import execute


@pytest.mark.mlxr_check("thresholds")
def test_thresholds(case):
    execute(case)
