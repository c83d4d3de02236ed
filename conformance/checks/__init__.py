"""The checks, one module per concern. Each module defines:

- ``NAME``; ``EXAMPLES``: scale of the profile's max_examples (0 = no hypothesis, run once);
- ``variants(spec, impl, device, dtype) -> list``: one test per variant ([] = not applicable);
- ``strategy(case)``: hypothesis strategy of ``Sample`` (unused when EXAMPLES is 0);
- ``run(case, sample)``: raises ``CheckFailure`` on a bad candidate;
- optionally ``explicit(case) -> list[Sample]``: examples that always run first.
"""

from __future__ import annotations

import importlib

CHECKS = ("forward", "special_values", "thresholds", "layouts", "autodiff", "vmap", "compile",
          "errors", "purity", "fused_path")


def get(name: str):
    """The check module ``name``."""
    if name not in CHECKS:
        raise KeyError(f"unknown check {name!r}; known: {', '.join(CHECKS)}")
    return importlib.import_module(f"{__name__}.{name}")


def execute(case) -> None:
    """Run ``case`` through its check: hypothesis examples, or once when EXAMPLES is 0."""
    from hypothesis import example, given

    from ..case import CheckFailure
    from ..layouts import LayoutError
    from ..profiles import bound_shrinking, settings_for

    import pytest

    from ..spec import NotImplementedTarget

    check = get(case.check)
    try:
        case.fn  # resolve now: an op not ported yet is reported, not crashed on
    except NotImplementedTarget as e:
        pytest.skip(f"not implemented: {e}")

    def guarded(sample):
        case.record.examples += 1
        try:
            check.run(case, sample)
        except (CheckFailure, LayoutError):
            raise
        except Exception as e:  # a candidate crashing is a failure on this example
            if type(e).__module__.startswith("hypothesis"):
                raise
            raise CheckFailure(f"{type(e).__name__}: {e}", case, sample) from e

    if not check.EXAMPLES:
        guarded(None)
        return
    bound_shrinking(case.profile)
    test = given(check.strategy(case))(guarded)
    for sample in getattr(check, "explicit", lambda c: [])(case):  # inputs that always run
        test = example(sample)(test)
    settings_for(case.profile, check.EXAMPLES, shrink=not case.expected_failure)(test)()
