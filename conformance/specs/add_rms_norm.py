"""Residual add + RMSNorm: ``h = x + residual``, ``normed = h / sqrt(mean(h**2, -1) + eps) * weight``.

Two outputs ``(normed, h)``: the spec's call concatenates them along the last axis, so every
generic check (values, layouts, vjp with a cotangent on both outputs, vmap, compile) covers both.
MLX has no such op (no native).
"""

import mlx.core as mx

from ..spec import Array, ErrorCase, OpSpec, Static, Tolerance, XFail
from .rms_norm import DTYPES, GRAD_TOLERANCES, TOLERANCES

_MLX_SHAPELESS_CRASH = ("MLX 0.32.4 segfaults in mx.compile(shapeless=True) of a reduction over a size-1 last axis "
                        "(rank >= 2), e.g. mx.sum(x, -1, keepdims=True) on shape (3, 1); plain-MLX ops inherit it")


def _call(fn, x, residual, weight, eps):
    return mx.concatenate(fn(x, residual, weight, eps), axis=-1)


def _bad(**over):
    args = dict(x=mx.ones((2, 4)), residual=mx.ones((2, 4)), weight=None, eps=1e-5)
    args.update(over)
    return lambda: args


SPEC = OpSpec(
    name="add_rms_norm",
    reference="mlxr.reference:add_rms_norm",
    fused="mlxr.fused:add_rms_norm",
    args=(
        Array("x"),
        Array("residual"),
        Array("weight", shape=lambda s: s[-1:], optional=True),
        Static("eps", values=(1e-5, 1e-6, 1e-2, 1.0, 0.0), smooth=(1e-5, 1e-2, 1.0)),
    ),
    call=_call,
    dtypes=DTYPES,  # rms_norm's
    # h is one rounding of the sum, normed is rms_norm(h): rms_norm's bounds hold for both.
    tolerances=TOLERANCES,
    grad_tolerances=GRAD_TOLERANCES,
    # 16-element blocks (csrc/add_rms_norm.cpp, cpu::kBlock); 8 = AVX2 float32 width.
    thresholds=(8, 16, 32, 4096),
    kernel="add_rms_norm",
    errors=(
        ErrorCase("scalar_x", _bad(x=mx.array(1.0), residual=mx.array(1.0)), ValueError, r"^\[add_rms_norm\] .*at least 1"),
        ErrorCase("residual_wrong_shape", _bad(residual=mx.ones((2, 3))), ValueError, r"^\[add_rms_norm\] .*residual"),
        ErrorCase("weight_wrong_size", _bad(weight=mx.ones((3,))), ValueError, r"^\[add_rms_norm\] .*weight"),
        ErrorCase("integer_inputs", _bad(x=mx.ones((2, 4), dtype=mx.int32), residual=mx.ones((2, 4), dtype=mx.int32)),
                  ValueError, r"^\[add_rms_norm\] .*int32"),
        ErrorCase("negative_eps", _bad(eps=-1e-5), ValueError, r"^\[add_rms_norm\] eps"),
    ),
    xfails=(
        XFail(_MLX_SHAPELESS_CRASH, check="compile", impl="reference", variant="shapeless"),
    ),
)
