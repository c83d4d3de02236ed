"""Plain-MLX reference ops: the single source of truth for tests, benchmarks and fallbacks.

Every reference runs in float64 on the CPU, which is how the conformance oracle is built.
"""

from .quantized_matmul import quantized_matmul
from .rms_norm import rms_norm

__all__ = ["quantized_matmul", "rms_norm"]
