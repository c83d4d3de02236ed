"""LayerNorm: ``y = (x - mean) / sqrt(var + eps) * weight + bias`` (drop-in for ``mx.fast.layer_norm``)."""

import mlx.core as mx

from ..spec import Array, ErrorCase, OpSpec, Static, Tolerance, XFail

# Forward: two roundings to the output dtype after the normalisation (before the weight
# multiply and before the bias add), as in the reference; arbitrated against its own error.
TOLERANCES = {
    "float32": Tolerance(atol=3e-45, rtol=4.8e-7, factor=2.0),
    "float16": Tolerance(atol=6e-8, rtol=2e-3, factor=2.0),
    "bfloat16": Tolerance(atol=1e-40, rtol=1.6e-2, factor=2.0),
    # float64: the reference is the oracle, so nothing arbitrates, and MLX 0.32.4's float64
    # sum on CPU is only ~float32-accurate on long rows: the bound is ~5e3 ulp absolute of the
    # O(1) normalised values and 5e3 ulp relative (a constant row normalises to 1e-12-sized
    # round-off in the reference and to exact 0 in the kernel). Any algorithmic error is >1e-8.
    "float64": Tolerance(atol=1e-11, rtol=1e-12, factor=2.0),
}
# The x-gradient subtracts two projections (mean and variance): the absolute term arbitrated
# against the reference's error dominates.
GRAD_TOLERANCES = {
    "float32": Tolerance(atol=1e-30, rtol=1e-6, factor=4.0),
    "float16": Tolerance(atol=1e-6, rtol=4e-3, factor=4.0),
    "bfloat16": Tolerance(atol=1e-30, rtol=3.2e-2, factor=4.0),
    "float64": Tolerance(atol=1e-300, rtol=1e-12, factor=4.0),
}

_MX_FAST_NO_EPS_CHECK = "mx.fast.layer_norm does not validate eps (accepts any float)"

SPEC = OpSpec(
    name="layer_norm",
    reference="mlxr.reference:layer_norm",
    fused="mlxr.fused:layer_norm",
    native="mlx.core:fast.layer_norm",
    args=(
        Array("x"),
        Array("weight", shape=lambda s: s[-1:], optional=True),
        Array("bias", shape=lambda s: s[-1:], optional=True),
        Static("eps", values=(1e-5, 1e-6, 1e-2, 1.0, 0.0), smooth=(1e-5, 1e-2, 1.0)),
    ),
    dtypes={
        "cpu": ("float32", "float16", "bfloat16", "float64", "x=bfloat16,weight=float32,bias=float32"),
        "gpu": ("float32", "float16", "bfloat16"),
    },
    tolerances=TOLERANCES,
    grad_tolerances=GRAD_TOLERANCES,
    # Row sums run two 16-element blocks at a time (csrc/layer_norm.cpp), tails per block.
    thresholds=(16, 32, 4096),
    kernel="layer_norm",
    errors=(
        ErrorCase("scalar_x", lambda: dict(x=mx.array(1.0), weight=None, bias=None, eps=1e-5),
                  ValueError, r"^\[layer_norm\] .*at least 1 dimension"),
        ErrorCase("weight_wrong_size", lambda: dict(x=mx.ones((2, 4)), weight=mx.ones((3,)), bias=None, eps=1e-5),
                  ValueError, r"^\[layer_norm\] .*weight"),
        ErrorCase("bias_wrong_size", lambda: dict(x=mx.ones((2, 4)), weight=None, bias=mx.ones((5,)), eps=1e-5),
                  ValueError, r"^\[layer_norm\] .*bias"),
        ErrorCase("integer_x", lambda: dict(x=mx.ones((2, 4), dtype=mx.int32), weight=None, bias=None, eps=1e-5),
                  ValueError, r"^\[layer_norm\] .*floating"),
        ErrorCase("negative_eps", lambda: dict(x=mx.ones((2, 4)), weight=None, bias=None, eps=-1e-5),
                  ValueError, r"^\[layer_norm\] eps"),
    ),
    xfails=(
        XFail(_MX_FAST_NO_EPS_CHECK, check="errors", impl="native", variant="negative_eps"),
    ),
)
