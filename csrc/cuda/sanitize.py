"""A small run over every CUDA kernel path of one op, for compute-sanitizer (memcheck, racecheck).

Usage: python sanitize.py OP (rms_norm, rope, softmax, swiglu, layer_norm, add_rms_norm,
quantized_matmul). Prints one line per case and exits non-zero if any output is off (max error
over max |reference|); kept small because every kernel runs instrumented. Each op's cases
cover its kernel configurations, layouts and a donated (in-place) input where it has one.
"""

import sys

import mlx.core as mx
import numpy as np

import mlxr.fused as fused
from mlxr.reference import quantized_matmul as qmm_reference
from mlxr.reference import rms_norm as rms_norm_reference
from mlxr.reference import rope as rope_reference

DTYPES = (mx.float32, mx.float16, mx.bfloat16)
TOL = {mx.float32: 1e-5, mx.float16: 2e-3, mx.bfloat16: 1.6e-2}
# The GPU; without one (a CPU-only MLX) the script still runs its checks, on the CPU kernels.
GPU = {"stream": mx.gpu if mx.is_available(mx.gpu) else mx.cpu}


def as_np(a):
    return np.array(a.astype(mx.float32)).astype(np.float64)


def on_cpu(a, dtype):
    """The same values as a fresh CPU-side array (references run on the CPU)."""
    return mx.array(np.array(a.astype(mx.float32))).astype(dtype)


def inputs(cases, dtype, scale=1.0):
    """(name, x) per case: a random base array of the case's shape through its view."""
    for name, (shape, view) in cases.items():
        base = (scale * mx.random.normal(shape, key=mx.random.key(1))).astype(dtype)
        yield name, view(base) if view else base


ROW_CASES = {  # warp / block / looped rows, 16-byte and strided elements
    "warp_tail": ((9, 7), None),
    "warp": ((5, 1000), None),
    "block": ((3, 8192), None),
    "looped": ((2, 70001), None),
    "transposed": ((77, 45), lambda a: a.T),
    "strided": ((20, 66), lambda a: a[:, ::2]),
    "strided_long": ((2, 2 * 40000), lambda a: a[:, ::2]),
}


def rms_norm_cases(dtype):
    cases = {
        "warp_tail": ((9, 7), None),
        "warp_vec": ((5, 33), None),
        "rows_64": ((3, 1500), None),
        "rows_regs": ((3, 4097), None),
        "rows_loop": ((2, 70001), None),
        "cols": ((77, 45), lambda a: a.T),
        "cols_smem": ((2, 64, 48), lambda a: a.transpose(0, 2, 1)),
        "strided": ((20, 66), lambda a: a[:, ::2]),
        "reversed": ((20, 41), lambda a: a[::-1, ::-1]),
    }
    for name, x in inputs(cases, dtype):
        w = mx.random.normal((x.shape[-1],), key=mx.random.key(2)).astype(dtype)
        for weight in (w, None):
            with mx.stream(mx.cpu):
                wc = None if weight is None else on_cpu(weight, dtype)
                ref = as_np(rms_norm_reference(on_cpu(x, dtype), wc, 1e-5))
            got = [fused.rms_norm(x, weight, 1e-5, **GPU), fused.rms_norm(x * 1, weight, 1e-5, **GPU)]
            yield f"{name} {'w' if weight is not None else '-'}", [(g, ref) for g in got]


def rope_cases(dtype):
    cases = {  # name: (base shape, view, dims); vec and scalar units, pass-through, layouts
        "vec": ((2, 4, 9, 128), None, 128),
        "vec_partial": ((2, 3, 5, 136), None, 64),
        "scalar_odd": ((2, 3, 5, 41), None, 34),
        "bthd_view": ((2, 9, 4, 64), lambda a: a.transpose(0, 2, 1, 3), 64),
        "strided": ((2, 3, 5, 80), lambda a: a[..., ::2], 40),
        "misaligned": ((2, 3, 5, 72), lambda a: a[..., 1:65], 64),
        "many_heads": ((1, 64, 33, 64), None, 64),
    }
    for name, x in inputs({k: v[:2] for k, v in cases.items()}, dtype):
        dims = cases[name][2]
        for trad in (False, True):
            kw = dict(traditional=trad, base=10000.0, scale=1.0, offset=mx.array([3, 70][: x.shape[0]]))
            with mx.stream(mx.cpu):
                ref = as_np(rope_reference(on_cpu(x, dtype), dims, **kw))
            got = [fused.rope(x, dims, **kw, **GPU), fused.rope(x * 1, dims, **kw, **GPU)]
            yield f"{name} {'trad' if trad else 'half'}", [(g, ref) for g in got]
    # One offset: an int (to the kernel by value), and a waited one-element view of a 16-byte
    # GPU result (device memory: as the array, its buffer untouched by the host). Small, as the
    # others: at ~600 rad CUDA's and the CPU's float32 sines differ by 1.5e-5 relative.
    view = (mx.arange(4, dtype=mx.int32) * 3 + 1)[2]  # 7
    mx.eval(view)
    mx.eval(view)
    for name, x in inputs({"vec": cases["vec"][:2]}, dtype):
        kw = dict(traditional=False, base=10000.0, scale=1.0)
        with mx.stream(mx.cpu):
            ref = as_np(rope_reference(on_cpu(x, dtype), 128, offset=7, **kw))
        got = [fused.rope(x, 128, offset=7, **kw, **GPU), fused.rope(x, 128, offset=view, **kw, **GPU)]
        yield f"{name} one offset", [(g, ref) for g in got]


# Softmax over a transposed view with at least as many tiles (32 lanes' rows) as an H100 has
# SMs: the columns kernel, 2-4 rows a lane and 1.
SOFTMAX_COLS_CASES = {
    "cols": ((40, 16896), lambda a: a.T),
    "cols_one_row_a_lane": ((33, 8449), lambda a: a.T),
}


