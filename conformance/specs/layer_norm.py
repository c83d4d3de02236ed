"""LayerNorm: ``y = (x - mean) / sqrt(var + eps) * weight + bias`` (drop-in for ``mx.fast.layer_norm``).

The oracle is the formula in numpy extended precision (:func:`oracle`), so the float64
reference is arbitrated like every other dtype instead of being its own bound.
"""

import mlx.core as mx
import numpy as np

from ..spec import Array, ErrorCase, OpSpec, Static, Tolerance, XFail

# Forward: arbitrated against the reference's own error (factor), plus 4 ulp of the output
# dtype (two roundings after the normalisation, before the weight multiply and before the bias
# add, as in the reference). (x - mean) cancels: the mean's rounding moves every y of a row by
# ~ulp(mean) / std whatever |y|, so float32/float64 also allow 4 ulp at the normalised scale
# 1 (atol); a wrong eps, variance or mean is off by far more.
TOLERANCES = {
    "float32": Tolerance(atol=4.8e-7, rtol=4.8e-7, factor=2.0),
    "float16": Tolerance(atol=6e-8, rtol=2e-3, factor=2.0),
    "bfloat16": Tolerance(atol=1e-40, rtol=1.6e-2, factor=2.0),
    "float64": Tolerance(atol=8.9e-16, rtol=8.9e-16, factor=2.0),
}
# The x-gradient subtracts two projections (mean and variance): the absolute term arbitrated
# against the reference's error dominates. float64 autodiff keeps the float64 reference as its
# oracle (nothing arbitrates): rtol covers summation order over rows of up to ~10^4 elements.
GRAD_TOLERANCES = {
    "float32": Tolerance(atol=1e-30, rtol=1e-6, factor=4.0),
    "float16": Tolerance(atol=1e-6, rtol=4e-3, factor=4.0),
    "bfloat16": Tolerance(atol=1e-30, rtol=3.2e-2, factor=4.0),
    "float64": Tolerance(atol=1e-300, rtol=1e-12, factor=4.0),
}


