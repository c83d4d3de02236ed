"""Checks every per-op test file needs, written once."""

import os
import subprocess
import sys

import mlx.core as mx
import numpy as np

ISAS = ("baseline", "avx2", "avx512")

# Strided views of a 2-D array the kernels read in place (no copy): the layouts every
# row-wise op's test_layouts runs.
LAYOUTS_2D = {
    "transposed": lambda a: a.T,
    "strided": lambda a: a[:, ::2],
    "reversed": lambda a: a[::-1, ::-1],
    "offset": lambda a: a[1:, 3:],
    "broadcast": lambda a: mx.broadcast_to(a[:1], a.shape),
}


def rand(shape, dtype=mx.float32, key=0, scale=1.0, shift=0.0) -> mx.array:
    """``scale * normal + shift`` in ``dtype``, evaluated: closures captured by mx.compile must
    not carry RNG graphs."""
    a = mx.random.normal(shape, key=mx.random.key(key))
    if scale != 1.0:
        a = scale * a
    if shift != 0.0:
        a = a + shift
    a = a.astype(dtype)
    mx.eval(a)
    return a


def f64(a: mx.array) -> np.ndarray:
    """A float64 numpy copy (exact for every float dtype)."""
    return np.array(a.astype(mx.float64))


def assert_close_f64(actual: mx.array, expected: mx.array, rtol: float, atol: float) -> None:
    """Elementwise ``|actual - expected| <= atol + rtol * |expected|``, in float64."""
    np.testing.assert_allclose(f64(actual), f64(expected), rtol=rtol, atol=atol)


def assert_close_to_max(actual: mx.array, expected: mx.array, tol: float) -> None:
    """For quantities with cancellation (gradients) or underflow (half-precision composites):
    errors scale with the largest entry rather than with each entry."""
    e = f64(expected)
    np.testing.assert_allclose(f64(actual), e, rtol=tol, atol=tol * np.abs(e).max())


def isa_outputs(code: str) -> list[str]:
    """Runs ``code`` (which prints the ISA name first) once per CPU ISA level, in subprocesses
    (the level is fixed at first use); what each distinct level printed after its name."""
    outs = {}
    for isa in ISAS:
        env = {**os.environ, "MLXR_CPU_ISA": isa}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        name, _, rest = out.stdout.partition(" ")
        outs[name] = rest
    return list(outs.values())


def isa_sums(code: str) -> list[list[float]]:
    """The numbers ``code`` prints after the ISA name, per distinct ISA level (isa_outputs)."""
    return [[float(v) for v in rest.split()] for rest in isa_outputs(code)]


def isa_rows(code: str) -> list[np.ndarray]:
    """The lists ``code`` prints after the ISA name (``print(name, *lists)``), one array row per
    list, per distinct ISA level (isa_outputs)."""
    return [np.array(eval(rest.replace("] [", "],["))) for rest in isa_outputs(code)]


def assert_isa_paths_agree(code: str, rtol: float = 1e-5) -> None:
    """Every ISA level the CPU supports computes the same function (to ``rtol``)."""
    values = isa_sums(code)
    for v in values[1:]:
        np.testing.assert_allclose(v, values[0], rtol=rtol)


def assert_isa_rows_agree(code: str, rtol: float, atol: float, float32_rtol: float = 2e-6) -> None:
    """Every ISA level the CPU supports computes the same function: ``code`` prints the ISA name,
    then one list per dtype, float32 first (isa_rows); all agree to ``rtol``/``atol``, the
    float32 list to ``float32_rtol``."""
    values = isa_rows(code)
    for v in values[1:]:
        np.testing.assert_allclose(v, values[0], rtol=rtol, atol=atol)
        np.testing.assert_allclose(v[0], values[0][0], rtol=float32_rtol)


def assert_pure(fn, *inputs: mx.array) -> None:
    """``fn(*inputs)`` leaves its inputs untouched and gives the same outputs twice."""
    before = [np.array(a) for a in inputs]
    first, second = fn(*inputs), fn(*inputs)
    for a, b in zip(inputs, before):
        np.testing.assert_array_equal(np.array(a), b)
    for a, b in zip(_leaves(first), _leaves(second)):
        np.testing.assert_array_equal(np.array(a), np.array(b))


def _leaves(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]
