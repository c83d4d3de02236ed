"""The CUDA quantized_matmul kernels against the float64 oracle: GEMV (qmv_t, qmv_n; 16-byte and
strided loads) and tiled GEMM paths, 4/8 bits, every group size, both transposes, tails in M, N
and K, layouts of x, w, scales and biases, half dtypes, transforms.

The oracle and its bound come from tests/test_quantized_matmul.py (float32 accumulation error
plus one rounding to the output dtype), computed on the CPU: MLX-CUDA has no float64; its
comparison with mx.quantized_matmul runs here again (the default stream is the GPU's).
Runs only where the extension was built against a CUDA MLX (``_ext.gpu_kernels == "cuda"``).
"""

import mlx.core as mx
import numpy as np
import pytest
from _common import assert_pure
from test_quantized_matmul import CASES, LAYOUTS, assert_matches_oracle, quantized, rand
from test_quantized_matmul import test_matches_mx_quantized_matmul  # noqa: F401 - rerun here, on the GPU

import mlxr._ext as ext
import mlxr.fused as fused

pytestmark = pytest.mark.skipif(ext.gpu_kernels != "cuda", reason="extension built without CUDA kernels")

NAMES = {mx.float32: "float32", mx.float16: "float16", mx.bfloat16: "bfloat16"}
GEMV_MAX_ROWS = 16  # csrc/cuda/quantized_matmul.cu: kGemvMaxRows


def run_gpu(*args, **kwargs):
    with fused.observe() as seen:
        y = fused.quantized_matmul(*args, **kwargs)
        mx.eval(y)
    return y, {k for k in seen.kernels if k.startswith("gpu:quantized_matmul")}, seen.fallbacks


def variant(m):
    return "gemv" if m <= GEMV_MAX_ROWS else "gemm"


# Row counts around the GEMV row blocks (1, 4, 8), the GEMV/GEMM switch and the 64-row tiles.
@pytest.mark.parametrize("bits,group_size,transpose", CASES)
@pytest.mark.parametrize("m", [1, 2, 4, 5, 8, 9, 16, 17, 64, 65, 130])
def test_matches_oracle_and_runs_fused(bits, group_size, transpose, m):
    n, k = (72, 256) if transpose else (256, 72)
    wq, s, b = quantized(*((n, k) if transpose else (k, n)), group_size, bits)
    x = rand((m, k), key=m)
    y, kernels, fallbacks = run_gpu(x, wq, s, b, transpose, group_size, bits)
    assert kernels == {f"gpu:quantized_matmul_{variant(m)}_float32"} and not fallbacks
    assert y.dtype == mx.float32 and y.shape == (m, n)
    assert_matches_oracle(y, x, wq, s, b, transpose, group_size, bits)


@pytest.mark.parametrize("dtype", [mx.float16, mx.bfloat16])
@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("m", [1, 6, 40])
def test_half_precision(dtype, bits, transpose, m):
    n, k = (48, 256) if transpose else (256, 48)
    wq, s, b = quantized(*((n, k) if transpose else (k, n)), 64, bits, dtype)
    x = rand((m, k), dtype, key=m)
    y, kernels, _ = run_gpu(x, wq, s, b, transpose, 64, bits)
    assert y.dtype == dtype and kernels == {f"gpu:quantized_matmul_{variant(m)}_{NAMES[dtype]}"}
    assert_matches_oracle(y, x, wq, s, b, transpose, 64, bits)


@pytest.mark.parametrize("n", [1, 7, 31, 33, 63, 100])
@pytest.mark.parametrize("m", [1, 3, 11, 40])
def test_odd_output_sizes_transpose(n, m):
    # transpose=True: N (rows of w) is anything; columns past N are loaded, never stored.
    wq, s, b = quantized(n, 128, 64, 4)
    x = rand((m, 128), key=n)
    y, kernels, _ = run_gpu(x, wq, s, b)
    assert y.shape == (m, n) and kernels == {f"gpu:quantized_matmul_{variant(m)}_float32"}
    assert_matches_oracle(y, x, wq, s, b)


@pytest.mark.parametrize("k", [1, 5, 32, 33, 100])
@pytest.mark.parametrize("m", [1, 10, 40])
def test_odd_inner_sizes_no_transpose(k, m):
    # transpose=False: K (rows of w) is anything; N is a multiple of group_size.
    wq, s, b = quantized(k, 32, 32, 8)
    x = rand((m, k), key=k)
    y, _, _ = run_gpu(x, wq, s, b, False, 32, 8)
    assert y.shape == (m, 32)
    assert_matches_oracle(y, x, wq, s, b, False, 32, 8)


# (rows of w, codes per row, group size, bits, transpose): several GEMV column blocks and GEMM
# tiles in each direction, long K loops, K tails past the 32-row GEMM steps.
@pytest.mark.parametrize("rows,cols,group_size,bits,transpose",
                         [(300, 1024, 64, 4, True), (1000, 320, 64, 8, False), (129, 2048, 128, 8, True), (2051, 96, 32, 4, False)])
@pytest.mark.parametrize("m", [1, 7, 70])
def test_larger_shapes(rows, cols, group_size, bits, transpose, m):
    wq, s, b = quantized(rows, cols, group_size, bits)
    x = rand((m, cols if transpose else rows), key=m)
    assert_matches_oracle(fused.quantized_matmul(x, wq, s, b, transpose, group_size, bits), x, wq, s, b, transpose, group_size, bits)