def oracle(x: mx.array, weight: mx.array | None, bias: mx.array | None, eps: float) -> mx.array:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last axis in numpy long double
    (x86's 80-bit format: 11 more mantissa bits and a wider exponent than float64, so no
    overflow of ``(x - mean)**2``), rounded once to float64. Inputs are float64 CPU arrays.
    Where long double is float64 (arm64 macOS), it is the float64 reference.
    """
    if np.finfo(np.longdouble).nmant <= np.finfo(np.float64).nmant:
        from mlxr.reference import layer_norm

        return layer_norm(x, weight, bias, eps)
    if x.size == 0:
        return x
    ext = lambda a: np.array(a).astype(np.longdouble)
    with np.errstate(all="ignore"):
        xe = ext(x)
        centred = xe - xe.mean(axis=-1, keepdims=True)
        y = centred / np.sqrt(np.square(centred).mean(axis=-1, keepdims=True) + np.longdouble(eps))
        if weight is not None:
            y = y * ext(weight)
        if bias is not None:
            y = y + ext(bias)
        return mx.array(y.astype(np.float64), dtype=mx.float64)


def _bad(**over):
    args = dict(x=mx.ones((2, 4)), weight=None, bias=None, eps=1e-5)
    args.update(over)
    return lambda: args


# Row sums take 16-element blocks two at a time, then one block, then a scalar tail
# (csrc/layer_norm.cpp; 8 is the AVX2 float32 width); 4096 is where GPU rows loop.
THRESHOLDS = (8, 16, 32, 48, 4096)

_MX_FAST_NO_EPS_CHECK = "mx.fast.layer_norm does not validate eps (accepts any float)"
_MX_FAST_F64 = "mx.fast.layer_norm computes float64 inputs in float32 precision on the CPU (errors ~1e-7)"
_MLX_SHAPELESS_CRASH = ("MLX 0.32.4 segfaults in mx.compile(shapeless=True) of a reduction over a size-1 last axis "
                        "(rank >= 2), e.g. mx.sum(x, -1, keepdims=True) on shape (3, 1); plain-MLX ops inherit it")
_MX_FAST_MEAN = ("mx.fast.layer_norm (CPU) takes the mean as sum * (1/n), one rounding more than sum / n: a "
                 "constant half-precision row (x broadcast along its last axis) normalises to ~1e-5 instead of 0, "
                 "and rows whose mean is large against their spread lose ~2x the reference's accuracy")
_MIXED = "x=bfloat16,weight=float32,bias=float32"
# Length-1 rows normalise to exactly 0 in any precision: that threshold probe passes.
_F64_CHECKS = ("forward", "special_values", "layouts", "autodiff", "vmap", "compile")

SPEC = OpSpec(
    name="layer_norm",
    reference="mlxr.reference:layer_norm",
    fused="mlxr.fused:layer_norm",
    native="mlx.core:fast.layer_norm",
    oracle="mlxr.conformance.specs.layer_norm:oracle",
    args=(
        Array("x"),
        Array("weight", shape=lambda s: s[-1:], optional=True),
        Array("bias", shape=lambda s: s[-1:], optional=True),
        # eps = 0 on a constant row is 0/0: NaN exactly where the row's sum is exact, so the
        # thorough profile can draw (broadcast x) rows where the reference and the kernel differ.
        Static("eps", values=(1e-5, 1e-6, 1e-2, 1.0, 0.0), smooth=(1e-5, 1e-2, 1.0)),
    ),
    dtypes={
        "cpu": ("float32", "float16", "bfloat16", "float64", _MIXED),
        "gpu": ("float32", "float16", "bfloat16"),
    },
    tolerances=TOLERANCES,
    grad_tolerances=GRAD_TOLERANCES,
    thresholds=THRESHOLDS,
    kernel="layer_norm",
    errors=(
        ErrorCase("scalar_x", _bad(x=mx.array(1.0)), ValueError, r"^\[layer_norm\] .*at least 1 dimension"),
        ErrorCase("weight_wrong_size", _bad(weight=mx.ones((3,))), ValueError, r"^\[layer_norm\] weight must have"),
        ErrorCase("weight_2d", _bad(weight=mx.ones((1, 4))), ValueError, r"^\[layer_norm\] weight must have"),
        ErrorCase("bias_wrong_size", _bad(bias=mx.ones((5,))), ValueError, r"^\[layer_norm\] bias must have"),
        ErrorCase("bias_2d", _bad(bias=mx.ones((1, 4))), ValueError, r"^\[layer_norm\] bias must have"),
        ErrorCase("integer_x", _bad(x=mx.ones((2, 4), dtype=mx.int32)), ValueError, r"^\[layer_norm\] .*int32"),
        ErrorCase("negative_eps", _bad(eps=-1e-5), ValueError, r"^\[layer_norm\] eps"),
        ErrorCase("nan_eps", _bad(eps=float("nan")), ValueError, r"^\[layer_norm\] eps"),
    ),
    xfails=(
        XFail(_MX_FAST_NO_EPS_CHECK, check="errors", impl="native", variant="negative_eps"),
        XFail(_MX_FAST_NO_EPS_CHECK, check="errors", impl="native", variant="nan_eps"),
        XFail(_MX_FAST_F64, check=_F64_CHECKS, impl="native", dtype="float64"),
        *(XFail(_MX_FAST_F64, check="thresholds", impl="native", dtype="float64", variant=f"n={n}")
          for n in sorted({t + d for t in THRESHOLDS for d in (-1, 0, 1)})),
        *(XFail(_MX_FAST_MEAN, check="layouts", impl="native", dtype=d, variant="x:broadcast")
          for d in ("float16", "bfloat16", _MIXED)),
        *(XFail(_MX_FAST_MEAN, check="layouts", impl="native", dtype=_MIXED, variant=v)
          for v in ("weight:offset", "weight:reversed")),
        XFail(_MLX_SHAPELESS_CRASH, check="compile", impl="native", variant="shapeless"),
        XFail(_MLX_SHAPELESS_CRASH, check="compile", impl="reference", variant="shapeless"),
    ),
)
