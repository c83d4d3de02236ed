"""SwiGLU: ``y = silu(gate) * up = gate * sigmoid(gate) * up`` (drop-in for ``nn.silu(gate) * up``)."""

import mlx.core as mx

from ..spec import EXP_ROUNDED_ONCE, Array, ErrorCase, OpSpec, Tolerance

# Forward: a few ulp of the output dtype (exp, a division, two products; one rounding in the
# kit's ops) on top of the reference's own error.
TOLERANCES = EXP_ROUNDED_ONCE
# d/dgate = up * s * (1 + gate * (1 - s)) cancels near gate = -1.28, and its derivative
# again: an absolute term of ~1e-7 of the O(1) terms that cancel (a float32 error in float64 is
# still 1e-8, a float16 one 1e-3).
GRAD_TOLERANCES = {
    "float32": Tolerance(atol=1e-8, rtol=2e-6, factor=4.0),
    "float16": Tolerance(atol=1e-6, rtol=4e-3, factor=4.0),
    "bfloat16": Tolerance(atol=1e-6, rtol=3.2e-2, factor=4.0),
    "float64": Tolerance(atol=1e-14, rtol=1e-12, factor=4.0),
}

SPEC = OpSpec(
    name="swiglu",
    reference="mlxr.reference:swiglu",
    fused="mlxr.fused:swiglu",
    args=(Array("gate"), Array("up")),
    dtypes={"cpu": ("float32", "float16", "bfloat16", "float64", "gate=bfloat16,up=float32"), "gpu": ("float32", "float16", "bfloat16", "gate=bfloat16,up=float32")},
    tolerances=TOLERANCES,
    grad_tolerances=GRAD_TOLERANCES,
    thresholds=(16,),  # 16-element blocks; the tail goes through a partial block
    kernel="swiglu",
    errors=(
        ErrorCase("shape_mismatch", lambda: dict(gate=mx.ones((2, 4)), up=mx.ones((3, 4))),
                  ValueError, r"^\[swiglu\] gate and up must have broadcastable shapes"),
        ErrorCase("integer_inputs", lambda: dict(gate=mx.ones((2, 4), dtype=mx.int32), up=mx.ones((2, 4), dtype=mx.int32)),
                  ValueError, r"^\[swiglu\] .*floating"),
    ),
)
