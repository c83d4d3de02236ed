"""metal-sim: runs the Metal kernels in ``kernels/*.metal`` on the CPU, with real barrier and
simdgroup semantics (a fiber per thread) and checked memory (bounds, threadgroup and device
races, unwritten threadgroup reads), through the same launch plans as the Metal host code
(``csrc/metal/launch/*.h``). Needs g++ and the source tree; no Mac, no Metal.

``run_op("rms_norm", x, weight, eps)`` runs an op as the fused op runs it on a Metal stream
(MLX arrays in and out). Each op also works as a conformance candidate, e.g.
``pytest conformance/ --candidate rms_norm=mlxr.conformance.metal_sim.ops:rms_norm --device cpu``
for the forward, layout, threshold and special-value checks.
"""

from __future__ import annotations

import shutil

from . import quantized_matmul, rms_norm
from ._compile import MetalSimCompileError, source_root
from ._runtime import Library, MetalSimError, Plan, execute, executed, library
from .ops import OPS, run_op
from .rms_norm import plan as _rms_norm_plan


def available() -> bool:
    """True when the simulator can build kernels here (g++ and the kernel sources present)."""
    try:
        source_root()
    except MetalSimCompileError:
        return False
    return shutil.which("g++") is not None


__all__ = [
    "Library",
    "MetalSimCompileError",
    "MetalSimError",
    "OPS",
    "Plan",
    "available",
    "execute",
    "executed",
    "library",
    "run_op",
]
