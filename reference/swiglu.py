"""SwiGLU reference."""

import mlx.core as mx

from ._dtypes import accumulation_dtype, output_dtype
from ._exp import exp


def swiglu(gate: mx.array, up: mx.array) -> mx.array:
    """The gated MLP activation: ``y = silu(gate) * up = gate * sigmoid(gate) * up``.

    ``gate`` and ``up`` broadcast against each other as in ``nn.silu(gate) * up``.

    Dtype rules: the output dtype is ``promote(gate.dtype, up.dtype)``; both are upcast and the
    product is computed in float32 (float64 for float64 outputs, the oracle path), left to
    right, and rounded once; ``sigmoid(g) = 1 / (1 + exp(-g))``. (``nn.silu(gate) * up`` in half precision rounds after each op.)

    Arguments are not validated here; ``mlxr.fused.swiglu`` validates.
    """
    out_dtype = output_dtype(gate, up)
    acc = accumulation_dtype(out_dtype)
    g = gate.astype(acc)
    sigmoid = 1 / (1 + exp(-g))  # mx.sigmoid's formula, with an exact float64 exp
    return (g * sigmoid * up.astype(acc)).astype(out_dtype)
