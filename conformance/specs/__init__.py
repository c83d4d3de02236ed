"""Op specs, one module per op, each defining ``SPEC``. Adding an op = adding one file here."""

from __future__ import annotations

import importlib
import pkgutil


def all_specs(extra: tuple[str, ...] = ()) -> dict:
    """Every ``SPEC`` in this package, plus those of the ``extra`` modules (out-of-tree ops,
    ``--spec MODULE``), by op name (sorted). A module's last name component must be its op's."""
    modules = [f"{__name__}.{m.name}" for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
               if not m.name.startswith("_")]
    specs = {}
    for module in modules + list(extra):
        spec = importlib.import_module(module).SPEC
        stem = module.rpartition(".")[2]
        if spec.name != stem:
            raise ValueError(f"{module} defines SPEC for {spec.name!r}: one op = one stem")
        if spec.name in specs:
            raise ValueError(f"two specs for {spec.name!r}")
        specs[spec.name] = spec
    return specs
