"""Op specs, one module per op, each defining ``SPEC``. Adding an op = adding one file here.

To add op ``<op>``:

1. Copy ``rms_norm.py`` to ``<op>.py`` (the file stem must equal ``SPEC.name``).
2. Point ``reference`` / ``fused`` (/ ``native``) at "module:attr" targets; a fused op that does
   not exist yet is reported "not run: not implemented".
3. List the arguments in call order: ``Array(name, shape=lambda main: ..., optional=...,
   differentiable=...)`` and ``Static(name, values=(...), smooth=(...))``; give ``call=`` only if
   positional order is not how the op is called.
4. Per device, the dtype cases (``"float16"`` or mixed ``"x=bfloat16,weight=float32"``); per
   output dtype, ``Tolerance(atol, rtol, factor)`` for values and for gradients.
5. ``thresholds``: last-axis sizes where kernels change path (probed at ±1); ``kernel``: the
   name ``mlxr.fused.observe()`` reports; ``errors``: bad inputs with exception and regex;
   ``xfails``: known deviations, each with a reason.
6. Run ``pytest conformance/ --op <op> -n auto`` (or ``mlxr-conform certify <op>``).

Out-of-tree ops: ``pytest conformance/ --spec my_pkg.my_op`` (module stem = op name).
"""

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
