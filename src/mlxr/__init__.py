"""mlxr-conform: reference MLX ops, their fused ports, and the conformance suite certifying them.

Subpackages: ``mlxr.reference`` (plain-MLX definitions, the single source of truth),
``mlxr.fused`` (the fused primitives, drop-in for ``mx.fast.*``) and ``mlxr.conformance``
(specs, checks, pytest plugin and the ``mlxr-conform`` CLI).
"""

__version__ = "0.1.0"