def softmax_cases(dtype):
    for name, x in inputs({**ROW_CASES, **SOFTMAX_COLS_CASES}, dtype, 4.0):
        # float64 in numpy: MLX's CPU float64 sum is only about float32-accurate.
        x64 = as_np(x)
        ref = np.exp(x64 - x64.max(-1, keepdims=True))
        ref /= ref.sum(-1, keepdims=True)
        yield name, [(fused.softmax(x, **GPU), ref), (fused.softmax(x * 1, **GPU), ref)]


def swiglu_cases(dtype):
    cases = {  # name: (shape, gate view, up view)
        "vec": ((33, 64), lambda a: a, lambda a: a),
        "flat_tail": ((7, 9), lambda a: a, lambda a: a),
        "misaligned": ((10, 16), lambda a: a.reshape(-1)[1:], lambda a: a.reshape(-1)[1:]),
        "transposed": ((24, 40), lambda a: a.T, lambda a: a.T),
        "broadcast": ((24, 40), lambda a: a, lambda a: mx.broadcast_to(a[:1], a.shape)),
        "reversed": ((24, 40), lambda a: a[::-1, ::-1], lambda a: a),
    }
    for name, (shape, gv, uv) in cases.items():
        g = gv((4 * mx.random.normal(shape, key=mx.random.key(1))).astype(dtype))
        u = uv(mx.random.normal(shape, key=mx.random.key(2)).astype(dtype))
        g64, u64 = as_np(g), as_np(u)
        ref = g64 / (1 + np.exp(-g64)) * u64
        yield name, [(fused.swiglu(g, u, **GPU), ref), (fused.swiglu(g * 1, u, **GPU), ref)]


def layer_norm_cases(dtype):
    for name, x in inputs(ROW_CASES, dtype, 4.0):
        w = mx.random.normal((x.shape[-1],), key=mx.random.key(2)).astype(dtype)
        b = w[::-1]
        x64 = as_np(x)
        c = x64 - x64.mean(-1, keepdims=True)
        ref = c / np.sqrt((c * c).mean(-1, keepdims=True) + 1e-5) * as_np(w) + as_np(b)
        got = [fused.layer_norm(x, w, b, 1e-5, **GPU), fused.layer_norm(x * 1, w, b, 1e-5, **GPU)]
        yield name, [(g, ref) for g in got]


def add_rms_norm_cases(dtype):
    for name, x in inputs(ROW_CASES, dtype, 4.0):
        w = mx.random.normal((x.shape[-1],), key=mx.random.key(2)).astype(dtype)
        r = x[::-1]
        normed, h = fused.add_rms_norm(x, r, w, 1e-5, **GPU)
        h64 = as_np(h)
        ref = h64 / np.sqrt((h64 * h64).mean(-1, keepdims=True) + 1e-5) * as_np(w)
        with mx.stream(mx.cpu):
            h_ref = as_np(on_cpu(x, mx.float32) + on_cpu(r, mx.float32))
        yield name, [(normed, ref), (h, h_ref)]


def quantized_matmul_cases(dtype):
    # (m, rows of w, codes per row, transpose): GEMV (1, 4 and 8-row blocks) and GEMM paths,
    # N and K tails, strided x, 4 and 8 bits.
    cases = [(1, 72, 256, True), (5, 33, 128, True), (13, 100, 64, True), (70, 72, 256, True),
             (1, 72, 256, False), (7, 33, 64, False), (70, 100, 128, False)]
    for bits in (4, 8):
        for m, rows, cols, transpose in cases:
            w = 0.1 * mx.random.normal((rows, cols), key=mx.random.key(3)) + 0.03
            wq, s, b = mx.quantize(w.astype(dtype), group_size=32, bits=bits)
            k = cols if transpose else rows
            x = mx.random.normal((m, 2 * k), key=mx.random.key(4)).astype(dtype)
            x = x[:, ::2] if m == 13 else x[:, :k]  # strided rows / 16-byte aligned rows
            with mx.stream(mx.cpu):
                wc = mx.array(np.array(wq))  # packed words: not through float32
                ref = as_np(qmm_reference(on_cpu(x, mx.float64), wc, on_cpu(s, mx.float64), on_cpu(b, mx.float64),
                                          transpose, 32, bits))
            y = fused.quantized_matmul(x, wq, s, b, transpose, 32, bits, **GPU)
            yield f"{bits}bit m={m} {'T' if transpose else 'N'} {rows}x{cols}", [(y, ref)]


OPS = {
    "rms_norm": (rms_norm_cases, 1),
    "rope": (rope_cases, 1),
    "softmax": (softmax_cases, 1),
    "swiglu": (swiglu_cases, 1),
    # Two roundings to a half dtype (normalised value, then the weight product or h).
    "layer_norm": (layer_norm_cases, 2),
    "add_rms_norm": (add_rms_norm_cases, 2),
    "quantized_matmul": (quantized_matmul_cases, 1),
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in OPS:
        sys.exit(f"usage: python sanitize.py {{{','.join(OPS)}}}")
    cases, tol_scale = OPS[sys.argv[1]]
    bad = 0
    for dtype in DTYPES:
        for name, pairs in cases(dtype):
            errs = [np.abs(as_np(got) - ref).max() / max(np.abs(ref).max(), 1e-30) for got, ref in pairs]
            ok = max(errs) < tol_scale * TOL[dtype]
            bad += not ok
            print(f"{name:<24}{str(dtype):<16} max_rel={max(errs):.2e} {'ok' if ok else 'BAD'}")
    print("sanitize run:", "FAILED" if bad else "all ok")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
