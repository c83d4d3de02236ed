"""Hypothesis profiles: ``ci`` (bounded, derandomised: the whole rms_norm suite in a few
minutes on 2 cores) and ``thorough`` (many random examples). Selected with ``--profile``."""

from __future__ import annotations

PROFILES = {
    "ci": {"max_examples": 25, "derandomize": True, "shrink_seconds": 15},
    "thorough": {"max_examples": 200, "derandomize": False, "shrink_seconds": 120},
}


def bound_shrinking(profile: str) -> None:
    """Cap the time hypothesis spends shrinking one failure (its default is 5 minutes)."""
    try:
        from hypothesis.internal.conjecture import engine
    except ImportError:  # internal layout changed: keep hypothesis' own bound
        return
    if hasattr(engine, "MAX_SHRINKING_SECONDS"):
        engine.MAX_SHRINKING_SECONDS = PROFILES[profile]["shrink_seconds"]


def settings_for(profile: str, scale: float = 1.0, shrink: bool = True):
    """Hypothesis settings for ``profile``, with max_examples scaled per check (at least 1).

    No example database (no files written), no deadline (first calls compile), shrinking on
    (off for declared expected failures: nobody reads their minimal example).
    """
    from hypothesis import HealthCheck, Phase, settings

    base = PROFILES[profile]
    return settings(
        max_examples=max(1, round(base["max_examples"] * scale)),
        derandomize=base["derandomize"],
        deadline=None,
        database=None,
        print_blob=False,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        phases=[p for p in Phase if shrink or p != Phase.shrink],
    )
