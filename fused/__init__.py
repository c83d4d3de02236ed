"""Fused MLX primitives, drop-in replacements for their ``mx.fast`` / plain-MLX counterparts.

Each op validates its arguments, picks the output dtype, and runs a fused C++ kernel where one
exists for the device and dtype, else its reference (``mlxr.reference``). ``observe()`` reports
which kernels actually executed.
"""

from ._dispatch import Observation, has_kernel, observe
from .quantized_matmul import quantized_matmul
from .rms_norm import rms_norm

__all__ = ["Observation", "has_kernel", "observe", "quantized_matmul", "rms_norm"]
