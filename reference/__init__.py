"""Plain-MLX reference ops: the single source of truth for tests, benchmarks and fallbacks.

Every reference runs in float64 on the CPU, which is how the conformance oracle is built.
"""

from .add_rms_norm import add_rms_norm
from .layer_norm import layer_norm
from .quantized_matmul import quantized_matmul
from .rms_norm import rms_norm
from .rope import rope
from .softmax import softmax
from .swiglu import swiglu

__all__ = ["add_rms_norm", "layer_norm", "quantized_matmul", "rms_norm", "rope", "softmax", "swiglu"]
