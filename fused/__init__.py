"""Fused MLX primitives, drop-in replacements for their ``mx.fast`` / plain-MLX counterparts.

Each op validates its arguments, picks the output dtype, and runs a fused C++ kernel where one
exists for the device and dtype, else its reference (``mlxr.reference``). ``observe()`` reports
which kernels actually executed.
"""

from ._dispatch import Observation, has_kernel, observe
from .add_rms_norm import add_rms_norm
from .layer_norm import layer_norm
from .quantized_matmul import quantized_matmul
from .rms_norm import rms_norm
from .rope import rope
from .softmax import softmax
from .swiglu import swiglu

__all__ = ["Observation", "add_rms_norm", "has_kernel", "layer_norm", "observe", "quantized_matmul", "rms_norm", "rope", "softmax", "swiglu"]
