"""Template: NaN / ±Inf / denormals / zero rows / extreme magnitudes propagate as the reference's.

Parametrized by the mlxr_conformance plugin over specs × implementations × devices × dtypes;
the check itself is `mlxr.conformance.checks.special_values`."""

import pytest

from mlxr.conformance.checks import execute


@pytest.mark.mlxr_check("special_values")
def test_special_values(case):
    execute(case)
