"""Op specs, one module per op, each defining ``SPEC``. Adding an op = adding one file here."""

from __future__ import annotations

import importlib
import pkgutil


def all_specs() -> dict:
    """Every ``SPEC`` in this package, by op name (sorted)."""
    specs = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        spec = importlib.import_module(f"{__name__}.{info.name}").SPEC
        if spec.name != info.name:
            raise ValueError(f"specs/{info.name}.py defines SPEC for {spec.name!r}: one op = one stem")
        specs[spec.name] = spec
    return specs
