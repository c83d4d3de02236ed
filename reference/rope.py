"""Rotary positional encoding (RoPE) reference."""

import math

import mlx.core as mx
import numpy as np

from ._dtypes import accumulation_dtype


def rope_inv_freqs(dims: int, base: float | None, freqs: mx.array | None, dtype: mx.Dtype) -> mx.array:
    """The ``dims // 2`` inverse frequencies in ``dtype`` (float32, or float64 for the oracle).

    From ``base``: ``inv_freq[i] = exp(-i * log(base) / (dims / 2))``; from ``freqs``:
    ``1 / freqs``. In float32 the constant ``log(base) / (dims / 2)`` is rounded as
    ``mx.fast.rope`` rounds it (float32 log, float32 division), so angles agree bit for bit.
    """
    half = dims // 2
    if freqs is not None:
        return mx.reciprocal(freqs.astype(dtype))
    if dtype == mx.float64:
        # numpy: MLX's CPU float64 exp is only ~float32-accurate (2.7e-6 relative error seen).
        return mx.array(np.exp(np.arange(0, -half, -1) * (math.log(base) / half)), dtype=mx.float64)
    step = np.float32(math.log(np.float32(base))) / np.float32(half)
    return mx.exp(mx.arange(0, -half, -1, dtype=dtype) * mx.array(step, dtype=dtype))


# pi/2 in three 33-bit parts (fdlibm's split): k * part is exact for |k| < 2^20.
_PIO2_PARTS = (1.57079632673412561417e00, 6.07710050630396597660e-11, 2.02226624871116645580e-21)


def _sin_cos_f64(theta: mx.array) -> tuple[mx.array, mx.array]:
    """float64 sin and cos from exact ops only (MLX's CPU float64 sin/cos are float32-accurate).

    Cody-Waite reduction by pi/2 (accurate for |theta| < 2^20 * pi/2, about 1.6e6) and Taylor
    polynomials on [-pi/4, pi/4] whose truncation error is below 1e-19.
    """
    k = mx.stop_gradient(mx.round(theta * (2 / math.pi)))
    r = theta
    for part in _PIO2_PARTS:
        r = r - k * part
    z = r * r
    sin_r = mx.zeros_like(r)
    for n in range(17, 0, -2):  # r - r^3/3! + ... + r^17/17!, Horner in z
        sin_r = sin_r * z + (-1) ** ((n - 1) // 2) / math.factorial(n)
    sin_r = sin_r * r
    cos_r = mx.zeros_like(r)
    for n in range(18, -1, -2):
        cos_r = cos_r * z + (-1) ** (n // 2) / math.factorial(n)
    q = mx.remainder(k, 4)
    sin = mx.where(q == 0, sin_r, mx.where(q == 1, cos_r, mx.where(q == 2, -sin_r, -cos_r)))
    cos = mx.where(q == 0, cos_r, mx.where(q == 1, -sin_r, mx.where(q == 2, -cos_r, sin_r)))
    return sin, cos


def rope_rotate(
    a: mx.array,
    offset: mx.array,
    inv_freqs: mx.array,
    dims: int,
    traditional: bool,
    scale: float,
    forward: bool,
) -> mx.array:
    """RoPE with precomputed inverse frequencies: the body of ``rope`` and the fused op's fallback.

    ``offset`` is an integer array of size 1 or ``a.shape[0]``; ``inv_freqs`` has shape
    ``(dims // 2,)`` and the accumulation dtype. ``forward=False`` rotates by ``-theta`` (the
    inverse map, which is also the vjp).
    """
    acc = inv_freqs.dtype
    n_t = a.shape[-2]
    half = dims // 2
    if offset.size > 1:
        # Per-batch offsets: positions get shape (B, 1, ..., 1, T).
        offset = offset.reshape((-1,) + (1,) * (a.ndim - 2))
    positions = (mx.arange(n_t, dtype=acc) + offset.astype(acc)) * mx.array(scale, dtype=acc)
    theta = positions[..., None] * inv_freqs
    if acc == mx.float64:
        sin, cos = _sin_cos_f64(theta)
    else:
        cos, sin = mx.cos(theta), mx.sin(theta)
    if not forward:
        sin = -sin

    xa = a[..., :dims].astype(acc)
    if traditional:
        x1, x2 = xa[..., 0::2], xa[..., 1::2]
    else:
        x1, x2 = xa[..., :half], xa[..., half:]
    r1 = x1 * cos - x2 * sin
    r2 = x1 * sin + x2 * cos
    if traditional:
        rotated = mx.stack([r1, r2], axis=-1).reshape(*a.shape[:-1], dims)
    else:
        rotated = mx.concatenate([r1, r2], axis=-1)
    rotated = rotated.astype(a.dtype)
    if dims < a.shape[-1]:
        rotated = mx.concatenate([rotated, a[..., dims:]], axis=-1)
    return rotated


def rope(
    a: mx.array,
    dims: int,
    *,
    traditional: bool,
    base: float | None,
    scale: float,
    offset,
    freqs: mx.array | None = None,
) -> mx.array:
    """Rotary positional encoding of the first ``dims`` features of ``a`` (shape ``(B, *, T, D)``).

    For the row at position ``t`` along axis -2 of batch ``b``, with
    ``p = (t + offset[b]) * scale`` and ``theta_i = p * inv_freq_i`` (``inv_freq_i =
    base ** (-i / (dims / 2))``, or ``1 / freqs[i]``), each pair ``(x1, x2)`` becomes
    ``(x1 cos theta_i - x2 sin theta_i, x1 sin theta_i + x2 cos theta_i)``. Pairs are
    ``(x[2i], x[2i+1])`` when ``traditional`` else ``(x[i], x[i + dims/2])``; features from
    ``dims`` on pass through unchanged. ``offset`` is an int or an integer array of size 1 or B.

    Dtype rules: the output has ``a.dtype``; angles, sines, cosines and the rotation are
    computed in float32 (float64 for float64 input, which makes this the float64 oracle) and
    rounded once to the output dtype, as MLX's GPU kernels do. The float64 path avoids MLX's
    CPU float64 exp/sin/cos, which are only about float32-accurate. (``mx.fast.rope`` on the CPU
    rounds cos/sin and each product to half-precision dtypes, so it differs by a few ulp there.)

    Arguments are not validated here; ``mlxr.fused.rope`` validates.
    """
    acc = accumulation_dtype(a.dtype)
    if not isinstance(offset, mx.array):
        offset = mx.array(offset, dtype=mx.int32)
    inv_freqs = rope_inv_freqs(dims, base, freqs, acc)
    return rope_rotate(a, offset, inv_freqs, dims, traditional, scale, True)