# misaligned: rows start one element past 16 bytes (scalar loads in qmv_t).
X_LAYOUTS = {**LAYOUTS, "misaligned": lambda a: a[:, 1:]}


@pytest.mark.parametrize("layout", sorted(X_LAYOUTS))
@pytest.mark.parametrize("rows", [3, 40])
@pytest.mark.parametrize("transpose", [True, False])
def test_x_layouts(layout, rows, transpose):
    k = 64
    shape = {"transposed": (k, rows), "strided": (rows, 2 * k), "misaligned": (rows, k + 1)}.get(layout, (rows, k))
    x = X_LAYOUTS[layout](rand(shape, key=rows))
    assert x.shape == (rows, k)
    wq, s, b = quantized(*((40, k) if transpose else (k, 64)), 32, 4)
    y, kernels, _ = run_gpu(x, wq, s, b, transpose, 32, 4)
    assert kernels == {f"gpu:quantized_matmul_{variant(rows)}_float32"}
    assert_matches_oracle(y, mx.array(np.array(x)), wq, s, b, transpose, 32, 4)


@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("m", [1, 5, 40])
def test_non_contiguous_weights_and_scales(transpose, m):
    rows, cols = (80, 128) if transpose else (128, 64)
    wq, s, b = quantized(rows, cols, 32, 4)
    x = rand((m, 128), key=m)
    # Column-major copies of w, scales and biases: words and parameters read with strides.
    w_t, s_t, b_t = (mx.swapaxes(mx.array(np.ascontiguousarray(np.array(a).T)), 0, 1) for a in (wq, s, b))
    assert_matches_oracle(fused.quantized_matmul(x, w_t, s_t, b_t, transpose, 32, 4), x, wq, s, b, transpose, 32, 4)
    # Every other row of w (with its scales/biases) and broadcast scales.
    if transpose:
        w2, s2, b2 = wq[::2], s[::2], b[::2]
        y = fused.quantized_matmul(x, w2, s2, b2, True, 32, 4)
        assert_matches_oracle(y, x, mx.array(np.array(w2)), mx.array(np.array(s2)), mx.array(np.array(b2)), True, 32, 4)
    sb = mx.broadcast_to(s[:1], s.shape)
    assert_matches_oracle(fused.quantized_matmul(x, wq, sb, b, transpose, 32, 4), x, wq, mx.array(np.array(sb)), b, transpose, 32, 4)


@pytest.mark.parametrize("shape", [(64,), (2, 3, 64), (2, 1, 5, 64), (3, 7, 64), (0, 64), (3, 0, 64)])
def test_leading_shapes(shape):
    wq, s, b = quantized(24, 64, 64, 4)
    x = rand(shape, key=len(shape))
    y = fused.quantized_matmul(x, wq, s, b)
    mx.eval(y)
    assert y.shape == shape[:-1] + (24,)
    if x.size:
        assert_matches_oracle(y.reshape(-1, 24), x.reshape(-1, 64), wq, s, b)


def test_batched_x_is_one_call():
    wq, s, b = quantized(24, 64, 64, 4)
    x = rand((4, 5, 64))  # 20 rows: the tiled kernel over the flattened rows
    y, kernels, _ = run_gpu(x, wq, s, b)
    assert kernels == {"gpu:quantized_matmul_gemm_float32"}
    assert_matches_oracle(y.reshape(20, 24), x.reshape(20, 64), wq, s, b)


def test_special_values_stay_in_their_row():
    wq, s, b = quantized(8, 64, 64, 4)
    for m in (3, 20):
        x = rand((m, 64))
        bad = mx.array([0.0, float("nan"), float("inf")] * (m // 3) + [0.0] * (m % 3))[:, None]
        x = mx.where(mx.arange(64) == 5, bad, x)
        y = np.array(fused.quantized_matmul(x, wq, s, b))
        assert np.all(np.isfinite(y[0])) and np.all(np.isnan(y[1]))
        assert not np.any(np.isfinite(y[2]))


def test_deterministic_and_inputs_untouched():
    wq, s, b = quantized(200, 256, 64, 4)
    for m in (3, 40):
        assert_pure(lambda a: fused.quantized_matmul(a, wq, s, b), rand((m, 256)))


def test_grads_vmap_compile():
    wq, s, b = quantized(48, 128, 64, 4)
    x = rand((3, 128))
    with fused.observe() as seen:
        g = mx.grad(lambda a: fused.quantized_matmul(a, wq, s, b).sum())(x)
        mx.eval(g)
    # d/dx is the fused op with transpose flipped, on the GPU.
    assert set(seen.kernels) == {"gpu:quantized_matmul_gemv_float32"} and not seen.fallbacks
    expected = mx.quantized_matmul(mx.ones((3, 48)), wq, s, b, transpose=False)
    np.testing.assert_allclose(np.array(g), np.array(expected), rtol=1e-5, atol=1e-5)
    xb = rand((3, 4, 128), key=2)
    got = mx.vmap(lambda a: fused.quantized_matmul(a, wq, s, b), in_axes=1)(xb)
    for i in range(4):
        assert_matches_oracle(got[i], xb[:, i], wq, s, b)
    f = mx.compile(lambda a: fused.quantized_matmul(a, wq, s, b), shapeless=True)
    for rows in (2, 33):
        xr = rand((rows, 128), key=rows)
        assert_matches_oracle(f(xr), xr, wq, s, b)
