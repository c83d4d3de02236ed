"""Hypothesis profiles: ``ci`` (bounded, derandomised: the whole rms_norm suite in a few
minutes on 2 cores) and ``thorough`` (many random examples). Selected with ``--profile``."""

from __future__ import annotations

PROFILES = {
    "ci": {"max_examples": 12, "derandomize": True},
    "thorough": {"max_examples": 200, "derandomize": False},
}


def settings_for(profile: str, scale: float = 1.0):
    """Hypothesis settings for ``profile``, with max_examples scaled per check (at least 1).

    No example database (no files written), no deadline (first calls compile), shrinking on.
    """
    from hypothesis import HealthCheck, settings

    base = PROFILES[profile]
    return settings(
        max_examples=max(1, round(base["max_examples"] * scale)),
        derandomize=base["derandomize"],
        deadline=None,
        database=None,
        print_blob=False,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )
