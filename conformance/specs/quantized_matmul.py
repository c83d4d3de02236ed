"""Affine quantized matmul: ``x @ w_hat.T`` (``transpose``) or ``x @ w_hat``, ``w_hat = scales * q + biases``
per group of ``group_size`` codes (drop-in for ``mx.quantized_matmul(mode="affine")``).

The drawn main shape is x's leading shape (rows ``M`` = its product, last axis probed at the
GEMV/GEMM switch); x is ``(*main, K)``. ``w``, ``scales`` and ``biases`` are one ``mx.quantize``
of a drawn float weight (a ``Derived`` argument: built in the case's dtype, exact in the oracle,
never re-laid-out, batched or differentiated) of shape ``(N, K)`` (``transpose``) or ``(K, N)``.
The quantized axis (K with ``transpose``, else N) is the static ``k`` / ``n`` rounded up to a
multiple of ``group_size``; the other axis is the static as drawn (tails: N < 64, N % 32 != 0,
K not a multiple of 32, K across the GEMM's 256-deep panels).

Not drawn: batched ``w`` (the fused op runs the reference for it; MLX 0.32.4's
``mx.quantized_matmul`` returns only batch 0 for a 2-D x against a 3-D w, see
tests/test_quantized_matmul.py) and modes other than affine.
"""

import mlx.core as mx

from ..spec import Array, Derived, ErrorCase, OpSpec, Static, Tolerance, XFail

# Quantized weights are exact (the oracle gets the same codes, scales and biases in float64), so
# only float32 accumulation and the final rounding differ. The kernels (the fused ones as MLX's
# GPU ones) sum s * sum(x*q) + b * sum(x) per group, whose rounding scales with
# |x_k| * (|s|*q_k + |b|), not with |x_k * w_hat_k| (s*q and b cancel): the reference's own
# error is no yardstick (a single output can round luckily: up to 345x smaller, measured). A
# K-term float32 sum in any order errs by <= ~eps32 * sqrt(K) * max|partial sum| (random walk),
# and |partial sums| <= sum_k |x_k| * (|s|*q_k + |b|): the magnitude below times mtol = 2 eps32.
# rtol is ~1 ulp of the output dtype (its final rounding). A wrong code is off by a scale, ~100x
# the bound at the largest K drawn (384) and far more at smaller K (planted: caught in every dtype).
_EPS32 = 2.0**-23


def _magnitude(args):
    """sqrt(K) * sum_k |x_k| * (|s|*q_k + |b|) per output: the reference on |x|, |scales|, |biases|."""
    from mlxr.reference import quantized_matmul

    x = args["x"]
    terms = quantized_matmul(mx.abs(x), args["w"], mx.abs(args["scales"]), mx.abs(args["biases"]),
                             args["transpose"], args["group_size"], args["bits"])
    return terms * (max(x.shape[-1], 1) ** 0.5)


TOLERANCES = {
    "float32": Tolerance(atol=3e-45, rtol=2.4e-7, factor=2.0, mtol=2 * _EPS32),
    "float16": Tolerance(atol=6e-8, rtol=1e-3, factor=2.0, mtol=2 * _EPS32),
    "bfloat16": Tolerance(atol=1e-40, rtol=8e-3, factor=2.0, mtol=2 * _EPS32),
    # float64 has no kernel: the fused op runs the reference, i.e. the oracle itself.
    "float64": Tolerance(atol=1e-300, rtol=1e-13, factor=2.0, mtol=2 * 2.0**-52),
}
# Gradients (arbitrated only): d/dx is the same product in the other orientation (a sum over N).
GRAD_TOLERANCES = {
    "float32": Tolerance(atol=3e-45, rtol=2.4e-7, factor=16.0),
    "float16": Tolerance(atol=6e-8, rtol=1e-3, factor=4.0),
    "bfloat16": Tolerance(atol=1e-40, rtol=8e-3, factor=4.0),
    "float64": Tolerance(atol=1e-300, rtol=1e-13, factor=2.0),
}

# Rows above which the CPU kernel switches from GEMV to GEMM (csrc/cpu/quantized_matmul.cpp,
# kDefaultGemvMaxRows); GEMV rows go in blocks of 8 (kGemvRows); the transpose=True GEMM pads
# rows to 32 (kNR).
GEMV_MAX_ROWS = 16


