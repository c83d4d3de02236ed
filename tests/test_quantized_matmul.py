"""The fused quantized_matmul extension: numerics against a float64 oracle and against
mx.quantized_matmul, layouts, transforms, dispatch and bad input.

Tolerances: the quantized weights are exact, so the only error is float32 accumulation plus
one rounding to the output dtype. The kernels form s * sum(x*q) + b * sum(x) per group, so
the terms whose rounding matters are x_k * (|s|*q_k + |b|) (s*q and b may cancel in w_hat).
Rounding errors of a K-term float32 sum behave like a random walk over partial sums of
size ~sqrt(j) * rms(term), giving |err| ~ eps32 * sqrt(K) * ||terms||_2 / sqrt(2) for a
plain sequential sum (the worst order any kernel path uses). Every check is

    |y - oracle| <= 2 * eps32 * sqrt(K) * ||x_k * (|s|*q_k + |b|)||_2 + u_out * |oracle|

which is ~1e-4 of |y| at K=4096: one wrong code (~1e-2 of |y|) fails it.
"""

import os
import subprocess
import sys

import mlx.core as mx
import numpy as np
import pytest

import mlxr.fused as fused
from mlxr import _ext
from mlxr.reference import quantized_matmul as reference
from mlxr.reference.quantized_matmul import dequantize

EPS32 = float(np.finfo(np.float32).eps)
EPS_OUT = {mx.float32: 0.0, mx.float16: 2.0**-11, mx.bfloat16: 2.0**-8}


def rand(shape, dtype=mx.float32, key=0, scale=1.0):
    a = (mx.random.normal(shape, key=mx.random.key(key)) * scale).astype(dtype)
    mx.eval(a)
    return a


def quantized(rows, cols, group_size=64, bits=4, dtype=mx.float32, key=100):
    """mx.quantize of a (rows, cols) matrix with a mean offset, so biases do not vanish."""
    w = rand((rows, cols), mx.float32, key, 0.1) + 0.03
    wq, s, b = mx.quantize(w.astype(dtype), group_size=group_size, bits=bits)
    mx.eval(wq, s, b)
    return wq, s, b


def to64(a):
    return np.array(a.astype(mx.float32)).astype(np.float64)


def oracle_and_bound(x, wq, s, b, transpose, group_size, bits):
    """float64 result and ||x_k * (|s|*q_k + |b|)||_2 over k, per output element (on the CPU:
    test_quantized_matmul_cuda.py reuses it, and MLX-CUDA has no float64)."""
    with mx.stream(mx.cpu):
        return _oracle_and_bound(x, wq, s, b, transpose, group_size, bits)


def _oracle_and_bound(x, wq, s, b, transpose, group_size, bits):
    out_dtype = mx.result_type(x, s)
    # Inputs as the kernel sees them: x, scales and biases rounded to the output dtype.
    xo, so, bo = (a.astype(out_dtype) for a in (x, s, b))
    y = reference(xo.astype(mx.float64), wq, so.astype(mx.float64), bo.astype(mx.float64), transpose, group_size, bits)
    q = dequantize(wq, mx.ones_like(s), mx.zeros_like(b), group_size, bits, mx.float64)
    abs_w = to64(mx.abs(so)).repeat(group_size, axis=-1) * np.array(q) + to64(mx.abs(bo)).repeat(group_size, axis=-1)
    if transpose:
        abs_w = abs_w.T
    l2 = np.sqrt(to64(xo) ** 2 @ abs_w**2)
    return np.array(y), l2


def accumulation_tol(k, l2):
    return 2 * EPS32 * np.sqrt(k) * l2


def assert_matches_oracle(y, x, wq, s, b, transpose=True, group_size=64, bits=4):
    expected, l2 = oracle_and_bound(x, wq, s, b, transpose, group_size, bits)
    assert y.shape == expected.shape
    err = np.abs(to64(y) - expected)
    tol = accumulation_tol(x.shape[-1], l2) + EPS_OUT[y.dtype] * np.abs(expected)
    worst = np.unravel_index(np.argmax(err - tol), err.shape) if err.size else ()
    assert np.all(err <= tol), f"error {err[worst]:.3e} > tol {tol[worst]:.3e} at {worst}"


