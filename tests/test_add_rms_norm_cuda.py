"""The CUDA add_rms_norm kernel against a float64 oracle and the CPU kernel: h exact, every
row configuration, layouts of both inputs, weight or none.

Runs only where the extension was built against a CUDA MLX (``_ext.gpu_kernels == "cuda"``).
"""

import mlx.core as mx
import numpy as np
import pytest

import mlxr.fused as fused
from _cuda import DTYPES, REQUIRES_CUDA_KERNELS, as_np
from _cuda import rand_row_scaled as rand

pytestmark = REQUIRES_CUDA_KERNELS

REL_ERR = {mx.float32: 1e-5, mx.float16: 1e-3, mx.bfloat16: 8e-3}
ULPS2 = {mx.float32: 4e-6, mx.float16: 2.0**-9, mx.bfloat16: 2.0**-6}
ROW_SIZES = [1, 7, 33, 256, 1000, 2048, 2049, 8192, 32768, 32769, 70001]


def plain(a):
    return None if a is None else mx.array(np.array(a.astype(mx.float32))).astype(a.dtype)


def check(normed, h, x, r, w, eps=1e-5):
    with mx.stream(mx.cpu):
        cpu_normed, cpu_h = fused.add_rms_norm(plain(x), plain(r), plain(w), eps)
        mx.eval(cpu_normed, cpu_h)
    np.testing.assert_array_equal(as_np(h), as_np(cpu_h))  # one rounding of x + r: exact
    got, hh = as_np(normed), as_np(h)
    ref = hh / np.sqrt((hh * hh).mean(-1, keepdims=True) + eps) * (1 if w is None else as_np(w))
    rel = np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30)
    assert rel < REL_ERR[normed.dtype], f"relative error {rel:.3g} vs float64 oracle"
    np.testing.assert_allclose(got, as_np(cpu_normed), rtol=ULPS2[normed.dtype], atol=ULPS2[normed.dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", ROW_SIZES)
def test_matches_oracle_and_runs_fused(dtype, n):
    x, r = rand((3, n), dtype, 1), rand((3, n), dtype, 2)
    w = mx.random.normal((n,), key=mx.random.key(3)).astype(dtype)
    with fused.observe() as seen:
        normed, h = fused.add_rms_norm(x, r, w, 1e-5)
        mx.eval(normed, h)
    assert any(k.startswith("gpu:add_rms_norm_") for k in seen.kernels) and not seen.fallbacks, seen
    check(normed, h, x, r, w)
    check(*fused.add_rms_norm(x, r, None, 1e-5), x, r, None)


LAYOUTS = {
    "transposed_x": (lambda a: a.T, lambda a: a.T * 1),
    "strided_both": (lambda a: a[:, ::2], lambda a: a[:, 1::2]),
    "reversed_residual": (lambda a: a, lambda a: a[::-1, ::-1]),
    "offset": (lambda a: a[:, 1:], lambda a: a[:, 1:]),
    "broadcast_residual": (lambda a: a, lambda a: mx.broadcast_to(a[:1], a.shape)),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts(layout, dtype):
    xv, rv = LAYOUTS[layout]
    x, r = xv(rand((64, 64), dtype, 4)), rv(rand((64, 64), dtype, 5))
    w = mx.random.normal((x.shape[-1],), key=mx.random.key(6)).astype(dtype)
    check(*fused.add_rms_norm(x, r, w, 1e-5), x, r, w)


def test_decoder_loop_and_grads():
    x, w = rand((4, 512), key=7), mx.random.normal((512,), key=mx.random.key(8))
    h = rand((4, 512), key=9)
    for _ in range(3):
        normed, h_next = fused.add_rms_norm(x, h, w, 1e-5)
        check(normed, h_next, x, h, w)
        h = h_next
    ct = rand((4, 512), key=10)
    _, g_gpu = mx.vjp(lambda a, b: fused.add_rms_norm(a, b, w, 1e-5)[0], [x, h], [ct])
    with mx.stream(mx.cpu):
        _, g_cpu = mx.vjp(lambda a, b: fused.add_rms_norm(a, b, w, 1e-5)[0], [x, h], [ct])
    for a, c in zip(g_gpu, g_cpu):
        np.testing.assert_allclose(np.array(a), np.array(c), rtol=1e-4, atol=1e-4)
