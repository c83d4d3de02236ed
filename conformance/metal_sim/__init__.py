"""metal-sim: runs the Metal kernels in ``kernels/*.metal`` on the CPU, with real barrier and
simdgroup semantics (a fiber per thread) and checked memory, through the same launch plans as
the Metal host code (``csrc/metal/launch/*.h``). Needs g++; no Mac, no Metal.

``run_op("rms_norm", x, weight, eps)`` runs an op like the fused op does on a Metal stream.
"""

from __future__ import annotations

from ._compile import MetalSimCompileError
from ._runtime import Library, MetalSimError, Plan, execute, executed, library
from . import rms_norm
from .ops import OPS, run_op
from .rms_norm import plan as _rms_norm_plan

__all__ = ["Library", "MetalSimCompileError", "MetalSimError", "OPS", "Plan", "execute", "executed", "library", "run_op"]