def _round_up(v: int, multiple: int) -> int:
    return -(-v // multiple) * multiple


def _k(statics) -> int:
    return _round_up(statics["k"], statics["group_size"]) if statics["transpose"] else statics["k"]


def _n(statics) -> int:
    return statics["n"] if statics["transpose"] else _round_up(statics["n"], statics["group_size"])


def _weight_shape(main, statics):
    return (_n(statics), _k(statics)) if statics["transpose"] else (_k(statics), _n(statics))


def _quantize(weight, statics):
    """mx.quantize in the weight's dtype (float32 for float64, which MLX cannot quantize)."""
    source = weight.astype(mx.float32) if weight.dtype == mx.float64 else weight
    w, scales, biases = mx.quantize(source, group_size=statics["group_size"], bits=statics["bits"])
    return w, scales.astype(weight.dtype), biases.astype(weight.dtype)


_NATIVE_ZERO_ROWS = ("mx.quantized_matmul (MLX 0.32.4, CPU) dies with SIGFPE when x has zero rows "
                     "(x.shape[-2] == 0, e.g. (0, 64)); the spec's call raises instead of crashing the run")


_MX_F64 = ("mx.quantized_matmul has no float64 path ('[quantized_matmul] only floating types are supported', raised "
           "from the CPU stream); after ~10 such failures in one process later evals deadlocked (MLX's scheduler "
           "waits on active tasks), so the spec's call raises it without calling MLX")


_CUDA_EMPTY_MATMUL = ("mx.quantized_matmul (MLX-CUDA 0.32.4) dies with SIGFPE on an empty x, killing the test "
                      "worker (its `x @ w` segfaults too: the reference returns empty products without it)")


def _call(fn, x, w, scales, biases, transpose, group_size, bits, k=None, n=None):
    if fn is mx.quantized_matmul and x.size == 0 and mx.default_device() == mx.gpu:
        raise RuntimeError(_CUDA_EMPTY_MATMUL)
    if fn is mx.quantized_matmul and x.ndim >= 2 and x.shape[-2] == 0:
        raise RuntimeError(_NATIVE_ZERO_ROWS)
    if fn is mx.quantized_matmul and mx.result_type(x, scales) == mx.float64:
        raise RuntimeError(_MX_F64)
    return fn(x, w, scales=scales, biases=biases, transpose=transpose, group_size=group_size, bits=bits)


def _bad(**over):
    """Arguments for 3 rows of x against a 4-bit, group-64 (40, 64) weight, with ``over`` applied."""
    def build():
        w, scales, biases = mx.quantize(mx.ones((40, 64)), group_size=64, bits=4)
        args = dict(x=mx.ones((3, 64)), w=w, scales=scales, biases=biases, transpose=True, group_size=64, bits=4)
        args.update({k: v() if callable(v) else v for k, v in over.items()})
        return args
    return build


_MX_SCALAR_X = "mx.quantized_matmul raises IndexError('SmallVector out of range.') for a 0-d x"
_MX_SHAPE_MESSAGE = ("mx.quantized_matmul reports an unsupported bits/group_size value as incompatible weight and "
                     "scales shapes")
_MX_HALF_ACCUMULATION = ("mx.quantized_matmul (CPU) accumulates float16/bfloat16 in the input precision: errors of "
                         "several ulp of the output (0.79 at |y| = 174 in float16, 3.4 at |y| = 130 in bfloat16, K = 256)")
_KERNEL_DTYPES = ("float32", "float16", "bfloat16")  # float64 runs the reference (no kernel)
_MIXED = "x=bfloat16,weight=float32"  # bfloat16 activations, float32 scales and biases: a float32 output
_NUMERIC_CHECKS = ("forward", "special_values", "thresholds", "layouts", "autodiff", "vmap", "compile", "purity")

SPEC = OpSpec(
    name="quantized_matmul",
    reference="mlxr.reference:quantized_matmul",
    fused="mlxr.fused:quantized_matmul",
    native="mlx.core:quantized_matmul",
    args=(
        Array("x", shape=lambda main, statics: (*main, _k(statics))),
        Derived("weight", outputs=("w", "scales", "biases"), build=_quantize, shape=_weight_shape),
        Static("transpose", values=(True, False)),
        Static("group_size", values=(64, 32, 128)),
        Static("bits", values=(4, 8)),
        Static("k", values=(64, 1, 7, 32, 33, 100, 256, 257)),
        Static("n", values=(32, 1, 2, 31, 33, 63, 64, 65, 100, 257)),
    ),
    call=_call,
    dtypes={"cpu": (*_KERNEL_DTYPES, "float64", _MIXED), "gpu": (*_KERNEL_DTYPES, _MIXED)},
    tolerances=TOLERANCES,
    grad_tolerances=GRAD_TOLERANCES,
    # Rows of x: GEMV row blocks (8), the GEMV/GEMM switch, the transpose GEMM's 32-row padding.
    thresholds=(8, GEMV_MAX_ROWS, 32),
    ranks=(1, 3),
    max_elements=1 << 10,
    kernel="quantized_matmul",
    magnitude=_magnitude,
    errors=(
        ErrorCase("k_not_multiple_of_group_size",
                  _bad(x=mx.ones((3, 8)), w=lambda: mx.zeros((40, 1), dtype=mx.uint32),
                       scales=lambda: mx.ones((40, 1)), biases=lambda: mx.ones((40, 1)), group_size=32),
                  ValueError, r"^\[quantized_matmul\] .*group_size=32"),
        ErrorCase("x_last_axis_mismatch", _bad(x=mx.ones((3, 65))), ValueError,
                  r"^\[quantized_matmul\] .*[Ll]ast (axis|dimension)"),
        ErrorCase("x_last_axis_mismatch_no_transpose", _bad(x=mx.ones((3, 64)), transpose=False), ValueError,
                  r"^\[quantized_matmul\] .*[Ll]ast (axis|dimension)"),
        ErrorCase("bits_7", _bad(bits=7), ValueError, r"^\[quantized_matmul\] bits must be one of \(4, 8\), got 7"),
        ErrorCase("group_size_48", _bad(group_size=48), ValueError,
                  r"^\[quantized_matmul\] group_size must be one of \(32, 64, 128\), got 48"),
        ErrorCase("scales_wrong_shape",
                  _bad(scales=lambda: mx.ones((40, 2)), biases=lambda: mx.ones((40, 2))), ValueError,
                  r"^\[quantized_matmul\] .*scales.*\(40, ?2\)"),
        ErrorCase("biases_shape_differs_from_scales", _bad(biases=lambda: mx.ones((40, 2))), ValueError,
                  r"^\[quantized_matmul\] [Ss]cales and biases"),
        ErrorCase("biases_missing", _bad(biases=None), ValueError, r"^\[quantized_matmul\] [Bb]iases .*affine"),
        ErrorCase("w_float32", _bad(w=lambda: mx.ones((40, 8))), ValueError, r"^\[quantized_matmul\] .*uint32"),
        ErrorCase("w_int32", _bad(w=lambda: mx.ones((40, 8), dtype=mx.int32)), ValueError,
                  r"^\[quantized_matmul\] .*uint32"),
        ErrorCase("w_1d", _bad(w=lambda: mx.zeros((8,), dtype=mx.uint32), scales=lambda: mx.ones((1,)),
                               biases=lambda: mx.ones((1,))), ValueError, r"^\[quantized_matmul\] w "),
        ErrorCase("scalar_x", _bad(x=mx.array(1.0)), ValueError, r"^\[quantized_matmul\] x must have at least 1"),
        ErrorCase("batch_shapes_do_not_broadcast",
                  _bad(x=mx.ones((3, 2, 64)), w=lambda: mx.zeros((2, 40, 8), dtype=mx.uint32),
                       scales=lambda: mx.ones((2, 40, 1)), biases=lambda: mx.ones((2, 40, 1))),
                  ValueError, r"^\[quantized_matmul\] .*batch shapes"),
        ErrorCase("integer_scales", _bad(scales=lambda: mx.ones((40, 1), dtype=mx.int32),
                                         biases=lambda: mx.ones((40, 1), dtype=mx.int32)),
                  ValueError, r"^\[quantized_matmul\] .*(floating|int32)"),
    ),
    xfails=(
        XFail(_MX_F64, check=_NUMERIC_CHECKS, impl="native", dtype="float64"),
        *(XFail(_MX_HALF_ACCUMULATION, check=("forward", "special_values", "thresholds", "layouts", "vmap", "compile"),
                impl="native", dtype=d) for d in ("float16", "bfloat16")),
        *(XFail(_MX_HALF_ACCUMULATION, check="autodiff", impl="native", dtype=d, variant=v)
          for d in ("float16", "bfloat16") for v in ("vjp", "jvp")),
        XFail(_NATIVE_ZERO_ROWS, check=("forward", "vmap"), impl="native"),
        XFail(_MX_SCALAR_X, check="errors", impl="native", variant="scalar_x"),
        XFail("mx.quantized_matmul leaves the message to broadcast_shapes: '[broadcast_shapes] Shapes (3) and (2) "
              "cannot be broadcast.'", check="errors", impl="native", variant="batch_shapes_do_not_broadcast"),
        XFail(_MX_SHAPE_MESSAGE, check="errors", impl="native", variant="bits_7"),
        XFail(_MX_SHAPE_MESSAGE, check="errors", impl="native", variant="group_size_48"),
        XFail("mx.quantized_matmul checks the batch shapes of w and scales before w's rank: "
              "'Weight and scales should have the same batch shape'", check="errors", impl="native", variant="w_1d"),
    ),
)