def run_fused(*args, **kwargs):
    with fused.observe() as seen:
        y = fused.quantized_matmul(*args, **kwargs)
        mx.eval(y)
    return y, seen


CASES = [(bits, gs, t) for bits in (4, 8) for gs in (32, 64, 128) for t in (True, False)]


GEMV_MAX_ROWS = _ext.quantized_matmul_gemv_max_rows()


# Row counts around every internal block size and the GEMV/GEMM switch (±1).
@pytest.mark.parametrize("bits,group_size,transpose", CASES)
@pytest.mark.parametrize("m", [1, 2, 3, 5, 8, 9, GEMV_MAX_ROWS, GEMV_MAX_ROWS + 1, 40])
def test_matches_oracle_and_runs_fused(bits, group_size, transpose, m):
    n, k = (72, 256) if transpose else (256, 72)
    wq, s, b = quantized(*((n, k) if transpose else (k, n)), group_size, bits)
    x = rand((m, k), key=m)
    y, seen = run_fused(x, wq, s, b, transpose, group_size, bits)
    variant = "gemv" if m <= GEMV_MAX_ROWS else "gemm"
    assert seen.kernels == {f"cpu:quantized_matmul_{variant}_float32": 1} and not seen.fallbacks
    assert y.dtype == mx.float32
    assert_matches_oracle(y, x, wq, s, b, transpose, group_size, bits)


@pytest.mark.parametrize("bits,group_size,transpose", CASES)
def test_matches_mx_quantized_matmul(bits, group_size, transpose):
    n, k = (96, 512) if transpose else (512, 96)
    wq, s, b = quantized(*((n, k) if transpose else (k, n)), group_size, bits)
    for m in (1, 6, 24):
        x = rand((m, k), key=m + 7)
        y = fused.quantized_matmul(x, wq, s, b, transpose, group_size, bits)
        expected = mx.quantized_matmul(x, wq, s, b, transpose, group_size, bits)
        # MLX accumulates in float32 in another order: both sit within the oracle's tolerance.
        _, l2 = oracle_and_bound(x, wq, s, b, transpose, group_size, bits)
        assert np.all(np.abs(to64(y) - to64(expected)) <= 2 * accumulation_tol(k, l2))


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("m", [1, 4, 12])
def test_half_precision(dtype, transpose, m):
    n, k = (48, 128) if transpose else (128, 48)
    wq, s, b = quantized(*((n, k) if transpose else (k, n)), 32, 4, dtype)
    assert s.dtype == dtype
    x = rand((m, k), dtype, key=m)
    y, seen = run_fused(x, wq, s, b, transpose, 32, 4)
    assert y.dtype == dtype
    assert seen.ran_kernel("cpu", "quantized_matmul") and all(name.endswith(str(dtype).split(".")[-1]) for name in seen.kernels)
    assert_matches_oracle(y, x, wq, s, b, transpose, 32, 4)
    # Rounded once from float32, as the reference does: at most one output ulp apart.
    r = to64(reference(x, wq, s, b, transpose, 32, 4))
    np.testing.assert_allclose(to64(y), r, rtol=2 * EPS_OUT[dtype], atol=1e-3 * np.abs(r).max())


def test_dtype_promotion():
    wq, s, b = quantized(40, 64, 64, 4)
    x16 = rand((3, 64), mx.float16)
    y = fused.quantized_matmul(x16, wq, s, b)  # float16 x, float32 scales -> float32
    assert y.dtype == mx.float32
    assert_matches_oracle(y, x16, wq, s, b)
    wq16, s16, b16 = quantized(40, 64, 64, 4, mx.bfloat16)
    y = fused.quantized_matmul(rand((3, 64)), wq16, s16, b16)
    assert y.dtype == mx.float32
    xi = mx.arange(192, dtype=mx.int32).reshape(3, 64) % 7 - 3  # integer x promotes, as in MLX
    y = fused.quantized_matmul(xi, wq, s, b)
    assert y.dtype == mx.float32
    assert_matches_oracle(y, xi, wq, s, b)


@pytest.mark.parametrize("n", [1, 7, 31, 33, 63, 100])
@pytest.mark.parametrize("m", [1, 3, 11])
def test_odd_output_sizes_transpose(n, m):
    # transpose=True: N is the number of rows of w and can be anything.
    wq, s, b = quantized(n, 64, 64, 4)
    x = rand((m, 64), key=n)
    y, _ = run_fused(x, wq, s, b)
    assert y.shape == (m, n)
    assert_matches_oracle(y, x, wq, s, b)


