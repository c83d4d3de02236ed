"""mlxr-conform: reference MLX ops, their fused ports, and the conformance suite certifying them.

Subpackages: ``mlxr.reference`` (plain-MLX definitions, the single source of truth),
``mlxr.fused`` (the fused primitives, drop-in for ``mx.fast.*``) and ``mlxr.conformance``
(specs, checks, pytest plugin and the ``mlxr-conform`` CLI).
"""

__version__ = "0.1.0"


def __getattr__(name):
    # Lazy, so `import mlxr` stays free of side effects and of the extension load.
    if name in ("patch", "unpatch", "PatchReport"):
        from mlxr.fused import patch as _patch

        return getattr(_patch, name)
    raise AttributeError(f"module 'mlxr' has no attribute {name!r}")
