"""RoPE: rotate feature pairs by ``(t + offset) * scale * inv_freq_i`` (drop-in for ``mx.fast.rope``).

The drawn main shape ``(B, *, T, D)`` maps to ``a`` of shape ``(B, *, T, 2D)`` so every last axis
holds at least one pair; ``rotary`` picks ``dims`` = all of it or its first half (pass-through
tail). ``offset`` is drawn as an int or as an int32 array (MLX's two forms); ``freqs`` (present)
replaces ``base`` (the op takes exactly one); it has shape ``(D,)`` and then every feature rotates.
"""

import mlx.core as mx

from ..spec import Array, ErrorCase, OpSpec, Static, Tolerance, XFail

# Angles are float32 (float64 for float64) as in mx.fast.rope; the float32 reference's angle
# error grows with position (|theta| up to ~1e4 here), and the factor arbitrates it; rtol is
# ~2 ulp of the output dtype. float64 (reference = oracle, nothing to arbitrate): the angle's
# evaluation order is free, |d theta| ~ 2 ulp(8e3) = 4e-12, so the error is ~|x| * 4e-12, and
# outputs x1 cos - x2 sin cancel towards 0 (absolute term for |x| <= ~4). Still 1e4x tighter than float32.
TOLERANCES = {
    "float32": Tolerance(atol=3e-45, rtol=2.4e-7, factor=2.0),
    "float16": Tolerance(atol=6e-8, rtol=2e-3, factor=2.0),
    "bfloat16": Tolerance(atol=1e-40, rtol=1.6e-2, factor=2.0),
    "float64": Tolerance(atol=1e-11, rtol=4e-12, factor=2.0),
}
# The vjp is the inverse rotation of the cotangent: same accuracy as the forward.
GRAD_TOLERANCES = {
    "float32": Tolerance(atol=1e-30, rtol=1e-6, factor=4.0),
    "float16": Tolerance(atol=1e-6, rtol=4e-3, factor=4.0),
    "bfloat16": Tolerance(atol=1e-30, rtol=3.2e-2, factor=4.0),
    "float64": Tolerance(atol=1e-11, rtol=4e-12, factor=4.0),
}


def _call(fn, a, freqs, traditional, base, scale, offset, rotary="all", offset_form="int", dims=None):
    if dims is not None:  # an error case: the arguments as given
        return fn(a, dims, traditional=traditional, base=base, scale=scale, offset=offset, freqs=freqs)
    # With freqs, all features rotate: slicing freqs to dims / 2 cannot compile shapeless.
    dims = a.shape[-1] if rotary == "all" or freqs is not None else 2 * max(1, a.shape[-1] // 4)
    if freqs is not None:
        # Periods >= 1 (as real models use): drawn values near 0 give angles ~1e7 whose float64
        # rounding (evaluation order of (t + offset) * scale * inv_freq) alone exceeds any ulp bound.
        freqs, base = 1 + mx.abs(freqs), None
    if offset_form == "array":
        offset = mx.array(offset, dtype=mx.int32)
    return fn(a, dims, traditional=traditional, base=base, scale=scale, offset=offset, freqs=freqs)


def _bad(**over):
    args = dict(a=mx.ones((1, 4, 8)), dims=8, traditional=False, base=10000.0, scale=1.0, offset=0, freqs=None)
    args.update(over)
    return lambda: args


_MX_FAST_F64 = "mx.fast.rope computes float64 inputs in float32 precision on the CPU (errors ~1e-7)"
_MX_FAST_LAX = "mx.fast.rope does not validate this argument (accepts it and computes)"
_NUMERIC_CHECKS = ("forward", "special_values", "thresholds", "layouts", "autodiff", "vmap", "compile")

SPEC = OpSpec(
    name="rope",
    reference="mlxr.reference:rope",
    fused="mlxr.fused:rope",
    native="mlx.core:fast.rope",
    args=(
        Array("a", shape=lambda s: (*s[:-1], 2 * max(1, s[-1]))),  # a zero-size last axis has no dims
        Array("freqs", shape=lambda s: (max(1, s[-1]),), optional=True, differentiable=False),
        Static("rotary", values=("all", "half")),
        Static("traditional", values=(False, True)),
        Static("base", values=(10000.0, 500000.0, 10.0, 1.0)),
        Static("scale", values=(1.0, 0.5, 2.0, -1.0)),
        Static("offset", values=(0, 3, 1000, 4096)),
        Static("offset_form", values=("int", "array")),
    ),
    call=_call,
    dtypes={
        "cpu": ("float32", "float16", "bfloat16", "float64"),
        "gpu": ("float32", "float16", "bfloat16"),
    },
    tolerances=TOLERANCES,
    grad_tolerances=GRAD_TOLERANCES,
    # Pairs are rotated in 16-wide blocks (csrc/rope.cpp, cpu::kBlock) over dims / 2 = D: probe
    # the 8 (AVX2 float32) and 16/32 block edges.
    thresholds=(8, 16, 32),
    ranks=(3, 4),
    max_elements=1 << 13,
    kernel="rope",
    shape_bound_last_axis=True,
    errors=(
        ErrorCase("rank_2", _bad(a=mx.ones((4, 8))), ValueError, r"^\[rope\] .*3"),
        ErrorCase("integer_a", _bad(a=mx.ones((1, 4, 8), dtype=mx.int32)), ValueError, r"^\[rope\] .*int32"),
        ErrorCase("odd_dims", _bad(dims=3), ValueError, r"^\[rope\] dims must be even"),
        ErrorCase("dims_too_big", _bad(dims=10), ValueError, r"^\[rope\] dims must not exceed"),
        ErrorCase("base_and_freqs", _bad(freqs=mx.ones((4,))), ValueError, r"^\[rope\] exactly one of base and freqs"),
        ErrorCase("neither_base_nor_freqs", _bad(base=None), ValueError, r"^\[rope\] exactly one of base and freqs"),
        ErrorCase("freqs_wrong_shape", _bad(base=None, freqs=mx.ones((3,))), ValueError, r"^\[rope\] freqs must have shape"),
        ErrorCase("float_offset", _bad(offset=mx.array(1.0)), ValueError, r"^\[rope\] offset must have an integer dtype"),
        ErrorCase("offset_2d", _bad(offset=mx.zeros((1, 1), dtype=mx.int32)), ValueError, r"^\[rope\] offset must be a scalar"),
        ErrorCase("offset_wrong_size", _bad(offset=mx.zeros((3,), dtype=mx.int32)), ValueError, r"^\[rope\] offset must be a scalar"),
        ErrorCase("nan_scale", _bad(scale=float("nan")), ValueError, r"^\[rope\] scale must be finite"),
        ErrorCase("zero_base", _bad(base=0.0), ValueError, r"^\[rope\] base must be finite and > 0"),
    ),
    xfails=(
        XFail(_MX_FAST_F64, check=_NUMERIC_CHECKS, impl="native", dtype="float64"),
    ),
)