@pytest.mark.parametrize("k", [1, 5, 32, 33])
@pytest.mark.parametrize("m", [1, 10])
def test_odd_inner_sizes_no_transpose(k, m):
    # transpose=False: K is the number of rows of w; N is a multiple of group_size.
    wq, s, b = quantized(k, 32, 32, 8)
    x = rand((m, k), key=k)
    y, _ = run_fused(x, wq, s, b, False, 32, 8)
    assert y.shape == (m, 32)
    assert_matches_oracle(y, x, wq, s, b, False, 32, 8)


@pytest.mark.parametrize("group_size", [32, 64, 128])
def test_k_equals_group_size(group_size):
    wq, s, b = quantized(20, group_size, group_size, 4)
    for m in (1, 9):
        x = rand((m, group_size), key=m)
        assert_matches_oracle(fused.quantized_matmul(x, wq, s, b, True, group_size, 4), x, wq, s, b, True, group_size, 4)


def exactly_summable(n, k, group_size, m, dtype, key):
    """Random codes, scales in {1/4 .. 2}, biases and x small multiples of 1/4 and 1: every
    w_hat, product and partial sum is exact in float32, so any summation order gives the
    float64 result, and one misplaced code, scale or x lane shows as a mismatch."""
    rng = np.random.default_rng(key)
    wq = mx.array(rng.integers(0, 2**32, size=(n, k // 8), dtype=np.uint32))
    s = mx.array(rng.choice([0.25, 0.5, 1.0, 2.0], size=(n, k // group_size)).astype(np.float32)).astype(dtype)
    b = mx.array((rng.integers(-16, 16, size=(n, k // group_size)) / 4).astype(np.float32)).astype(dtype)
    x = mx.array(rng.integers(-8, 9, size=(m, k)).astype(np.float32)).astype(dtype)
    return x, wq, s, b


# The decode paths (1-2 rows) per group size and output size: 64-row tasks of 4-row passes
# plus tail rows (70), tail rows only (3); K spans several groups and 128-code prefetch steps.
@pytest.mark.parametrize("dtype", [mx.float32, mx.float16, mx.bfloat16])
@pytest.mark.parametrize("group_size", [32, 64, 128])
@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("n", [3, 70])
def test_decode_is_exact_on_exactly_summable_inputs(dtype, group_size, m, n):
    x, wq, s, b = exactly_summable(n, 512, group_size, m, dtype, key=group_size + 7 * m + n)
    y, seen = run_fused(x, wq, s, b, True, group_size, 4)
    name = str(dtype).split(".")[-1]
    assert seen.kernels == {f"cpu:quantized_matmul_gemv_{name}": 1} and not seen.fallbacks
    expected = reference(x.astype(mx.float64), wq, s.astype(mx.float64), b.astype(mx.float64), True, group_size, 4)
    np.testing.assert_array_equal(to64(y), to64(expected.astype(mx.float32).astype(dtype)))


@pytest.mark.parametrize("shape", [(64,), (2, 3, 64), (2, 1, 5, 64), (0, 64), (3, 0, 64)])
def test_leading_shapes(shape):
    wq, s, b = quantized(24, 64, 64, 4)
    x = rand(shape, key=len(shape))
    y = fused.quantized_matmul(x, wq, s, b)
    assert y.shape == shape[:-1] + (24,)
    if x.size:
        assert_matches_oracle(y, x, wq, s, b)
        np.testing.assert_allclose(to64(y), to64(mx.quantized_matmul(x, wq, s, b)), rtol=1e-5, atol=1e-5)


LAYOUTS = {
    "transposed": lambda a: mx.swapaxes(a, -1, -2),
    "strided": lambda a: a[..., ::2],
    "reversed": lambda a: a[::-1, ::-1],
    "broadcast": lambda a: mx.broadcast_to(a[:1], a.shape),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("rows", [3, 17])
@pytest.mark.parametrize("transpose", [True, False])
def test_x_layouts(layout, rows, transpose):
    k = 64
    base = rand((k, rows) if layout == "transposed" else (rows, 2 * k if layout == "strided" else k), key=rows)
    x = LAYOUTS[layout](base)
    assert x.shape == (rows, k)
    wq, s, b = quantized(*((40, k) if transpose else (k, 64)), 32, 4)
    y = fused.quantized_matmul(x, wq, s, b, transpose, 32, 4)
    assert_matches_oracle(y, mx.array(np.array(x)), wq, s, b, transpose, 32, 4)


def test_non_contiguous_weights_and_scales():
    wq, s, b = quantized(80, 128, 64, 4)
    # Every other row of w (with its scales/biases): strided views, gathered by the kernel.
    w2, s2, b2 = wq[::2], s[::2], b[::2]
    x = rand((5, 128))
    y = fused.quantized_matmul(x, w2, s2, b2)
    assert_matches_oracle(y, x, mx.array(np.array(w2)), mx.array(np.array(s2)), mx.array(np.array(b2)))
    # Broadcast scales (stride 0) are a legal, if odd, input.
    sb = mx.broadcast_to(s[:1], s.shape)
    y = fused.quantized_matmul(x, wq, sb, b)
    assert_matches_oracle(y, x, wq, mx.array(np.array(sb)), b)


def test_large_decode_and_prefill_shapes():
    # Sizes where tiles, tasks and K-panels all have full and tail parts.
    wq, s, b = quantized(300, 1024, 64, 4)
    for m in (1, 7, 70):
        x = rand((m, 1024), key=m)
        assert_matches_oracle(fused.quantized_matmul(x, wq, s, b), x, wq, s, b)
    wq, s, b = quantized(1000, 320, 64, 8)
    for m in (1, 70):
        x = rand((m, 1000), key=m)
        assert_matches_oracle(fused.quantized_matmul(x, wq, s, b, False, 64, 8), x, wq, s, b, False, 64, 8)


def test_float64_and_batched_w_use_the_reference():
    wq, s, b = quantized(16, 64, 64, 4)
    x = rand((3, 64)).astype(mx.float64)
    y, seen = run_fused(x, wq, s, b)
    assert y.dtype == mx.float64 and seen.fallbacks == {"cpu:quantized_matmul": 1} and not seen.kernels
    np.testing.assert_array_equal(np.array(y), np.array(reference(x, wq, s, b)))
    ws, ss, bs = (mx.stack([a, a * 1]) if a.dtype != mx.uint32 else mx.stack([a, a]) for a in (wq, s, b))
    xb = rand((2, 3, 64))
    y, seen = run_fused(xb, ws, ss, bs)
    assert seen.fallbacks == {"cpu:quantized_matmul": 1}
    np.testing.assert_allclose(np.array(y), np.array(mx.quantized_matmul(xb, ws, ss, bs)), rtol=1e-5, atol=1e-5)
    # A 2-D x broadcasts against w's batch (MLX 0.32.4's mx.quantized_matmul returns only batch 0 here).
    y = fused.quantized_matmul(xb[0], ws, ss, bs)
    assert y.shape == (2, 3, 16)
    np.testing.assert_array_equal(np.array(y), np.array(reference(xb[0], ws, ss, bs)))


def test_special_values_stay_in_their_row():
    wq, s, b = quantized(8, 64, 64, 4)
    x = rand((3, 64))
    x = mx.where(mx.arange(64) == 5, mx.array([0.0, float("nan"), float("inf")])[:, None], x)
    y = np.array(fused.quantized_matmul(x, wq, s, b))
    assert np.all(np.isfinite(y[0])) and np.all(np.isnan(y[1]))
    assert not np.any(np.isfinite(y[2]))


@pytest.mark.parametrize("transpose", [True, False])
def test_infinite_and_huge_x_match_the_dequantised_product(transpose):
    # The GEMV paths factor s * sum(x*q) + b * sum(x): an infinite x_k meeting q_k = 0 would
    # give NaN where x_k * w_hat_k is +-inf, so such x (and huge x) takes the GEMM path.
    wq, s, b = quantized(64, 64, 32, 4)
    x = rand((2, 64))
    x = mx.where((mx.arange(64) == 5) & (mx.arange(2)[:, None] == 0), float("inf"), x)
    x = mx.where(mx.arange(2)[:, None] == 1, x * 2.0**110, x)
    y, seen = run_fused(x, wq, s, b, transpose=transpose, group_size=32)
    expected = np.array(reference(x.astype(mx.float64), wq, s.astype(mx.float64), b.astype(mx.float64),
                                  transpose, 32, 4))
    # Same NaN / +-inf / finite class everywhere (NaN only where w_hat_k is exactly 0).
    np.testing.assert_array_equal(to64(y)[0], expected[0])
    assert_matches_oracle(y[1:], x[1:], wq, s, b, transpose, 32, 4)
    assert seen.kernels == {"cpu:quantized_matmul_gemm_float32": 1}
    _, seen = run_fused(rand((2, 64)), wq, s, b, transpose=transpose, group_size=32)
    assert seen.kernels == {"cpu:quantized_matmul_gemv_float32": 1}


def test_deterministic_and_inputs_untouched():
    wq, s, b = quantized(200, 256, 64, 4)
    x = rand((12, 256))
    before = np.array(x)
    a, c = fused.quantized_matmul(x, wq, s, b), fused.quantized_matmul(x, wq, s, b)
    np.testing.assert_array_equal(np.array(a), np.array(c))
    np.testing.assert_array_equal(np.array(x), before)


def _subprocess_result(env):
    code = (
        "import mlx.core as mx, numpy as np, mlxr.fused as f, mlxr._ext as e;"
        "w=mx.random.normal((300,512),key=mx.random.key(1));q,s,b=mx.quantize(w,group_size=64,bits=4);"
        "r=[];"
        "[r.append(np.array(f.quantized_matmul(mx.random.normal((m,512),key=mx.random.key(m)).astype(t),q,s.astype(t),b.astype(t),tr).astype(mx.float32)))"
        " for m in (1,5,20) for t in (mx.float32,mx.bfloat16) for tr in (True,)];"
        "q8,s8,b8=mx.quantize(w,group_size=32,bits=8);"
        "[r.append(np.array(f.quantized_matmul(mx.random.normal((m,300),key=mx.random.key(m)),q8,s8,b8,False,32,8))) for m in (1,20)];"
        "np.save(__import__('sys').stdout.buffer, np.concatenate([a.ravel() for a in r]))"
    )
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, check=True)
    import io

    return np.load(io.BytesIO(out.stdout))


def test_thread_count_does_not_change_results():
    # Tasks own disjoint outputs and compute them identically: bitwise equal across counts.
    np.testing.assert_array_equal(_subprocess_result({"MLXR_NUM_THREADS": "1"}), _subprocess_result({"MLXR_NUM_THREADS": "2"}))


def test_isa_paths_agree():
    results = [_subprocess_result({"MLXR_CPU_ISA": isa}) for isa in ("baseline", "avx2", "avx512")]
    for r in results[1:]:
        # Same algorithm, different FMA contraction per ISA: float32 round-off only.
        np.testing.assert_allclose(r, results[0], rtol=1e-4, atol=1e-4 * np.abs(results[0]).max())


# ---------------------------------------------------------------- transforms


@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("m", [2, 12])
def test_vjp_matches_reference(transpose, m):
    n, k = (40, 128) if transpose else (128, 40)
    wq, s, b = quantized(*((n, k) if transpose else (k, n)), 32, 4)
    x, ct = rand((m, k), key=1), rand((m, n), key=2)

    def f(impl):
        return lambda a, sc, bi: impl(a, wq, sc, bi, transpose, 32, 4)

    with fused.observe() as seen:
        _, g_fused = mx.vjp(f(fused.quantized_matmul), [x, s, b], [ct])
        mx.eval(g_fused)
    assert seen.ran_kernel("cpu", "quantized_matmul")
    _, g_ref = mx.vjp(f(reference), [x.astype(mx.float64), s.astype(mx.float64), b.astype(mx.float64)], [ct.astype(mx.float64)])
    _, g_mlx = mx.vjp(f(mx.quantized_matmul), [x, s, b], [ct])
    for got, want, theirs in zip(g_fused, g_ref, g_mlx):
        scale = np.abs(np.array(want)).max()
        np.testing.assert_allclose(to64(got), np.array(want), rtol=1e-5, atol=1e-5 * scale)
        np.testing.assert_allclose(to64(got), to64(theirs), rtol=1e-4, atol=1e-5 * scale)


def test_x_grad_is_the_fused_transposed_op():
    wq, s, b = quantized(48, 128, 64, 4)
    x = rand((3, 128))
    with fused.observe() as seen:
        g = mx.grad(lambda a: fused.quantized_matmul(a, wq, s, b).sum())(x)
        mx.eval(g)
    assert sum(seen.kernels.values()) == 1 and not seen.fallbacks  # forward is dead code
    expected = mx.quantized_matmul(mx.ones((3, 48)), wq, s, b, transpose=False)
    np.testing.assert_allclose(np.array(g), np.array(expected), rtol=1e-5, atol=1e-5)


def test_grad_wrt_w_raises():
    wq, s, b = quantized(16, 64, 64, 4)
    x = rand((2, 64))
    with pytest.raises(ValueError, match=r"\[quantized_matmul\] the quantized weights w are not differentiable"):
        mx.grad(lambda w: fused.quantized_matmul(x, w, s, b).sum())(wq)
    with pytest.raises(ValueError, match=r"\[quantized_matmul\] the quantized weights w are not differentiable"):
        mx.jvp(lambda w: fused.quantized_matmul(x, w, s, b), [wq], [wq])


def test_jvp_matches_reference():
    wq, s, b = quantized(24, 64, 32, 8)
    x, tx, ts, tb = rand((5, 64), key=1), rand((5, 64), key=2), rand(s.shape, key=3), rand(b.shape, key=4)

    def f(impl):
        return lambda a, sc, bi: impl(a, wq, sc, bi, True, 32, 8)

    for primals, tangents in [([x, s, b], [tx, ts, tb]), ([x, s, b], [tx, mx.zeros_like(s), mx.zeros_like(b)])]:
        _, (t_fused,) = mx.jvp(f(fused.quantized_matmul), primals, tangents)
        _, (t_ref,) = mx.jvp(f(reference), [p.astype(mx.float64) for p in primals], [t.astype(mx.float64) for t in tangents])
        np.testing.assert_allclose(to64(t_fused), np.array(t_ref), rtol=1e-5, atol=1e-5 * np.abs(np.array(t_ref)).max())
    _, (t_x,) = mx.jvp(lambda a: fused.quantized_matmul(a, wq, s, b, True, 32, 8), [x], [tx])
    assert_matches_oracle(t_x, tx, wq, s, b, True, 32, 8)


def test_second_order_grad_wrt_x():
    wq, s, b = quantized(16, 64, 64, 4)
    x = rand((2, 64))

    def loss(impl):
        return lambda a: mx.grad(lambda c: (impl(c, wq, s, b) ** 3).sum())(a).sum()

    g = mx.grad(loss(fused.quantized_matmul))(x)
    r = mx.grad(loss(reference))(x)
    np.testing.assert_allclose(np.array(g), np.array(r), rtol=1e-4, atol=1e-4 * np.abs(np.array(r)).max())


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("transpose", [True, False])
def test_vmap_over_x_stays_fused(axis, transpose):
    wq, s, b = quantized(*((24, 64) if transpose else (64, 32)), 32, 4)
    x = rand((3, 4, 64) if axis < 2 else (3, 64, 4), key=axis)
    with fused.observe() as seen:
        got = mx.vmap(lambda a: fused.quantized_matmul(a, wq, s, b, transpose, 32, 4), in_axes=axis)(x)
        mx.eval(got)
    assert seen.ran_kernel("cpu", "quantized_matmul") and not seen.fallbacks
    for i in range(x.shape[axis]):
        xi = mx.take(x, i, axis=axis)
        assert_matches_oracle(got[i], xi, wq, s, b, transpose, 32, 4)


def test_vmap_over_scales_uses_the_reference():
    wq, s, b = quantized(24, 64, 32, 4)
    x = rand((2, 64))
    ss = mx.stack([s, 2 * s])
    got = mx.vmap(lambda sc: fused.quantized_matmul(x, wq, sc, b, True, 32, 4))(ss)
    for i in range(2):
        np.testing.assert_allclose(np.array(got[i]), np.array(reference(x, wq, ss[i], b, True, 32, 4)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shapeless", [False, True])
def test_compile(shapeless):
    wq, s, b = quantized(40, 128, 64, 4)
    f = mx.compile(lambda a: fused.quantized_matmul(a, wq, s, b), shapeless=shapeless)
    for rows in (2, 11):
        x = rand((rows, 128), key=rows)
        assert_matches_oracle(f(x), x, wq, s, b)


def test_grad_through_compile():
    wq, s, b = quantized(40, 128, 64, 4)
    x = rand((4, 128))
    g = mx.compile(mx.grad(lambda a: (fused.quantized_matmul(a, wq, s, b) ** 2).sum()))(x)
    r = mx.grad(lambda a: (reference(a, wq, s, b) ** 2).sum())(x)
    np.testing.assert_allclose(np.array(g), np.array(r), rtol=1e-5, atol=1e-5 * np.abs(np.array(r)).max())


def test_streams_and_devices():
    wq, s, b = quantized(16, 64, 64, 4)
    x = rand((2, 64))
    expected = np.array(fused.quantized_matmul(x, wq, s, b))
    for stream in (mx.new_stream(mx.cpu), mx.cpu, mx.Device(mx.cpu)):
        np.testing.assert_array_equal(np.array(fused.quantized_matmul(x, wq, s, b, stream=stream)), expected)


# ---------------------------------------------------------------- bad input

_W, _S, _B = quantized(16, 128, 64, 4)
_X = rand((2, 128))
_qmm = fused.quantized_matmul

BAD = [
    (lambda: _qmm(_X, _W, _S, _B, mode="mxfp4"), r"\[quantized_matmul\] only mode='affine' is supported"),
    (lambda: _qmm(_X, _W, _S), r"\[quantized_matmul\] biases are required"),
    (lambda: _qmm(_X, _W, _S, _B, bits=3), r"\[quantized_matmul\] bits must be one of \(4, 8\)"),
    (lambda: _qmm(_X, _W, _S, _B, bits=2), r"\[quantized_matmul\] bits must be one of"),
    (lambda: _qmm(_X, _W, _S, _B, group_size=16), r"\[quantized_matmul\] group_size must be one of \(32, 64, 128\)"),
    (lambda: _qmm(_X, _W, _S, _B, group_size=True), r"\[quantized_matmul\] group_size must be one of"),
    (lambda: _qmm(_X, _W, _S, _B, group_size=32), r"\[quantized_matmul\] scales must have shape \(16, 4\)"),
    (lambda: _qmm(_X, _W, _S, _B, bits=8), r"\[quantized_matmul\] scales must have shape \(16, 1\) for w of shape \(16, 16\)"),
    (lambda: _qmm(_X[:, :72], _W[:, :9], _S[:, :1], _B[:, :1]), r"\[quantized_matmul\] the quantized axis of w \(72 codes\) must be a multiple of group_size=64"),
    (lambda: _qmm(_X, _W, _S, _B[:, :1]), r"\[quantized_matmul\] scales and biases must have the same shape"),
    (lambda: _qmm(_X, _W.astype(mx.int32), _S, _B), r"\[quantized_matmul\] w must be uint32"),
    (lambda: _qmm(_X, _W[0], _S[0], _B[0]), r"\[quantized_matmul\] w must have at least 2 dimension"),
    (lambda: _qmm(_X[:, :64], _W, _S, _B), r"\[quantized_matmul\] x's last axis must be 128 .* got x of shape \(2, 64\)"),
    (lambda: _qmm(_X, _W, _S, _B, transpose=False), r"\[quantized_matmul\] x's last axis must be 16"),
    (lambda: _qmm(_X.astype(mx.int32), _W, _S.astype(mx.int32), _B), r"\[quantized_matmul\] scales must have a floating dtype"),
    (lambda: _qmm(mx.array(1.0), _W, _S, _B), r"\[quantized_matmul\] x must have at least 1 dimension"),
    (lambda: _qmm(rand((3, 2, 128)), mx.stack([_W, _W]), mx.stack([_S, _S]), mx.stack([_B, _B])),
     r"\[quantized_matmul\] the batch shapes of x \(3,\) and w \(2,\) must broadcast"),
    (lambda: _qmm(np.ones((2, 128)), _W, _S, _B), r"\[quantized_matmul\] x must be an mlx.core.array"),
    (lambda: _qmm(_X, _W, _S, _B, stream="cpu"), r"\[quantized_matmul\] stream must be"),
]


@pytest.mark.parametrize("call,pattern", BAD, ids=[p for _, p in BAD])
def test_bad_input_raises_value_error(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()
