"""RMSNorm: ``y = x / sqrt(mean(x**2, -1) + eps) * weight`` (drop-in for ``mx.fast.rms_norm``).

The model spec: copy this file to ``specs/<op>.py`` for a new op and edit every field.
"""

import mlx.core as mx

from ..spec import Array, ErrorCase, OpSpec, Static, Tolerance, XFail

# Forward: arbitrated against the reference's own error (factor), plus ~2 ulp of the output
# dtype and one subnormal spacing. float64: the reference *is* the oracle, so rtol covers
# summation-order differences over rows of up to ~10^4 elements.
TOLERANCES = {
    "float32": Tolerance(atol=3e-45, rtol=2.4e-7, factor=2.0),
    "float16": Tolerance(atol=6e-8, rtol=2e-3, factor=2.0),
    "bfloat16": Tolerance(atol=1e-40, rtol=1.6e-2, factor=2.0),
    "float64": Tolerance(atol=1e-320, rtol=1e-13, factor=2.0),
}
# Gradients cancel (d/dx has a subtracted projection), so the absolute term arbitrated against
# the reference's error dominates; rtol stays at a few ulp.
GRAD_TOLERANCES = {
    "float32": Tolerance(atol=1e-30, rtol=1e-6, factor=4.0),
    "float16": Tolerance(atol=1e-6, rtol=4e-3, factor=4.0),
    "bfloat16": Tolerance(atol=1e-30, rtol=3.2e-2, factor=4.0),
    "float64": Tolerance(atol=1e-300, rtol=1e-12, factor=4.0),
}

_MX_FAST_NO_EPS_CHECK = "mx.fast.rms_norm does not validate eps (accepts any float)"
_MX_FAST_F64 = "mx.fast.rms_norm computes float64 inputs in float32 precision on the CPU (errors ~1e-7)"
_MLX_SHAPELESS_CRASH = ("MLX 0.32.4 segfaults in mx.compile(shapeless=True) of a reduction over a size-1 last axis "
                        "(rank >= 2), e.g. mx.sum(x, -1, keepdims=True) on shape (3, 1); plain-MLX ops inherit it")
_NUMERIC_CHECKS = ("forward", "special_values", "thresholds", "layouts", "autodiff", "vmap", "compile")

DTYPES = {
    "cpu": ("float32", "float16", "bfloat16", "float64", "x=bfloat16,weight=float32"),
    "gpu": ("float32", "float16", "bfloat16", "x=bfloat16,weight=float32"),
}

SPEC = OpSpec(
    name="rms_norm",
    reference="mlxr.reference:rms_norm",
    fused="mlxr.fused:rms_norm",
    native="mlx.core:fast.rms_norm",
    args=(
        Array("x"),
        Array("weight", shape=lambda s: s[-1:], optional=True),
        Static("eps", values=(1e-5, 1e-6, 1e-2, 1.0, 0.0), smooth=(1e-5, 1e-2, 1.0)),
    ),
    dtypes=DTYPES,
    tolerances=TOLERANCES,
    grad_tolerances=GRAD_TOLERANCES,
    # Kernel blocks are 16 elements (csrc/cpu/block.h); 8 is the AVX2 float32 width; 4096 is
    # where GPU backends switch from one-pass to looped rows.
    thresholds=(8, 16, 32, 4096),
    kernel="rms_norm",
    errors=(
        ErrorCase("scalar_x", lambda: dict(x=mx.array(1.0), weight=None, eps=1e-5),
                  ValueError, r"^\[rms_norm\] .*at least 1 dimension"),
        ErrorCase("weight_wrong_size", lambda: dict(x=mx.ones((2, 4)), weight=mx.ones((3,)), eps=1e-5),
                  ValueError, r"^\[rms_norm\] .*weight"),
        ErrorCase("weight_2d", lambda: dict(x=mx.ones((2, 4)), weight=mx.ones((1, 4)), eps=1e-5),
                  ValueError, r"^\[rms_norm\] .*weight"),
        ErrorCase("integer_x", lambda: dict(x=mx.ones((2, 4), dtype=mx.int32), weight=None, eps=1e-5),
                  ValueError, r"^\[rms_norm\] .*int32"),
        ErrorCase("negative_eps", lambda: dict(x=mx.ones((2, 4)), weight=None, eps=-1e-5),
                  ValueError, r"^\[rms_norm\] eps"),
        ErrorCase("nan_eps", lambda: dict(x=mx.ones((2, 4)), weight=None, eps=float("nan")),
                  ValueError, r"^\[rms_norm\] eps"),
    ),
    xfails=(
        XFail(_MX_FAST_NO_EPS_CHECK, check="errors", impl="native", variant="negative_eps"),
        XFail(_MX_FAST_NO_EPS_CHECK, check="errors", impl="native", variant="nan_eps"),
        XFail(_MX_FAST_F64, check=_NUMERIC_CHECKS, impl="native", dtype="float64"),
        XFail(_MLX_SHAPELESS_CRASH, check="compile", impl="native", variant="shapeless"),
        XFail(_MLX_SHAPELESS_CRASH, check="compile", impl="reference", variant="shapeless"),
    ),
)
